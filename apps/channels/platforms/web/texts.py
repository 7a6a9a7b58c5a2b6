"""The web-chat widget's texts, in the project catalogue so they are translated like every other
(docs/i18n.md). ``static/parley/widget.js`` is written with the English texts; ``/widget.js`` fills
its ``TEXTS`` table with the visitor's language (``widget_texts``)."""

from __future__ import annotations

import json

from django.utils import translation
from django.utils.translation import gettext_lazy as _

WIDGET_TEXTS = {
    "Chat": _("Chat"),
    "Open chat": _("Open chat"),
    "New conversation": _("New conversation"),
    "Close": _("Close"),
    "Close chat": _("Close chat"),
    "The assistant is typing": _("The assistant is typing"),
    "Type a message…": _("Type a message…"),
    "Message": _("Message"),
    "Send": _("Send"),
    "Helpful": _("Helpful"),
    "Not helpful": _("Not helpful"),
    "Rate and comment": _("Rate and comment"),
    "You are offline; try again in a moment.": _("You are offline; try again in a moment."),
    "Reconnecting…": _("Reconnecting…"),
    "Connecting…": _("Connecting…"),
    "The chat is not available here.": _("The chat is not available here."),
    "Offline — reconnecting…": _("Offline — reconnecting…"),
    "Not sent.": _("Not sent."),
    "Something went wrong.": _("Something went wrong."),
    "Could not start a new conversation; try again.": _("Could not start a new conversation; try again."),
}


def widget_texts(language: str) -> str:
    """The widget's ``TEXTS`` table for ``language`` as a JavaScript object literal (only the texts
    that differ from the English written in the script)."""
    with translation.override(language):
        table = {english: str(text) for english, text in WIDGET_TEXTS.items() if str(text) != english}
    # "</" cannot end a script element here: the table is JSON, and JSON may escape "/".
    return json.dumps(table, ensure_ascii=False, sort_keys=True).replace("</", "<\\/")
