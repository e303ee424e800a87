"""What the web app's HTTP answers tell browsers, and which origin may call it.

- ``web_origin()``: the one origin the browser may use the app from, taken
  from ``WEB_BASE_URL`` (the app's public address, default
  http://127.0.0.1:3000). rxconfig.py gives it to Reflex as its only CORS
  origin, which also makes Reflex's Socket.IO server refuse a websocket whose
  ``Origin`` is another site (a page on evil.example cannot drive a signed-in
  user's session).
- ``SecurityHeaders``: an ASGI middleware (mesh_web.py installs it with
  ``api_transformer``) adding to every HTTP answer ``X-Content-Type-Options:
  nosniff``, a Content-Security-Policy (no script, style, font or connection
  from another origin, no plugins, no framing: ``frame-ancestors 'none'``,
  also said as ``X-Frame-Options: DENY``), ``Referrer-Policy: same-origin``,
  and ``Cache-Control: no-store`` on the session routes, whose answers carry
  the session cookie.

Reflex's pages need ``'unsafe-inline'`` (the prerendered HTML starts the app
with inline scripts; Emotion writes style tags) and ``'unsafe-eval'`` (the
frontend evaluates the event callbacks the server sends): the policy cannot
stop an injected inline script, which is why every text the app shows goes
through React's escaping, but it stops loading code or sending data anywhere
but this origin.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mesh_runtime.config import load_settings
from mesh_web.service_clients import ServiceSettings

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
)
"""Added to every HTTP answer (unless the answer already sets one)."""

NO_STORE_PREFIXES = ("/auth/",)
"""Paths whose answers carry the session: never stored by a browser or proxy cache."""


def web_origin(environ: Mapping[str, str] | None = None) -> str:
    """The origin (scheme://host[:port]) of ``WEB_BASE_URL``; ConfigError naming
    the variable when it is not an http(s) URL."""
    settings = load_settings(ServiceSettings, environ)
    parts = urllib.parse.urlsplit(settings.web_base_url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}".lower()


Headers = Iterable[tuple[bytes, bytes]]


def _with_headers(headers: Headers, extra: Headers) -> list[tuple[bytes, bytes]]:
    result = list(headers)
    present = {name.lower() for name, _ in result}
    result.extend((name, value) for name, value in extra if name not in present)
    return result


class SecurityHeaders:
    """ASGI middleware adding the headers above to every HTTP answer of ``app``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = HEADERS
        if str(scope.get("path", "")).startswith(NO_STORE_PREFIXES):
            extra = (*HEADERS, (b"cache-control", b"no-store"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": _with_headers(message.get("headers", ()), extra)}
            await send(message)

        await self.app(scope, receive, send_with_headers)
