from pathlib import Path

from django.core.management.base import BaseCommand

from apps.configio.services import dump_yaml, export_config


class Command(BaseCommand):
    help = "Write the configuration (tenants, models, bots, knowledge, channels) as YAML, without secrets."

    def add_arguments(self, parser):
        parser.add_argument("-o", "--output", help="File to write (default: standard output).")
        parser.add_argument("--tenant", action="append", dest="tenants", help="Only this tenant (repeatable).")

    def handle(self, *args, output: str | None, tenants: list[str] | None, **options):
        text = "# Parley configuration. Secrets (api_key, credentials) are not exported.\n"
        text += dump_yaml(export_config(tenant_slugs=tenants))
        if output:
            Path(output).write_text(text, encoding="utf-8")
            self.stderr.write(f"Wrote {output}")
        else:
            self.stdout.write(text, ending="")
