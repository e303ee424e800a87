"""The pure logic of the result page's expected band and trend words. No network, no browser."""

from __future__ import annotations

import sys
from pathlib import Path

from mesh.analytics.v1 import analysis_pb2

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
if str(WEB_DIR) not in sys.path:
    sys.path.insert(0, str(WEB_DIR))

from mesh_web.components import expected_band  # noqa: E402


def test_each_event_puts_its_expected_value_and_band_on_the_nearest_row() -> None:
    rows = [{"value": 1.0}, {"value": 2.0}, {"value": 3.0}]
    events = [
        analysis_pb2.AnomalyEvent(peak_us=19, expected=5.0, lower=4.0, upper=7.0),
        analysis_pb2.AnomalyEvent(peak_us=1000, expected=1.0, lower=0.5, upper=1.5),
    ]
    out = expected_band.with_expected_band(rows, [0, 10, 20], events)
    assert [row["expected"] for row in out] == [None, None, 1.0]  # the later event wins the last row
    assert out[2]["expected_band"] == [0.5, 0.5]
    assert rows[0] == {"value": 1.0}  # the rows given are not changed
    alone = expected_band.with_expected_band(rows, [0, 10, 20], events[:1])
    assert alone[2]["expected"] == 5.0 and alone[2]["expected_band"] == [1.0, 2.0]
    assert expected_band.with_expected_band([], [], events) == []


def test_the_trend_is_said_with_its_interval_and_whether_it_stands_out() -> None:
    day = 86_400
    sure = analysis_pb2.Trend(
        slope_per_second=2.1 / day,
        uncertainty=analysis_pb2.TrendUncertainty(
            slope_ci_low=1.7 / day, slope_ci_high=2.5 / day, p_value=0.001, significant=True
        ),
    )
    assert expected_band.trend_in_words(sure, "rpm") == (
        "rising 2.1 rpm/day ± 0.4 (95% interval 1.7 to 2.5), distinguishable from noise (p = 0.001)"
    )
    unsure = analysis_pb2.Trend(
        slope_per_second=-0.2 / day,
        uncertainty=analysis_pb2.TrendUncertainty(
            slope_ci_low=-0.9 / day, slope_ci_high=0.5 / day, p_value=0.6, significant=False
        ),
    )
    assert expected_band.trend_in_words(unsure).startswith("falling 0.2/day ± 0.7 (95% interval -0.9 to 0.5)")
    assert expected_band.trend_in_words(unsure).endswith("not distinguishable from noise (p = 0.6): it could be chance")
    assert expected_band.trend_in_words(analysis_pb2.Trend()) == "flat 0/day (too few points to say how sure)"
