"""Transcript filters: ``{{ text|answer_markdown }}`` renders an answer's Markdown as safe HTML
(``review_markdown``); ``{{ turn.source|source_label }}`` names where an answer came from in the
reader's language."""

from django import template
from django.utils.translation import gettext_lazy as _

from ..review_markdown import markdown_html

register = template.Library()

#: Message.source values (set by the pipeline, the router and workflows) as a reviewer reads them.
SOURCE_LABELS = {
    "model": _("model"),
    "builtin": _("built-in model"),
    "failure": _("failure text"),
    "knowledge": _("knowledge"),
    "cache": _("answer cache"),
    "command": _("command"),
    "system": _("system"),
    "rate_limited": _("rate limited"),
    "workflow": _("workflow"),
}


@register.filter
def answer_markdown(text: str):
    return markdown_html(text)


@register.filter
def source_label(source: str):
    return SOURCE_LABELS.get(source, source)


#: A conversation's language code (detected, or chosen with /lang) as a reviewer reads it.
LANGUAGE_LABELS = {
    "zh": _("Chinese"),
    "en": _("English"),
    "ja": _("Japanese"),
    "ko": _("Korean"),
    "fr": _("French"),
    "de": _("German"),
    "es": _("Spanish"),
    "ru": _("Russian"),
}


@register.filter
def language_label(code: str):
    return LANGUAGE_LABELS.get((code or "").split("-")[0].lower(), code)
