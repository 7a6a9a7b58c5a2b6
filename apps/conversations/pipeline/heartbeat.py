"""Claims renewed while their worker is alive, so a lease can be short.

A claim holds for ``PARLEY_INBOUND_LEASE_SECONDS`` (default 15) unless renewed; the sweeper
re-drives a message whose claim is older. A worker renews every claim it holds from one thread
per process, every third of the lease, in one statement (``UPDATE … WHERE (id, attempts) IN …``)
whatever its turns are doing — waiting on a model for a minute, retrying a platform, sleeping in
a merge window. A worker that dies (SIGKILL, OOM, a lost machine) stops renewing, and its
messages are taken over within a lease and a sweep interval (docs/reliability.md).

The renewal carries the claim's attempt number, so it never renews a claim another worker has
taken over meanwhile. A renewal that fails (the database away) is logged and tried again at the
next beat; the claims then age, as a dead worker's would, and are re-driven if the database comes
back after they expired — the ownership checks keep the old worker from storing or sending.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

from django.db import DatabaseError, connection
from django.db.models import Q
from django.utils import timezone

from ..models import InboundMessage
from .storage import lease_seconds

logger = logging.getLogger(__name__)
S = InboundMessage.Status


class Heartbeat:
    """The claims this process holds, renewed by one daemon thread while any is held."""

    def __init__(self) -> None:
        self._held: dict[tuple[int, int], int] = {}  # (message id, attempt) → how many holders
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self.beats = 0  # renewals done (tests read it)

    @contextlib.contextmanager
    def holding(self, inbound_id: int, attempt: int) -> Iterator[None]:
        """Keep the claim (``inbound_id``, ``attempt``) renewed for the duration of the block."""
        key = (inbound_id, attempt)
        with self._lock:
            self._held[key] = self._held.get(key, 0) + 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="parley-heartbeat", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                left = self._held.get(key, 1) - 1
                if left:
                    self._held[key] = left
                else:
                    self._held.pop(key, None)

    def held(self) -> list[tuple[int, int]]:
        with self._lock:
            return list(self._held)

    def interval(self) -> float:
        return max(0.2, lease_seconds() / 3)

    def _run(self) -> None:
        while True:
            with self._lock:
                self._wake.wait(self.interval())
                claims = list(self._held)
                if not claims:
                    self._thread = None
                    return
            try:
                self.renew(claims)
            except DatabaseError:
                logger.warning("claims not renewed: the database is unavailable", exc_info=True)
            finally:
                # One short-lived connection per beat: nothing is held between beats (a pooled one
                # goes back to its pool), and a broken one is not reused.
                connection.close()

    def renew(self, claims: list[tuple[int, int]]) -> int:
        """Renew ``claims`` (message id, attempt) still processing under that attempt. Returns how many."""
        match = Q()
        for pk, attempt in claims:
            match |= Q(pk=pk, attempts=attempt)
        renewed = InboundMessage.objects.filter(match, status=S.PROCESSING).update(claimed_at=timezone.now())
        self.beats += 1
        return renewed


heartbeat = Heartbeat()
