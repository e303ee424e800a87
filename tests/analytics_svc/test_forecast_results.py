"""The forecast kind end to end on the real mesh: RunAnalysis queues it, a
worker computes it, the result carries the forecast and its insight states it;
bad horizons are refused at request time, bad series fail with a reason."""

from __future__ import annotations

import uuid

import grpc
import httpx
import numpy as np
import pytest

from mesh.analytics.v1 import analysis_pb2 as apb
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from mesh.analytics.v1 import dataset_pb2
from tests.analytics_svc.test_results import make_dataset, stub, wait_for

__all__ = ["stub"]

START_US = 1_700_000_000_000_000
HOUR_US = 3_600_000_000


def _hourly_cycle(stub: pb_grpc.AnalyticsServiceStub, days: int) -> tuple[str, np.ndarray]:
    """``days`` of hourly points: 50 + 0.1 per hour + a daily cycle of amplitude 10, noise sd 0.5."""
    n = days * 24
    t = np.arange(n + 24, dtype=np.float64)
    clean = 50 + 0.1 * t + 10 * np.sin(2 * np.pi * t / 24)
    values = clean[:n] + np.random.default_rng(5).normal(0, 0.5, n)
    created = stub.CreateDataset(
        pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=f"fc-{uuid.uuid4().hex[:10]}", unit="kW")),
        timeout=10,
    )
    stub.AppendPoints(
        pb.AppendPointsRequest(
            dataset_id=created.dataset.id,
            timestamps_us=[START_US + i * HOUR_US for i in range(n)],
            values=values.tolist(),
        ),
        timeout=10,
    )
    return str(created.dataset.id), clean[n:]


def test_a_forecast_runs_on_a_worker_and_its_insight_states_it(stub: pb_grpc.AnalyticsServiceStub) -> None:
    dataset_id, future = _hourly_cycle(stub, days=14)
    queued = stub.RunAnalysis(
        pb.RunAnalysisRequest(
            dataset_id=dataset_id,
            kind=apb.ANALYSIS_KIND_FORECAST,
            parameters=apb.AnalysisParameters(forecast_horizon=24),
        ),
        timeout=10,
    ).result
    result = wait_for(stub, queued.id, timeout=120)
    assert result.status == apb.RESULT_STATUS_SUCCEEDED, result.error
    f = result.output.forecast
    assert len(f.points) == 24
    assert [p.timestamp_us for p in f.points] == [START_US + (14 * 24 + i) * HOUR_US for i in range(24)]
    forecast = np.array([p.value for p in f.points])
    assert np.abs(forecast - future).max() < 2.5  # the cycle swings by 20
    assert all(p.lower_95 <= p.lower_80 <= p.value <= p.upper_80 <= p.upper_95 for p in f.points)
    assert f.model and f.model == f.candidates[0].model
    assert (list(f.periods_seconds), f.periods_origin) == ([86400], "detected")
    assert result.insight.status == apb.INSIGHT_STATUS_READY
    assert "expected to reach" in result.insight.text
    assert f.model.replace("_", " ") in result.insight.text or f.model in result.insight.text


@pytest.mark.parametrize(("horizon", "needle"), [(0, "forecast_horizon"), (10_001, "forecast_horizon")])
def test_a_horizon_out_of_range_is_refused_at_request_time(
    stub: pb_grpc.AnalyticsServiceStub, rest: httpx.Client, horizon: int, needle: str
) -> None:
    dataset_id = make_dataset(stub, [1.0, 2.0, 3.0])
    with pytest.raises(grpc.RpcError) as error:
        stub.RunAnalysis(
            pb.RunAnalysisRequest(
                dataset_id=dataset_id,
                kind=apb.ANALYSIS_KIND_FORECAST,
                parameters=apb.AnalysisParameters(forecast_horizon=horizon),
            ),
            timeout=10,
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in str(error.value.details()) or needle in str(error.value.trailing_metadata())
    response = rest.post(
        f"/v1/datasets/{dataset_id}:analyze",
        json={"kind": "ANALYSIS_KIND_FORECAST", "parameters": {"forecastHorizon": horizon}},
    )
    assert response.status_code == 400
    assert needle in response.text or "forecastHorizon" in response.text


def test_a_constant_series_fails_with_a_reason_and_the_worker_goes_on(stub: pb_grpc.AnalyticsServiceStub) -> None:
    dataset_id = make_dataset(stub, [4.0] * 60)
    queued = stub.RunAnalysis(
        pb.RunAnalysisRequest(
            dataset_id=dataset_id,
            kind=apb.ANALYSIS_KIND_FORECAST,
            parameters=apb.AnalysisParameters(forecast_horizon=5),
        ),
        timeout=10,
    ).result
    result = wait_for(stub, queued.id)
    assert result.status == apb.RESULT_STATUS_FAILED
    assert "constant series" in result.error
    # Too few cycles for a declared period: a forecast without the season, and the result says why.
    dataset_id = make_dataset(stub, [float(i % 7) + 0.1 * i for i in range(40)])
    queued = stub.RunAnalysis(
        pb.RunAnalysisRequest(
            dataset_id=dataset_id,
            kind=apb.ANALYSIS_KIND_FORECAST,
            parameters=apb.AnalysisParameters(forecast_horizon=5, seasonal_periods_seconds=[86400]),
        ),
        timeout=10,
    ).result
    result = wait_for(stub, queued.id)
    assert result.status == apb.RESULT_STATUS_SUCCEEDED, result.error
    assert "two full cycles" in result.output.forecast.fallback_reason
    assert len(result.output.forecast.points) == 5
