"""HTTP API: the subset of mailpit's API v1 that our tests and web app use."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse

from mail_catcher.store import MessageStore


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _bounded_int(raw: str | None, name: str, default: int, low: int, high: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    return value


def create_app(store: MessageStore) -> FastAPI:
    """The FastAPI app serving ``store``."""
    app = FastAPI(title="mail catcher", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(400, "invalid request")

    @app.get("/livez")
    @app.get("/readyz")
    async def alive() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/api/v1/messages")
    async def list_messages(request: Request) -> JSONResponse:
        try:
            start = _bounded_int(request.query_params.get("start"), "start", 0, 0, 10**9)
            limit = _bounded_int(request.query_params.get("limit"), "limit", 50, 1, 5000)
        except ValueError as exc:
            return _error(400, str(exc))
        messages = store.newest_first()
        page = messages[start : start + limit]
        return JSONResponse(
            {
                "total": len(messages),
                "unread": sum(1 for m in messages if not m.read),
                "count": len(page),
                "messages_count": len(messages),
                "start": start,
                "tags": [],
                "messages": [m.summary() for m in page],
            }
        )

    @app.get("/api/v1/message/{message_id}")
    async def get_message(message_id: str) -> JSONResponse:
        captured = store.get(message_id)
        if captured is None:
            return _error(404, f"message {message_id!r} not found")
        store.mark_read(message_id)
        return JSONResponse(captured.detail())

    @app.get("/api/v1/message/{message_id}/raw")
    async def get_raw(message_id: str) -> Any:
        captured = store.get(message_id)
        if captured is None:
            return _error(404, f"message {message_id!r} not found")
        return PlainTextResponse(captured.raw.decode("utf-8", "replace"))

    @app.delete("/api/v1/messages")
    async def delete_messages(request: Request) -> Any:
        body = await request.body()
        ids: list[str] | None = None
        if body.strip():
            try:
                payload = json.loads(body)
                ids = payload.get("IDs") if isinstance(payload, dict) else None
                if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
                    raise ValueError
            except ValueError:
                return _error(400, 'body must be JSON like {"IDs": ["..."]}, or empty to delete all')
        store.delete(ids or None)  # no IDs (or an empty list): delete everything, as mailpit does
        return PlainTextResponse("ok")

    return app
