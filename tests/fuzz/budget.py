"""How many examples each fuzz test tries: a bounded number for CI, more on demand.

``MESH_FUZZ_EXAMPLES=500 ./mesh test tests/fuzz`` tries 500 per REST operation
and per gRPC method instead of the defaults below."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings


def examples(default: int) -> int:
    """``MESH_FUZZ_EXAMPLES`` if set, else ``default``."""
    raw = os.environ.get("MESH_FUZZ_EXAMPLES", "").strip()
    if not raw:
        return default
    value = int(raw)
    if value < 1:
        raise ValueError(f"MESH_FUZZ_EXAMPLES: expected a positive integer, got {raw!r}")
    return value


def fuzz_settings(default_examples: int) -> settings:
    """Hypothesis settings for tests that call the running stack: no per-example
    deadline (the machine is shared), no example database in the checkout.

    The bounded default run is derandomized, so CI tries the same examples each
    time and never fails by chance; ``MESH_FUZZ_EXAMPLES`` runs explore anew."""
    return settings(
        max_examples=examples(default_examples),
        derandomize=not os.environ.get("MESH_FUZZ_EXAMPLES", "").strip(),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
    )
