"""The Datasets page: every dataset analytics holds, in a table."""

import reflex as rx

from mesh_runtime.errors import MeshError
from mesh_web import service_clients
from mesh_web.components.layout import page_layout
from mesh_web.components.service_banner import service_banner
from mesh_web.display import (
    EMPTY_DATASETS_TEXT,
    DatasetRow,
    datasets_summary,
    service_error_text,
    table_after_page,
)

ROUTES = ("/", "/datasets")

PAGE_SIZE = 100
"""Datasets fetched per ListDatasets call; "Load more" fetches the next page."""


class DatasetsState(rx.State):
    """The datasets table and the state of the call that fills it."""

    rows: list[DatasetRow] = []
    total_size: int = 0
    next_page_token: str = ""
    loading: bool = False
    loaded: bool = False
    error: str = ""

    # Which fetch may write its result: a newer Refresh supersedes an older one.
    _fetch_id: int = 0

    @rx.var
    def summary(self) -> str:
        """How many datasets there are and how many are shown."""
        return datasets_summary(len(self.rows), self.total_size)

    @rx.var
    def has_rows(self) -> bool:
        """Whether the table has anything to show."""
        return bool(self.rows)

    @rx.var
    def is_empty(self) -> bool:
        """Whether analytics answered and holds no dataset."""
        return self.loaded and not self.rows and not self.error

    @rx.event(background=True)
    async def load_datasets(self) -> None:
        """Fetch the first page of datasets, replacing the table."""
        await self._fetch(page_token="")

    @rx.event(background=True)
    async def load_more(self) -> None:
        """Fetch the next page of datasets and append it to the table."""
        async with self:
            page_token = self.next_page_token
        if page_token:
            await self._fetch(page_token=page_token)

    async def _fetch(self, page_token: str) -> None:
        async with self:
            self._fetch_id += 1
            fetch_id = self._fetch_id
            self.loading = True
        # The call runs outside ``async with self``: the state stays unlocked,
        # so the page keeps answering while analytics is slow or down.
        try:
            response = await service_clients.list_datasets(PAGE_SIZE, page_token)
        except MeshError as error:
            async with self:
                if fetch_id == self._fetch_id:
                    self.error = service_error_text("analytics", error)
                    self.loading = False
            return
        async with self:
            if fetch_id != self._fetch_id:
                return
            table = table_after_page(self.rows, response, appending=bool(page_token))
            self.rows = table.rows
            self.total_size = table.total_size
            self.next_page_token = table.next_page_token
            self.error = ""
            self.loaded = True
            self.loading = False


def _datasets_table() -> rx.Component:
    return rx.table.root(
        rx.table.header(
            rx.table.row(
                rx.table.column_header_cell("Name"),
                rx.table.column_header_cell("Description"),
                rx.table.column_header_cell("Unit"),
                rx.table.column_header_cell("Points", justify="end"),
                rx.table.column_header_cell("Created"),
            ),
        ),
        rx.table.body(
            rx.foreach(
                DatasetsState.rows,
                lambda row: rx.table.row(
                    rx.table.row_header_cell(rx.text(row.name, weight="medium"), data_testid="dataset-name"),
                    rx.table.cell(row.description),
                    rx.table.cell(row.unit),
                    rx.table.cell(row.point_count, justify="end"),
                    rx.table.cell(row.created, white_space="nowrap"),
                    data_testid="dataset-row",
                    data_dataset_id=row.id,
                ),
            ),
        ),
        variant="surface",
        width="100%",
        data_testid="datasets-table",
    )


def _empty_state() -> rx.Component:
    return rx.callout(
        EMPTY_DATASETS_TEXT,
        icon="info",
        color_scheme="gray",
        width="100%",
        data_testid="datasets-empty",
    )


def _loading_state() -> rx.Component:
    return rx.hstack(
        rx.spinner(size="3"),
        rx.text("Loading datasets…", color_scheme="gray"),
        align="center",
        data_testid="datasets-loading",
    )


def datasets_page() -> rx.Component:
    """The Datasets page."""
    return page_layout(
        rx.hstack(
            rx.heading("Datasets", size="7"),
            rx.spacer(),
            rx.button(
                rx.icon("refresh_cw", size=16),
                "Refresh",
                on_click=DatasetsState.load_datasets,
                loading=DatasetsState.loading,
                variant="soft",
                data_testid="refresh-datasets",
            ),
            align="center",
            width="100%",
        ),
        service_banner(DatasetsState.error),
        rx.cond(
            DatasetsState.has_rows,
            rx.vstack(
                rx.text(DatasetsState.summary, color_scheme="gray", size="2", data_testid="datasets-summary"),
                _datasets_table(),
                rx.cond(
                    DatasetsState.next_page_token != "",
                    rx.button(
                        "Load more",
                        on_click=DatasetsState.load_more,
                        loading=DatasetsState.loading,
                        variant="outline",
                        data_testid="load-more-datasets",
                    ),
                ),
                spacing="3",
                width="100%",
            ),
            rx.cond(
                DatasetsState.is_empty,
                _empty_state(),
                rx.cond(DatasetsState.error == "", _loading_state()),
            ),
        ),
    )
