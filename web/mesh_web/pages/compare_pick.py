"""Picking datasets to compare in the Datasets table: a checkbox per row and
a Compare button that opens the Compare page (pages/compare.py) for the
rows ticked, at their shareable address."""

from __future__ import annotations

import reflex as rx

from mesh_web.auth_state import AuthState
from mesh_web.display import DatasetRow
from mesh_web.pages.compare import MAX_DATASETS, compare_href


class ComparePickState(AuthState):
    """The datasets ticked for comparing, in the order they were ticked."""

    picked: list[str] = []

    @rx.var
    def pick_count(self) -> int:
        """How many datasets are ticked."""
        return len(self.picked)

    @rx.var
    def can_compare(self) -> bool:
        """Whether the ticked datasets can be compared (two to ten)."""
        return 2 <= len(self.picked) <= MAX_DATASETS

    @rx.var
    def compare_link(self) -> str:
        """The Compare page of the ticked datasets."""
        return compare_href(self.picked)

    @rx.var
    def pick_hint(self) -> str:
        """What the Compare button needs, in words."""
        count = len(self.picked)
        if count > MAX_DATASETS:
            return f"{count} datasets ticked: compare at most {MAX_DATASETS}"
        if count == 1:
            return "1 dataset ticked: tick one more"
        return f"{count} datasets ticked" if count else "Tick two or more datasets to compare them"

    @rx.event
    def toggle(self, dataset_id: str, checked: bool) -> None:
        """Tick or untick a dataset."""
        if checked and dataset_id not in self.picked:
            self.picked = [*self.picked, dataset_id]
        elif not checked:
            self.picked = [p for p in self.picked if p != dataset_id]


def pick_cell(row: DatasetRow) -> rx.Component:
    """The table cell with the row's checkbox."""
    return rx.table.cell(
        rx.checkbox(
            checked=ComparePickState.picked.contains(row.id),  # type: ignore[attr-defined]
            on_change=lambda checked: ComparePickState.toggle(row.id, checked),  # type: ignore[operator]
            aria_label="Compare " + row.name,
            data_testid="compare-pick",
        ),
        width="2.5rem",
    )


def compare_button() -> rx.Component:
    """The Compare button and what it needs."""
    return rx.hstack(
        rx.text(ComparePickState.pick_hint, size="1", color_scheme="gray", data_testid="compare-hint"),
        rx.cond(
            ComparePickState.can_compare,
            rx.link(
                rx.button(rx.icon("chart-line", size=14), "Compare", size="2", variant="soft"),
                href=ComparePickState.compare_link,
                data_testid="compare-open",
            ),
            rx.button(rx.icon("chart-line", size=14), "Compare", size="2", variant="soft", disabled=True),
        ),
        align="center",
        spacing="2",
    )
