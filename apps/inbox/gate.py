"""The handoff gate: what the pipeline does with a message before workflows, commands and the
model, installed as the conversations app's ``HandoffPort`` (apps/conversations/handoff.py).

* While a person holds the conversation (a handoff waiting or active), the bot stays silent: the
  user's turn is stored, shows up live in the agent's inbox, and the message is finished as
  ``held``. Only a repeated ``/human`` while still waiting gets a word back ("already asked").
* ``/human`` (or a phrase the bot's admin configured) opens a handoff and the user is told, in
  their language, that a colleague will reply and within what hours — through the same store and
  deliver steps as any answer.
"""

from __future__ import annotations

import logging
from typing import Any

from apps.conversations.handoff import HandoffPort
from apps.conversations.models import InboundMessage
from apps.conversations.pipeline.deliver import deliver, store_reply
from apps.conversations.pipeline.session import store_user_turn
from apps.core.language import detect_language

from . import services
from .models import Handoff
from .texts import text_for

logger = logging.getLogger(__name__)
S = InboundMessage.Status


def _language(conv: Any, text: str) -> str:
    if conv.language_pinned and conv.language:
        return conv.language
    return detect_language(text, default=conv.language or "en")


def _say(claim: Any, conv: Any, text: str, language: str) -> None:
    reply = store_reply(claim, conv, text=text, source="system", language=language)
    if reply is not None:
        deliver(claim, reply, status=S.ANSWERED, conv=conv)


def handoff_gate(claim: Any, conv: Any) -> bool:
    """True when the message was handled here (held, or a person asked for); False: carry on."""
    inbound = claim.inbound
    handoff = services.open_handoff(conv)
    cfg = services.settings_for(conv.bot)
    if handoff is not None:
        language = _language(conv, inbound.text)
        store_user_turn(conv, inbound, language=language)
        services.user_wrote(handoff)
        if handoff.state == Handoff.State.WAITING and services.asks_for_person(inbound.text, cfg):
            _say(claim, conv, text_for("already_waiting", language), language)
        else:
            claim.finish(S.HELD)
        logger.info("message held for a person", extra={"inbound": inbound.pk, "handoff": handoff.pk})
        return True
    if inbound.refused_by:
        return False  # the rate-limit notice, as usual
    reason = services.asks_for_person(inbound.text, cfg)
    if reason is None:
        return False
    language = _language(conv, inbound.text)
    store_user_turn(conv, inbound, language=language, source="command" if reason == Handoff.Reason.COMMAND else "")
    services.handoff_request(conversation=conv, reason=reason, language=language)
    _say(claim, conv, services.requested_text(cfg, language), language)
    return True


class InboxHandoffPort(HandoffPort):
    def gate(self, claim: Any, conv: Any) -> bool:
        return handoff_gate(claim, conv)

    def after_rating(self, *, message: Any, rating: int) -> None:
        try:
            services.request_by_rule(message=message, rating=rating)
        except Exception:
            logger.exception("handoff rule failed", extra={"message_id": message.pk})

    def request_from_model(self, *, conversation: Any, note: str = "") -> Any:
        return services.request_by_model(conversation=conversation, note=note)
