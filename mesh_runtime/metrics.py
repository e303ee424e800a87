"""Prometheus metrics of every process, and their ``/metrics`` endpoint.

``start_metrics_endpoint(host, port)`` runs once at process start
(``run_service`` and ``run_background`` call it with ``METRICS_PORT``): with a
port it serves the Prometheus text format on ``http://host:port/metrics``
from a thread of its own (never the event loop's); with 0 nothing is served
and ``metrics_enabled()`` stays False, so the interceptor is not in the
chain and no periodic gauge task runs.

What is kept here is what every process shares: the RPC metrics
(``grpc_server_*``, the names of go-grpc-prometheus, so its dashboards work)
that ``mesh_runtime.interceptors.metrics`` records, the JetStream consumer
gauges and redelivery counter, and a helper that refreshes gauges on a
timer. Each service declares its own domain metrics beside its code
(``analytics_svc/metrics.py``, ``llm_svc/metrics.py``, ``notify_svc/metrics.py``);
the README's "Metrics" section lists them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from nats.js.errors import NotFoundError
from prometheus_client import Counter, Gauge, Histogram, start_http_server

logger = logging.getLogger("mesh.metrics")

# Seconds; from a cached read (sub-millisecond) to a long stream or upload.
RPC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

RPC_HANDLED = Counter(
    "grpc_server_handled",
    "RPCs completed on the server, by method and status code.",
    ["grpc_type", "grpc_service", "grpc_method", "grpc_code"],
)
RPC_DURATION = Histogram(
    "grpc_server_handling_seconds",
    "Time from an RPC's start to its end on the server (a whole stream for streaming calls).",
    ["grpc_type", "grpc_service", "grpc_method"],
    buckets=RPC_BUCKETS,
)

JETSTREAM_PENDING = Gauge(
    "mesh_jetstream_consumer_pending_messages",
    "Messages of a durable JetStream consumer's stream not yet delivered to it.",
    ["stream", "consumer"],
)
JETSTREAM_ACK_PENDING = Gauge(
    "mesh_jetstream_consumer_ack_pending_messages",
    "Messages delivered to a durable JetStream consumer and not yet acknowledged.",
    ["stream", "consumer"],
)
JETSTREAM_REDELIVERED = Gauge(
    "mesh_jetstream_consumer_redelivered_messages",
    "Messages a durable JetStream consumer has had redelivered and not yet acknowledged.",
    ["stream", "consumer"],
)
JETSTREAM_REDELIVERIES = Counter(
    "mesh_jetstream_redeliveries",
    "Messages this process received again (their delivery count above 1).",
    ["stream", "consumer"],
)

# How often gauges that need a query (database, JetStream) are refreshed.
REFRESH_SECONDS = 5.0

_endpoint: tuple[Any, Any] | None = None


def metrics_enabled() -> bool:
    """Whether this process serves its metrics (``start_metrics_endpoint`` got a port)."""
    return _endpoint is not None


def start_metrics_endpoint(host: str, port: int) -> bool:
    """Serve ``/metrics`` on ``host:port`` from a daemon thread; port 0: do nothing.

    Returns whether the endpoint runs. OSError (naming METRICS_PORT) when
    the port cannot be bound. Safe to call more than once (later calls do nothing).
    """
    global _endpoint
    if _endpoint is not None or port == 0:
        return _endpoint is not None
    try:
        _endpoint = start_http_server(port, addr=host)
    except OSError as exc:
        raise OSError(f"cannot serve metrics on {host}:{port} (METRICS_PORT): {exc.strerror or exc}") from None
    logger.info("metrics on", extra={"metrics_url": f"http://{host}:{port}/metrics"})
    return True


def stop_metrics_endpoint() -> None:
    """Stop serving ``/metrics`` (tests; a process just exits)."""
    global _endpoint
    if _endpoint is None:
        return
    server, thread = _endpoint
    _endpoint = None
    server.shutdown()
    server.server_close()
    thread.join(5)


async def refresh_every(
    stop: asyncio.Event, refresh: Callable[[], Awaitable[None]], what: str, seconds: float = REFRESH_SECONDS
) -> None:
    """Run ``refresh`` now and every ``seconds`` until ``stop``; a failed round
    is logged once per outage and tried again next round (the gauges keep
    their last values meanwhile)."""
    failing = False
    while not stop.is_set():
        try:
            await refresh()
            failing = False
        except Exception as exc:  # noqa: BLE001 - metrics never stop the process
            if not failing:
                logger.warning(f"refreshing {what} failed", extra={"error": f"{type(exc).__name__}: {exc}"})
            failing = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)


async def refresh_consumer_gauges(js: Any, stream: str, consumer: str) -> None:
    """Set the JetStream gauges of durable ``consumer`` on ``stream`` from its
    consumer info (one request to the server); nothing while the consumer is
    not declared yet (a process that starts before the one declaring it)."""
    try:
        info = await js.consumer_info(stream, consumer, timeout=2)
    except NotFoundError:
        return
    JETSTREAM_PENDING.labels(stream, consumer).set(info.num_pending or 0)
    JETSTREAM_ACK_PENDING.labels(stream, consumer).set(info.num_ack_pending or 0)
    JETSTREAM_REDELIVERED.labels(stream, consumer).set(info.num_redelivered or 0)


def count_redelivery(msg: Any, stream: str, consumer: str) -> None:
    """Count ``msg`` if JetStream delivered it before (its delivery count above 1)."""
    try:
        delivered = int(msg.metadata.num_delivered or 1)
    except Exception:  # noqa: BLE001 - a message without JetStream metadata
        return
    if delivered > 1:
        JETSTREAM_REDELIVERIES.labels(stream, consumer).inc()
