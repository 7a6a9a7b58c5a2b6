"""Blocked networks against DNS rebinding: the call connects to the very address that was checked.

Two real servers share a port: the business system on 127.0.0.1 and an "internal" service on
127.0.0.2, in a blocked network. The host name ``tickets.rebind.test`` exists only in a fake DNS
(the system resolver, replaced for that one name), which answers differently from one lookup to
the next — as a rebinding DNS server does."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.workflows.models import WorkflowRun
from apps.workflows.services import workflow_test_call
from tests.conversations.conftest import post_message

pytestmark = pytest.mark.django_db(transaction=True)
R = WorkflowRun.Status
NAME = "tickets.rebind.test"
BUSINESS, INTERNAL = "127.0.0.1", "127.0.0.2"


class InternalService:
    """Something on the internal network a workflow must never reach; records who got through."""

    def __init__(self, port: int) -> None:
        self.hits: list[str] = []
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "17")
                self.end_headers()
                self.wfile.write(b'{"id": "SECRET"}\n')

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer((INTERNAL, port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def internal(business):
    service = InternalService(port_of(business))
    service.thread.start()
    yield service
    service.server.shutdown()
    service.server.server_close()


@pytest.fixture
def dns(monkeypatch):
    """``dns.answers``: what each lookup of NAME returns in turn (the last one repeats; [] is "no
    such name")."""
    real = socket.getaddrinfo

    class FakeDNS:
        answers: list[list[str]] = []
        lookups = 0

        def getaddrinfo(self, host, port, *args, **kwargs):
            if host != NAME:
                return real(host, port, *args, **kwargs)
            answer = self.answers[min(self.lookups, len(self.answers) - 1)]
            self.lookups += 1
            if not answer:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port or 0)) for ip in answer]

    fake = FakeDNS()
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    return fake


@pytest.fixture
def blocked(settings):
    settings.PARLEY_OUTBOUND_BLOCKED_NETWORKS = f"{INTERNAL}/32,169.254.0.0/16"
    settings.PARLEY_OUTBOUND_ALLOWED_NETWORKS = ""


def port_of(business) -> int:
    return int(business.server.url.rsplit(":", 1)[1])


def by_name(business) -> str:
    return business.url.replace(BUSINESS, NAME)


def test_a_name_that_rebinds_after_the_check_still_reaches_only_the_checked_address(
    client, make_setup, make_workflow, business, internal, dns, blocked, platform_api
):
    bot, channel = make_setup()
    make_workflow(bot, url=by_name(business))
    dns.answers = [[BUSINESS], [INTERNAL]]  # harmless for the first lookup, internal afterwards
    post_message(client, channel, id="m-1", text="/ticket printer")
    assert internal.hits == []
    assert platform_api.texts() == ["Ticket T-1042 created."]
    (call,) = business.calls
    assert call.headers["Host"] == f"{NAME}:{port_of(business)}"  # the URL's host, not the IP
    assert dns.lookups == 1


def test_a_name_that_resolves_into_a_blocked_network_is_never_connected_to(
    client, make_setup, make_workflow, business, internal, dns, blocked, platform_api
):
    bot, channel = make_setup()
    make_workflow(bot, url=by_name(business), max_retries=3)
    dns.answers = [[INTERNAL]]
    post_message(client, channel, id="m-1", text="/ticket printer")
    assert internal.hits == [] and business.calls == []
    run = WorkflowRun.objects.get()
    assert run.status == R.FAILED and run.attempts == 1  # refused for good: not retried
    assert run.error.startswith(f"the address {INTERNAL} is in a network Parley may not call")
    assert NAME not in run.error
    assert platform_api.texts() == [
        "Sorry, **Create ticket** could not be completed right now. Please try again later."
    ]


def test_one_blocked_address_among_several_refuses_the_host(make_workflow, bot, business, internal, dns, blocked):
    wf = make_workflow(bot, url=by_name(business))
    dns.answers = [[BUSINESS, INTERNAL]]
    ok, said = workflow_test_call(wf)  # the admin's test call goes through the same check
    assert not ok and "127.0.0.2 is in a network Parley may not call" in said
    assert internal.hits == [] and business.calls == []


def test_without_blocked_networks_the_name_is_called_as_resolved(make_workflow, bot, business, internal, dns, settings):
    settings.PARLEY_OUTBOUND_BLOCKED_NETWORKS = ""
    wf = make_workflow(bot, url=by_name(business), signing_secret="")
    dns.answers = [[INTERNAL]]
    ok, said = workflow_test_call(wf)
    assert ok and "HTTP 200" in said and internal.hits == ["/tickets"]


def test_a_name_that_does_not_resolve_is_a_network_error(make_workflow, bot, business, dns, blocked):
    wf = make_workflow(bot, url=by_name(business))
    dns.answers = [[]]
    ok, said = workflow_test_call(wf)
    assert not ok and "network error (ConnectError)" in said
