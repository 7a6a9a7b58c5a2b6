"""Rating-button clicks, however they arrive (a webhook, Slack Socket Mode, Feishu's long
connection): recorded as the answer's rating — never as a message — and answered in the platform's
own shape by its adapter."""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpResponse

from . import conversation_port
from .platforms.base import RatingClick, RawRequest

logger = logging.getLogger(__name__)


def answer_rating_click(adapter: Any, channel: Any, request: RawRequest, click: RatingClick) -> HttpResponse:
    """Store ``click`` (``button_rating_record``: only the asker, limits, expiry) and return the
    adapter's ``rating_response``. Refusals are logged by kind, never with the token."""
    outcome = conversation_port.record_rating_click(channel=channel, click=click)
    if not outcome.ok:
        logger.info("rating click refused: %s", outcome.kind, extra={"status": outcome.status})
    return adapter.rating_response(request, channel, click, outcome)
