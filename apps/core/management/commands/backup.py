from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.core.backup import BackupError, create_backup


class Command(BaseCommand):
    help = (
        "Write a consistent backup of the database and the encryption keys to one .tar.gz (mode 600). "
        "Safe while Parley runs. Restore with manage.py restore."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--output", "-o", type=Path, help="archive path (default: VAR_DIR/backups/parley-<time>.tar.gz)"
        )
        parser.add_argument(
            "--without-keys",
            action="store_true",
            help="leave SECRET_KEY and PARLEY_ENCRYPTION_KEYS out (keep the env file backed up separately)",
        )

    def handle(self, *args, **options):
        output = options["output"] or (
            Path(settings.VAR_DIR) / "backups" / f"parley-{datetime.now(UTC):%Y%m%d-%H%M%S}.tar.gz"
        )
        try:
            manifest = create_backup(output, include_keys=not options["without_keys"])
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        rows = sum(manifest["tables"].values())
        self.stdout.write(f"{output}: {len(manifest['tables'])} tables, {rows} rows ({manifest['vendor']})")
        if manifest["keys_included"]:
            self.stdout.write("It holds the encryption keys: keep it as safe as /etc/parley/parley.env.")
        else:
            self.stdout.write("Without the keys: restoring needs this install's SECRET_KEY and PARLEY_ENCRYPTION_KEYS.")
