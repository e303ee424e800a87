"""Running an analysis of a dataset now, of a chosen kind or as one of its
schedules says; the queued result links to its page (analysts and admins)."""

from __future__ import annotations

from typing import Any

import reflex as rx

from mesh.analytics.v1 import analysis_pb2
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.auth.v1.access_pb2 import ROLE_ANALYST
from mesh_runtime.errors import MeshError
from mesh_web.auth_state import redirect_when_signed_out, requires_role
from mesh_web.components.states import choice
from mesh_web.display import service_error_text
from mesh_web.pages.dataset.state import DatasetState
from mesh_web.result_display import RUNNABLE_KINDS, anomaly_form_parameters, kind_value, schedule_parameters
from mesh_web.service_clients import rpc


class RunAnalysisState(DatasetState):
    """The analysis being queued and the result it made."""

    running: bool = False
    run_result_id: str = ""
    run_error: str = ""

    def _forget_shown(self) -> None:
        self.run_result_id, self.run_error = "", ""

    @rx.event(background=True)
    @redirect_when_signed_out
    @requires_role(ROLE_ANALYST)
    async def run_analysis(self, form_data: dict[str, Any]) -> None:
        """Queue an analysis of the dataset now; its result links to its page."""
        kind = kind_value(str(form_data.get("kind", "report")))
        try:
            parameters = anomaly_form_parameters(form_data)
        except ValueError as error:
            async with self:
                self.run_error = str(error)
            return
        await self._run(kind, parameters)

    @rx.event(background=True)
    @redirect_when_signed_out
    @requires_role(ROLE_ANALYST)
    async def run_schedule_now(self, schedule_id: str) -> None:
        """Run a schedule's analysis (its kind and parameters) now, outside its timetable."""
        async with self:
            row = next((s for s in self.schedules if s.id == schedule_id), None)
        if row is not None:
            await self._run(kind_value(row.kind), schedule_parameters(row))

    async def _run(self, kind: int, parameters: analysis_pb2.AnalysisParameters | None = None) -> None:
        async with self:
            if self.running:
                return
            self.running, self.run_error, self.run_result_id = True, "", ""
            dataset_id = self.ds_id
        request = pb.RunAnalysisRequest(dataset_id=dataset_id, kind=kind, parameters=parameters)  # type: ignore[arg-type]
        try:
            response = await self._call_signed_in(rpc("analytics", "RunAnalysis", request))
        except MeshError as error:
            async with self:
                self.running, self.run_error = False, service_error_text("analytics", error)
            return
        async with self:
            self.running, self.run_result_id = False, response.result.id


def run_card() -> rx.Component:
    """The Run an analysis now card: a kind, Run, and a link to the queued result."""
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading("Run an analysis now", size="3"),
                rx.hstack(
                    choice(list(RUNNABLE_KINDS), "kind", "report", "run-kind"),
                    choice(["seasonal", "global"], "anomaly_method", "seasonal", "run-anomaly-method"),
                    rx.input(
                        name="sensitivity",
                        placeholder="sensitivity |z| (8)",
                        aria_label="Anomaly sensitivity (robust z threshold)",
                        width="11rem",
                        data_testid="run-sensitivity",
                    ),
                    rx.input(
                        name="periods",
                        placeholder="periods s (detect)",
                        aria_label="Seasonal periods in seconds, comma-separated",
                        width="11rem",
                        data_testid="run-periods",
                    ),
                    rx.input(
                        name="horizon",
                        placeholder="forecast steps",
                        aria_label="Forecast horizon in steps of the series",
                        width="9rem",
                        data_testid="run-horizon",
                    ),
                    rx.button(
                        rx.icon("play", size=16),
                        "Run",
                        type="submit",
                        loading=RunAnalysisState.running,
                        data_testid="run-analysis",
                    ),
                    spacing="2",
                    align="center",
                ),
                rx.cond(
                    RunAnalysisState.run_result_id != "",
                    rx.link(
                        "Queued — open the result →",
                        href="/results/" + RunAnalysisState.run_result_id,
                        data_testid="run-result-link",
                    ),
                ),
                rx.cond(
                    RunAnalysisState.run_error != "",
                    rx.text(RunAnalysisState.run_error, color_scheme="red", size="2", data_testid="run-error"),
                ),
                spacing="3",
            ),
            on_submit=RunAnalysisState.run_analysis,
            reset_on_submit=False,
        ),
        flex="1",
    )
