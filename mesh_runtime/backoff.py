"""The one retry delay formula: exponential, capped, with jitter.

Jitter spreads the retries of callers that failed together (a provider
outage, an SMTP server restart), so they do not all come back at once.
"""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_seconds(
    retry: int,
    first: float,
    longest: float,
    *,
    spread: tuple[float, float] = (0.8, 1.2),
    random_fraction: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number ``retry`` (0: the first retry): ``first``
    doubled ``retry`` times, at most ``longest``, times a random factor in ``spread``."""
    capped = min(longest, first * 2.0 ** min(max(retry, 0), 64))
    low, high = spread
    return capped * (low + (high - low) * random_fraction())
