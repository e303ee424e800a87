"""The docs portal's HTTP app: everything under /docs, so Envoy routes it by prefix.

/docs/              Swagger UI over the OpenAPI document (assets from the
                    swagger-ui-bundle package, served here: no CDN)
/docs/openapi.json  the document (gen/openapi.json), its servers set to this gateway
/docs/services      each service, its RPCs, and grpcurl and curl examples
/docs/mesh.protoset the descriptor set grpcurl needs through Envoy
/docs/healthz       readiness
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

import swagger_ui_bundle
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from gateway.docs_portal.config import DocsSettings
from gateway.docs_portal.examples import PROTOSET, ServiceExamples, examples

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; color: #1b1b1b; }
nav { background: #1f2a44; padding: .6rem 1.2rem; }
nav a { color: #fff; margin-right: 1.2rem; text-decoration: none; font-weight: 600; }
main { max-width: 72rem; margin: 0 auto; padding: 1rem 1.2rem 3rem; }
pre { background: #f4f5f7; padding: .6rem .8rem; overflow-x: auto; border-radius: 4px; font-size: .85rem; }
.rpc { border-top: 1px solid #ddd; padding-top: .6rem; margin-top: 1rem; }
.rpc h3 { margin: .2rem 0; font-family: ui-monospace, monospace; font-size: 1rem; }
.meta { color: #555; font-size: .9rem; }
.access { display: inline-block; padding: 0 .4rem; border-radius: 3px; background: #e6ecf7; }
"""


def _nav() -> str:
    return (
        '<nav><a href="/docs/">REST API (Swagger UI)</a><a href="/docs/services">Services, grpcurl and curl</a>'
        '<a href="/docs/openapi.json">openapi.json</a></nav>'
    )


def swagger_page() -> str:
    """Swagger UI, loading its scripts and styles from this portal."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Analytics Mesh REST API</title>
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<style>{_STYLE}</style></head>
<body>{_nav()}<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/swagger-init.js"></script>
</body></html>
"""


# No validatorUrl: Swagger UI would otherwise send the document to an outside validator.
SWAGGER_INIT = """window.ui = SwaggerUIBundle({
  url: "/docs/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout"
});
"""


def services_page(services: list[ServiceExamples], settings: DocsSettings) -> str:
    """Every service and RPC with commands that call it."""
    rest = settings.rest_base_url
    setup = (
        "# An access token (or: ./mesh token USER)\n"
        f"export TOKEN=$(curl -s -X POST {rest}/v1/auth:login \\\n"
        '  -d \'{"username": "USER", "password": "PASSWORD"}\' \\\n'
        '  | python3 -c \'import json,sys; print(json.load(sys.stdin)["session"]["accessToken"])\')\n'
        "# The descriptor set: grpcurl needs it, Envoy does not pass reflection through\n"
        f"curl -so {PROTOSET} {rest}/docs/{PROTOSET}"
    )
    parts = [
        f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Analytics Mesh services</title>
<style>{_STYLE}</style></head><body>{_nav()}<main>
<h1>Services</h1>
<p>Every RPC is served over gRPC at <code>{escape(settings.grpc_public_address)}</code> (also grpc-web) and over
REST at <code>{escape(rest)}</code>, both through Envoy. Each needs an access token except the public ones.
Placeholders in capitals (<code>DATASET_ID</code>) stand for your own values.</p>
<pre class="setup">{escape(setup)}</pre>"""
    ]
    for service in services:
        short = service.full_name.rsplit(".", 1)[1]
        parts.append(f'<section id="{escape(short)}"><h2>{escape(service.full_name)}</h2>')
        if service.description:
            parts.append(f"<p>{escape(service.description)}</p>")
        for method in service.methods:
            streams = [
                *(["client stream (REST: a JSON array of requests)"] if method.client_streaming else []),
                *(
                    ["server stream (REST: newline-delimited JSON, a line per response as it arrives)"]
                    if method.server_streaming
                    else []
                ),
            ]
            rpc = escape(method.grpc_method)
            parts.append(
                f'<div class="rpc" id="{escape(short)}.{escape(method.name)}"><h3>{rpc}</h3>'
                f"<p>{escape(method.summary)}</p>"
                f'<p class="meta"><span class="access">{escape(method.access)}</span> · '
                f"<code>{escape(method.http_method)} {escape(method.http_path)}</code>"
                f"{''.join(' · ' + escape(s) for s in streams)}</p>"
                f'<pre class="grpcurl" data-rpc="{rpc}">{escape(method.grpcurl)}</pre>'
                f'<pre class="curl" data-rpc="{rpc}">{escape(method.curl)}</pre></div>'
            )
        parts.append("</section>")
    parts.append("</main></body></html>\n")
    return "\n".join(parts)


def served_document(document: dict[str, Any], settings: DocsSettings) -> dict[str, Any]:
    """The OpenAPI document with servers: this gateway's origin, and the configured public URL."""
    servers = [{"url": "/", "description": "this gateway"}]
    servers.append({"url": settings.rest_base_url, "description": "the REST API (REST_BASE_URL)"})
    return {**document, "servers": servers}


def create_app(settings: DocsSettings) -> FastAPI:
    """The portal, reading the generated files once at start."""
    document = json.loads(Path(settings.openapi_file).read_text())
    protoset = Path(settings.descriptor_file).read_bytes()
    served = served_document(document, settings)
    page = services_page(examples(document, settings.rest_base_url, settings.grpc_public_address), settings)

    # FastAPI's own docs and schema would describe this portal, not the mesh: off.
    app = FastAPI(title="Analytics Mesh API docs", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/docs", include_in_schema=False)
    def docs_root() -> RedirectResponse:
        return RedirectResponse("/docs/")

    @app.get("/docs/", response_class=HTMLResponse)
    def swagger_ui() -> str:
        return swagger_page()

    @app.get("/docs/swagger-init.js")
    def swagger_init() -> Response:
        return Response(SWAGGER_INIT, media_type="text/javascript")

    @app.get("/docs/openapi.json")
    def openapi_json() -> JSONResponse:
        return JSONResponse(served)

    @app.get(f"/docs/{PROTOSET}")
    def descriptor_set() -> Response:
        return Response(
            protoset,
            media_type="application/octet-stream",
            headers={"content-disposition": f'attachment; filename="{PROTOSET}"'},
        )

    @app.get("/docs/services", response_class=HTMLResponse)
    def services() -> str:
        return page

    @app.get("/docs/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.mount("/docs/assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="assets")
    return app
