"""The context sent to a model: the system prompt plus the newest turns that fit the bot's budget."""

from __future__ import annotations

from apps.core.language import DOMINANT_WINDOW, detect, dominant_language, reply_language_instruction
from apps.core.pii import mask_text
from apps.llm.tokens import MESSAGE_OVERHEAD, estimate_tokens

from ..models import Conversation, Message

#: Turns that are not part of what was said to the model: commands, refusals, canned notices.
NOT_CONTEXT_SOURCES = ("command", "rate_limited", "system", "failure")


def turn_tokens(content: str) -> int:
    """What one message of the context costs the budget: its text (``apps.llm.tokens``, the one
    estimate of Parley) plus the chat format's per-message overhead."""
    return estimate_tokens(content) + MESSAGE_OVERHEAD


def build_context(
    conv: Conversation, turns: list[Message], *, mask_pii: bool, language: str = ""
) -> tuple[list[dict], str | None]:
    """Return ``(messages, question)``.

    ``messages`` is ``[{"role", "content"}, …]``: the bot's system prompt, then the newest of
    ``turns`` (the context turns, oldest first: ``Storage.context_turns``) within
    ``bot.context_max_tokens``. The newest turn is always kept; the context never starts with an
    assistant turn. In group chats each user turn is prefixed with its author's name so the model
    knows who said what.

    ``question`` is the user's text when the context holds no earlier answer (a first turn, or
    several first messages merged) — only then may a knowledge entry or a cached answer stand in
    for the model — else None.
    """
    bot = conv.bot
    budget = bot.context_max_tokens
    system = (bot.system_prompt or "").strip()
    if language:  # always, not only after /lang: models drift to the prompt's language otherwise
        system = (system + "\n\n" if system else "") + reply_language_instruction(language)
    head = [{"role": "system", "content": system}] if system else []
    budget -= sum(turn_tokens(m["content"]) for m in head)

    chosen: list[dict] = []
    texts: list[str] = []
    for turn in reversed(turns):
        content = turn.text
        if conv.is_group and turn.role == Message.Role.USER:
            content = f"{turn.author_name or turn.author_id or 'user'}: {content}"
        if mask_pii and turn.role == Message.Role.USER:
            content = mask_text(content)
        cost = turn_tokens(content)
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


def own_language(conv: Conversation, text: str) -> str:
    """The language the user turn ``text`` itself is in, among the tenant's enabled languages.
    A text with no letters (a bare command, digits, emoji) keeps the conversation's language."""
    enabled = conv.tenant.language_codes
    return detect(text, enabled, default=conv.language or ("en" if "en" in enabled else enabled[0]))


def session_languages(conv: Conversation, text: str) -> tuple[str, str]:
    """``(own, conversation's so far)`` for a new user turn, without reading earlier turns: the
    pinned language (``/lang``), else the one the conversation answered in last, else the turn's
    own. The merge step refines the second with the turns its snapshot reads (``dominant_in``)."""
    own = own_language(conv, text)
    return own, conv.language or own


def dominant_in(conv: Conversation, turns: list[Message], own: str) -> str:
    """The language a conversation answers in, given its context ``turns`` (the new one among
    them): the pinned one, else the dominant one over its recent user turns."""
    if conv.language_pinned and conv.language:
        return conv.language
    spoken = [(t.language, t.text) for t in turns if t.role == Message.Role.USER and t.language]
    return dominant_language(spoken[-DOMINANT_WINDOW:], default=own) if spoken else own


def turn_languages(conv: Conversation, text: str) -> tuple[str, str]:
    """``(own, conversation's)`` for a new user turn ``text``: the language the turn itself is in
    (stored on the turn), and the language the conversation answers in — the pinned one (``/lang``),
    else the dominant one over its recent user turns and this one (``apps.core.language``),
    detected among the languages the tenant enables. (One read; the message pipeline gets the same
    from ``session_languages`` and ``dominant_in`` without it.)"""
    own = own_language(conv, text)
    if conv.language_pinned and conv.language:
        return own, conv.language
    earlier = list(
        conv.messages.filter(role=Message.Role.USER)
        .exclude(language="")
        .order_by("-created_at", "-id")
        .values_list("language", "text")[:DOMINANT_WINDOW]
    )
    earlier.reverse()
    return own, dominant_language([*earlier, (own, text)], default=own)


def answer_language(conv: Conversation, text: str) -> str:
    """The language to answer ``text`` in (``turn_languages``)."""
    return turn_languages(conv, text)[1]
