"""A span context kept with a row as a W3C traceparent, and read back."""

from __future__ import annotations

import pytest
from opentelemetry.trace import SpanContext, TraceFlags

from mesh_runtime.telemetry import span_context_of, traceparent


def test_a_kept_traceparent_names_the_same_span() -> None:
    original = SpanContext(trace_id=0x0AF7651916CD43DD8448EB211C80319C, span_id=0xB7AD6B7169203331,
                           is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))  # fmt: skip
    kept = traceparent(original)
    assert kept == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    restored = span_context_of(kept)
    assert restored is not None
    assert (restored.trace_id, restored.span_id, restored.trace_flags) == (
        original.trace_id,
        original.span_id,
        original.trace_flags,
    )


def test_no_span_keeps_nothing() -> None:
    assert traceparent(SpanContext(trace_id=0, span_id=0, is_remote=False)) == ""


@pytest.mark.parametrize("kept", ["", "garbage", "00-00000000000000000000000000000000-b7ad6b7169203331-01"])
def test_an_empty_or_malformed_traceparent_gives_no_parent(kept: str) -> None:
    assert span_context_of(kept) is None
