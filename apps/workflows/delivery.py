"""How a workflow's result reaches its user: through the reply service the conversations app
registers when it starts (``ConversationsConfig.ready``), not by importing the message pipeline.

Workflows sit below conversations in the app layers (pyproject.toml's import contracts): they know
runs, not conversations or platforms. The pipeline gives them this interface instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from django.core.exceptions import ImproperlyConfigured

from .models import WorkflowRun


class ReplyService(Protocol):
    def tell(self, run: WorkflowRun, text: Callable[[], str]) -> None:
        """Store the run's result (``text()``, asked for only when it is not stored yet) as an
        assistant turn of the run's conversation, once, and send it to the user unless it was
        delivered — where the user's last message of the run came from, by one sender at a time.
        Raises ``PlatformError`` from the send."""


_service: ReplyService | None = None


def register(service: ReplyService) -> None:
    global _service
    _service = service


def reply_service() -> ReplyService:
    if _service is None:
        raise ImproperlyConfigured("no workflow reply service is registered (is apps.conversations installed?)")
    return _service
