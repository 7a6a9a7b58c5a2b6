"""``{{ text|answer_markdown }}``: an answer's Markdown as safe HTML (``review_markdown``)."""

from django import template

from ..review_markdown import markdown_html

register = template.Library()


@register.filter
def answer_markdown(text: str):
    return markdown_html(text)
