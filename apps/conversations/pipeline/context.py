"""The context sent to a model: the system prompt plus the newest turns that fit the bot's budget."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache

from apps.core.pii import mask_text

from ..models import Conversation, InboundMessage, Message
from . import sql

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
#: Per-message overhead of chat formats (role markers), in tokens.
MESSAGE_OVERHEAD = 4
#: Turns that are not part of what was said to the model: commands, refusals, canned notices.
NOT_CONTEXT_SOURCES = ("command", "rate_limited", "system", "failure")


def estimate_tokens(text: str) -> int:
    """A model-independent token estimate: one per CJK character, one per four other characters.

    Written by hand because every provider tokenizes differently and Parley only needs a budget
    guard that errs on the generous side, not an exact count.
    """
    cjk = len(_CJK.findall(text))
    return cjk + (len(text) - cjk + 3) // 4 + MESSAGE_OVERHEAD


def context_turns(conv: Conversation, *, limit: int) -> list[Message]:
    """The newest ``limit`` turns that belong in the model context, oldest first."""
    qs = (
        conv.messages.filter(role__in=[Message.Role.USER, Message.Role.ASSISTANT], interrupted=False)
        .exclude(source__in=NOT_CONTEXT_SOURCES)
        .exclude(role=Message.Role.ASSISTANT, failed=True)
        .order_by("-created_at", "-id")
    )
    turns = list(qs[:limit])
    turns.reverse()
    return turns


def build_context(
    conv: Conversation, *, mask_pii: bool, language: str = "", turns: list[Message] | None = None
) -> tuple[list[dict], str | None]:
    """Return ``(messages, question)``.

    ``messages`` is ``[{"role", "content"}, …]``: the bot's system prompt, then the newest turns
    within ``bot.context_max_tokens`` and ``bot.context_max_turns``. The newest turn is always kept;
    the context never starts with an assistant turn. In group chats each user turn is prefixed with
    its author's name so the model knows who said what.

    ``question`` is the user's text when the context holds no earlier answer (a first turn, or
    several first messages merged) — only then may a knowledge entry or a cached answer stand in
    for the model — else None.

    ``turns``: ``context_turns(conv, limit=bot.context_max_turns)`` when the caller read them already.
    """
    bot = conv.bot
    budget = bot.context_max_tokens
    system = (bot.system_prompt or "").strip()
    if language and conv.language_pinned:
        system = (system + "\n\n" if system else "") + _language_instruction(language)
    head = [{"role": "system", "content": system}] if system else []
    budget -= sum(estimate_tokens(m["content"]) for m in head)

    chosen: list[dict] = []
    texts: list[str] = []
    if turns is None:
        turns = context_turns(conv, limit=bot.context_max_turns)
    for turn in reversed(turns):
        content = turn.text
        if conv.is_group and turn.role == Message.Role.USER:
            content = f"{turn.author_name or turn.author_id or 'user'}: {content}"
        if mask_pii and turn.role == Message.Role.USER:
            content = mask_text(content)
        cost = estimate_tokens(content)
        if chosen and cost > budget:
            break
        budget -= cost
        chosen.append({"role": turn.role, "content": content})
        texts.append(mask_text(turn.text) if mask_pii else turn.text)
    chosen.reverse()
    texts.reverse()
    while len(chosen) > 1 and chosen[0]["role"] == Message.Role.ASSISTANT:
        chosen.pop(0)
        texts.pop(0)
    question = None
    if chosen and all(t.role == Message.Role.USER for t in turns):
        question = "\n".join(texts)
    return head + chosen, question


def _language_instruction(language: str) -> str:
    return "请始终使用简体中文回答。" if language.startswith("zh") else "Always answer in English."


@dataclass
class Snapshot:
    """What the database says, in one read, just before an answer is made (``read_snapshot``)."""

    owned: bool  # the worker still holds its claim
    newer: tuple[int, str] | None  # (id, text) of the sender's oldest newer interrupting message
    pending: list[int] = field(default_factory=list)  # earlier messages of the sender not yet picked up
    turns: list[Message] = field(default_factory=list)  # context_turns(), oldest first
    # Earlier messages of the sender that another worker has claimed but whose turn is not stored
    # yet: their text belongs in this answer's context, so the caller waits for it briefly.
    in_flight: list[int] = field(default_factory=list)


@cache
def _turn_shape() -> sql.Shape:
    return sql.Shape(Message, "m", ["id", "role", "text", "author_id", "author_name"])


@cache
def _snapshot_sql() -> str:
    inbound, message = sql.table(InboundMessage), sql.table(Message)
    not_context = ", ".join(f"'{source}'" for source in NOT_CONTEXT_SOURCES)
    return f"""
SELECT s.owned, s.sender, {_turn_shape().sql}
FROM (SELECT
    EXISTS (
        SELECT 1 FROM {inbound} o WHERE o.id = %(id)s AND o.status = %(processing)s AND o.attempts = %(attempt)s
    ) AS owned,
    (SELECT COALESCE(json_agg(json_build_array(i.id, i.text, i.status) ORDER BY i.id), '[]')::text
     FROM {inbound} i
     WHERE i.channel_id = %(channel)s AND i.chat_id = %(chat)s AND i.user_id = %(user)s
       AND i.interrupts AND i.refused_by = ''
       AND (i.id > %(id)s
            OR (i.id < %(id)s AND i.status = %(received)s AND i.received_at >= %(since)s)
            OR (i.id < %(id)s AND i.status = %(processing)s AND i.received_at >= %(in_flight_since)s
                AND NOT EXISTS (SELECT 1 FROM {message} u WHERE u.inbound_id = i.id AND u.role = %(user_role)s)))
    ) AS sender
) s
LEFT JOIN LATERAL (
    SELECT * FROM {message} m
    WHERE m.conversation_id = %(conversation)s AND m.role IN (%(user_role)s, %(assistant_role)s)
      AND NOT m.interrupted AND m.source NOT IN ({not_context})
      AND NOT (m.role = %(assistant_role)s AND m.failed)
    ORDER BY m.created_at DESC, m.id DESC
    LIMIT %(limit)s
) m ON true
"""  # noqa: S608 - names from the models' metadata and constants; every value is a bound parameter


def read_snapshot(
    inbound: InboundMessage, attempt: int, conv: Conversation, *, since: datetime, in_flight_since: datetime
) -> Snapshot:
    """In one statement (PostgreSQL): whether this worker still owns ``inbound`` (claim ``attempt``),
    its sender's newer interrupting message if any (``newer_turn``), the sender's earlier messages
    still waiting to be picked up since ``since`` (to be merged into this answer), and the context
    turns of ``conv`` (``context_turns``)."""
    rows = sql.fetch(
        _snapshot_sql(),
        {
            "id": inbound.pk,
            "processing": InboundMessage.Status.PROCESSING,
            "received": InboundMessage.Status.RECEIVED,
            "attempt": attempt,
            "channel": inbound.channel_id,
            "chat": inbound.chat_id,
            "user": inbound.user_id,
            "since": since,
            "in_flight_since": in_flight_since,
            "conversation": conv.pk,
            "user_role": Message.Role.USER,
            "assistant_role": Message.Role.ASSISTANT,
            "limit": conv.bot.context_max_turns,
        },
    )
    owned, sender = rows[0][0], json.loads(rows[0][1])
    shape = _turn_shape()
    turns = [turn for turn in (shape.build(row[2:]) for row in rows) if turn is not None]
    turns.reverse()
    newer = next(((pk, text) for pk, text, _ in sender if pk > inbound.pk), None)
    pending = [pk for pk, _, status in sender if pk < inbound.pk and status == InboundMessage.Status.RECEIVED]
    in_flight = [pk for pk, _, status in sender if pk < inbound.pk and status == InboundMessage.Status.PROCESSING]
    return Snapshot(owned=bool(owned), newer=newer, pending=pending, turns=turns, in_flight=in_flight)
