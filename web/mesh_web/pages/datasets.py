"""The Datasets page: every dataset analytics holds, in a table with a search
box, and for analysts and admins a form that creates one. Each name leads to
the dataset's own page (pages/dataset.py).

The table loads a page at a time ("Load more"); a search loads the pages not
loaded yet, so it finds any dataset, and a dataset just created is shown even
when it sorts past the pages loaded."""

from typing import Any

import reflex as rx

from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import dataset_pb2
from mesh.auth.v1.access_pb2 import ROLE_ANALYST
from mesh_runtime.errors import MeshError
from mesh_web.auth_state import AuthState, redirect_when_signed_out, requires_role
from mesh_web.components.layout import page_layout
from mesh_web.components.service_banner import service_banner
from mesh_web.display import (
    EMPTY_DATASETS_TEXT,
    DatasetRow,
    create_dataset_errors,
    dataset_row,
    datasets_summary,
    filter_rows,
    service_error_text,
    table_after_page,
    with_row,
)
from mesh_web.pages.compare_pick import compare_button, pick_cell
from mesh_web.service_clients import rpc

ROUTE = "/datasets"

PAGE_SIZE = 100
"""Datasets fetched per ListDatasets call; "Load more" fetches the next page."""

SEARCH_PAGE_SIZE = 1000
"""Datasets fetched per call while a search loads the pages not loaded yet (the most ListDatasets gives)."""


class DatasetsState(AuthState):
    """The datasets table, the New dataset form, and the state of their calls."""

    rows: list[DatasetRow] = []
    total_size: int = 0
    next_page_token: str = ""
    loading: bool = False
    loaded: bool = False
    error: str = ""
    search: str = ""

    creating: bool = False
    create_errors: list[str] = []
    # The New dataset form's React key: a new key clears its fields after a success.
    form_key: int = 0

    # Which fetch may write its result: a newer fetch (Refresh, Load more, the
    # search's next page) supersedes an older one, which ends its loop.
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
    def shown_rows(self) -> list[DatasetRow]:
        """The loaded datasets the search box matches."""
        return filter_rows(self.rows, self.search)

    @rx.var
    def search_misses(self) -> bool:
        """Whether the search matches no dataset (every page loaded and none matched)."""
        return (
            bool(self.rows)
            and bool(self.search.strip())
            and not self.next_page_token
            and not filter_rows(self.rows, self.search)
        )

    @rx.event
    def set_search(self, value: str) -> Any:
        """Filter the table by what is typed in the search box; with pages
        not loaded yet, load them, so the search covers every dataset."""
        self.search = value
        if value.strip() and self.next_page_token:
            return DatasetsState.load_rest
        return None

    @rx.var
    def has_create_errors(self) -> bool:
        """Whether the last New dataset submission failed."""
        return bool(self.create_errors)

    @rx.var
    def is_empty(self) -> bool:
        """Whether analytics answered and holds no dataset."""
        return self.loaded and not self.rows and not self.error

    @rx.event(background=True)
    @redirect_when_signed_out
    async def load_datasets(self) -> None:
        """Fetch the first page of datasets, replacing the table."""
        if await self._fetch(page_token=""):
            await self._load_rest_while_searching()

    @rx.event(background=True)
    @redirect_when_signed_out
    async def load_rest(self) -> None:
        """Fetch every page not loaded yet while the search box holds a search."""
        await self._load_rest_while_searching()

    @rx.event(background=True)
    @redirect_when_signed_out
    async def load_more(self) -> None:
        """Fetch the next page of datasets and append it to the table."""
        async with self:
            page_token = self.next_page_token
        if page_token:
            await self._fetch(page_token=page_token)

    @rx.event(background=True)
    @redirect_when_signed_out
    @requires_role(ROLE_ANALYST)
    async def create_dataset(self, form_data: dict[str, Any]) -> None:
        """Create a dataset from the New dataset form, then reload the table."""
        name = str(form_data.get("name", "")).strip()
        description = str(form_data.get("description", "")).strip()
        unit = str(form_data.get("unit", "")).strip()
        async with self:
            if self.creating:
                return
            self.creating = True
            self.create_errors = []
        dataset = dataset_pb2.Dataset(name=name, description=description, unit=unit)
        try:
            created = await self._call_signed_in(
                rpc("analytics", "CreateDataset", pb.CreateDatasetRequest(dataset=dataset))
            )
        except MeshError as error:
            async with self:
                self.creating = False
                self.create_errors = create_dataset_errors(error, name)
            return
        async with self:
            self.creating = False
            self.form_key += 1
        # The new dataset is shown even if it sorts past the first page.
        if await self._fetch(page_token="", created=dataset_row(created.dataset)):
            await self._load_rest_while_searching()

    async def _load_rest_while_searching(self) -> None:
        """Fetch the pages not loaded yet, one after the other, while there is a
        search (until a newer fetch supersedes this one's, which then goes on)."""
        while True:
            async with self:
                page_token = self.next_page_token if self.search.strip() else ""
            if not page_token or not await self._fetch(page_token=page_token, page_size=SEARCH_PAGE_SIZE):
                return

    async def _fetch(self, page_token: str, page_size: int = PAGE_SIZE, created: DatasetRow | None = None) -> bool:
        """Fetch a page into the table (the first page replaces it); whether it was written."""
        async with self:
            self._fetch_id += 1
            fetch_id = self._fetch_id
            self.loading = True
        # The call runs outside ``async with self``: the state stays unlocked,
        # so the page keeps answering while analytics is slow or down.
        request = pb.ListDatasetsRequest(page_size=page_size, page_token=page_token)
        try:
            response = await self._call_signed_in(rpc("analytics", "ListDatasets", request))
        except MeshError as error:
            async with self:
                if fetch_id == self._fetch_id:
                    self.error = service_error_text("analytics", error)
                    self.loading = False
            return False
        async with self:
            if fetch_id != self._fetch_id:
                return False
            table = table_after_page(self.rows, response, appending=bool(page_token))
            if created is not None:
                table = with_row(table, created)
            self.rows = table.rows
            self.total_size = table.total_size
            self.next_page_token = table.next_page_token
            self.error = ""
            self.loaded = True
            self.loading = False
        return True


def _datasets_table() -> rx.Component:
    return rx.table.root(
        rx.table.header(
            rx.table.row(
                rx.table.column_header_cell("", aria_label="Compare"),
                rx.table.column_header_cell("Name"),
                rx.table.column_header_cell("Description"),
                rx.table.column_header_cell("Unit"),
                rx.table.column_header_cell("Points", justify="end"),
                rx.table.column_header_cell("Created"),
            ),
        ),
        rx.table.body(
            rx.foreach(
                DatasetsState.shown_rows,
                lambda row: rx.table.row(
                    pick_cell(row),
                    rx.table.row_header_cell(
                        rx.link(row.name, href="/datasets/" + row.id, weight="medium", data_testid="dataset-link"),
                        data_testid="dataset-name",
                    ),
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


def _new_dataset_form() -> rx.Component:
    """The New dataset form, with what was wrong with the last submission below it."""
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading("New dataset", size="3"),
                rx.hstack(
                    rx.input(
                        name="name",
                        placeholder="Name, e.g. orders-per-minute",
                        aria_label="Name",
                        flex="2",
                        min_width="12rem",
                        data_testid="new-dataset-name",
                    ),
                    rx.input(
                        name="description",
                        placeholder="Description",
                        aria_label="Description",
                        flex="3",
                        min_width="12rem",
                        data_testid="new-dataset-description",
                    ),
                    rx.input(
                        name="unit",
                        placeholder="Unit, e.g. ms",
                        aria_label="Unit",
                        flex="1",
                        min_width="6rem",
                        data_testid="new-dataset-unit",
                    ),
                    rx.button(
                        rx.icon("plus", size=16),
                        "Create",
                        type="submit",
                        loading=DatasetsState.creating,
                        data_testid="new-dataset-submit",
                    ),
                    align="center",
                    spacing="2",
                    width="100%",
                    flex_wrap="wrap",
                ),
                rx.cond(
                    DatasetsState.has_create_errors,
                    rx.callout.root(
                        rx.callout.icon(rx.icon("triangle_alert")),
                        rx.vstack(
                            rx.foreach(DatasetsState.create_errors, lambda line: rx.callout.text(line)),
                            spacing="1",
                        ),
                        color_scheme="red",
                        role="alert",
                        width="100%",
                        data_testid="new-dataset-error",
                    ),
                ),
                spacing="3",
                width="100%",
            ),
            on_submit=DatasetsState.create_dataset,
            reset_on_submit=False,
            # A new key after each created dataset remounts the form, emptying its fields.
            key=DatasetsState.form_key,
            width="100%",
            data_testid="new-dataset-form",
        ),
        width="100%",
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
        rx.cond(DatasetsState.can_edit, _new_dataset_form()),
        service_banner(DatasetsState.error),
        rx.cond(
            DatasetsState.has_rows,
            rx.vstack(
                rx.hstack(
                    rx.text(DatasetsState.summary, color_scheme="gray", size="2", data_testid="datasets-summary"),
                    rx.spacer(),
                    compare_button(),
                    rx.input(
                        rx.input.slot(rx.icon("search", size=14)),
                        value=DatasetsState.search,
                        on_change=DatasetsState.set_search,
                        placeholder="Search datasets",
                        aria_label="Search datasets",
                        width="18rem",
                        data_testid="dataset-search",
                    ),
                    align="center",
                    width="100%",
                ),
                _datasets_table(),
                rx.cond(
                    DatasetsState.search_misses,
                    rx.text("No dataset matches the search.", color_scheme="gray", data_testid="search-empty"),
                ),
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
