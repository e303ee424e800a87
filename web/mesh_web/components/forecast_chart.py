"""The forecast of a forecast result, drawn after the series: the point
forecast as a line, its 80% and 95% prediction intervals as bands.

Its own state loads the result once it has succeeded (the card mounts then),
so the result page includes it with one line."""

from __future__ import annotations

from typing import Any

import reflex as rx

from mesh.analytics.v1 import analytics_service_pb2
from mesh_runtime.errors import MeshError
from mesh_web.auth_state import AuthState, last_path_segment, redirect_when_signed_out
from mesh_web.forecast_display import forecast_caption, forecast_rows
from mesh_web.service_clients import rpc

SERIES_POINTS = 600
"""Points of the series asked for (the chart draws the last of them before the forecast)."""


class ForecastChartState(AuthState):
    """The rows of the forecast chart and its caption."""

    forecast_rows: list[dict[str, Any]] = []
    forecast_caption: str = ""
    forecast_error: str = ""

    @rx.var
    def has_forecast(self) -> bool:
        """Whether there is a forecast to draw."""
        return bool(self.forecast_rows)

    @rx.event(background=True)
    @redirect_when_signed_out
    async def load_forecast(self) -> None:
        """Fetch the result of the URL with its series and build the chart's rows."""
        async with self:
            result_id = last_path_segment(self.router.url.path)
            self.forecast_rows, self.forecast_caption, self.forecast_error = [], "", ""
        try:
            response: analytics_service_pb2.GetResultResponse = await self._call_signed_in(
                rpc(
                    "analytics",
                    "GetResult",
                    analytics_service_pb2.GetResultRequest(id=result_id, series_points=SERIES_POINTS),
                )
            )
        except MeshError as error:
            async with self:
                self.forecast_error = f"The forecast could not be loaded: {error.message}"
            return
        forecast = response.result.output.forecast
        async with self:
            self.forecast_rows = forecast_rows(response.series, forecast)
            self.forecast_caption = forecast_caption(forecast)


def _chart() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("Forecast", size="4"),
                rx.text(
                    ForecastChartState.forecast_caption, size="2", color_scheme="gray", data_testid="forecast-caption"
                ),
                align="baseline",
                spacing="3",
                wrap="wrap",
            ),
            rx.cond(
                ForecastChartState.forecast_error != "",
                rx.text(ForecastChartState.forecast_error, color_scheme="red", size="2"),
            ),
            rx.recharts.composed_chart(
                rx.recharts.cartesian_grid(stroke_dasharray="3 3", stroke="var(--gray-a5)"),
                rx.recharts.x_axis(data_key="time", min_tick_gap=40),
                rx.recharts.y_axis(width=70, domain=["auto", "auto"]),
                rx.recharts.area(
                    data_key="band_95",
                    name="95% interval",
                    stroke="none",
                    fill="var(--accent-5)",
                    fill_opacity=0.5,
                    is_animation_active=False,
                    class_name="forecast-band-95",
                ),
                rx.recharts.area(
                    data_key="band_80",
                    name="80% interval",
                    stroke="none",
                    fill="var(--accent-7)",
                    fill_opacity=0.6,
                    is_animation_active=False,
                    class_name="forecast-band-80",
                ),
                rx.recharts.line(
                    data_key="value",
                    name="value",
                    stroke="var(--gray-11)",
                    dot=False,
                    is_animation_active=False,
                    stroke_width=1,
                    class_name="forecast-history",
                ),
                rx.recharts.line(
                    data_key="forecast",
                    name="forecast",
                    stroke="var(--accent-11)",
                    stroke_width=2,
                    dot=False,
                    is_animation_active=False,
                    class_name="forecast-line",
                ),
                rx.recharts.legend(),
                rx.recharts.graphing_tooltip(),
                data=ForecastChartState.forecast_rows,
                height=340,
                width="100%",
            ),
            spacing="2",
            width="100%",
        ),
        width="100%",
        on_mount=ForecastChartState.load_forecast,
        data_testid="forecast-chart",
    )


def forecast_chart(kind: rx.Var[str], status: rx.Var[str]) -> rx.Component:
    """The forecast card, shown for a forecast result once it has succeeded."""
    return rx.cond((kind == "forecast") & (status == "succeeded"), _chart())
