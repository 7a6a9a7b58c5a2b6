"""Crash recovery on real worker processes: a worker SIGKILLed mid-message loses nothing, and the
conversation's context survives the restart (it lives in the database)."""

from __future__ import annotations

import time

import pytest

from apps.conversations.models import InboundMessage

from .conftest import needs_real_backends, post_message, wait_for

pytestmark = [needs_real_backends, pytest.mark.slow, pytest.mark.timeout(120)]
S = InboundMessage.Status


def test_worker_killed_mid_message_is_answered_once_by_the_next_worker(
    client, make_setup, start_worker, platform_api, llm, beat_args
):
    _, channel = make_setup()
    # A lease short enough to recover within seconds, long enough that a busy machine never takes a
    # live claim for a dead one (starting the next worker takes longer than the lease anyway).
    fast_recovery = {"PARLEY_INBOUND_LEASE_SECONDS": "5", "PARLEY_SWEEP_INTERVAL": "0.5"}
    first = start_worker(**fast_recovery)
    llm.set(text="Your parcel ships tomorrow.")
    llm.then(delay=30, text="never sent")  # the first worker dies while waiting for this
    post_message(client, channel, id="m-1", text="Where is my parcel?")
    wait_for(lambda: llm.calls == 1, what="the first model call")
    first.kill()
    assert InboundMessage.objects.get().status == S.PROCESSING

    start_worker(*beat_args, **fast_recovery)
    wait_for(lambda: platform_api.sent, timeout=45, what="the answer after the restart")
    # Marked answered after the platform took the reply: waited for, not assumed.
    row = wait_for(lambda: InboundMessage.objects.filter(status=S.ANSWERED).first(), what="the message answered")
    assert row.attempts == 2
    time.sleep(1.5)  # several sweeps (a window to watch, not a wait): none may send it again
    assert platform_api.texts() == ["Your parcel ships tomorrow."]
    assert InboundMessage.objects.get().attempts == 2

    # The context lives in the database: the new worker continues the conversation.
    llm.set(text="It leaves from Shanghai.")
    post_message(client, channel, id="m-2", text="From where?")
    wait_for(lambda: len(platform_api.sent) == 2, what="the second answer")
    sent_context = [m["content"] for m in llm.requests[-1].json()["messages"]]
    assert sent_context[-3:] == ["Where is my parcel?", "Your parcel ships tomorrow.", "From where?"]
