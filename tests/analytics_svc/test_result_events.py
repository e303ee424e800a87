"""Seasonal periods declared on a dataset, and a result's anomaly events listed
page by page, on the real mesh (gRPC and REST)."""

from __future__ import annotations

import uuid

import grpc
import httpx
import numpy as np
import pytest
from google.protobuf import field_mask_pb2

from mesh.analytics.v1 import analysis_pb2 as apb
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from mesh.analytics.v1 import dataset_pb2
from tests.analytics_svc.test_results import START_US, wait_for

DAY_S = 86_400
STEP_US = 300_000_000  # 5 minutes


@pytest.fixture
def stub(analytics_channel: grpc.Channel) -> pb_grpc.AnalyticsServiceStub:
    return pb_grpc.AnalyticsServiceStub(analytics_channel)


def _dataset(stub: pb_grpc.AnalyticsServiceStub, values: np.ndarray, periods: list[int] | None = None) -> str:
    created = stub.CreateDataset(
        pb.CreateDatasetRequest(
            dataset=dataset_pb2.Dataset(name=f"ev-{uuid.uuid4().hex[:10]}", seasonal_periods_seconds=periods or [])
        ),
        timeout=10,
    ).dataset
    stub.AppendPoints(
        pb.AppendPointsRequest(
            dataset_id=created.id,
            timestamps_us=[START_US + i * STEP_US for i in range(values.size)],
            values=values.tolist(),
        ),
        timeout=10,
    )
    return str(created.id)


def _anomalies(
    stub: pb_grpc.AnalyticsServiceStub, dataset_id: str, parameters: apb.AnalysisParameters | None = None
) -> apb.Result:
    queued = stub.RunAnalysis(
        pb.RunAnalysisRequest(dataset_id=dataset_id, kind=apb.ANALYSIS_KIND_ANOMALIES, parameters=parameters),
        timeout=10,
    ).result
    return wait_for(stub, queued.id)


def _daily_cycle(days: int) -> np.ndarray:
    n = days * 288
    rng = np.random.default_rng(3)
    values = 50 + 10 * np.sin(2 * np.pi * np.arange(n) / 288) + rng.normal(0, 0.5, n)
    values[n // 2] += 8.0  # inside the daily swing: only a method that removes the cycle sees it
    return values


def _refused(call: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as error:
        call()  # type: ignore[operator]
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return error.value


def test_periods_declared_on_the_dataset_are_validated_shown_and_used(
    stub: pb_grpc.AnalyticsServiceStub, rest: httpx.Client
) -> None:
    values = _daily_cycle(4)
    dataset_id = _dataset(stub, values, [DAY_S])
    shown = stub.GetDataset(pb.GetDatasetRequest(id=dataset_id), timeout=10).dataset
    assert list(shown.seasonal_periods_seconds) == [DAY_S]

    result = _anomalies(stub, dataset_id)
    assert result.status == apb.RESULT_STATUS_SUCCEEDED, result.error
    report = result.output.anomalies
    assert (list(report.periods_seconds), report.periods_origin) == ([DAY_S], "declared on the dataset")
    assert [e.peak_us for e in report.events] == [START_US + (values.size // 2) * STEP_US]
    # The request's own periods win over the dataset's.
    result = _anomalies(stub, dataset_id, apb.AnalysisParameters(seasonal_periods_seconds=[DAY_S // 2]))
    assert (list(result.output.anomalies.periods_seconds), result.output.anomalies.periods_origin) == (
        [DAY_S // 2],
        "declared",
    )

    # Cleared: detected from the data again.
    mask = field_mask_pb2.FieldMask(paths=["seasonal_periods_seconds"])
    stub.UpdateDataset(
        pb.UpdateDatasetRequest(dataset=dataset_pb2.Dataset(id=dataset_id), update_mask=mask), timeout=10
    )
    result = _anomalies(stub, dataset_id)
    assert (list(result.output.anomalies.periods_seconds), result.output.anomalies.periods_origin) == (
        [DAY_S],
        "detected",
    )

    # A week declared over four days of points: the run fails saying why; a
    # request whose window is known to be too short is refused at once.
    patched = rest.patch(
        f"/v1/datasets/{dataset_id}",
        params={"updateMask": "seasonalPeriodsSeconds"},
        json={"seasonalPeriodsSeconds": ["604800"]},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["dataset"]["seasonalPeriodsSeconds"] == ["604800"]
    result = _anomalies(stub, dataset_id)
    assert result.status == apb.RESULT_STATUS_FAILED
    assert "period 604800 s needs at least two cycles" in result.error
    error = _refused(
        lambda: stub.RunAnalysis(
            pb.RunAnalysisRequest(
                dataset_id=dataset_id,
                kind=apb.ANALYSIS_KIND_ANOMALIES,
                parameters=apb.AnalysisParameters(lookback_seconds=3 * DAY_S),
            ),
            timeout=10,
        )
    )
    assert "the dataset declares a period of 604800 s" in str(error.details())
    # A report on the same dataset still runs: the global method, saying why.
    queued = stub.RunAnalysis(pb.RunAnalysisRequest(dataset_id=dataset_id, kind=apb.ANALYSIS_KIND_REPORT), timeout=10)
    report_result = wait_for(stub, queued.result.id)
    assert report_result.status == apb.RESULT_STATUS_SUCCEEDED
    assert "period 604800 s" in report_result.output.anomalies.fallback_reason

    # Periods the method can never use are refused when declared.
    for periods in ([1], [DAY_S, DAY_S], [60, 120, 180, 240, 300], [10 * 31_536_000]):
        _refused(
            lambda periods=periods: stub.UpdateDataset(
                pb.UpdateDatasetRequest(
                    dataset=dataset_pb2.Dataset(id=dataset_id, seasonal_periods_seconds=periods), update_mask=mask
                ),
                timeout=10,
            )
        )
    bad = rest.post("/v1/datasets", json={"name": f"ev-{uuid.uuid4().hex[:8]}", "seasonalPeriodsSeconds": ["1"]})
    assert bad.status_code == 400 and "seasonal_periods_seconds" in bad.text


def test_every_event_is_kept_and_listed_page_by_page_largest_first(
    stub: pb_grpc.AnalyticsServiceStub, rest: httpx.Client
) -> None:
    n, spacing = 20_000, 100
    rng = np.random.default_rng(5)
    values = 100 + rng.normal(0, 1, n)
    spikes = np.arange(spacing // 2, n, spacing)  # 200 separate spikes, the newest the largest
    values[spikes] += 20 + 10 * np.arange(spikes.size)  # steps far above the noise: a strict ranking
    dataset_id = _dataset(stub, values)
    global_method = apb.AnalysisParameters(anomaly_method=apb.ANOMALY_METHOD_GLOBAL, anomaly_threshold=10)
    result = _anomalies(stub, dataset_id, global_method)
    assert result.status == apb.RESULT_STATUS_SUCCEEDED, result.error
    assert result.anomaly_count == spikes.size
    inline = result.output.anomalies
    # The result message carries the largest 100 and says how many more there are.
    assert (len(inline.events), len(inline.anomalies), inline.omitted_event_count) == (100, 100, spikes.size - 100)
    assert inline.events[0].peak_us == START_US + int(spikes[-1]) * STEP_US

    listed: list[apb.AnomalyEvent] = []
    token, ranks = "", []
    while True:
        page = stub.ListResultEvents(
            pb.ListResultEventsRequest(result_id=result.id, page_size=30, page_token=token), timeout=10
        )
        assert page.total_size == spikes.size
        ranks.append(page.first_rank)
        listed += page.events
        token = page.next_page_token
        if not token:
            break
    assert ranks == list(range(1, spikes.size + 1, 30))
    assert sorted(e.peak_us for e in listed) == [START_US + int(i) * STEP_US for i in spikes]
    assert [abs(e.score) for e in listed] == sorted((abs(e.score) for e in listed), reverse=True)
    assert list(listed[:100]) == list(inline.events)

    over_rest = rest.get(f"/v1/results/{result.id}/events", params={"pageSize": 150})
    assert over_rest.status_code == 200, over_rest.text
    body = over_rest.json()
    assert (len(body["events"]), body["totalSize"], body["firstRank"]) == (150, "200", "1")
    rest_next = rest.get(
        f"/v1/results/{result.id}/events", params={"pageSize": 150, "pageToken": body["nextPageToken"]}
    ).json()
    assert (len(rest_next["events"]), rest_next["nextPageToken"], rest_next["firstRank"]) == (50, "", "151")

    # A token is for its own result; a hand-made one is refused; unknown results are not found.
    other = _anomalies(stub, _dataset(stub, values[:2000]), global_method)
    first = stub.ListResultEvents(pb.ListResultEventsRequest(result_id=result.id, page_size=10), timeout=10)
    for result_id, token in ((other.id, first.next_page_token), (result.id, "not-a-token")):
        _refused(
            lambda result_id=result_id, token=token: stub.ListResultEvents(
                pb.ListResultEventsRequest(result_id=result_id, page_token=token), timeout=10
            )
        )
    with pytest.raises(grpc.RpcError) as missing:
        stub.ListResultEvents(pb.ListResultEventsRequest(result_id=str(uuid.uuid4())), timeout=10)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    # A kind without anomaly detection lists none.
    queued = stub.RunAnalysis(pb.RunAnalysisRequest(dataset_id=dataset_id, kind=apb.ANALYSIS_KIND_SUMMARY), timeout=10)
    summary = wait_for(stub, queued.result.id)
    empty = stub.ListResultEvents(pb.ListResultEventsRequest(result_id=summary.id), timeout=10)
    assert (list(empty.events), empty.total_size, empty.next_page_token) == ([], 0, "")
