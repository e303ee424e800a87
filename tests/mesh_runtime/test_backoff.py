"""The one retry delay: doubling from the first delay, capped, spread by jitter."""

from __future__ import annotations

import pytest

from mesh_runtime.backoff import backoff_seconds


def test_delays_double_up_to_the_longest() -> None:
    middle = [backoff_seconds(n, 2.0, 10.0, random_fraction=lambda: 0.5) for n in range(5)]
    assert middle == pytest.approx([2.0, 4.0, 8.0, 10.0, 10.0])
    assert backoff_seconds(10_000, 2.0, 10.0, random_fraction=lambda: 0.5) == pytest.approx(10.0)  # no overflow


def test_jitter_stays_within_the_spread_and_varies() -> None:
    delays = [backoff_seconds(2, 1.0, 60.0) for _ in range(200)]
    assert all(0.8 * 4.0 <= d <= 1.2 * 4.0 for d in delays)
    assert len(set(delays)) > 100  # callers that failed together come back apart
    assert backoff_seconds(0, 1.0, 60.0, spread=(0.5, 1.0), random_fraction=lambda: 0.0) == 0.5
