"""Reflex configuration of the Analytics Mesh web app (run from this folder)."""

import reflex as rx
from mesh_web.http_security import web_origin

config = rx.Config(
    app_name="mesh_web",
    # No usage data leaves the machine; web/launch.py also sets REFLEX_TELEMETRY_ENABLED=false.
    telemetry_enabled=False,
    plugins=[rx.plugins.RadixThemesPlugin(theme=rx.theme(accent_color="indigo", radius="medium"))],
    # The sitemap needs a public deploy URL, which a local mesh does not have.
    disable_plugins=[rx.plugins.SitemapPlugin],
    # The production badge would float over the tables.
    show_built_with_reflex=False,
    # Only the app's own origin (WEB_BASE_URL) may call the backend with the
    # user's cookies: CORS and the event websocket alike.
    cors_allowed_origins=[web_origin()],
)
