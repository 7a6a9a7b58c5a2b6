"""``makemessages`` without gettext's fuzzy guesses: a new text comes in with an empty Chinese
translation, never with the translation of some similar-looking text (docs/i18n.md)."""

from django.core.management.commands import makemessages


class Command(makemessages.Command):
    msgmerge_options = [*makemessages.Command.msgmerge_options, "--no-fuzzy-matching"]
