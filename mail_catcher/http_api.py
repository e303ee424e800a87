"""HTTP API: the part of mailpit's API v1 our tests and web app use, same JSON shapes.

Differences from mailpit, on purpose: errors are JSON ``{"error": "..."}``
(mailpit answers plain text), an invalid ``start``/``limit`` is a 400 (mailpit
silently uses the default), and a DELETE body that is not JSON is a 400
(mailpit deletes everything). Clients should go by the status code.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from mail_catcher.mime import rfc3339
from mail_catcher.search import Predicate, compile_query
from mail_catcher.store import MessageStore, StoredMessage

logger = logging.getLogger("mail_catcher.http")

DEFAULT_LIMIT = 50


class BadRequest(Exception):
    """A request the API cannot serve; answered with 400 and the message."""


def error(status: int, message: str) -> JSONResponse:
    """A JSON error response."""
    return JSONResponse({"error": message}, status_code=status)


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number, got {raw!r}") from None
    if value < 0:
        raise BadRequest(f"{name} must not be negative, got {value}")
    return value


def _page(request: Request) -> tuple[int, int | None]:
    """``start`` and ``limit`` from the query; limit 0 means no limit (as in mailpit)."""
    start = _int_param(request, "start", 0)
    limit = _int_param(request, "limit", DEFAULT_LIMIT)
    return start, (limit or None)


def _query(request: Request) -> Predicate:
    try:
        return compile_query(request.query_params.get("query", ""))
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


async def _json_body(request: Request) -> dict[str, Any]:
    body = await request.body()
    if not body.strip():
        return {}
    try:
        payload = json.loads(body)
    except ValueError:
        raise BadRequest("the body must be JSON") from None
    if not isinstance(payload, dict):
        raise BadRequest("the body must be a JSON object")
    return payload


def _ids(payload: dict[str, Any]) -> list[str]:
    ids = payload.get("IDs")
    if ids is None:
        return []
    if not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
        raise BadRequest('"IDs" must be a list of message IDs')
    return ids


def summary(message: StoredMessage) -> dict[str, Any]:
    """A message as it appears in mailpit's message list (MessageSummary)."""
    p = message.parsed
    return {
        "ID": message.id,
        "MessageID": message.message_id,
        "Read": message.read,
        "From": p.from_,
        "To": p.to,
        "Cc": p.cc,
        "Bcc": p.bcc,
        "ReplyTo": p.reply_to,
        "Subject": p.subject,
        "Created": rfc3339(message.created),
        "Username": "",
        "Tags": [],
        "Size": len(message.raw),
        "Attachments": len(p.attachments),
        "Snippet": p.snippet,
    }


def detail(message: StoredMessage) -> dict[str, Any]:
    """A message as mailpit's message endpoint shows it (Message)."""
    p = message.parsed
    unsubscribe_links = [link.strip().strip("<>") for link in p.list_unsubscribe.split(",") if link.strip()]
    return {
        "ID": message.id,
        "MessageID": message.message_id,
        "From": p.from_,
        "To": p.to,
        "Cc": p.cc,
        "Bcc": p.bcc,
        "ReplyTo": p.reply_to,
        "ReturnPath": p.return_path,
        "Subject": p.subject,
        "ListUnsubscribe": {
            "Header": p.list_unsubscribe,
            "Links": unsubscribe_links,
            "Errors": "",
            "HeaderPost": p.list_unsubscribe_post,
        },
        "Date": rfc3339(p.date or message.created),
        "Tags": [],
        "Username": "",
        "Text": p.text,
        "HTML": p.html,
        "Size": len(message.raw),
        "Inline": p.inline,
        "Attachments": p.attachments,
    }


def _listing(store: MessageStore, request: Request, keep: Predicate | None) -> dict[str, Any]:
    start, limit = _page(request)
    total, unread = store.counts()
    matching = store.newest_first(keep)
    page = matching[start:] if limit is None else matching[start : start + limit]
    return {
        "total": total,
        "unread": unread,
        "count": len(page),
        "messages_count": len(matching),
        "messages_unread": sum(1 for m in matching if not m.read),
        "start": start,
        "tags": [],
        "messages": [summary(m) for m in page],
    }


def _memory_in_use() -> int:
    """Resident memory of this process in bytes (0 where /proc is not there)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def info(store: MessageStore, started: float) -> dict[str, Any]:
    """The catcher as mailpit's /api/v1/info describes itself (AppInformation)."""
    total, unread = store.counts()
    stats = store.stats
    return {
        "Version": "mail_catcher",
        "LatestVersion": "",
        "Database": str(store.data_dir) if store.data_dir is not None else "",
        "DatabaseSize": store.size,
        "Messages": total,
        "Unread": unread,
        "Tags": {},
        "RuntimeStats": {
            "Uptime": int(time.monotonic() - started),
            "Memory": _memory_in_use(),
            "MessagesDeleted": stats.messages_deleted,
            "SMTPAccepted": stats.smtp_accepted,
            "SMTPAcceptedSize": stats.smtp_accepted_size,
            "SMTPRejected": stats.smtp_rejected,
            # Messages not kept because a kept one has their Message-ID (--ignore-duplicate-ids).
            "SMTPIgnored": stats.smtp_ignored,
        },
    }


def web_ui_settings(store: MessageStore) -> dict[str, Any]:
    """The part of mailpit's /api/v1/webui (WebUIConfiguration) that applies here."""
    return {
        "Label": "",
        "MessageRelay": {"Enabled": False},
        "SpamAssassin": False,
        "DuplicatesIgnored": store.ignore_duplicate_ids,
    }


def create_app(store: MessageStore) -> FastAPI:
    """The FastAPI app serving ``store``.

    Handlers are plain functions, so FastAPI runs them in its thread pool and
    the store's disk I/O never blocks the event loop the SMTP server shares.
    """
    app = FastAPI(title="mail_catcher", docs_url=None, redoc_url=None, openapi_url=None)
    started = time.monotonic()

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, exc: BadRequest) -> JSONResponse:
        return error(400, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(400, "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        logger.error("request failed", extra={"path": request.url.path}, exc_info=exc)
        return error(500, "internal error; see the mail catcher's log")

    @app.get("/livez")
    @app.get("/readyz")
    def alive() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/api/v1/info")
    def get_info() -> JSONResponse:
        return JSONResponse(info(store, started))

    @app.get("/api/v1/webui")
    def get_web_ui_settings() -> JSONResponse:
        return JSONResponse(web_ui_settings(store))

    @app.get("/api/v1/messages")
    def list_messages(request: Request) -> JSONResponse:
        return JSONResponse(_listing(store, request, None))

    @app.put("/api/v1/messages")
    async def set_read_status(request: Request) -> PlainTextResponse:
        payload = await _json_body(request)
        ids = _ids(payload)
        read = payload.get("Read", False)
        query = payload.get("Search") or ""
        if not isinstance(read, bool):
            raise BadRequest('"Read" must be true or false')
        if not isinstance(query, str):
            raise BadRequest('"Search" must be a search query')
        if ids and query:
            raise BadRequest("give either IDs or a search query, not both")
        targets: list[str] | None = ids or None
        if query:
            try:
                keep = compile_query(query)
            except ValueError as exc:
                raise BadRequest(str(exc)) from None
            targets = [m.id for m in store.newest_first(keep)]
        await run_in_threadpool(store.set_read, targets, read)
        return PlainTextResponse("ok")

    @app.delete("/api/v1/messages")
    async def delete_messages(request: Request) -> PlainTextResponse:
        ids = _ids(await _json_body(request))
        # No IDs (or an empty list) deletes everything, as mailpit does.
        await run_in_threadpool(store.delete, ids or None)
        return PlainTextResponse("ok")

    @app.get("/api/v1/search")
    def search(request: Request) -> JSONResponse:
        return JSONResponse(_listing(store, request, _query(request)))

    @app.delete("/api/v1/search")
    def delete_search(request: Request) -> PlainTextResponse:
        store.delete([m.id for m in store.newest_first(_query(request))])
        return PlainTextResponse("ok")

    def _find(message_id: str) -> StoredMessage:
        message = store.get(message_id)
        if message is None:
            raise StarletteHTTPException(404, f"message {message_id!r} not found")
        return message

    @app.get("/api/v1/message/{message_id}")
    def get_message(message_id: str) -> JSONResponse:
        message = _find(message_id)
        store.set_read([message.id], True)
        return JSONResponse(detail(message))

    @app.get("/api/v1/message/{message_id}/headers")
    def get_headers(message_id: str) -> JSONResponse:
        return JSONResponse(_find(message_id).parsed.headers)

    @app.get("/api/v1/message/{message_id}/raw")
    def get_raw(message_id: str) -> Response:
        return Response(_find(message_id).raw, media_type="text/plain; charset=utf-8")

    return app
