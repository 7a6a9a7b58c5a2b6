"""Answers shown as they are written, on platforms where a sent message can be updated.

A ``MessageStream`` is the token sink (``PlatformAdapter.token_sink``) of such a platform: the
model's first piece of text is sent at once as a new message, later text replaces it by edits at
most every ``interval`` seconds (the platform's rate limit for one chat or message), and
``finish`` replaces it with the finished answer — rating buttons included — exactly once. Nothing
is sent twice: the pipeline hands a started stream's ``finish`` the reply it would otherwise have
sent as a new message (``pipeline/sending.py``).

The adapter does the platform's part with three methods (see ``PlatformAdapter``):
``stream_start(channel, target, markdown) -> handle`` sends the first partial message and returns
what an edit needs (its message id); ``stream_update(channel, target, handle, markdown)`` replaces
its text; ``stream_finish(channel, target, handle, reply) -> SentRef`` writes the final answer the
way ``send`` would have; ``stream_abandon`` removes a partial answer that will never be finished
(the sender wrote again, or another worker took the message over), where the platform allows.

A failed partial update is logged and the stream stops updating (the finished answer still
replaces the message); a failed start leaves no message, and the answer is sent the ordinary way.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from .base import OutboundReply, PlatformError, SentRef, Target

if TYPE_CHECKING:
    from .base import PlatformAdapter

logger = logging.getLogger(__name__)

#: How long the final edit waits before its one retry after "too many requests" (the platforms'
#: flood windows are about a second).
RETRY_AFTER_S = 1.0


class MessageStream:
    """The streamed answer of one turn on one platform chat (called on one thread at a time)."""

    def __init__(self, adapter: PlatformAdapter, channel: Any, target: Target, *, interval: float) -> None:
        self.adapter = adapter
        self.channel = channel
        self.target = target
        self.interval = interval
        self.text = ""  # everything the model has written so far
        self.handle: Any = None  # the adapter's reference to the partial message, once sent
        self.updates = 0  # partial edits made (the first message not counted)
        self.sent: SentRef | None = None  # the finished answer, once ``finish`` wrote it
        self._shown = ""  # the text the user sees now
        self._last_call = 0.0
        self._failed = False  # the start failed: nothing to update, the answer goes as one message
        self._paused = False  # an update failed: no more partial edits, ``finish`` still replaces

    @property
    def started(self) -> bool:
        """Whether a partial message is in the chat (so the answer must end as an edit of it)."""
        return self.handle is not None

    def __call__(self, piece: str) -> None:
        if not piece or self._failed or self.sent is not None:
            return
        self.text += piece
        if self.handle is None:
            self._start()
        elif not self._paused and time.monotonic() - self._last_call >= self.interval:
            self._update()

    def _start(self) -> None:
        try:
            self.handle = self.adapter.stream_start(self.channel, self.target, self.text)
        except PlatformError as exc:
            self._failed = True
            logger.warning("%s streaming not started: %s", self.adapter.platform, str(exc)[:200])
            return
        finally:
            self._last_call = time.monotonic()
        self._shown = self.text

    def _update(self) -> None:
        if self.text == self._shown:
            return
        try:
            self.adapter.stream_update(self.channel, self.target, self.handle, self.text)
        except PlatformError as exc:
            self._paused = True
            logger.warning("%s streaming paused: %s", self.adapter.platform, str(exc)[:200])
            return
        finally:
            self._last_call = time.monotonic()
        self._shown = self.text
        self.updates += 1

    def finish(self, reply: OutboundReply) -> SentRef:
        """Replace the partial message with ``reply`` (text, rating link and buttons as ``send``
        would give them). Once: a second call returns the first result. A platform that answers
        "too many requests" is asked once more after ``RETRY_AFTER_S`` (or ``interval``, when longer).
        When the platform refuses the edit for good (the message can no longer be edited, the app
        lacks the permission to edit), the partial message is removed (``abandon``) and the answer
        sent at once as a new message, the way ``send`` would have. Raises ``PlatformError``: for a
        failure a retry may cure (the partial message is then removed, since the delivery's retry
        sends the answer as a new message), or when that new message is refused too."""
        if self.sent is not None:
            return self.sent
        if self.handle is None:
            raise PlatformError("no streamed message to finish", permanent=True)
        try:
            try:
                sent = self.adapter.stream_finish(self.channel, self.target, self.handle, reply)
            except PlatformError as exc:
                if exc.status != 429:
                    raise
                time.sleep(max(self.interval, RETRY_AFTER_S))
                sent = self.adapter.stream_finish(self.channel, self.target, self.handle, reply)
        except PlatformError as exc:
            # The answer will be delivered as a new message: the partial one goes, so the user is
            # not left with both.
            self.abandon()
            if not exc.permanent:
                raise  # the delivery's retries send it, after the platform has recovered
            # An edit refused for good says nothing of a new message: the chat still takes those.
            logger.warning(
                "%s final edit refused, the answer is sent as a new message: %s", self.adapter.platform, str(exc)[:200]
            )
            sent = self.adapter.send(self.channel, self.target, reply)
        self.sent = sent
        return sent

    def abandon(self) -> None:
        """The answer will not be delivered: remove the partial message where the platform allows
        (best effort; it is never finished afterwards)."""
        if self.handle is None or self.sent is not None:
            return
        handle, self.handle = self.handle, None
        self._failed = True
        try:
            self.adapter.stream_abandon(self.channel, self.target, handle)
        except Exception as exc:  # a courtesy: the next answer arrives whatever happens here
            logger.warning("%s partial answer not removed: %s", self.adapter.platform, str(exc)[:200])
