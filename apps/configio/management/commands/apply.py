from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.configio.services import ConfigError, apply_config, load_config


class Command(BaseCommand):
    help = "Create or update tenants, models, bots, knowledge and channels from a YAML file (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("-f", "--file", required=True, help="The YAML file, or - for standard input.")
        parser.add_argument("--dry-run", action="store_true", help="Validate and report, change nothing.")

    def handle(self, *args, file: str, dry_run: bool, **options):
        if file == "-":
            import sys

            text, name, base = sys.stdin.read(), "<stdin>", Path.cwd()
        else:
            path = Path(file)
            if not path.is_file():
                raise CommandError(f"{file}: no such file")
            text, name, base = path.read_text(encoding="utf-8"), file, path.resolve().parent
        try:
            config = load_config(text, filename=name, base_dir=base)
            report = apply_config(config, dry_run=dry_run)
        except ConfigError as exc:
            raise CommandError("invalid configuration, nothing was changed:\n" + "\n".join(exc.errors)) from exc
        except ValidationError as exc:
            raise CommandError(f"{name}: invalid configuration, nothing was changed: {exc}") from exc
        for line in report.created:
            self.stdout.write(f"  created {line}")
        for line in report.updated:
            self.stdout.write(f"  updated {line}")
        for line in report.deleted:
            self.stdout.write(f"  deleted {line}")
        prefix = "Dry run — would apply: " if dry_run else ""
        self.stdout.write(self.style.SUCCESS(prefix + report.summary()))
