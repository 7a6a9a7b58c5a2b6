from django.core.management.base import BaseCommand

from apps.setup.services import setup_needed, setup_token


class Command(BaseCommand):
    help = "Print the one-time token that /setup/ asks for on a fresh install."

    def handle(self, *args, **options):
        if not setup_needed():
            self.stdout.write("Parley is already set up; /setup/ is closed. Sign in at /admin/.")
            return
        self.stdout.write(setup_token())
