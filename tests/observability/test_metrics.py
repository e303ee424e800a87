"""Every process of the session stack serves Prometheus metrics, and they
move with real calls: RPCs by method and code, analyses, e-mails, LLM
tokens, points, the outbox and the JetStream consumers; Envoy's own
``/stats/prometheus`` too."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from mesh.notify.v1 import notify_service_pb2 as npb
from mesh.notify.v1 import notify_service_pb2_grpc as npb_grpc
from mesh.notify.v1 import subscription_pb2 as sub_pb
from mesh_runtime import streams
from tests.conftest import RunningStack
from tests.eventually import eventually
from tests.notify_svc import event_publishing as ev
from tests.observability.scrape import Scrape, scrape, total

SERVICES = ("analytics", "llm", "notify")
ANALYTICS = {"grpc_service": "mesh.analytics.v1.AnalyticsService"}


def _scrape_all(mesh: RunningStack, prefix: str) -> dict[str, Scrape]:
    return {name: scrape(url) for name, url in mesh.stack.metrics_urls().items() if name.startswith(prefix)}


def _dataset_with_points(rest: httpx.Client, count: int = 200) -> str:
    created = rest.post("/v1/datasets", json={"name": f"metrics-{uuid.uuid4().hex[:10]}", "unit": "ms"})
    assert created.status_code == 200, created.text
    dataset_id: str = created.json()["dataset"]["id"]
    if count:
        values = [100.0 + (i % 7) for i in range(count)]
        appended = rest.post(
            f"/v1/datasets/{dataset_id}/points:append",
            json={
                "timestampsUs": [str(1_700_000_000_000_000 + i * 60_000_000) for i in range(count)],
                "values": values,
            },
        )
        assert appended.status_code == 200, appended.text
    return dataset_id


def test_every_process_serves_its_metrics_and_envoy_its_stats(mesh: RunningStack) -> None:
    urls = mesh.stack.metrics_urls()
    # The three services, two schedulers and two workers (the session stack's replicas), and Envoy.
    assert set(urls) >= {*SERVICES, "analytics-scheduler", "analytics-scheduler-2", "analytics-worker", "envoy"}
    assert len({url for url in urls.values()}) == len(urls)
    for name, url in urls.items():
        scraped = scrape(url)
        if name == "envoy":
            assert scraped.types["envoy_cluster_upstream_rq"] == "counter"
            assert {"envoy_cluster_name": "analytics"} in scraped.label_sets("envoy_cluster_upstream_rq_total")
        else:
            # The process collector: any scrape shows the process is the one serving.
            assert scraped.value("process_resident_memory_bytes") > 0, name


def test_rpcs_are_counted_by_method_and_code_through_envoy_and_direct(
    mesh: RunningStack, rest: httpx.Client
) -> None:
    get = {**ANALYTICS, "grpc_method": "GetDataset", "grpc_type": "unary"}
    before = scrape(mesh.stack.metrics_urls()["analytics"])
    envoy_before = scrape(mesh.stack.metrics_urls()["envoy"])
    dataset_id = _dataset_with_points(rest, count=0)
    assert rest.get(f"/v1/datasets/{dataset_id}").status_code == 200
    assert rest.get(f"/v1/datasets/{uuid.uuid4()}").status_code == 404
    assert rest.get("/v1/datasets/not-a-uuid").status_code == 400
    after = scrape(mesh.stack.metrics_urls()["analytics"])

    def moved(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert moved("grpc_server_handled_total", **get, grpc_code="OK") >= 1
    assert moved("grpc_server_handled_total", **get, grpc_code="NOT_FOUND") >= 1
    assert moved("grpc_server_handled_total", **get, grpc_code="INVALID_ARGUMENT") >= 1
    assert moved("grpc_server_handled_total", **ANALYTICS, grpc_method="CreateDataset", grpc_code="OK") >= 1
    assert moved("grpc_server_handling_seconds_count", **get) >= 3
    assert moved("grpc_server_handling_seconds_bucket", **get, le="+Inf") >= 3
    # Envoy counts the same calls on its side.
    envoy = scrape(mesh.stack.metrics_urls()["envoy"])
    cluster = {"envoy_cluster_name": "analytics"}
    assert envoy.value("envoy_cluster_upstream_rq_total", **cluster) - envoy_before.value(
        "envoy_cluster_upstream_rq_total", **cluster
    ) >= 4


def test_points_ingested_are_counted(mesh: RunningStack, rest: httpx.Client) -> None:
    before = scrape(mesh.stack.metrics_urls()["analytics"]).value("mesh_points_ingested_total", source="append")
    _dataset_with_points(rest, count=150)
    after = scrape(mesh.stack.metrics_urls()["analytics"]).value("mesh_points_ingested_total", source="append")
    assert after - before >= 150


@pytest.fixture
def notify_stub(mesh: RunningStack):  # type: ignore[no-untyped-def]
    with mesh.channel(mesh.notify, "analyst") as channel:
        yield npb_grpc.NotifyServiceStub(channel)


def test_an_analysis_moves_the_worker_llm_and_email_metrics(  # type: ignore[no-untyped-def]
    mesh: RunningStack, rest: httpx.Client, notify_stub
) -> None:
    dataset_id = _dataset_with_points(rest)
    email = f"metrics-{uuid.uuid4().hex[:10]}@example.com"
    notify_stub.CreateSubscription(
        npb.CreateSubscriptionRequest(subscription=sub_pb.Subscription(email=email, dataset_ids=[dataset_id])),
        timeout=10,
    )
    workers, llm, notify = _scrape_all(mesh, "analytics-worker"), scrape(mesh.stack.metrics_urls()["llm"]), scrape(
        mesh.stack.metrics_urls()["notify"]
    )
    summary = {"kind": "summary", "status": "succeeded"}
    queued = rest.post(f"/v1/datasets/{dataset_id}:analyze", json={"kind": "ANALYSIS_KIND_SUMMARY"})
    assert queued.status_code == 200, queued.text
    # An analysis that cannot run: a dataset without points.
    empty = _dataset_with_points(rest, count=0)
    failing = rest.post(f"/v1/datasets/{empty}:analyze", json={"kind": "ANALYSIS_KIND_SUMMARY"})
    assert failing.status_code == 200, failing.text

    def worker_moved(**labels: str) -> float:
        return total(_scrape_all(mesh, "analytics-worker"), "mesh_analyses_finished_total", **labels) - total(
            workers, "mesh_analyses_finished_total", **labels
        )

    eventually(lambda: worker_moved(**summary) >= 1, 60, "a succeeded summary counted by a worker")
    eventually(lambda: worker_moved(kind="summary", status="failed") >= 1, 60, "a failed summary counted")
    now = _scrape_all(mesh, "analytics-worker")
    assert total(now, "mesh_analysis_duration_seconds_count", **summary) > total(
        workers, "mesh_analysis_duration_seconds_count", **summary
    )
    assert all(s.types["mesh_analysis_duration_seconds"] == "histogram" for s in now.values())
    # The insight spent tokens on the llm service (the offline provider counts them too).
    eventually(
        lambda: scrape(mesh.stack.metrics_urls()["llm"]).value("mesh_llm_tokens_total", type="completion")
        > llm.value("mesh_llm_tokens_total", type="completion"),
        60,
        "LLM completion tokens counted",
    )
    # ... and its Complete call was counted as an RPC of llm.
    complete = {"grpc_service": "mesh.llm.v1.LlmService", "grpc_method": "Complete", "grpc_code": "OK"}
    assert scrape(mesh.stack.metrics_urls()["llm"]).value("grpc_server_handled_total", **complete) > llm.value(
        "grpc_server_handled_total", **complete
    )
    # The result's e-mail went out: notify counted it as sent.
    eventually(
        lambda: scrape(mesh.stack.metrics_urls()["notify"]).value("mesh_emails_total", outcome="sent")
        > notify.value("mesh_emails_total", outcome="sent"),
        60,
        "a sent e-mail counted by notify",
    )


def test_queue_gauges_are_kept(mesh: RunningStack) -> None:
    events = {"stream": streams.EVENTS_STREAM, "consumer": "notify-email"}
    jobs = {"stream": streams.JOBS_STREAM, "consumer": streams.JOBS_CONSUMER}
    notify = eventually(
        lambda: (s := scrape(mesh.stack.metrics_urls()["notify"])).label_sets(
            "mesh_jetstream_consumer_pending_messages"
        )
        and s,
        30,
        "notify's consumer gauges",
    )
    assert events in notify.label_sets("mesh_jetstream_consumer_pending_messages")
    assert events in notify.label_sets("mesh_jetstream_consumer_ack_pending_messages")
    worker = eventually(
        lambda: (s := scrape(mesh.stack.metrics_urls()["analytics-worker"])).label_sets(
            "mesh_jetstream_consumer_pending_messages"
        )
        and s,
        30,
        "the job queue's consumer gauges",
    )
    assert jobs in worker.label_sets("mesh_jetstream_consumer_redelivered_messages")
    scheduler = eventually(
        lambda: (s := scrape(mesh.stack.metrics_urls()["analytics-scheduler"])).label_sets("mesh_outbox_backlog_rows")
        and s,
        30,
        "the outbox gauges",
    )
    assert {"state": "due"} in scheduler.label_sets("mesh_outbox_backlog_rows")
    assert scheduler.value("mesh_outbox_oldest_due_age_seconds") >= 0


def test_an_unreadable_event_is_counted_dead(mesh: RunningStack) -> None:
    def dead() -> float:
        return scrape(mesh.stack.metrics_urls()["notify"]).value("mesh_notify_dead_events_total")

    before = dead()
    event_id = f"metrics-garbage-{uuid.uuid4()}"
    garbage = ("mesh.events.v1.result_succeeded", event_id, b"\xff\x00 not protobuf")
    asyncio.run(ev.publish_raw(mesh.nats_url, [garbage]))
    eventually(lambda: dead() > before, 30, "the unreadable event counted dead by notify")
