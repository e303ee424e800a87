"""``python -m gateway.docs_portal``: serve the API docs portal."""

from __future__ import annotations

import uvicorn

from gateway.docs_portal.app import create_app
from gateway.docs_portal.config import DocsSettings
from mesh_runtime.config import ConfigError, exit_on_config_error, load_settings


def main() -> None:
    """Load settings, build the app, serve until SIGTERM/SIGINT."""
    with exit_on_config_error("docs"):
        settings = load_settings(DocsSettings)
        for path in (settings.openapi_file, settings.descriptor_file):
            if not path.is_file():
                raise ConfigError(f"{path} is missing: run ./mesh gen (or set DOCS_OPENAPI_FILE/DOCS_DESCRIPTOR_FILE)")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.log_level == "debug",
    )


if __name__ == "__main__":
    main()
