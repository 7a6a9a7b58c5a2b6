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
from apps.conversations.pipeline.context import answer_language
from apps.conversations.pipeline.sending import deliver

from . import services
from .models import Handoff
from .texts import text_for

logger = logging.getLogger(__name__)
S = InboundMessage.Status


def _say(turn: Any, text: str, language: str) -> None:
    reply = turn.storage.store_reply(turn, text=text, source="system", language=language)
    if reply is not None:
        deliver(turn, reply, status=S.ANSWERED, conversation=turn.conversation)


def handoff_gate(turn: Any) -> bool:
    """True when the message was handled here (held, or a person asked for); False: carry on.
    ``turn``: the pipeline's ``Turn``, its conversation found (the session step)."""
    inbound, conv, storage = turn.inbound, turn.conversation, turn.storage
    handoff = services.sender_handoff(conv)
    cfg = services.gate_settings(conv.bot)
    if handoff is not None:
        language = answer_language(conv, inbound.text)
        storage.store_user_turn(turn, language=language)
        services.user_wrote(handoff)
        if handoff.state == Handoff.State.WAITING and services.asks_for_person(inbound.text, cfg):
            _say(turn, text_for("already_waiting", language), language)
        else:
            storage.finish(turn, S.HELD)
        logger.info("message held for a person", extra={"inbound": inbound.pk, "handoff": handoff.pk})
        return True
    if inbound.refused_by:
        return False  # the rate-limit notice, as usual
    reason = services.asks_for_person(inbound.text, cfg)
    if reason is None:
        return False
    language = answer_language(conv, inbound.text)
    storage.store_user_turn(turn, language=language, source="command" if reason == Handoff.Reason.COMMAND else "")
    services.handoff_request(conversation=conv, reason=reason, language=language)
    _say(turn, services.requested_text(cfg, language), language)
    return True


class InboxHandoffPort(HandoffPort):
    def gate(self, turn: Any) -> bool:
        return handoff_gate(turn)

    def after_rating(self, *, message: Any, rating: int) -> None:
        try:
            services.request_by_rule(message=message, rating=rating)
        except Exception:
            logger.exception("handoff rule failed", extra={"message_id": message.pk})

    def model_may_hand_over(self, bot: Any) -> bool:
        return services.gate_settings(bot).enabled  # remembered per process

    def request_from_model(self, *, conversation: Any, note: str = "") -> Any:
        return services.request_by_model(conversation=conversation, note=note)
