"""``python manage.py unlock_signin``: end password sign-in lockouts early (see docs/security.md)."""

from __future__ import annotations

import ipaddress

from django.core.management.base import BaseCommand, CommandError

from apps.accounts.signin import unlock_signin


class Command(BaseCommand):
    help = "Clear the failed sign-ins and any lockout of the given usernames and client addresses."

    def add_arguments(self, parser):
        parser.add_argument("--username", action="append", default=[], help="A username (repeatable).")
        parser.add_argument("--address", action="append", default=[], help="A client IP address (repeatable).")

    def handle(self, *args, username: list[str], address: list[str], **options):
        if not username and not address:
            raise CommandError("Name at least one --username or --address.")
        for value in address:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise CommandError(f"Not an IP address: {value[:60]!r}") from None
        for value in username:
            unlock_signin(username=value, via="manage.py unlock_signin")
            self.stdout.write(f"unlocked username {value}")
        for value in address:
            unlock_signin(address=value, via="manage.py unlock_signin")
            self.stdout.write(f"unlocked address {value}")
