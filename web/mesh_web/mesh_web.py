"""The Reflex app and its pages (the theme is set in rxconfig.py)."""

import reflex as rx

from mesh_web.pages import datasets, login

app = rx.App()

app.add_page(
    login.login_page,
    route=login.ROUTE,
    title="Sign in · Analytics Mesh",
    on_load=login.LoginState.clear_feedback,
)

# The other pages need a signed-in user: their on_load call goes to /login without one.
for route in datasets.ROUTES:
    app.add_page(
        datasets.datasets_page,
        route=route,
        title="Datasets · Analytics Mesh",
        on_load=datasets.DatasetsState.load_datasets,
    )
