"""Exponential backoff: the one formula behind every "try again later" in Clipdesk.

The n-th retry (n = 0 for the first) waits ``base * factor ** n``, capped at ``cap``, times a
random factor drawn from ``spread``. Each use keeps its documented delays:

- job retries (``worker.retry_*``): 10, 40, 160 s ... with +-20 % jitter, spread (0.8, 1.2);
- LLM calls (``llm.backoff_*``): doubling up to ``backoff_max_seconds``, "equal jitter", spread (0.5, 1.0);
- webhook deliveries (``webhooks.retry_delay_seconds``): doubling, no jitter;
- failing feeds: the check interval doubling per failure, capped at a day, no jitter.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    base: float
    factor: float = 2.0
    cap: float | None = None
    spread: tuple[float, float] = (1.0, 1.0)

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0 for the first)."""
        seconds = self.base * self.factor ** max(0, retry)
        if self.cap is not None:
            seconds = min(seconds, self.cap)
        low, high = self.spread
        return seconds * (low if low == high else (rng or random).uniform(low, high))
