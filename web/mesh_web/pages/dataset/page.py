"""The dataset page itself: its title, numbers and the chart of its series
for everyone, then each feature's card (edit, upload, sample data, run, for
analysts and admins) and the schedules."""

from __future__ import annotations

import reflex as rx

from mesh_web.components.layout import page_layout
from mesh_web.components.service_banner import service_banner
from mesh_web.components.states import loading_line
from mesh_web.pages.dataset.chart import chart_card
from mesh_web.pages.dataset.edit import edit_card
from mesh_web.pages.dataset.run import run_card
from mesh_web.pages.dataset.sample_data import sample_data_card
from mesh_web.pages.dataset.schedules import schedules_card
from mesh_web.pages.dataset.state import DatasetState
from mesh_web.pages.dataset.upload import upload_card


def _fact(label: str, value: rx.Var[str] | str, test_id: str) -> rx.Component:
    return rx.vstack(
        rx.text(label, size="1", color_scheme="gray"),
        rx.text(value, weight="medium", data_testid=test_id),
        spacing="0",
    )


def _facts() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text(DatasetState.ds_description, color_scheme="gray", data_testid="dataset-description"),
            rx.hstack(
                _fact("Points", DatasetState.ds_points, "dataset-points"),
                _fact("Unit", DatasetState.ds_unit, "dataset-unit"),
                _fact("Seasonal periods", DatasetState.ds_periods, "dataset-periods"),
                _fact("First point", DatasetState.ds_first, "dataset-first"),
                _fact("Last point", DatasetState.ds_last, "dataset-last"),
                _fact("Created", DatasetState.ds_created, "dataset-created"),
                spacing="6",
                flex_wrap="wrap",
            ),
            rx.link("Results of this dataset →", href="/results?dataset=" + DatasetState.ds_id, size="2"),
            spacing="3",
        ),
        width="100%",
    )


def _editor_cards() -> rx.Component:
    """What analysts and admins may do with the dataset."""
    return rx.vstack(
        edit_card(),
        upload_card(),
        rx.hstack(sample_data_card(), run_card(), spacing="4", width="100%", flex_wrap="wrap"),
        spacing="4",
        width="100%",
    )


def dataset_page() -> rx.Component:
    """A dataset's page."""
    return page_layout(
        rx.hstack(
            rx.link("← Datasets", href="/datasets", size="2"),
            rx.heading(
                rx.cond(DatasetState.ds_name != "", DatasetState.ds_name, "Dataset"),
                size="7",
                data_testid="dataset-title",
            ),
            align="baseline",
            spacing="4",
        ),
        service_banner(DatasetState.error),
        rx.cond(
            DatasetState.ds_id != "",
            rx.vstack(
                _facts(),
                chart_card(),
                rx.cond(DatasetState.can_edit, _editor_cards()),
                schedules_card(),
                spacing="4",
                width="100%",
            ),
            rx.cond(~DatasetState.loaded, loading_line("Loading the dataset…", "dataset-loading")),
        ),
    )
