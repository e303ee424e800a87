"""The Reflex app and its pages (the theme is set in rxconfig.py)."""

import reflex as rx

from mesh_web import log_redaction
from mesh_web.http_security import SecurityHeaders
from mesh_web.pages import (
    compare,
    dashboard,
    dataset,
    datasets,
    login,
    mailbox,
    notifications,
    result,
    results,
    unsubscribe,
)
from mesh_web.session_cookie import session_routes

# No header, cookie or form value of a failed event in the log (log_redaction.py).
log_redaction.install()

# The session cookie's routes (session_cookie.py) beside Reflex's, and security
# headers on every HTTP answer (http_security.py).
app = rx.App(api_transformer=[session_routes(), SecurityHeaders])

app.add_page(
    login.login_page,
    route=login.ROUTE,
    title="Sign in · Analytics Mesh",
    on_load=login.LoginState.clear_feedback,
)

# Public too: the link in every notification e-mail; the signed token in its
# address is the authorization, and opening it changes nothing.
app.add_page(
    unsubscribe.unsubscribe_page,
    route=unsubscribe.ROUTE,
    title="Unsubscribe · Analytics Mesh",
    on_load=unsubscribe.UnsubscribeState.check,
)

# The other pages need a signed-in user: their on_load call goes to /login without one.
app.add_page(
    dashboard.dashboard_page, route=dashboard.ROUTE, title="Dashboard · Analytics Mesh",
    on_load=dashboard.DashboardState.load,
)
app.add_page(
    datasets.datasets_page, route=datasets.ROUTE, title="Datasets · Analytics Mesh",
    on_load=datasets.DatasetsState.load_datasets,
)
app.add_page(
    dataset.dataset_page, route=dataset.ROUTE, title="Dataset · Analytics Mesh", on_load=dataset.DatasetState.load
)
app.add_page(
    compare.compare_page, route=compare.ROUTE, title="Compare · Analytics Mesh", on_load=compare.CompareState.load
)
app.add_page(
    results.results_page, route=results.ROUTE, title="Results · Analytics Mesh",
    on_load=results.ResultsState.open_page,
)
app.add_page(result.result_page, route=result.ROUTE, title="Result · Analytics Mesh", on_load=result.ResultState.load)
app.add_page(
    notifications.notifications_page, route=notifications.ROUTE, title="Notifications · Analytics Mesh",
    on_load=notifications.NotificationsState.load,
)
app.add_page(
    mailbox.mailbox_page, route=mailbox.ROUTE, title="Mailbox · Analytics Mesh", on_load=mailbox.MailboxState.load
)
