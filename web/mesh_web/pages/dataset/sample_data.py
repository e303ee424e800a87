"""Generating sample points into a dataset: mesh sample-data's series (trend,
cycles, noise, injected anomalies) ending now, one a minute (analysts and admins)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import reflex as rx

from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.auth.v1.access_pb2 import ROLE_ANALYST
from mesh_runtime.errors import MeshError
from mesh_web.auth_state import redirect_when_signed_out, requires_role
from mesh_web.components.states import choice
from mesh_web.display import format_count, service_error_text
from mesh_web.pages.dataset.state import DatasetState
from mesh_web.service_clients import rpc
from sample_data.series import KINDS, generate

SAMPLE_KINDS = tuple(kind.name for kind in KINDS)
"""The sample series shapes on offer (mesh sample-data's): cpu-load, orders-per-minute, …"""
SAMPLE_INTERVAL_SECONDS = 60.0
APPEND_BATCH = 100_000
"""AppendPoints' limit on points per call."""


class SampleDataState(DatasetState):
    """The sample data form's state and what the last generation added."""

    generating: bool = False
    sample_summary: str = ""

    def _forget_shown(self) -> None:
        self.sample_summary = ""

    @rx.event(background=True)
    @redirect_when_signed_out
    @requires_role(ROLE_ANALYST)
    async def generate_sample(self, form_data: dict[str, Any]) -> None:
        """Append generated points ending now, one a minute."""
        shape = str(form_data.get("shape", SAMPLE_KINDS[0]))
        kind = next((k for k in KINDS if k.name == shape), KINDS[0])
        try:
            points = int(str(form_data.get("points", "2000")).strip())
        except ValueError:
            points = 0
        async with self:
            if self.generating:
                return
            if not 10 <= points <= 1_000_000:
                self.sample_summary = "points: enter a number from 10 to 1,000,000"
                return
            self.generating, self.sample_summary = True, ""
            dataset_id = self.ds_id
        end = dt.datetime.now(dt.UTC)
        series = await asyncio.to_thread(generate, kind, points, end, SAMPLE_INTERVAL_SECONDS, points)
        stamps, values = series.timestamps_us.tolist(), series.values.tolist()
        accepted = 0
        try:
            for start in range(0, len(stamps), APPEND_BATCH):
                chunk = slice(start, start + APPEND_BATCH)
                request = pb.AppendPointsRequest(
                    dataset_id=dataset_id, timestamps_us=stamps[chunk], values=values[chunk]
                )
                response = await self._call_signed_in(rpc("analytics", "AppendPoints", request))
                accepted += response.accepted_count
        except MeshError as error:
            async with self:
                self.generating = False
                self.sample_summary = service_error_text("analytics", error)
            return
        async with self:
            self.generating = False
            self.sample_summary = (
                f"{format_count(accepted)} {kind.name} points added, "
                f"with {len(series.anomaly_indices)} injected anomalies"
            )
            if response.HasField("dataset"):
                self._show(response.dataset)


def sample_data_card() -> rx.Component:
    """The Generate sample data card: a shape, a number of points, and what was added."""
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading("Generate sample data", size="3"),
                rx.hstack(
                    choice(list(SAMPLE_KINDS), "shape", SAMPLE_KINDS[0], "sample-shape"),
                    rx.input(
                        name="points",
                        default_value="2000",
                        type="number",
                        width="8rem",
                        aria_label="Points",
                        data_testid="sample-points",
                    ),
                    rx.button(
                        "Generate", type="submit", loading=SampleDataState.generating, data_testid="generate-sample"
                    ),
                    spacing="2",
                    align="center",
                ),
                rx.text(SampleDataState.sample_summary, size="2", data_testid="sample-summary"),
                spacing="3",
            ),
            on_submit=SampleDataState.generate_sample,
            reset_on_submit=False,
        ),
        flex="1",
    )
