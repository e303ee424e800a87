"""What the offline provider writes: deterministic, labelled, grounded text.

Asked about an analysis result, it finds the figures in the last user
message (``mean: 12.5``, ``the max was 40``, ``p95=38``, or a JSON object
such as ``{"count": 1440, "trend": {"slope_per_day": 0.8}}``) and writes a
plain-language summary that states each of them exactly as given. Anything
else gets a short, honest description of the message. The same
conversation always gets the same text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

OFFLINE_LABEL = "[offline model]"
OFFLINE_MODEL = "offline-summary-1"
HINT = "Set OPENROUTER_API_KEY or LLM_BASE_URL to use a language model."

_STAT_NAMES: dict[str, tuple[str, ...]] = {
    "count": ("count", "n", "points", "num_points", "n_points", "samples", "sample_count", "observations"),
    "mean": ("mean", "average", "avg", "mean_value"),
    "median": ("median", "p50"),
    "min": ("min", "minimum", "lowest", "smallest", "min_value"),
    "max": ("max", "maximum", "highest", "largest", "peak", "max_value"),
    "std": ("std", "stddev", "std_dev", "stdev", "sd", "standard_deviation"),
    "slope": ("slope", "trend", "trend_slope"),
    "anomalies": ("anomalies", "anomaly_count", "anomalies_count", "outliers", "outlier_count"),
    "correlation": ("correlation", "corr", "pearson", "pearson_r", "correlation_coefficient"),
    "sum": ("sum", "total"),
}
_STAT_OF = {name: stat for stat, names in _STAT_NAMES.items() for name in names}
_QUANTILE = re.compile(r"^(?:p|q|percentile_?)(\d{1,2}(?:\.\d+)?)$")
_SLOPE_UNIT = re.compile(r"^(?:slope|trend)_per_([a-z]+)$")
_SLOPE_CI = re.compile(r"^slope_ci_(low|high)(?:_per_[a-z]+)?$")
_NAME_KEYS = ("dataset", "dataset_name", "series", "name")
_UNIT_KEYS = ("unit", "units")

_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:,\d{3})*(?:\.\d+)?(?:[eE][-+]?\d+)?%?(?![\w])")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_.%-]*")
_FILLER = {"was", "is", "are", "were", "of", "at", "about", "around", "approximately", "the", "a", "an", "~"}
_CLAUSE_BREAK = re.compile(r"[,;()\[\]{}\n]|\.\s")


@dataclass(frozen=True)
class Figure:
    """A number from the message, written as given, with the label before it."""

    label: str  # "" for a number with no name
    value: str  # exactly as written, e.g. "1,440" or "12.5%"
    stat: str | None = None  # "mean", "max", "p95", ... when the label names a statistic

    @property
    def number(self) -> float:
        return float(self.value.rstrip("%").replace(",", ""))


def _stat_of(label: str) -> str | None:
    key = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")
    if key in _STAT_OF:
        return _STAT_OF[key]
    if ci := _SLOPE_CI.match(key):
        return f"slope_ci_{ci.group(1)}"
    if key in ("trend_p_value", "slope_p_value"):
        return "trend_p"
    if _SLOPE_UNIT.match(key):
        return "slope"
    quantile = _QUANTILE.match(key)
    if quantile:
        return f"p{quantile.group(1)}"
    return None


class _Num(str):
    """A JSON number kept as written."""


def _json_figures(value: object, path: tuple[str, ...], facts: dict[str, str]) -> Iterator[Figure]:
    if isinstance(value, _Num):
        label = path[-1] if path else ""
        stat = _stat_of(label) or (_stat_of("_".join(path[-2:])) if len(path) > 1 else None)
        if stat is None and len(path) > 1 and _stat_of(path[-2]) == "slope":
            stat = "slope"
        yield Figure(".".join(path), str(value), stat)
    elif isinstance(value, dict):
        for key, item in value.items():
            lowered = key.lower()
            if isinstance(item, str) and not isinstance(item, _Num):
                if lowered in _NAME_KEYS:
                    facts.setdefault("name", item)
                elif lowered in _UNIT_KEYS:
                    facts.setdefault("unit", item)
                elif lowered in ("per", "time_unit", "slope_unit"):
                    facts.setdefault("per", item)
                continue
            if isinstance(item, dict) and lowered == "forecast":
                facts.setdefault("forecast", _forecast_text(item))
                continue
            if isinstance(item, dict) and lowered == "computation":
                if item.get("approximate"):
                    facts.setdefault("approximate", _approximate_text(item))
                continue
            if isinstance(item, list) and lowered == "anomaly_events":
                facts.setdefault("anomaly_events", _events_text(item))
                facts.setdefault("anomaly_events_listed", str(len(item)))
                continue
            if isinstance(item, list) and _stat_of(key) == "anomalies":
                yield Figure(key, str(len(item)), "anomalies")
                continue
            yield from _json_figures(item, (*path, key), facts)


def _events_text(events: list[object]) -> str:
    """'at 2026-01-02T03:04:00+00:00 value 140 (expected 52, score +9.1); ...' for anomaly events."""
    described = []
    for event in events:
        if not isinstance(event, dict):
            continue
        when = event.get("peak_time") or event.get("time") or event.get("start")
        text = f"at {when}" if when else "an event"
        if "peak_value" in event:
            text += f" value {event['peak_value']}"
        details = [f"expected {event['expected']}"] if "expected" in event else []
        if "score" in event:
            details.append(f"score {event['score']}")
        if details:
            text += f" ({', '.join(details)})"
        described.append(text)
    return "; ".join(described)


def _approximate_text(computation: dict[str, object]) -> str:
    """'Some figures are approximate: quantiles (rank error at most 0.0014), computed over chunks
    of 116421 points in bounded memory.' for a result computed over chunks."""
    approximate = computation.get("approximate")
    which = ", ".join(str(a) for a in approximate) if isinstance(approximate, list) else str(approximate)
    if "quantile_rank_error" in computation:
        which += f" (rank error at most {computation['quantile_rank_error']})"
    where = " on a Dask cluster" if computation.get("mode") == "dask" else ""
    text = f"Some figures are approximate: {which}, computed over chunks of {computation.get('points', '?')} points"
    text += f"{where} in bounded memory"
    return text + (f" ({computation['note']})." if computation.get("note") else ".")


def _forecast_text(forecast: dict[str, object]) -> str:
    """'expected to reach 140 ± 12 by 2026-01-02T00:00:00+00:00 (95% interval 128 to 152) ...' for a forecast."""
    text = f"expected to reach {forecast.get('expected', '?')}"
    if "plus_minus_95" in forecast:
        text += f" ± {forecast['plus_minus_95']}"
    if "by" in forecast:
        text += f" by {forecast['by']}"
    if "steps" in forecast:
        text += f", {forecast['steps']} steps ahead"
    if "interval_95_low" in forecast and "interval_95_high" in forecast:
        text += f" (95% prediction interval {forecast['interval_95_low']} to {forecast['interval_95_high']})"
    if "model" in forecast:
        model = str(forecast["model"]).replace("_", " ")
        error = f", holdout MASE {forecast['holdout_mase']}" if "holdout_mase" in forecast else ""
        text += f"; model {model}, chosen on a held-out tail{error}"
    return text


def _find_json(text: str) -> tuple[dict[str, object], tuple[int, int]] | None:
    decoder = json.JSONDecoder(parse_float=_Num, parse_int=_Num)
    for match in re.finditer(r"\{", text):
        try:
            value, end = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict):
            return value, (match.start(), end)
    return None


def _text_figures(text: str) -> Iterator[Figure]:
    previous_end = 0
    for match in _NUMBER.finditer(text):
        before = text[max(previous_end, match.start() - 48) : match.start()]
        previous_end = match.end()
        breaks = list(_CLAUSE_BREAK.finditer(before))
        if breaks:
            before = before[breaks[-1].end() :]
        explicit = bool(re.search(r"[:=]\s*$", before))
        words = _WORD.findall(before)
        while words and words[-1].lower() in _FILLER:
            words.pop()
        label, stat = "", None
        for size in (3, 2, 1):
            if len(words) >= size and (found := _stat_of("_".join(words[-size:]))):
                label, stat = " ".join(words[-size:]), found
                break
        if stat is None and explicit and words:
            label = " ".join(words[-3:])
        yield Figure(label, match.group(), stat)


def figures_in(text: str) -> tuple[list[Figure], dict[str, str]]:
    """The figures of ``text`` (a JSON object's first, then the prose's) and
    facts about them (dataset name, unit)."""
    facts: dict[str, str] = {}
    figures: list[Figure] = []
    found = _find_json(text)
    if found is not None:
        value, (start, end) = found
        figures.extend(_json_figures(value, (), facts))
        text = text[:start] + " ; " + text[end:]
    figures.extend(_text_figures(text))
    return figures, facts


def _spread(std: float, mean: float) -> str:
    if mean == 0:
        return ""
    ratio = abs(std / mean)
    if ratio < 0.1:
        return ", a tight spread around the average"
    if ratio < 0.5:
        return ", a moderate spread around the average"
    return ", a wide spread around the average"


def _ordinal(number: str) -> str:
    if number.endswith(("11", "12", "13")):
        return f"{number}th"
    return number + {"1": "st", "2": "nd", "3": "rd"}.get(number[-1], "th")


def _correlation_words(r: float) -> str:
    size = abs(r)
    strength = "strong" if size >= 0.7 else "moderate" if size >= 0.4 else "weak" if size >= 0.2 else "little or no"
    if strength == "little or no":
        return "little or no linear relationship"
    return f"a {strength} {'positive' if r > 0 else 'negative'} relationship"


def _insight(figures: list[Figure], facts: dict[str, str]) -> str:
    stats: dict[str, Figure] = {}
    rest: list[Figure] = []
    for figure in figures:
        if figure.stat and figure.stat not in stats:
            stats[figure.stat] = figure
        else:
            rest.append(figure)
    unit = facts.get("unit", "")
    unit = unit if unit in ("", "%") else f" {unit}"
    subject = facts.get("name", "The series")
    sentences: list[str] = []

    def value(stat: str) -> str:
        return stats[stat].value

    if "count" in stats:
        sentences.append(f"{subject} has {value('count')} values.")
        subject = "They"
    if "mean" in stats:
        sentence = f"{subject} {'average' if subject == 'They' else 'averages'} {value('mean')}{unit}"
        if "median" in stats:
            sentence += f" (median {value('median')})"
        if "min" in stats and "max" in stats:
            sentence += f", ranging from {value('min')} to {value('max')}{unit}"
        sentences.append(sentence + ".")
    elif "min" in stats and "max" in stats:
        sentences.append(f"Values range from {value('min')} to {value('max')}{unit}.")
    if "mean" not in stats or not ("min" in stats and "max" in stats):
        if "min" in stats and "max" not in stats:
            sentences.append(f"The lowest value is {value('min')}{unit}.")
        if "max" in stats and "min" not in stats:
            sentences.append(f"The highest value is {value('max')}{unit}.")
    if "median" in stats and "mean" not in stats:
        sentences.append(f"The median is {value('median')}{unit}.")
    if "std" in stats:
        spread = _spread(stats["std"].number, stats["mean"].number) if "mean" in stats else ""
        sentences.append(f"The standard deviation is {value('std')}{spread}.")
        if "mean" in stats and "max" in stats:
            mean, std, peak = stats["mean"].number, stats["std"].number, stats["max"].number
            if std > 0 and peak > mean + 3 * std:
                sentences.append("The maximum lies more than three standard deviations above the average.")
    quantiles = sorted((s for s in stats if s.startswith("p") and s != "p50"), key=lambda s: float(s[1:]))
    if quantiles:
        described = [f"the {_ordinal(q[1:])} percentile is {value(q)}{unit}" for q in quantiles]
        sentences.append(" and ".join(described).capitalize() + ".")
    if "slope" in stats:
        slope = stats["slope"]
        direction = "rising" if slope.number > 0 else "falling" if slope.number < 0 else "flat"
        per = _SLOPE_UNIT.match(re.sub(r"[^a-z0-9]+", "_", slope.label.lower().rsplit(".", 1)[-1]))
        per_unit = f" per {per.group(1)}" if per else f" per {facts['per']}" if "per" in facts else ""
        sentences.append(f"The trend is {direction}: a slope of {slope.value}{per_unit}.")
        if "slope_ci_low" in stats and "slope_ci_high" in stats:
            low, high = stats["slope_ci_low"], stats["slope_ci_high"]
            p_value = f" (p-value {value('trend_p')})" if "trend_p" in stats else ""
            verdict = (
                "distinguishable from noise"
                if low.number > 0 or high.number < 0
                else "not distinguishable from noise: the interval includes a flat line"
            )
            sentences.append(
                f"Its 95% confidence interval is {low.value} to {high.value}{per_unit}{p_value}, so the trend is "
                f"{verdict}."
            )
    if "anomalies" in stats:
        count = stats["anomalies"]
        events = facts.get("anomaly_events", "")
        if count.number == 0:
            sentences.append(f"No anomalies were flagged ({count.value}).")
        elif events:
            noun = "anomaly" if count.number == 1 else "anomalies"
            listed = int(facts.get("anomaly_events_listed", "0") or 0)
            if 0 < listed < count.number:
                # Only the top ones are listed: say so, never pass a part off as the whole.
                sentences.append(f"{count.value} {noun}; the largest {listed}: {events}.")
            else:
                top = "" if count.number == 1 else ", largest first"
                sentences.append(f"{count.value} {noun}{top}: {events}.")
        elif count.number == 1:
            sentences.append(f"{count.value} anomaly was flagged; it is worth a look.")
        else:
            sentences.append(f"{count.value} anomalies were flagged; they are worth a look.")
    if "forecast" in facts:
        sentences.append(f"The forecast: {facts.get('name', 'the series')} is {facts['forecast']}.")
    if "approximate" in facts:
        sentences.append(facts["approximate"])
    if "correlation" in stats:
        r = stats["correlation"]
        sentences.append(f"The correlation is {r.value}: {_correlation_words(r.number)}.")
    if "sum" in stats:
        sentences.append(f"They add up to {value('sum')}{unit}.")
    named = [f for f in rest if f.label]
    if named:
        shown = ", ".join(f"{f.label} {f.value}" for f in named[:12])
        more = f" and {len(named) - 12} more" if len(named) > 12 else ""
        sentences.append(f"Other figures: {shown}{more}.")
    unnamed = [f.value for f in rest if not f.label]
    if unnamed:
        sentences.append(f"Also mentioned: {', '.join(unnamed[:12])}.")
    intro = f"{OFFLINE_LABEL} Summary written without a language model, from the figures given."
    return " ".join([intro, *sentences, HINT])


def _description(question: str, figures: list[Figure]) -> str:
    words = len(question.split())
    text = f"{OFFLINE_LABEL} No language model is configured, so this answer is generated locally. "
    text += f"Your message has {words} word{'s' if words != 1 else ''}"
    if figures:
        shown = ", ".join(f.value for f in figures[:8])
        text += f" and mentions {len(figures)} number{'s' if len(figures) != 1 else ''}: {shown}"
        values = [f.number for f in figures]
        text += f" (smallest {min(values):g}, largest {max(values):g})"
    return f"{text}. {HINT}"


def offline_answer(messages: list[tuple[str, str]]) -> str:
    """The offline answer to a conversation of (role, content) messages."""
    question = next((content for role, content in reversed(messages) if role == "user"), "")
    figures, facts = figures_in(question)
    if any(f.stat for f in figures) or "forecast" in facts:
        return _insight(figures, facts)
    return _description(question, figures)
