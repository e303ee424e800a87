"""The offline provider's text: labelled, deterministic, and grounded in the
figures it is given (every number it states is one it was given)."""

from __future__ import annotations

import json
import re

import pytest

from llm_svc.offline_writer import OFFLINE_LABEL, figures_in, offline_answer
from llm_svc.providers import Message, OfflineProvider

NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")

RESULT = {
    "dataset": "orders-per-minute",
    "unit": "1/min",
    "count": 1440,
    "mean": 12.5,
    "median": 11.75,
    "min": 0.25,
    "max": 97.5,
    "stddev": 6.125,
    "p95": 24.5,
    "trend": {"slope_per_day": -0.375},
    "anomalies": 3,
    "window": 60,
}


def insight_request(result: dict[str, object]) -> list[tuple[str, str]]:
    return [
        ("system", "You explain analysis results to a small data team in plain language."),
        ("user", f"Write an insight about this analysis result: {json.dumps(result)}"),
    ]


def numbers(text: str) -> set[str]:
    return set(NUMBER.findall(text))


def test_insight_states_every_figure_of_the_result_and_invents_none() -> None:
    text = offline_answer(insight_request(RESULT))
    assert text.startswith(OFFLINE_LABEL)
    for value in ("1440", "12.5", "11.75", "0.25", "97.5", "6.125", "24.5", "-0.375", "3", "60"):
        assert value in text, f"{value} missing from: {text}"
    assert numbers(text) <= numbers(json.dumps(RESULT)), "every number stated must come from the result"
    assert "orders-per-minute" in text and "1/min" in text
    assert "falling" in text and "per day" in text  # a negative slope, in words
    assert "3 anomalies were flagged" in text
    assert "standard deviations above the average" in text  # 97.5 > 12.5 + 3 * 6.125


def test_insight_from_prose_figures() -> None:
    question = "Summarise: count: 1,440; the mean was 12.5%; max=40; p99 = 39.5; correlation: 0.82"
    text = offline_answer([("user", question)])
    for value in ("1,440", "12.5%", "40", "39.5", "0.82"):
        assert value in text
    assert "99th percentile" in text
    assert "strong positive relationship" in text
    assert numbers(text) <= {"1,440", "12.5", "40", "39.5", "0.82", "99"}


def test_a_question_without_statistics_is_described_honestly() -> None:
    text = offline_answer([("user", "values 3 and 9")])
    assert text.startswith(OFFLINE_LABEL)
    assert "No language model is configured" in text
    assert "3, 9" in text


def test_same_conversation_same_text() -> None:
    conversation = insight_request(RESULT)
    assert offline_answer(conversation) == offline_answer(list(conversation))


def test_figures_keep_their_labels() -> None:
    figures, facts = figures_in('{"summary": {"avg": 2.5, "p95": 7}, "unit": "ms"} and the peak was 9')
    by_stat = {f.stat: f.value for f in figures if f.stat}
    assert by_stat == {"mean": "2.5", "p95": "7", "max": "9"}
    assert facts == {"unit": "ms"}


@pytest.mark.parametrize("max_tokens", [5, 2000])
async def test_offline_provider_streams_the_same_text_it_completes(max_tokens: int) -> None:
    provider = OfflineProvider()
    messages = [Message(role, content) for role, content in insight_request(RESULT)]
    whole = await provider.complete(messages, "any-model", max_tokens)
    pieces = [e async for e in provider.stream(messages, "any-model", max_tokens)]
    *texts, last = pieces
    assert "".join(str(t) for t in texts) == whole.text
    assert last == whole.__class__(**{**whole.__dict__, "latency_seconds": last.latency_seconds})  # type: ignore[union-attr]
    assert whole.model == "offline-summary-1" and whole.provider == "offline"
    assert whole.finish_reason == ("length" if max_tokens == 5 else "stop")


def test_anomaly_events_are_told_largest_first_with_their_expected_values() -> None:
    facts = {
        "dataset": "cpu",
        "anomalies": 2,
        "anomaly_events": [
            {"peak_time": "2026-01-02T03:00:00+00:00", "peak_value": 140, "expected": 52.5, "score": 9.1},
            {"peak_time": "2026-01-01T10:00:00+00:00", "peak_value": 20, "expected": 48, "score": -5.2},
        ],
    }
    text = offline_answer([("user", "Explain this analysis result:\n" + json.dumps(facts))])
    assert (
        "2 anomalies, largest first: at 2026-01-02T03:00:00+00:00 value 140 (expected 52.5, score 9.1); "
        "at 2026-01-01T10:00:00+00:00 value 20 (expected 48, score -5.2)."
    ) in text


def test_when_only_the_top_events_are_listed_the_text_says_so() -> None:
    facts = {
        "dataset": "cpu",
        "anomalies": 12,
        "anomaly_events": [
            {"peak_time": "2026-01-02T03:00:00+00:00", "peak_value": 140, "expected": 52.5, "score": 9.1},
            {"peak_time": "2026-01-01T10:00:00+00:00", "peak_value": 20, "expected": 48, "score": -5.2},
        ],
    }
    text = offline_answer([("user", "Explain this analysis result:\n" + json.dumps(facts))])
    assert "12 anomalies; the largest 2: at 2026-01-02T03:00:00+00:00 value 140" in text
    assert "12 anomalies, largest first" not in text


@pytest.mark.parametrize(
    ("low", "high", "verdict"),
    [("0.5", "1.1", "so the trend is distinguishable from noise."), ("-0.2", "1.1", "not distinguishable from noise")],
)
def test_the_trend_interval_says_whether_the_trend_stands_out_from_noise(low: str, high: str, verdict: str) -> None:
    message = (
        '{"slope_per_day": 0.8, "slope_CI_low_per_day": ' + low + ', "slope_CI_high_per_day": ' + high + ", "
        '"trend_p-value": 0.0123}'
    )
    text = offline_answer([("user", "Explain this analysis result:\n" + message)])
    assert f"Its 95% confidence interval is {low} to {high} per day (p-value 0.0123)" in text
    assert verdict in text


def test_a_forecast_is_told_as_the_value_expected_by_its_last_step() -> None:
    facts = {
        "dataset": "power",
        "kind": "forecast",
        "forecast": {
            "by": "2026-01-03T00:00:00+00:00",
            "steps": 24,
            "expected": 61.2,
            "plus_minus_95": 3.4,
            "interval_95_low": 57.8,
            "interval_95_high": 64.6,
            "model": "holt_winters",
            "holdout_mase": 0.41,
        },
    }
    text = offline_answer([("user", "Explain this analysis result:\n" + json.dumps(facts))])
    assert (
        "The forecast: power is expected to reach 61.2 ± 3.4 by 2026-01-03T00:00:00+00:00, 24 steps ahead "
        "(95% prediction interval 57.8 to 64.6); model holt winters, chosen on a held-out tail, holdout MASE 0.41."
    ) in text


def test_figures_computed_over_chunks_are_said_to_be_approximate_and_by_how_much() -> None:
    facts = {
        "dataset": "power",
        "count": 100000000,
        "p95": 24.5,
        "computation": {
            "mode": "chunks", "points": 100000000, "approximate": ["quantiles"], "quantile_rank_error": 0.0014,
        },
    }  # fmt: skip
    text = offline_answer([("user", "Explain this analysis result:\n" + json.dumps(facts))])
    assert (
        "Some figures are approximate: quantiles (rank error at most 0.0014), computed over chunks of 100000000 "
        "points in bounded memory."
    ) in text
    exact = {"dataset": "power", "count": 10}
    assert "approximate" not in offline_answer([("user", "Explain:\n" + json.dumps(exact))])


def test_a_forecast_from_the_windows_tail_says_so_in_its_insight() -> None:
    from analytics_svc.jobs import insights
    from mesh.analytics.v1 import analysis_pb2 as apb

    note = "forecast from the last 5,120 of the window's 116,421 points, read from its last chunks"
    output = apb.ResultOutput(
        forecast=apb.Forecast(model="holt_winters", points=[apb.ForecastPoint(timestamp_us=0, value=1.5)]),
        computation=apb.Computation(mode="chunks", approximate=["forecast"], point_count=5120, note=note),
    )
    result = apb.Result(dataset_name="power", kind=apb.ANALYSIS_KIND_FORECAST, output=output)
    text = offline_answer([("user", insights.insight_request(result).messages[-1].content)])
    assert (
        f"Some figures are approximate: forecast, computed over chunks of 5120 points in bounded memory ({note})."
        in text
    )
    exact = apb.Result(
        dataset_name="power", output=apb.ResultOutput(computation=apb.Computation(mode="in_memory", exact=True))
    )
    assert "computation" not in insights.facts(exact)
