"""Context: what the model is sent (system prompt and the newest turns within the bot's budget),
whether the turn is a context-free question, which models answer it, in order, and which tools
they may call."""

from __future__ import annotations

from apps.bots.routing import chain

from ..context import build_context
from ..tools import toolset
from ..turn import CONTINUE, Outcome, Turn


def run(turn: Turn) -> Outcome:
    bot = turn.bot
    turn.messages, turn.question = build_context(
        turn.conversation, turn.turns, mask_pii=bot.pii_policy == bot.PiiPolicy.MASK, language=turn.language
    )
    turn.chain = chain(bot, turn.models, turn.language)
    turn.tools = toolset(bot)  # remembered per process: nothing read for a bot without tools
    return CONTINUE
