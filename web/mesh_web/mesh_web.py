"""The Reflex app and its pages (the theme is set in rxconfig.py)."""

import reflex as rx

from mesh_web.pages import datasets

app = rx.App()

for route in datasets.ROUTES:
    app.add_page(
        datasets.datasets_page,
        route=route,
        title="Datasets · Analytics Mesh",
        on_load=datasets.DatasetsState.load_datasets,
    )
