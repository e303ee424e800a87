"""OpenTelemetry for every process, set up in one place.

``setup_telemetry(name)`` runs once at process start (``run_service`` and
``run_background`` call it). It reads the standard OpenTelemetry variables:

- ``OTEL_SDK_DISABLED=true`` turns telemetry off whatever else is set;
- ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``)
  is where spans go, over OTLP/HTTP protobuf. With neither set, tracing is
  off: no provider is installed, the tracing interceptor is not in the
  chain, and nothing is exported or slowed;
- ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG`` choose the sampling
  (default: parent-based, always on), ``OTEL_SERVICE_NAME`` and
  ``OTEL_RESOURCE_ATTRIBUTES`` override the resource, ``OTEL_BSP_*`` tune
  the batch exporter: the SDK reads them itself.

With tracing on, psycopg2 queries and httpx/httpx2 requests (the LLM
provider's client, so the upstream LLM call) become spans, client channels from ``mesh_runtime.clients`` send
``traceparent`` and make client spans, and servers make a span per RPC
(``mesh_runtime.interceptors.tracing``).
"""

from __future__ import annotations

import atexit
import logging
import os
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

logger = logging.getLogger("mesh.telemetry")

_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")

_enabled = False


def telemetry_configured(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the environment asks for traces: an OTLP endpoint set and the SDK not disabled."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(env.get(name, "").strip() for name in _ENDPOINT_VARIABLES)


def telemetry_wanted(environ: Mapping[str, str] | None = None) -> bool:
    """Whether telemetry is not turned off (``OTEL_SDK_DISABLED`` is not true)."""
    env = os.environ if environ is None else environ
    return env.get("OTEL_SDK_DISABLED", "").strip().lower() != "true"


def traces_endpoint(environ: Mapping[str, str] | None = None) -> str:
    """The OTLP/HTTP URL spans are posted to, as the SDK's exporter derives it
    (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` as is, or ``OTEL_EXPORTER_OTLP_ENDPOINT``
    + ``/v1/traces``); empty when telemetry is off."""
    env = os.environ if environ is None else environ
    if not telemetry_configured(env):
        return ""
    traces = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if traces:
        return traces
    return env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip().rstrip("/") + "/v1/traces"


def sampling_percent(environ: Mapping[str, str] | None = None) -> float:
    """The share of new traces kept, in percent, as ``OTEL_TRACES_SAMPLER`` /
    ``OTEL_TRACES_SAMPLER_ARG`` set it for the services: what Envoy's
    ``random_sampling`` is rendered with, so that REST calls through Envoy are
    sampled at the services' ratio (one setting end to end).

    ``*always_on`` (the default) is 100, ``*always_off`` 0, ``*traceidratio``
    the ratio (default 1.0) times 100. Raises ValueError on a value the SDK
    would not take (``RuntimeSettings`` names the variable at start).
    """
    env = os.environ if environ is None else environ
    sampler = env.get("OTEL_TRACES_SAMPLER", "").strip().lower() or "parentbased_always_on"
    if sampler.endswith("always_on"):
        return 100.0
    if sampler.endswith("always_off"):
        return 0.0
    if not sampler.endswith("traceidratio"):
        raise ValueError(f"OTEL_TRACES_SAMPLER: unknown sampler {sampler!r}")
    raw = env.get("OTEL_TRACES_SAMPLER_ARG", "").strip() or "1.0"
    try:
        ratio = float(raw)
    except ValueError:
        raise ValueError(f"OTEL_TRACES_SAMPLER_ARG: expected a ratio from 0 to 1, got {raw!r}") from None
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"OTEL_TRACES_SAMPLER_ARG: expected a ratio from 0 to 1, got {raw!r}")
    return ratio * 100.0


def tracing_enabled() -> bool:
    """Whether this process set up tracing (``setup_telemetry`` found an endpoint)."""
    return _enabled


def setup_telemetry(service: str) -> bool:
    """Install the tracer provider and the library instrumentations for
    process ``service``, if the environment asks for traces; return whether it did.

    Safe to call more than once (later calls do nothing).
    """
    global _enabled
    if _enabled or not telemetry_configured():
        return _enabled
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor, HTTPXClientInstrumentor
    from opentelemetry.instrumentation.psycopg2 import Psycopg2Instrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # Resource.create lets OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES override the name.
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    atexit.register(provider.shutdown)
    # skip_dep_check: psycopg2-binary provides the psycopg2 module the check looks for by name.
    Psycopg2Instrumentor().instrument(skip_dep_check=True, enable_commenter=False)
    HTTPXClientInstrumentor().instrument()
    # The openai client (llm_svc's provider) sends its requests with httpx2, httpx's successor.
    HTTPX2ClientInstrumentor().instrument()
    _enabled = True
    logger.info("tracing on", extra={"otlp_endpoint": _endpoint()})
    return True


def _endpoint() -> str:
    for name in _ENDPOINT_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return ""


def flush(timeout_millis: int = 5000) -> None:
    """Export the spans still queued (before a process exits, or in tests)."""
    provider = trace.get_tracer_provider()
    force_flush = getattr(provider, "force_flush", None)
    if force_flush is not None:
        force_flush(timeout_millis)


def inject_context(carrier: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Add the current trace context (``traceparent``, ``tracestate``) to ``carrier``."""
    propagate.inject(carrier)
    return carrier


def extract_context(carrier: Mapping[str, str] | None) -> otel_context.Context:
    """The trace context ``carrier`` holds (an empty context if none)."""
    return propagate.extract(dict(carrier or {}))


def traceparent(span_context: trace.SpanContext) -> str:
    """``span_context`` as a W3C ``traceparent`` value, to keep with a row (empty if invalid)."""
    carrier: dict[str, str] = {}
    if span_context.is_valid:
        propagate.inject(carrier, context=trace.set_span_in_context(trace.NonRecordingSpan(span_context)))
    return carrier.get("traceparent", "")


def span_context_of(traceparent_value: str) -> trace.SpanContext | None:
    """The span context a kept ``traceparent`` names, or None (empty or malformed)."""
    if not traceparent_value:
        return None
    span_context = trace.get_current_span(extract_context({"traceparent": traceparent_value})).get_span_context()
    return span_context if span_context.is_valid else None


def current_ids() -> tuple[str, str]:
    """The current trace and span id in hex, or two empty strings outside a sampled span."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return "", ""
    return format(span_context.trace_id, "032x"), format(span_context.span_id, "016x")


def start_consumer_span(
    name: str, headers: Mapping[str, str] | None, attributes: Mapping[str, str | int] | None = None
) -> trace.Span:
    """A started CONSUMER span, child of the trace context in a message's
    ``headers``, not made current; the caller ends it."""
    tracer = trace.get_tracer("mesh_runtime.messages")
    return tracer.start_span(
        name, context=extract_context(headers), kind=SpanKind.CONSUMER, attributes=dict(attributes or {})
    )


@contextmanager
def consumer_span(
    name: str, headers: Mapping[str, str] | None, attributes: Mapping[str, str | int] | None = None
) -> Iterator[trace.Span]:
    """A CONSUMER span, current while the block runs, child of the trace
    context a message's ``headers`` carry (a NATS message from the outbox)."""
    tracer = trace.get_tracer("mesh_runtime.messages")
    with tracer.start_as_current_span(
        name, context=extract_context(headers), kind=SpanKind.CONSUMER, attributes=dict(attributes or {})
    ) as span:
        yield span
