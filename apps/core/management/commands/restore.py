from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from apps.core.backup import BackupError, extract_keys, read_manifest, restore_backup


class Command(BaseCommand):
    help = (
        "Replace the whole database with a backup made by manage.py backup, then check every table's "
        "row count and that every stored secret decrypts. Stop Parley's processes first."
    )

    def add_arguments(self, parser):
        parser.add_argument("backup", type=Path)
        parser.add_argument("--yes", action="store_true", help="confirm: every row of the database is replaced")
        parser.add_argument(
            "--extract-keys",
            type=Path,
            metavar="FILE",
            help="only write the backup's SECRET_KEY and PARLEY_ENCRYPTION_KEYS to FILE (mode 600), restore nothing",
        )
        parser.add_argument(
            "--ignore-keys", action="store_true", help="restore although the configured keys are not the backup's"
        )

    def handle(self, *args, **options):
        path = options["backup"]
        try:
            if options["extract_keys"]:
                extract_keys(path, options["extract_keys"])
                self.stdout.write(f"Wrote the backup's keys to {options['extract_keys']} (mode 600).")
                return
            manifest = read_manifest(path)
            if not options["yes"]:
                raise CommandError(
                    f"this replaces every row of database {connection.settings_dict['NAME']} with the backup of "
                    f"{manifest['created_at']}; run again with --yes"
                )
            report = restore_backup(path, ignore_keys=options["ignore_keys"])
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Restored {report.tables} tables, {report.rows} rows from {manifest['created_at']}.")
        self.stdout.write(f"Stored secrets readable: {report.secrets - len(report.unreadable)} of {report.secrets}.")
        if report.unreadable:
            raise CommandError(
                "these secrets cannot be decrypted with the configured keys: " + ", ".join(report.unreadable[:20])
            )
        self.stdout.write("Run manage.py migrate if this Parley is newer than the backup, then start Parley.")
