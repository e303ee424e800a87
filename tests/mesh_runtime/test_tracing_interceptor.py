"""The tracing step reads the caller's W3C traceparent itself: which headers
make a remote parent, and which start a new trace."""

from __future__ import annotations

import pytest
from opentelemetry import trace

from mesh_runtime.interceptors.tracing import remote_parent

TRACE_ID, SPAN_ID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


def test_a_valid_traceparent_is_the_remote_parent_with_its_flags_and_state() -> None:
    context = remote_parent(f"00-{TRACE_ID}-{SPAN_ID}-01", "vendor=abc")
    assert context is not None
    parent = trace.get_current_span(context).get_span_context()
    assert (format(parent.trace_id, "032x"), format(parent.span_id, "016x")) == (TRACE_ID, SPAN_ID)
    assert parent.is_remote and parent.trace_flags.sampled
    assert parent.trace_state.get("vendor") == "abc"
    unsampled = remote_parent(f"00-{TRACE_ID}-{SPAN_ID}-00")
    assert unsampled is not None and not trace.get_current_span(unsampled).get_span_context().trace_flags.sampled


def test_a_future_version_may_carry_more_fields() -> None:
    assert remote_parent(f"01-{TRACE_ID}-{SPAN_ID}-01-extra") is not None


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        f"00-{TRACE_ID}-{SPAN_ID}",  # no flags
        f"00-{TRACE_ID.upper()}-{SPAN_ID}-01",  # upper case
        f"00-{'0' * 32}-{SPAN_ID}-01",  # all-zero trace id
        f"00-{TRACE_ID}-{'0' * 16}-01",  # all-zero span id
        f"ff-{TRACE_ID}-{SPAN_ID}-01",  # forbidden version
        f"00-{TRACE_ID}-{SPAN_ID}-01-extra",  # version 00 has exactly four fields
        f"00-0x{TRACE_ID[2:]}-{SPAN_ID}-01",  # not hex digits only
    ],
)
def test_an_invalid_traceparent_starts_a_new_trace(header: str) -> None:
    assert remote_parent(header) is None
