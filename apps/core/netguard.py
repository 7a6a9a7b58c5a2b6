"""The outbound guard: every server-side call a tenant admin can point somewhere (workflows, model
endpoints, channel API bases, the "Test" buttons) goes only to addresses the operator allows.

* **Where**: ``PARLEY_OUTBOUND_BLOCKED_NETWORKS`` (production default: loopback, private, shared,
  link-local — which holds the cloud metadata services — and other special ranges; the embedded
  default: link-local and metadata only, so a model server on the same machine works out of the
  box) minus ``PARLEY_OUTBOUND_ALLOWED_NETWORKS`` (an allow-list the operator sets, e.g. an
  on-premise model server at ``10.0.5.20/32``).
* **Normalised**: an address is judged by the IPv4 address it stands for — IPv4-mapped
  (``::ffff:169.254.169.254``), IPv4-compatible (``::127.0.0.1``), NAT64 (``64:ff9b::/96``) and
  6to4 (``2002::/16``) IPv6 — and a URL's host in decimal, octal or hex form (``2130706433``,
  ``0177.0.0.1``, ``0x7f.1``) is read the way the resolver reads it.
* **At connect time**: the guarded clients resolve the host once, check every address, and connect
  to the address that passed — the HTTP library never resolves the name again, so a DNS answer that
  changes between the check and the connection (rebinding) cannot reach a blocked address. TLS still
  verifies the certificate for the URL's host name. Environment proxies are never used (through a
  proxy the address checked would not be the one reached).

``check_url`` tells a form or a "Test" button, before anything is sent, why a URL may not be called;
``guarded_client`` / ``guarded_async_client`` are httpx clients that enforce the rule on every
connection and raise ``OutboundRefused`` (an ``httpx.ConnectError``) for a refused address.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpcore
import httpx
from django.conf import settings
from django.utils.translation import gettext as _

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class OutboundRefused(httpx.ConnectError):
    """The host is, or resolves to, an address the outbound guard refuses: nothing was connected to."""


def networks(text: str) -> list[Network]:
    """Comma-separated networks (``10.0.0.0/8,::1``); raises ``ValueError`` naming a bad entry."""
    found = []
    for part in text.split(","):
        part = part.strip()
        if part:
            try:
                found.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"not a network: {part!r}") from None
    return found


def blocked_networks() -> list[Network]:
    return networks(settings.PARLEY_OUTBOUND_BLOCKED_NETWORKS)


def allowed_networks() -> list[Network]:
    return networks(settings.PARLEY_OUTBOUND_ALLOWED_NETWORKS)


def embedded_ipv4(ip: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, compatible, NAT64, 6to4), else None."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(ip.packed[-4:])
    if ip.packed[:12] == bytes(12) and int(ip) > 1:  # ::a.b.c.d (deprecated IPv4-compatible)
        return ipaddress.IPv4Address(ip.packed[-4:])
    return None


def parse_address(text: str) -> Address | None:
    """An IP address from a URL host or a resolver answer: IPv6 (brackets and zone dropped), dotted
    IPv4, and the decimal, octal and hex forms the C resolver accepts (``2130706433``, ``0x7f.1``)."""
    text = text.strip().strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if text and all(ch in "0123456789abcdefxABCDEFX." for ch in text) and text[0].isdigit():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


def refusal(address: str | Address) -> str:
    """Why the guard refuses ``address`` ("" when it may be connected to)."""
    ip = address if isinstance(address, (ipaddress.IPv4Address, ipaddress.IPv6Address)) else parse_address(address)
    if ip is None:
        return _("the address %(address)s is not an IP address") % {"address": address}
    candidates = [ip] + [v4 for v4 in [embedded_ipv4(ip)] if v4 is not None]
    judged = candidates[-1]  # the IPv4 address it stands for, when it stands for one
    if any(judged in network for network in allowed_networks()):
        return ""
    if any(candidate in network for candidate in candidates for network in blocked_networks()):
        return _(
            "the address %(address)s is in a network Parley may not call (PARLEY_OUTBOUND_BLOCKED_NETWORKS; "
            "an operator can allow it in PARLEY_OUTBOUND_ALLOWED_NETWORKS)"
        ) % {"address": judged}
    return ""


def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (IP literals pass through), each once, in the resolver's
    order. Raises ``OSError``/``UnicodeError`` when it does not resolve."""
    addresses: list[str] = []
    for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def _checked(host: str, port: int) -> list[str]:
    """The addresses to connect to for ``host``, all of them allowed; raises ``OutboundRefused`` when
    any is refused (a host answering with a mix is refused) and ``httpcore.ConnectError`` when the
    name does not resolve."""
    literal = parse_address(host)
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"the host name did not resolve ({type(exc).__name__})") from exc
    for address in addresses:
        reason = refusal(address)
        if reason:
            raise OutboundRefused(reason)
    return addresses


def check_url(url: str, *, resolve_host: bool = False) -> str:
    """Why ``url`` may not be called ("" when it may, as far as can be told): not http(s), no host,
    or a host that is (or, with ``resolve_host``, resolves to) a refused address. ``localhost`` names
    count as loopback without asking the resolver. A host name is checked again when a guarded client
    connects, against the address it then resolves to."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return _("not a valid URL")
    if parts.scheme not in ("http", "https"):
        return _("only http and https URLs can be called")
    if not host:
        return _("the URL has no host")
    host = host.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return refusal("127.0.0.1")
    literal = parse_address(host)
    if literal is not None:
        return refusal(literal)
    if not resolve_host:
        return ""
    try:
        _checked(host, port)
    except OutboundRefused as exc:
        return str(exc)
    except httpcore.ConnectError:
        return _("the host name %(host)s does not resolve") % {"host": host}
    return ""


class _Backend(httpcore.SyncBackend):
    """Connects only to addresses that passed the guard (see the module's doc)."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        error: Exception = httpcore.ConnectError("the host name resolved to no address")
        for address in _checked(host, port):
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error


class _AsyncBackend(httpcore.AnyIOBackend):
    """The asynchronous ``_Backend`` (asyncio or trio through anyio)."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await anyio.to_thread.run_sync(_checked, host, port)
        error: Exception = httpcore.ConnectError("the host name resolved to no address")
        for address in addresses:
            try:
                return await super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport whose connections go through the guard; takes httpx.HTTPTransport's
    arguments (verify, limits, retries …) except proxies (never used)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["trust_env"] = False
        kwargs.pop("proxy", None)
        super().__init__(**kwargs)
        self._pool._network_backend = _Backend()


class AsyncGuardedTransport(httpx.AsyncHTTPTransport):
    """The asynchronous ``GuardedTransport``."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["trust_env"] = False
        kwargs.pop("proxy", None)
        super().__init__(**kwargs)
        self._pool._network_backend = _AsyncBackend()


_TRANSPORT_ARGS = ("verify", "cert", "http1", "http2", "limits", "retries", "local_address", "socket_options")


@lru_cache(maxsize=1)
def tls_context() -> ssl.SSLContext:
    """The CA bundle httpx trusts, loaded once per process (tens of milliseconds) and shared by the
    outbound clients: building a client without it loads the bundle again."""
    return httpx.create_ssl_context()


def guarded_client(**kwargs: Any) -> httpx.Client:
    """An ``httpx.Client`` (same arguments) whose every connection goes through the guard."""
    transport_args = {name: kwargs.pop(name) for name in _TRANSPORT_ARGS if name in kwargs}
    kwargs.pop("trust_env", None)
    return httpx.Client(transport=GuardedTransport(**transport_args), trust_env=False, **kwargs)


def guarded_async_client(**kwargs: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` (same arguments) whose every connection goes through the guard."""
    transport_args = {name: kwargs.pop(name) for name in _TRANSPORT_ARGS if name in kwargs}
    kwargs.pop("trust_env", None)
    return httpx.AsyncClient(transport=AsyncGuardedTransport(**transport_args), trust_env=False, **kwargs)
