"""Jittered exponential backoff (pure; the caller sleeps)."""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_delay(attempt: int, *, base: float = 1.0, cap: float = 60.0,
                  rand: Callable[[], float] = random.random) -> float:
    """Delay before retry ``attempt`` (0-based): ``min(cap, base*2^attempt)`` scaled by a
    random factor in [0.5, 1.0) ("equal jitter"), so hubs that lost the link together do
    not all come back in the same second, yet no retry is immediate."""
    ceiling = min(cap, base * (2 ** max(0, attempt)))
    return ceiling * (0.5 + rand() / 2)
