"""Reflex configuration of the Analytics Mesh web app (run from this folder)."""

import reflex as rx

config = rx.Config(
    app_name="mesh_web",
    # No usage data leaves the machine; web/launch.py also sets REFLEX_TELEMETRY_ENABLED=false.
    telemetry_enabled=False,
    plugins=[rx.plugins.RadixThemesPlugin(theme=rx.theme(accent_color="indigo", radius="medium"))],
    # The sitemap needs a public deploy URL, which a local mesh does not have.
    disable_plugins=[rx.plugins.SitemapPlugin],
    # The production badge would float over the tables.
    show_built_with_reflex=False,
)
