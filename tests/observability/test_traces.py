"""One trace from a REST call through Envoy to the worker, llm, notify and
the e-mail's SMTP send: the session stack (Envoy included) exports its spans
to the in-process OTLP receiver (``otlp``)."""

from __future__ import annotations

import json
import os
import uuid

import httpx

from tests.conftest import RunningStack
from tests.eventually import eventually
from tests.notify_svc.event_publishing import messages_to
from tests.otlp_receiver import OtlpReceiver, ReceivedSpan

SERVER, CLIENT, CONSUMER = 2, 3, 5  # OTLP span kinds


def _traceparent() -> tuple[str, str, str]:
    trace_id, span_id = os.urandom(16).hex(), os.urandom(8).hex()
    return trace_id, span_id, f"00-{trace_id}-{span_id}-01"


def _dataset_with_points(rest: httpx.Client) -> str:
    created = rest.post("/v1/datasets", json={"name": f"trace-{uuid.uuid4().hex[:10]}", "unit": "ms"})
    assert created.status_code == 200, created.text
    dataset_id: str = created.json()["dataset"]["id"]
    values = [100.0 + (i % 7) for i in range(200)]
    values[100] = 900.0
    appended = rest.post(
        f"/v1/datasets/{dataset_id}/points:append",
        json={"timestampsUs": [str(1_700_000_000_000_000 + i * 60_000_000) for i in range(200)], "values": values},
    )
    assert appended.status_code == 200, appended.text
    return dataset_id


def _one(spans: list[ReceivedSpan], what: str) -> ReceivedSpan:
    assert len(spans) == 1, f"{what}: {spans}"
    return spans[0]


def test_one_trace_runs_from_the_rest_call_through_envoy_to_the_email(
    rest: httpx.Client, mesh: RunningStack, otlp: OtlpReceiver
) -> None:
    dataset_id = _dataset_with_points(rest)
    email = f"trace-{uuid.uuid4().hex[:10]}@example.com"
    subscribed = rest.post("/v1/subscriptions", json={"email": email, "datasetIds": [dataset_id]})
    assert subscribed.status_code == 200, subscribed.text
    trace_id, caller_span, traceparent = _traceparent()
    queued = rest.post(
        f"/v1/datasets/{dataset_id}:analyze",
        json={"kind": "ANALYSIS_KIND_REPORT"},
        headers={"traceparent": traceparent},
    )
    assert queued.status_code == 200, queued.text
    # The result keeps the trace id, for the web app's link to the trace.
    assert queued.json()["result"]["traceId"] == trace_id

    def spans_of(service: str, name: str) -> list[ReceivedSpan]:
        return [s for s in otlp.trace(trace_id) if s.service.startswith(service) and s.name == name]

    # Envoy's span is the child of the REST caller's span; the analytics server
    # span is the child of Envoy's (the transcoded call carried Envoy's traceparent).
    edge = _one(eventually(lambda: [s for s in otlp.trace(trace_id) if s.service == "envoy"], 20, "Envoy's span"),
                "Envoy spans")
    assert (edge.kind, edge.parent_span_id) == (SERVER, caller_span)
    assert edge.name == f"POST /v1/datasets/{dataset_id}:analyze"
    assert edge.attributes["http.status_code"] == "200"
    server = _one(
        eventually(
            lambda: spans_of("analytics", "mesh.analytics.v1.AnalyticsService/RunAnalysis"), 20, "the RPC's span"
        ),
        "RunAnalysis spans",
    )
    assert (server.kind, server.parent_span_id, server.service) == (SERVER, edge.span_id, "analytics")
    assert server.attributes["rpc.grpc.status_code"] == 0
    # Its database queries are its children.
    queries = [s for s in otlp.trace(trace_id) if s.attributes.get("db.system") == "postgresql"]
    assert queries and all(q.parent_span_id == server.span_id for q in queries if q.service == "analytics")

    # The job went through the outbox and JetStream: a worker ran it in the same trace.
    job = _one(eventually(lambda: spans_of("analytics-worker", "analysis job"), 60, "the worker's span"), "job spans")
    assert (job.kind, job.parent_span_id) == (CONSUMER, server.span_id)

    # The insight's LLM call: a client span of the worker, and llm's server span under it.
    completion = _one(
        eventually(lambda: spans_of("llm", "mesh.llm.v1.LlmService/Complete"), 60, "the LLM call's span"),
        "Complete spans",
    )
    worker_spans = {s.span_id for s in otlp.trace(trace_id) if s.service.startswith("analytics-worker")}
    assert completion.kind == SERVER and completion.parent_span_id in worker_spans

    # The result's events went through the outbox again: notify received them in the same trace.
    received = eventually(lambda: spans_of("notify", "event received"), 60, "notify's span")
    assert all(r.kind == CONSUMER and r.parent_span_id in worker_spans for r in received)

    # The subscriber's e-mails (one per event): each sent in a delivery span
    # under its event's span, with the SMTP send under that. (Other tests'
    # subscriptions to every dataset get e-mails of these events too, in
    # delivery spans of their own under the same event spans.)
    def sent() -> tuple[list[ReceivedSpan], list[ReceivedSpan]]:
        events = spans_of("notify", "event received")
        deliveries = spans_of("notify", "deliver e-mail")
        smtp = spans_of("notify", "SMTP send")
        done = (
            len(messages_to(mesh.mail_api, email)) == len(events)
            and len(smtp) == len(deliveries)
            and {d.parent_span_id for d in deliveries} == {r.span_id for r in events}
        )
        return (deliveries, smtp) if done else ([], [])

    deliveries, smtp = eventually(lambda: all(sent()) and sent(), 60, "the e-mails, a delivery and SMTP span each")
    assert sorted(s.parent_span_id for s in smtp) == sorted(d.span_id for d in deliveries)
    assert all(s.kind == CLIENT and s.attributes["server.port"] == mesh.settings.smtp_port for s in smtp)
    finished = rest.get(f"/v1/results/{queued.json()['result']['id']}").json()["result"]
    assert (finished["status"], finished["traceId"]) == ("RESULT_STATUS_SUCCEEDED", trace_id)

    # The access-log line of the call carries the trace and span id.
    lines = [json.loads(line) for line in (mesh.logs() / "analytics.log").read_text().splitlines() if trace_id in line]
    logged = [line for line in lines if line.get("method", "").endswith("/RunAnalysis")]
    assert [(line["trace_id"], line["span_id"]) for line in logged] == [(trace_id, server.span_id)]
