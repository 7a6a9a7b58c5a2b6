"""A turn: one inbound message being handled, and everything its handling has learnt so far.

``Storage.claim`` builds it, reading at once what every message needs (the message with its
channel, bot, tenant and stored reply; the conversation it belongs to; the models the bot names;
the digest of its knowledge entries). The steps (``steps.STEPS``) then read and fill it in order
— the conversation, the language, the context, the answer, the stored reply — so no step asks
the database again for what an earlier one read.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from apps.channels.platforms.registry import get_adapter
from apps.channels.platforms.streaming import MessageStream
from apps.llm.router import guarded

from ..commands import Command, parse_command
from ..delivery import target_for
from ..models import Conversation, InboundMessage, Message

if TYPE_CHECKING:
    from apps.bots.routing import NamedModels
    from apps.knowledge.retrieval import Retrieval
    from apps.llm.types import Answer

    from .storage import Storage


class Outcome(enum.Enum):
    """What a step says: go on with the next step, or the message's handling is over."""

    CONTINUE = "continue"
    DONE = "done"


CONTINUE = Outcome.CONTINUE
DONE = Outcome.DONE


@dataclass(eq=False)
class Turn:
    # Read with the claim.
    storage: Storage
    inbound: InboundMessage  # with channel → bot → tenant, and its stored reply (a resumed message)
    attempt: int  # the claim's number: the worker's ownership token
    found_conversation: Conversation | None  # the one it is linked to (``linked``), else its sender's active one
    linked: bool
    models: NamedModels  # the models the bot names, as stored now (the router's rule picks from them)
    knowledge_stamp: str | None  # digest of the bot's knowledge entries (None: read them for every question)

    # Filled by the steps, in order.
    conversation: Conversation | None = None  # session
    language: str = ""  # session: the language to answer in (the conversation's dominant or pinned one)
    text_language: str = ""  # session: the language the message itself is in (stored on its turn)
    user_turn: Message | None = None  # user_turn (or the step that stored it with its own source)
    turns: list[Message] = field(default_factory=list)  # merge: the context turns, oldest first
    messages: list[dict] = field(default_factory=list)  # context: what the model is sent
    question: str | None = None  # context: the user's text when no earlier answer is in the context
    chain: list[Any] = field(default_factory=list)  # context: the models to try, in order
    tools: list[Any] = field(default_factory=list)  # context: the tools the model is offered (``..tools``)
    cache_key: str = ""  # cached_answer: the answer cache's key for ``question`` ("" when none)
    retrieval: Retrieval | None = None  # retrieve: what the bot's knowledge bases gave for the message
    answer: Answer | None = None  # knowledge, retrieve, cached_answer or generate
    knowledge_sources: list[dict] = field(default_factory=list)  # cite: the passages, kept on the reply
    tool_log: list[dict] = field(default_factory=list)  # generate: the tool calls made, kept on the reply
    tool_pending: Any = None  # generate: the tool call waiting for the user's confirmation (a WorkflowRun)
    tool_prompt: str = ""  # generate: the confirmation prompt for it
    reply: Message | None = None  # store

    @property
    def channel(self):
        return self.inbound.channel

    @property
    def bot(self):
        return self.inbound.channel.bot

    @property
    def text(self) -> str:
        return self.inbound.text

    @cached_property
    def command(self) -> Command | None:
        return parse_command(self.inbound.text)

    @cached_property
    def sink(self) -> Callable[[str], None] | None:
        """The platform's token sink for this answer (``PlatformAdapter.token_sink``), or None: the
        platform cannot show answers as they are written, or the channel's streaming is off."""
        adapter = get_adapter(self.channel.platform)
        if adapter is None or not self.channel.streaming:
            return None
        return adapter.token_sink(self.channel, target_for(self.inbound), reply_ref=f"inbound-{self.inbound.pk}")

    @cached_property
    def on_token(self) -> Callable[[str], None] | None:
        """Where an answer's text goes as it is made (streaming platforms), or None. A sink that
        fails stops being called; the answer is still stored and delivered the ordinary way."""
        return guarded(self.sink)

    @property
    def live_message(self) -> MessageStream | None:
        """The partial answer already in the chat (a started ``MessageStream``), which the finished
        answer must replace instead of arriving as a second message; None when there is none."""
        sink = self.__dict__.get("sink")
        return sink if isinstance(sink, MessageStream) and sink.started else None

    def drop_stream(self) -> None:
        """The answer will not be delivered (interrupted, not ours any more): remove its partial
        message from the chat where the platform allows."""
        if (live := self.live_message) is not None:
            live.abandon()

    @cached_property
    def on_status(self) -> Callable[[str], None] | None:
        """Where a passing status goes ("Calling Create ticket…"), or None (guarded like ``on_token``)."""
        adapter = get_adapter(self.channel.platform)
        if adapter is None:
            return None
        return guarded(adapter.status_sink(self.channel, target_for(self.inbound)))

    def stream(self, text: str) -> None:
        """Pass a whole answer (knowledge, cache) to the streaming sink as one piece. Platforms
        that stream by editing a sent message get it as one finished message instead (an instant
        answer gains nothing from a partial message and one edit)."""
        if self.on_token is not None and not isinstance(self.sink, MessageStream):
            self.on_token(text)
