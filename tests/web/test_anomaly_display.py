"""How the web app pages anomaly events and shows a dataset's seasonal periods (pure functions)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
if str(WEB_DIR) not in sys.path:
    sys.path.insert(0, str(WEB_DIR))

from mesh_web.anomaly_display import events_caption, parse_periods, periods_field, periods_text  # noqa: E402
from mesh_web.result_display import series_caption  # noqa: E402


def test_the_events_caption_says_which_ranks_of_how_many_with_plurals() -> None:
    assert events_caption(1, 1, 1) == "1 event"
    assert events_caption(1, 3, 3) == "3 events, largest first"
    assert events_caption(21, 20, 1234) == "Events 21–40 of 1,234, largest first"
    assert events_caption(1, 0, 0) == "No events"


def test_periods_are_shown_in_days_and_edited_in_seconds() -> None:
    assert periods_text([604_800, 86_400]) == "1 d, 7 d"
    assert periods_text([]) == "detected from the data"
    assert periods_field([604_800, 86_400]) == "86400, 604800"
    assert parse_periods(" 604800, 86400,86400 ") == [86_400, 604_800]
    assert parse_periods("") == []
    with pytest.raises(ValueError, match="whole seconds"):
        parse_periods("a day")


def test_the_chart_caption_says_when_only_the_largest_events_are_drawn() -> None:
    assert series_caption(50_000, 3, 3) == "50,000 points analysed · 3 anomalies (red dots)"
    assert series_caption(50_000, 250, 100) == "50,000 points analysed · 250 anomalies (the largest 100 as red dots)"
    assert series_caption(240, 1) == "240 points analysed · 1 anomaly (red dots)"
