"""The seam between the conversations app and human handoff.

Handoff (the queue, agents, claims: ``apps.inbox``) sits a layer above this app, so nothing here may
import it. It plugs in instead: ``InboxConfig.ready()`` calls ``install`` with its implementation of
``HandoffPort``, and the three places where a conversation can pass to a person call through
``handoff_port()`` explicitly:

* the pipeline's handoff gate (``gate``): the bot stays silent while a person holds the
  conversation, and ``/human`` or a configured phrase asks for one;
* the feedback path (``after_rating``, called by ``review.record_feedback``): the rule "two
  thumbs-down in a row";
* the model's own decision (``request_from_model``): the built-in tool ``handoff_to_human`` of tool
  calling (``pipeline.tools``), offered when ``model_may_hand_over`` says so.

Without ``apps.inbox`` installed the default port does nothing and the bot answers everything.
Plain calls, not Django signals: the message path stays readable from top to bottom.
"""

from __future__ import annotations

from typing import Any


class HandoffPort:
    """What the conversations app asks of human handoff. The default: no handoff at all."""

    def gate(self, turn: Any) -> bool:
        """Called for every claimed message (``turn``: the pipeline's ``Turn``, its conversation
        found) before workflows, commands and the model. Returns True
        when handoff handled the message (held for a person, or a person was asked for and the user
        told) and the pipeline must stop; False to carry on. Raises ``PlatformError`` from a send."""
        return False

    def after_rating(self, *, message: Any, rating: int) -> None:
        """Called after an end user's rating of ``message`` was stored. Never raises."""

    def model_may_hand_over(self, bot: Any) -> bool:
        """Whether ``bot``'s model is offered the tool to hand a conversation to a person (cheap:
        asked while the tools of every message of a bot with tools are put together)."""
        return False

    def request_from_model(self, *, conversation: Any, note: str = "") -> Any:
        """The model decided a person should take over ``conversation`` (``note``: its reason, for
        the agent). Returns the handoff, or None when handoff is not available."""
        return None


_port: HandoffPort = HandoffPort()


def install(port: HandoffPort) -> None:
    """Make ``port`` the handoff implementation (called once, from an ``AppConfig.ready``)."""
    global _port
    _port = port


def handoff_port() -> HandoffPort:
    return _port
