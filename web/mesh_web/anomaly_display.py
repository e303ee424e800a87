"""How anomaly events are paged and a dataset's seasonal periods shown and edited (pure; no Reflex)."""

from __future__ import annotations

from collections.abc import Sequence

from mesh_web.display import format_count
from mesh_web.result_display import format_period


def periods_text(periods_s: Sequence[int]) -> str:
    """'1 d, 7 d' for display; 'detected from the data' when none are declared."""
    if not periods_s:
        return "detected from the data"
    return ", ".join(format_period(int(p)) for p in sorted(periods_s))


def periods_field(periods_s: Sequence[int]) -> str:
    """'86400, 604800': the edit form's value (seconds, comma-separated)."""
    return ", ".join(str(int(p)) for p in sorted(periods_s))


def parse_periods(text: str) -> list[int]:
    """The periods typed in the edit form, in seconds, sorted; ValueError with a line for the user."""
    raw = [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]
    try:
        periods = sorted({int(part) for part in raw})
    except ValueError:
        raise ValueError("Seasonal periods: whole seconds, comma-separated, e.g. 86400, 604800") from None
    return periods


def events_caption(first_rank: int, shown: int, total: int) -> str:
    """'Events 21–40 of 1,234, largest first' (or '1 event' / '3 events, largest first')."""
    if total <= 0 or shown <= 0:
        return "No events"
    if shown >= total:
        return "1 event" if total == 1 else f"{format_count(total)} events, largest first"
    last = first_rank + shown - 1
    return f"Events {format_count(first_rank)}–{format_count(last)} of {format_count(total)}, largest first"
