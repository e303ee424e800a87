"""A time chart the user zooms by dragging: press the mouse on the chart,
drag across a time range (it is shaded while the button is down), release,
and the page's event handler gets the range and the chart's width in pixels
to ask QueryPoints again; a double-click asks for the range before zooming.

The selection lives in the browser (a React state hook), so moving the mouse
sends nothing to the server; only the release does, once. This is recharts'
usual drag-to-zoom pattern (a ReferenceArea following onMouseDown/Move/Up)
on a numeric time axis in epoch milliseconds."""

from __future__ import annotations

from typing import Any

import reflex as rx
from reflex_base.event import EventChain, EventHandler
from reflex_base.utils.imports import ImportVar
from reflex_base.vars import VarData
from reflex_base.vars.base import Var

TIME_TICKS = (
    "(ms) => { const d = new Date(ms); const p = (n) => String(n).padStart(2, '0');"
    " return `${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}`; }"
)
"""Tick labels of the time axis: 'MM-DD HH:MM' in UTC (like the captions)."""
TIME_LABEL = "(ms) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + ' UTC'"
"""The tooltip's title: the bucket's start, to the second, in UTC."""

MIN_DRAG_PX = 4
"""A release closer than this to the press is a click, not a zoom."""


def _selection_hooks(name: str) -> VarData:
    return VarData(
        hooks={f"const [{name}, set_{name}] = useState(null)": None},
        imports={"react": [ImportVar(tag="useState")]},
    )


def time_axis(**props: Any) -> rx.Component:
    """The x axis of a zoomable chart: epoch milliseconds under 't', labelled in UTC."""
    return rx.recharts.x_axis(
        data_key="t",
        type_="number",
        scale="time",
        domain=["dataMin", "dataMax"],
        tick_formatter=TIME_TICKS,
        min_tick_gap=40,
        allow_data_overflow=True,
        **props,
    )


def time_tooltip() -> rx.Component:
    """The tooltip of a zoomable chart, titled with the bucket's time."""
    return rx.recharts.graphing_tooltip(custom_attrs={"labelFormatter": Var(_js_expr=TIME_LABEL)})


def _tool(icon: str, label: str, event: Any, test_id: str) -> rx.Component:
    return rx.icon_button(
        rx.icon(icon, size=14),
        size="1",
        variant="soft",
        on_click=event,
        title=label,
        aria_label=label,
        data_testid=test_id,
    )


def zoom_pan_buttons(zoom: Any, pan: Any, test_id_prefix: str) -> list[rx.Component]:
    """Zoom in, zoom out, earlier and later: the buttons beside a zoomable
    chart. ``zoom(factor)`` and ``pan(fraction of the range)`` are the page's
    event handlers; the buttons' test ids are ``PREFIX-zoom-in`` and so on."""
    return [
        _tool("zoom-in", "Zoom in", zoom(0.5), f"{test_id_prefix}-zoom-in"),
        _tool("zoom-out", "Zoom out", zoom(2.0), f"{test_id_prefix}-zoom-out"),
        _tool("chevron-left", "Earlier", pan(-0.5), f"{test_id_prefix}-pan-left"),
        _tool("chevron-right", "Later", pan(0.5), f"{test_id_prefix}-pan-right"),
    ]


def zoom_chart(
    *children: rx.Component,
    name: str,
    on_zoom: EventHandler,
    data: Any,
    height: int = 320,
    axis_id: str | int | None = None,
    **props: Any,
) -> rx.Component:
    """A composed chart over ``data`` (rows with 't' in epoch ms) whose drag
    calls ``on_zoom(start_ms, end_ms, width_px)``. ``name`` names the page's
    selection (a JavaScript identifier, unique on the page)."""
    selection = f"{name}_drag"
    hooks = _selection_hooks(selection)
    # The handler's call, made from the release below: a Reflex event chain as a JS function.
    send = Var.create(
        EventChain.create(on_zoom, args_spec=lambda start, end, width: [start, end, width], key="on_zoom")
    )
    send_data = send._get_all_var_data()
    at = "(Number.isFinite(Number(s?.activeLabel)) ? Number(s.activeLabel) : null)"
    down: Var[Any] = Var(
        _js_expr=(
            f"((s, e) => {{ const t = {at};"
            f" if (t !== null) set_{selection}({{from: t, to: t, x: e?.clientX ?? 0}}); }})"
        ),
        _var_data=hooks,
    )
    move: Var[Any] = Var(
        _js_expr=(f"((s) => {{ const t = {at}; if (t !== null) set_{selection}((z) => (z ? {{...z, to: t}} : z)); }})"),
        _var_data=hooks,
    )
    up: Var[Any] = Var(
        _js_expr=(
            f"((s, e) => {{ const z = {selection}; set_{selection}(null); if (!z) return;"
            f" const t = {at} ?? z.to; const moved = Math.abs((e?.clientX ?? z.x) - z.x);"
            f" if (t === z.from || moved < {MIN_DRAG_PX}) return;"
            f" const w = e?.currentTarget?.clientWidth || e?.target?.closest?.('.recharts-wrapper')?.clientWidth || 0;"
            f" ({send})(Math.min(z.from, t), Math.max(z.from, t), w); }})"
        ),
        _var_data=VarData.merge(hooks, send_data),
    )
    leave: Var[Any] = Var(_js_expr=f"(() => set_{selection}(null))", _var_data=hooks)
    shade = rx.recharts.reference_area(
        x1=Var(_js_expr=f"({selection}?.from ?? 0)", _var_data=hooks),
        x2=Var(_js_expr=f"({selection}?.to ?? 0)", _var_data=hooks),
        fill="var(--accent-9)",
        fill_opacity=Var(_js_expr=f"({selection} ? 0.2 : 0)", _var_data=hooks),
        if_overflow="hidden",
        class_name="zoom-selection",
        **({"y_axis_id": axis_id} if axis_id is not None else {}),
    )
    return rx.recharts.composed_chart(
        *children,
        shade,
        data=data,
        height=height,
        width="100%",
        custom_attrs={"onMouseDown": down, "onMouseMove": move, "onMouseUp": up, "onMouseLeave": leave},
        # No focus ring after a mouse drag; keyboard focus keeps it.
        style={"userSelect": "none", "cursor": "crosshair", "& :focus:not(:focus-visible)": {"outline": "none"}},
        **props,
    )
