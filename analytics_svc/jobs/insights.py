"""Plain-language insights about results, written by the LLM service.

The prompt carries the result's numbers as JSON (never the raw points), so
any provider — including the offline one — can ground its text in them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import grpc

from analytics_svc.analyses import compute
from mesh.analytics.v1 import analysis_pb2 as apb
from mesh.llm.v1 import completion_pb2, llm_service_pb2, llm_service_pb2_grpc
from mesh_runtime.wire import us_to_datetime

INSIGHT_SYSTEM_PROMPT = (
    "You explain time-series analysis results to a data team. Write 3 to 5 plain sentences: "
    "what the numbers say, whether anything looks unusual, and what to check next. "
    "Use only the numbers given; never invent data."
)
QUESTION_SYSTEM_PROMPT = (
    "You answer questions about one time-series analysis result. Ground every statement in the "
    "result's numbers given as JSON; say so when they cannot answer the question."
)
INSIGHT_MAX_TOKENS = 400
ANSWER_MAX_TOKENS = 800


def significant(value: float, digits: int = 6) -> float:
    """``value`` to ``digits`` significant digits: what a reader needs, no float noise."""
    return float(f"{value:.{digits}g}")


def facts(result: apb.Result, unit: str = "") -> dict[str, Any]:
    """The numbers of a result as a flat JSON object for a prompt."""
    out: dict[str, Any] = {
        "dataset": result.dataset_name,
        "kind": compute.kind_name(result.kind),
    }
    if unit:
        out["unit"] = unit
    if result.HasField("window_start"):
        out["window_start"] = result.window_start.ToJsonString()
        out["window_end"] = result.window_end.ToJsonString()
    for number in compute.key_numbers(result.output):
        if number.name in compute.FORECAST_NUMBERS:
            continue  # told in "forecast" below, with its time and model
        key = number.name.replace(" ", "_")
        counted = number.name in ("count", "anomalies", "aligned points")
        out[key] = int(number.value) if counted else significant(number.value)
    if result.output.HasField("anomalies"):
        report = result.output.anomalies
        out["anomaly_method"] = report.method or "global"
        if report.periods_seconds:
            out["seasonal_periods_seconds"] = list(report.periods_seconds)
            out["seasonal_periods_origin"] = report.periods_origin
        if report.events:
            # The anomalies are events (runs of adjacent unusual points), largest score first.
            out["anomaly_events"] = [
                {
                    "peak_time": us_to_datetime(e.timestamp_us).isoformat(),
                    "start": us_to_datetime(e.start_us).isoformat(),
                    "end": us_to_datetime(e.end_us).isoformat(),
                    "peak_value": significant(e.value),
                    "expected": significant(e.expected),
                    "score": round(e.score, 2),
                }
                for e in compute.top_anomalies(result.output, 5)
            ]
    if result.output.HasField("forecast") and result.output.forecast.points:
        out["forecast"] = forecast_facts(result.output.forecast)
    c = result.output.computation
    if c.mode and not c.exact:  # over chunks, some numbers approximate: say which and how
        out["computation"] = {
            "mode": c.mode,
            "points": c.point_count,
            "approximate": list(c.approximate),
            **({"quantile_rank_error": significant(c.quantile_rank_error, 2)} if c.quantile_rank_error else {}),
            **({"note": c.note} if c.note else {}),
        }
    return out


def forecast_facts(forecast: apb.Forecast) -> dict[str, Any]:
    """Where the forecast ends up: its last step's value ± the 95% interval's half width, and how it was made."""
    last = forecast.points[-1]
    return {
        "by": us_to_datetime(last.timestamp_us).isoformat(),
        "steps": len(forecast.points),
        "expected": significant(last.value),
        "plus_minus_95": significant((last.upper_95 - last.lower_95) / 2, 3),
        "interval_95_low": significant(last.lower_95),
        "interval_95_high": significant(last.upper_95),
        "model": forecast.model,
        "holdout_mase": significant(forecast.holdout_mase, 3),
    }


def insight_request(result: apb.Result, unit: str = "") -> llm_service_pb2.CompleteRequest:
    """The Complete request that asks for a result's insight."""
    return llm_service_pb2.CompleteRequest(
        messages=[
            completion_pb2.ChatMessage(role=completion_pb2.ROLE_SYSTEM, content=INSIGHT_SYSTEM_PROMPT),
            completion_pb2.ChatMessage(
                role=completion_pb2.ROLE_USER,
                content="Explain this analysis result:\n" + json.dumps(facts(result, unit), indent=1),
            ),
        ],
        max_tokens=INSIGHT_MAX_TOKENS,
        temperature=0.2,
    )


def question_request(result: apb.Result, question: str, unit: str = "") -> llm_service_pb2.StreamCompleteRequest:
    """The StreamComplete request that answers a question about a result."""
    context = "The result:\n" + json.dumps(facts(result, unit), indent=1)
    if result.insight.text:
        context += "\nIts insight: " + result.insight.text
    return llm_service_pb2.StreamCompleteRequest(
        messages=[
            completion_pb2.ChatMessage(role=completion_pb2.ROLE_SYSTEM, content=QUESTION_SYSTEM_PROMPT),
            completion_pb2.ChatMessage(role=completion_pb2.ROLE_USER, content=f"{context}\n\nQuestion: {question}"),
        ],
        max_tokens=ANSWER_MAX_TOKENS,
        temperature=0.2,
    )


async def write_insight(
    channel: grpc.aio.Channel, token: str, result: apb.Result, unit: str, timeout: float
) -> llm_service_pb2.CompleteResponse:
    """Ask the LLM service for a result's insight (raises grpc.RpcError)."""
    stub = llm_service_pb2_grpc.LlmServiceStub(channel)
    return await stub.Complete(  # type: ignore[no-any-return]
        insight_request(result, unit), timeout=timeout, metadata=(("authorization", f"Bearer {token}"),)
    )


async def answer(
    channel: grpc.aio.Channel, authorization: str, request: llm_service_pb2.StreamCompleteRequest, timeout: float
) -> AsyncIterator[llm_service_pb2.StreamCompleteResponse]:
    """Stream the LLM service's answer, on behalf of the caller's credentials."""
    stub = llm_service_pb2_grpc.LlmServiceStub(channel)
    call = stub.StreamComplete(request, timeout=timeout, metadata=(("authorization", authorization),))
    async for chunk in call:
        yield chunk
