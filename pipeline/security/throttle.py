"""Per-client throttling of failed authentications (dashboard password, API keys).

The first ``free`` failures of a client cost nothing; each further failure makes the client wait
``Backoff(base, factor, cap)`` before its next attempt is even checked, so guessing gets slower
and slower while a user who mistypes once or twice notices nothing. A success forgets the client.
State is in memory, per process: each shell (dashboard, API) throttles its own clients.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pipeline.backoff import Backoff

log = logging.getLogger(__name__)


@dataclass
class _Record:
    failures: int = 0
    blocked_until: float = 0.0


@dataclass
class Throttle:
    name: str                      # what is being guarded, for the log ("dashboard password", "API key")
    free: int = 3                  # failures allowed before any delay
    backoff: Backoff = Backoff(base=1.0, factor=2.0, cap=300.0)
    clock: Callable[[], float] = time.monotonic
    _clients: dict[str, _Record] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self, client: str) -> float:
        """Seconds ``client`` must still wait before an attempt is checked (0 = go ahead)."""
        with self._lock:
            record = self._clients.get(client)
            return max(0.0, record.blocked_until - self.clock()) if record else 0.0

    def failed(self, client: str) -> float:
        """Record a failed attempt; returns the delay now imposed on ``client``."""
        with self._lock:
            record = self._clients.setdefault(client, _Record())
            record.failures += 1
            delay = self.backoff.delay(record.failures - self.free - 1) if record.failures > self.free else 0.0
            record.blocked_until = self.clock() + delay
            if len(self._clients) > 10_000:      # never grow without bound under a spray of addresses
                self._forget_expired()
        log.warning("%s: failed attempt %d from %s; next attempt in %.0f s",
                    self.name, record.failures, client, delay)
        return delay

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._clients.pop(client, None)

    def _forget_expired(self) -> None:
        now = self.clock()
        for client in [c for c, r in self._clients.items() if r.blocked_until <= now]:
            del self._clients[client]
