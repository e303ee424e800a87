"""Analyses end to end on the real mesh: RunAnalysis queues a job, one of the
two workers runs it, the result is listed, fetched with its chart series and
watched live; through gRPC and REST."""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import httpx
import numpy as np
import pytest

from mesh.analytics.v1 import analysis_pb2 as apb
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from mesh.analytics.v1 import dataset_pb2
from tests.conftest import RunningStack
from tests.eventually import eventually

START_US = 1_700_000_000_000_000
STEP_US = 60_000_000


@pytest.fixture
def stub(analytics_channel: grpc.Channel) -> pb_grpc.AnalyticsServiceStub:
    return pb_grpc.AnalyticsServiceStub(analytics_channel)


def make_dataset(stub: pb_grpc.AnalyticsServiceStub, values: list[float], unit: str = "ms") -> str:
    created = stub.CreateDataset(
        pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=f"res-{uuid.uuid4().hex[:10]}", unit=unit)),
        timeout=10,
    )
    dataset_id = created.dataset.id
    if values:
        stub.AppendPoints(
            pb.AppendPointsRequest(
                dataset_id=dataset_id,
                timestamps_us=[START_US + i * STEP_US for i in range(len(values))],
                values=values,
            ),
            timeout=10,
        )
    return str(dataset_id)


def wait_for(stub: pb_grpc.AnalyticsServiceStub, result_id: str, timeout: float = 60) -> apb.Result:
    """Poll GetResult until the result is finished (and its insight settled)."""

    def settled() -> apb.Result | None:
        result = stub.GetResult(pb.GetResultRequest(id=result_id), timeout=10).result
        finished = result.status in (apb.RESULT_STATUS_SUCCEEDED, apb.RESULT_STATUS_FAILED)
        return result if finished and result.insight.status != apb.INSIGHT_STATUS_PENDING else None

    return eventually(settled, timeout, f"result {result_id} to finish", interval=0.2)


def series_with_spike() -> list[float]:
    rng = np.random.default_rng(7)
    values = (100 + 0.5 * np.arange(500) + rng.normal(0, 2, 500)).tolist()
    values[250] = 900.0  # one unmistakable anomaly
    return values


def test_report_computes_the_numbers_of_the_points(stub: pb_grpc.AnalyticsServiceStub) -> None:
    values = series_with_spike()
    dataset_id = make_dataset(stub, values)
    queued = stub.RunAnalysis(
        pb.RunAnalysisRequest(dataset_id=dataset_id, kind=apb.ANALYSIS_KIND_REPORT), timeout=10
    ).result
    assert queued.status == apb.RESULT_STATUS_PENDING
    assert queued.requested_by == "test-analyst"

    result = wait_for(stub, queued.id)
    assert result.status == apb.RESULT_STATUS_SUCCEEDED, result.error
    out = result.output
    arr = np.array(values)
    assert out.summary.count == 500
    assert out.summary.mean == pytest.approx(arr.mean())
    assert out.summary.max == 900.0
    assert [q.level for q in out.quantiles] == [0.05, 0.25, 0.5, 0.75, 0.95]
    assert out.quantiles[2].value == pytest.approx(float(np.median(arr)))
    assert sum(out.histogram.counts) == 500 and len(out.histogram.edges) == 21
    # 0.5 per minute is 720 per day.
    assert out.trend.slope_per_second * 86400 == pytest.approx(720, rel=0.05)
    assert out.trend.uncertainty.significant
    assert out.trend.uncertainty.slope_ci_low < out.trend.slope_per_second < out.trend.uncertainty.slope_ci_high
    assert [a.timestamp_us for a in out.anomalies.anomalies] == [START_US + 250 * STEP_US]
    assert result.anomaly_count == 1
    # A small window is computed in memory, exactly, and the result says so.
    assert (out.computation.mode, out.computation.exact, out.computation.point_count) == ("in_memory", True, 500)
    assert result.window_start.ToDatetime(dt.UTC) == dt.datetime.fromtimestamp(START_US / 1e6, dt.UTC)
    assert result.start_time.ToDatetime() <= result.end_time.ToDatetime()
    # The offline LLM wrote an insight grounded in the result's numbers.
    assert result.insight.status == apb.INSIGHT_STATUS_READY
    assert result.insight.provider == "offline"
    assert "500" in result.insight.text
    assert f"{arr.mean():.6g}" in result.insight.text  # the mean, to six significant digits
    assert "900" in result.insight.text
    assert "so the trend is distinguishable from noise" in result.insight.text


def test_get_result_returns_a_downsampled_series_that_keeps_the_spike(
    stub: pb_grpc.AnalyticsServiceStub,
) -> None:
    dataset_id = make_dataset(stub, series_with_spike())
    queued = stub.RunAnalysis(pb.RunAnalysisRequest(dataset_id=dataset_id, kind=apb.ANALYSIS_KIND_TREND), timeout=10)
    wait_for(stub, queued.result.id)
    reply = stub.GetResult(pb.GetResultRequest(id=queued.result.id, series_points=50), timeout=10)
    series = reply.series
    assert series.source_point_count == 500
    assert 2 <= len(series.timestamps_us) <= 50
    assert list(series.timestamps_us) == sorted(series.timestamps_us)
    assert 900.0 in series.values  # min/max buckets keep the spike
    assert len(series.trend) == len(series.values) == len(series.ewma) == len(series.moving_average)
    trend = reply.result.output.trend
    seconds = (series.timestamps_us[-1] - START_US) / 1e6
    assert series.trend[-1] == pytest.approx(trend.intercept + trend.slope_per_second * seconds)
    # Without series_points: no series.
    plain = stub.GetResult(pb.GetResultRequest(id=queued.result.id), timeout=10)
    assert not plain.HasField("series")


def test_an_empty_dataset_fails_with_a_reason(stub: pb_grpc.AnalyticsServiceStub) -> None:
    dataset_id = make_dataset(stub, [])
    queued = stub.RunAnalysis(
        pb.RunAnalysisRequest(dataset_id=dataset_id, kind=apb.ANALYSIS_KIND_SUMMARY), timeout=10
    )
    result = wait_for(stub, queued.result.id)
    assert result.status == apb.RESULT_STATUS_FAILED
    assert "no points" in result.error
    assert result.insight.status == apb.INSIGHT_STATUS_UNSPECIFIED


def test_correlation_with_another_dataset(stub: pb_grpc.AnalyticsServiceStub) -> None:
    xs = [float(i % 17) for i in range(200)]
    a = make_dataset(stub, xs)
    b = make_dataset(stub, [2 * x + 1 for x in xs])
    queued = stub.RunAnalysis(
        pb.RunAnalysisRequest(
            dataset_id=a,
            kind=apb.ANALYSIS_KIND_CORRELATION,
            parameters=apb.AnalysisParameters(correlate_with_dataset_id=b),
        ),
        timeout=10,
    )
    result = wait_for(stub, queued.result.id)
    assert result.output.correlation.r == pytest.approx(1.0)
    assert result.output.correlation.aligned_count == 200
    # A kind without anomaly detection shows no anomaly report (the result page
    # and the insight once listed "anomalies 0, median 0" for it).
    assert not result.output.HasField("anomalies")
    listed = stub.ListResults(pb.ListResultsRequest(dataset_id=a), timeout=10).results
    assert [r.id for r in listed] == [result.id]
    assert not listed[0].output.HasField("anomalies")


def test_window_parameters_limit_the_analysed_points(stub: pb_grpc.AnalyticsServiceStub) -> None:
    dataset_id = make_dataset(stub, [float(i) for i in range(100)])
    params = apb.AnalysisParameters()
    params.window_start.FromMicroseconds(START_US + 10 * STEP_US)
    params.window_end.FromMicroseconds(START_US + 20 * STEP_US)
    queued = stub.RunAnalysis(
        pb.RunAnalysisRequest(dataset_id=dataset_id, kind=apb.ANALYSIS_KIND_SUMMARY, parameters=params), timeout=10
    )
    result = wait_for(stub, queued.result.id)
    assert result.output.summary.count == 10
    assert (result.output.summary.min, result.output.summary.max) == (10.0, 19.0)


def _code(call: Callable[[], Any]) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code()  # type: ignore[no-any-return]


def test_bad_requests_are_refused_clearly(stub: pb_grpc.AnalyticsServiceStub) -> None:
    unknown = str(uuid.uuid4())
    assert _code(lambda: stub.RunAnalysis(
        pb.RunAnalysisRequest(dataset_id=unknown, kind=apb.ANALYSIS_KIND_SUMMARY), timeout=10
    )) == grpc.StatusCode.NOT_FOUND
    dataset_id = make_dataset(stub, [1.0])
    assert _code(lambda: stub.RunAnalysis(
        pb.RunAnalysisRequest(dataset_id=dataset_id), timeout=10
    )) == grpc.StatusCode.INVALID_ARGUMENT
    assert _code(lambda: stub.RunAnalysis(
        pb.RunAnalysisRequest(dataset_id=dataset_id, kind=apb.ANALYSIS_KIND_CORRELATION), timeout=10
    )) == grpc.StatusCode.INVALID_ARGUMENT
    assert _code(lambda: stub.GetResult(pb.GetResultRequest(id=unknown), timeout=10)) == grpc.StatusCode.NOT_FOUND
    assert _code(lambda: stub.ListResults(
        pb.ListResultsRequest(order_by="name"), timeout=10
    )) == grpc.StatusCode.INVALID_ARGUMENT
    assert _code(lambda: stub.ListResults(
        pb.ListResultsRequest(page_token="not-a-token"), timeout=10
    )) == grpc.StatusCode.INVALID_ARGUMENT


def test_list_results_filters_orders_and_pages(stub: pb_grpc.AnalyticsServiceStub) -> None:
    dataset_id = make_dataset(stub, series_with_spike())
    ids = []
    for kind in (apb.ANALYSIS_KIND_SUMMARY, apb.ANALYSIS_KIND_ANOMALIES, apb.ANALYSIS_KIND_SUMMARY):
        ids.append(stub.RunAnalysis(pb.RunAnalysisRequest(dataset_id=dataset_id, kind=kind), timeout=10).result.id)
    for result_id in ids:
        wait_for(stub, result_id)

    def listed(**filters: Any) -> list[str]:
        seen: list[str] = []
        token = ""
        while True:
            page = stub.ListResults(
                pb.ListResultsRequest(dataset_id=dataset_id, page_size=1, page_token=token, **filters), timeout=10
            )
            seen += [r.id for r in page.results]
            token = page.next_page_token
            if not token:
                return seen

    assert listed() == ids[::-1]  # newest first, one per page
    assert listed(order_by="create_time asc") == ids
    assert sorted(listed(order_by="start_time desc")) == sorted(ids)
    assert listed(kind=apb.ANALYSIS_KIND_SUMMARY) == [ids[2], ids[0]]
    assert listed(has_anomalies=True) == [ids[1]]
    assert listed(has_anomalies=False) == [ids[2], ids[0]]
    assert listed(status=apb.RESULT_STATUS_FAILED) == []
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    after = pb.ListResultsRequest().created_after
    after.FromDatetime(later)
    assert listed(created_after=after) == []
    # Listed results leave out the anomaly list (GetResult has it).
    page = stub.ListResults(pb.ListResultsRequest(dataset_id=dataset_id, has_anomalies=True), timeout=10)
    assert page.results[0].anomaly_count == 1 and not page.results[0].output.anomalies.anomalies


def _watch(
    channel: grpc.Channel, dataset_id: str, stop_when: Callable[[list[apb.Result]], bool]
) -> tuple[threading.Thread, list[apb.Result]]:
    seen: list[apb.Result] = []
    stub = pb_grpc.AnalyticsServiceStub(channel)
    call = stub.WatchResults(pb.WatchResultsRequest(dataset_id=dataset_id), timeout=60)
    call.initial_metadata()  # the server sends headers once the watch is registered

    def read() -> None:
        try:
            for update in call:
                seen.append(update.result)
                if stop_when(seen):
                    call.cancel()
        except grpc.RpcError:
            pass

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread, seen


def test_watch_results_streams_each_change_live(mesh: RunningStack, stub: pb_grpc.AnalyticsServiceStub) -> None:
    dataset_id = make_dataset(stub, series_with_spike())
    other = make_dataset(stub, [1.0, 2.0])
    with mesh.channel(mesh.analytics, "viewer") as channel:
        done = {apb.RESULT_STATUS_SUCCEEDED}
        thread, seen = _watch(
            channel, dataset_id,
            lambda s: any(r.status in done and r.insight.status == apb.INSIGHT_STATUS_READY for r in s),
        )
        stub.RunAnalysis(pb.RunAnalysisRequest(dataset_id=other, kind=apb.ANALYSIS_KIND_SUMMARY), timeout=10)
        queued = stub.RunAnalysis(
            pb.RunAnalysisRequest(dataset_id=dataset_id, kind=apb.ANALYSIS_KIND_REPORT), timeout=10
        ).result
        thread.join(60)
    assert seen, "no update arrived"
    assert {r.id for r in seen} == {queued.id}  # only the watched dataset
    assert seen[-1].status == apb.RESULT_STATUS_SUCCEEDED
    assert seen[-1].insight.status == apb.INSIGHT_STATUS_READY


def _rest_wait(rest: httpx.Client, result_id: str) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        body: dict[str, Any] = rest.get(f"/v1/results/{result_id}", params={"seriesPoints": 20}).json()
        return body if body["result"]["status"] in ("RESULT_STATUS_SUCCEEDED", "RESULT_STATUS_FAILED") else None

    return eventually(finished, 60, f"result {result_id} to finish (REST)", interval=0.2)


def test_the_same_through_rest(rest: httpx.Client, stub: pb_grpc.AnalyticsServiceStub) -> None:
    dataset_id = make_dataset(stub, series_with_spike())
    queued = rest.post(f"/v1/datasets/{dataset_id}:analyze", json={"kind": "ANALYSIS_KIND_REPORT"})
    assert queued.status_code == 200, queued.text
    result_id = queued.json()["result"]["id"]
    body = _rest_wait(rest, result_id)
    result = body["result"]
    assert result["status"] == "RESULT_STATUS_SUCCEEDED"
    assert result["output"]["summary"]["count"] == "500"  # int64 as a string
    assert result["anomalyCount"] == "1"
    assert len(body["series"]["timestampsUs"]) <= 20
    listed = rest.get("/v1/results", params={"datasetId": dataset_id, "hasAnomalies": "true"}).json()
    assert [r["id"] for r in listed["results"]] == [result_id]
    bad = rest.post(f"/v1/datasets/{dataset_id}:analyze", json={"kind": "NOT_A_KIND"})
    assert bad.status_code == 400
    missing = rest.get(f"/v1/results/{uuid.uuid4()}")
    assert missing.status_code == 404 and missing.json()["code"] == 5


def test_ask_about_a_result_streams_a_grounded_answer(
    stub: pb_grpc.AnalyticsServiceStub, rest: httpx.Client
) -> None:
    dataset_id = make_dataset(stub, series_with_spike())
    queued = stub.RunAnalysis(pb.RunAnalysisRequest(dataset_id=dataset_id, kind=apb.ANALYSIS_KIND_REPORT), timeout=10)
    result = wait_for(stub, queued.result.id)
    chunks = list(
        stub.AskAboutResult(pb.AskAboutResultRequest(result_id=result.id, question="What was the peak?"), timeout=30)
    )
    answer = "".join(c.text for c in chunks)
    assert "900" in answer  # the result's max, from the numbers given
    assert chunks[-1].finish_reason == "stop" and chunks[-1].provider == "offline"
    # Through Envoy the stream arrives as newline-delimited JSON, a line a chunk.
    streamed = rest.post(f"/v1/results/{result.id}:ask", json={"question": "peak?"})
    assert streamed.status_code == 200
    assert "900" in "".join(json.loads(line)["text"] for line in streamed.text.splitlines() if line)


def test_no_nan_in_stored_numbers(stub: pb_grpc.AnalyticsServiceStub) -> None:
    dataset_id = make_dataset(stub, [5.0] * 20)  # constant: r undefined, MAD 0
    queued = stub.RunAnalysis(pb.RunAnalysisRequest(dataset_id=dataset_id, kind=apb.ANALYSIS_KIND_REPORT), timeout=10)
    result = wait_for(stub, queued.result.id)
    assert result.status == apb.RESULT_STATUS_SUCCEEDED
    assert result.output.anomalies.scale_method == "constant"
    assert math.isfinite(result.output.trend.r_squared)



def test_watchers_hanging_up_mid_stream_never_hurt_the_service(
    mesh: RunningStack, stub: pb_grpc.AnalyticsServiceStub
) -> None:
    dataset_id = make_dataset(stub, [1.0, 2.0, 3.0])
    with mesh.channel(mesh.analytics, "viewer") as channel:
        watcher = pb_grpc.AnalyticsServiceStub(channel)
        for _ in range(30):
            calls = [watcher.WatchResults(pb.WatchResultsRequest(), timeout=30) for _ in range(3)]
            for call in calls:
                call.initial_metadata()
            stub.RunAnalysis(pb.RunAnalysisRequest(dataset_id=dataset_id, kind=apb.ANALYSIS_KIND_SUMMARY), timeout=10)
            for index, call in enumerate(calls):
                if index:  # hang up on one stream at once, on the others after their first update
                    next(call)
                call.cancel()
    # The service is still up and answering.
    assert stub.GetDataset(pb.GetDatasetRequest(id=dataset_id), timeout=10).dataset.id == dataset_id


def test_a_deleted_datasets_results_are_gone_at_once(stub: pb_grpc.AnalyticsServiceStub) -> None:
    dataset_id = make_dataset(stub, [1.0, 2.0, 3.0])
    queued = stub.RunAnalysis(pb.RunAnalysisRequest(dataset_id=dataset_id, kind=apb.ANALYSIS_KIND_SUMMARY), timeout=10)
    wait_for(stub, queued.result.id)
    for _ in range(2):  # the second read comes from the finished-results cache
        assert stub.GetResult(pb.GetResultRequest(id=queued.result.id), timeout=10).result.output.summary.count == 3
    stub.DeleteDataset(pb.DeleteDatasetRequest(id=dataset_id), timeout=10)
    assert _code(lambda: stub.GetResult(pb.GetResultRequest(id=queued.result.id), timeout=10)) == (
        grpc.StatusCode.NOT_FOUND
    )


def test_listed_pages_follow_every_change_however_often_they_are_read(stub: pb_grpc.AnalyticsServiceStub) -> None:
    """Pages are served from memory between changes: a new analysis shows at
    once in the next list, a worker's progress shows as it happens, a deleted
    dataset's list is empty at once; however the dataset id is spelled."""
    dataset_id = make_dataset(stub, series_with_spike())

    def page(dataset: str = dataset_id) -> list[tuple[str, int]]:
        listed = stub.ListResults(pb.ListResultsRequest(dataset_id=dataset, page_size=10), timeout=10)
        return [(r.id, r.status) for r in listed.results]

    assert page() == [] and page() == []  # the second from memory
    first = stub.RunAnalysis(pb.RunAnalysisRequest(dataset_id=dataset_id, kind=apb.ANALYSIS_KIND_SUMMARY), timeout=10)
    assert [i for i, _ in page()] == [first.result.id]  # read-your-writes
    assert [i for i, _ in page(dataset_id.upper())] == [first.result.id]
    # The worker (another process) finishes it; the page follows its notifications.
    eventually(lambda: page() == [(first.result.id, apb.RESULT_STATUS_SUCCEEDED)], 60, lambda: f"the page {page()}")
    assert page(dataset_id.upper()) == [(first.result.id, apb.RESULT_STATUS_SUCCEEDED)]
    assert wait_for(stub, first.result.id).status == apb.RESULT_STATUS_SUCCEEDED
    all_results = stub.ListResults(pb.ListResultsRequest(page_size=5), timeout=10)
    assert first.result.id in [r.id for r in all_results.results]
    stub.DeleteDataset(pb.DeleteDatasetRequest(id=dataset_id.upper()), timeout=10)
    assert page() == [] and page(dataset_id.upper()) == []
    everywhere = stub.ListResults(pb.ListResultsRequest(page_size=5), timeout=10)
    assert first.result.id not in [r.id for r in everywhere.results]


def _daily_cycle_with_spikes(stub: pb_grpc.AnalyticsServiceStub, spikes: dict[int, float]) -> tuple[str, list[int]]:
    """Four days of a daily cycle (5-minute points, noise sd 0.5) with spikes
    added; spikes stay within the daily swing, so only a seasonal method finds them."""
    step = 300_000_000
    n = 4 * 288
    rng = np.random.default_rng(11)
    values = 50 + 10 * np.sin(2 * np.pi * np.arange(n) / 288) + rng.normal(0, 0.5, n)
    for index, offset in spikes.items():
        values[index] += offset
    stamps = [START_US + i * step for i in range(n)]
    created = stub.CreateDataset(
        pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=f"cyc-{uuid.uuid4().hex[:10]}", unit="ms")),
        timeout=10,
    )
    stub.AppendPoints(
        pb.AppendPointsRequest(dataset_id=created.dataset.id, timestamps_us=stamps, values=values.tolist()),
        timeout=10,
    )
    return str(created.dataset.id), stamps


def test_seasonal_anomalies_are_events_ranked_with_expected_values_and_told_in_the_insight(
    stub: pb_grpc.AnalyticsServiceStub,
) -> None:
    spikes = {200: 7.0, 500: -9.0, 900: 5.0}
    dataset_id, stamps = _daily_cycle_with_spikes(stub, spikes)
    queued = stub.RunAnalysis(
        pb.RunAnalysisRequest(dataset_id=dataset_id, kind=apb.ANALYSIS_KIND_ANOMALIES), timeout=10
    ).result
    result = wait_for(stub, queued.id)
    assert result.status == apb.RESULT_STATUS_SUCCEEDED, result.error
    report = result.output.anomalies
    assert (report.method, list(report.periods_seconds), report.periods_origin) == ("seasonal", [86400], "detected")
    assert report.regularization == "regular: one point every 5 min"
    # One event per spike, the largest |score| first: -9, then +7, then +5.
    assert [e.peak_us for e in report.events] == [stamps[500], stamps[200], stamps[900]]
    assert result.anomaly_count == 3
    for event in report.events:
        index = stamps.index(event.peak_us)
        clean = 50 + 10 * math.sin(2 * math.pi * index / 288)
        assert event.expected == pytest.approx(clean, abs=1.0)
        assert not event.lower <= event.peak_value <= event.upper
    assert result.insight.status == apb.INSIGHT_STATUS_READY
    assert "3 anomalies, largest first" in result.insight.text
    # The global method, asked for by parameter, misses them inside the daily swing.
    queued = stub.RunAnalysis(
        pb.RunAnalysisRequest(
            dataset_id=dataset_id,
            kind=apb.ANALYSIS_KIND_ANOMALIES,
            parameters=apb.AnalysisParameters(anomaly_method=apb.ANOMALY_METHOD_GLOBAL),
        ),
        timeout=10,
    ).result
    result = wait_for(stub, queued.id)
    assert (result.output.anomalies.method, result.anomaly_count) == ("global", 0)


def test_seasonal_anomalies_of_a_constant_series_fail_with_a_reason(stub: pb_grpc.AnalyticsServiceStub) -> None:
    dataset_id = make_dataset(stub, [4.0] * 50)
    queued = stub.RunAnalysis(
        pb.RunAnalysisRequest(dataset_id=dataset_id, kind=apb.ANALYSIS_KIND_ANOMALIES), timeout=10
    ).result
    result = wait_for(stub, queued.id)
    assert result.status == apb.RESULT_STATUS_FAILED
    assert "constant series" in result.error


def test_anomaly_parameters_that_cannot_work_are_refused_at_request_time(
    stub: pb_grpc.AnalyticsServiceStub,
) -> None:
    dataset_id = make_dataset(stub, [1.0, 2.0])
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    window = apb.AnalysisParameters(seasonal_periods_seconds=[86400])
    window.window_start.FromDatetime(start)
    window.window_end.FromDatetime(start + dt.timedelta(days=1))
    for parameters, needle in [
        (
            apb.AnalysisParameters(seasonal_periods_seconds=[86400], anomaly_method=apb.ANOMALY_METHOD_GLOBAL),
            "seasonal method",
        ),
        (window, "two full cycles"),
        (apb.AnalysisParameters(seasonal_periods_seconds=[1]), "seasonal_periods_seconds"),
    ]:
        with pytest.raises(grpc.RpcError) as error:
            stub.RunAnalysis(
                pb.RunAnalysisRequest(dataset_id=dataset_id, kind=apb.ANALYSIS_KIND_ANOMALIES, parameters=parameters),
                timeout=10,
            )
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert needle in str(error.value.details()) or needle in str(error.value.trailing_metadata())


def test_clients_leaving_watches_log_no_traceback(stub: pb_grpc.AnalyticsServiceStub, mesh: RunningStack) -> None:
    """Watches left mid-stream (a closed tab) end as CANCELLED in the service's
    log, with no "unexpected error" and no context-variable traceback."""
    log = mesh.logs() / "analytics.log"
    start = log.stat().st_size
    dataset_id = make_dataset(stub, [1.0, 2.0, 3.0, 50.0, 2.0])
    request_ids = [f"leaving-watch-{uuid.uuid4().hex[:8]}" for _ in range(5)]
    for request_id in request_ids:
        call = stub.WatchResults(
            pb.WatchResultsRequest(dataset_id=dataset_id), timeout=60, metadata=(("x-request-id", request_id),)
        )
        call.initial_metadata()  # the watch is registered
        queued = stub.RunAnalysis(pb.RunAnalysisRequest(dataset_id=dataset_id, kind=apb.ANALYSIS_KIND_SUMMARY))
        assert next(call).result.dataset_id == dataset_id  # messages are flowing
        call.cancel()
        wait_for(stub, queued.result.id)

    def logged() -> list[dict[str, Any]]:
        with log.open("rb") as handle:
            handle.seek(start)
            lines = [json.loads(line) for line in handle.read().decode(errors="replace").splitlines() if line.strip()]
        return lines

    eventually(
        lambda: {e.get("request_id") for e in logged() if e.get("msg") == "rpc"} >= set(request_ids),
        30,
        "every watch's access-log line",
    )
    ends = {
        e["request_id"]: e["code"] for e in logged() if e.get("msg") == "rpc" and e.get("request_id") in request_ids
    }
    assert set(ends.values()) == {"CANCELLED"}
    text = log.read_bytes()[start:].decode(errors="replace")
    assert "different Context" not in text and "unexpected error" not in text
