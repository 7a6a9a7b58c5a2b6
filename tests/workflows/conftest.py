"""Workflow test fixtures: the pipeline's test platform, model and platform API (from the
conversation tests), and a fake business system — a real HTTP server on 127.0.0.1 that checks
Parley's signature the way docs/workflows.md tells a business system to."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable

import pytest

from apps.workflows.models import Workflow
from apps.workflows.selectors import forget_workflows
from tests.conversations.conftest import (  # noqa: F401 - fixtures shared with the pipeline tests
    _clear_cache,
    beat_args,
    celery_worker,
    fakeim,
    llm,
    make_setup,
    platform_api,
    shared_worker,
    start_worker,
)
from tests.fakes.server import FakeServer, RecordedRequest, Response

SECRET = "whsec-test-4f1c2a9b8e"


def verify_signature(req: RecordedRequest, secret: str = SECRET, tolerance_s: int = 300) -> bool:
    """The receiver's check, as documented: HMAC-SHA256 over "<timestamp>.<raw body>"."""
    timestamp = req.headers.get("X-Parley-Timestamp", "")
    header = req.headers.get("X-Parley-Signature", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > tolerance_s:
        return False
    expected = "v1=" + hmac.new(secret.encode(), timestamp.encode() + b"." + req.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


class BusinessSystem:
    """A ticket system: POST /tickets answers ``{"id": "T-1042"}`` (when the signature checks out),
    or the next scripted answers first (``script(500, 500)``; "slow" sleeps past the timeout)."""

    def __init__(self) -> None:
        self.server = FakeServer()
        self.secret = SECRET
        self.answer: dict = {"id": "T-1042"}
        self._script: list = []
        self._lock = threading.Lock()
        self.server.route("POST", "/tickets", self._tickets)

    def script(self, *answers) -> None:
        with self._lock:
            self._script = list(answers)

    def _tickets(self, req: RecordedRequest):
        with self._lock:
            step = self._script.pop(0) if self._script else None
        if step == "slow":
            time.sleep(1.5)
            return 200, self.answer
        if isinstance(step, int):
            return Response(step, {"error": f"scripted {step}"}, {"Retry-After": "0"} if step == 429 else {})
        if isinstance(step, (Response, tuple)):
            return step
        if self.secret and not verify_signature(req, self.secret):
            return 401, {"error": "bad signature"}
        return 200, self.answer

    @property
    def calls(self) -> list[RecordedRequest]:
        return self.server.requests_to("/tickets")

    @property
    def url(self) -> str:
        return self.server.url + "/tickets"


@pytest.fixture
def business():
    system = BusinessSystem()
    with system.server:
        yield system


@pytest.fixture(autouse=True)
def _fresh_workflows(settings):
    settings.PARLEY_WORKFLOW_RETRY_BACKOFF = 0.01
    forget_workflows()
    yield
    forget_workflows()


@pytest.fixture
def make_workflow(business) -> Callable[..., Workflow]:
    def _make(bot, *, tenant_wide: bool = False, **fields) -> Workflow:
        fields.setdefault("name", "Create ticket")
        fields.setdefault("trigger", "command")
        fields.setdefault("trigger_value", "ticket")
        fields.setdefault("url", business.url)
        fields.setdefault("reply_template", "Ticket {{id}} created.")
        fields.setdefault("signing_secret", SECRET)
        fields.setdefault("confirmation_required", False)
        fields.setdefault("timeout_s", 5)
        fields.setdefault("max_retries", 2)
        wf = Workflow(tenant=bot.tenant, bot=None if tenant_wide else bot, **fields)
        wf.full_clean()
        wf.save()
        return wf

    return _make
