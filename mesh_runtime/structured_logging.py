"""Structured logs: one JSON object per line (or readable text), with the
request id, and the trace and span id when tracing is on.

The request id lives in a context variable set by the request-id interceptor,
so every log line written while serving a call carries it without passing it
around; the trace and span id are the current OpenTelemetry span's
(``trace_id``/``span_id``, as the trace viewers show them), so a log line
leads to its trace.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any

from opentelemetry import trace

# The metadata key a call's request id travels in (Envoy sets it on REST calls;
# servers return it; clients pass the current one on).
REQUEST_ID_HEADER = "x-request-id"
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar(
    "request_id", default=""
)

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def _trace_fields() -> dict[str, str]:
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return {}
    return {"trace_id": format(span_context.trace_id, "032x"), "span_id": format(span_context.span_id, "016x")}


def _extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _RESERVED}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line: time, level, logger, message, extras."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        entry.update(_trace_fields())
        entry.update(_extra_fields(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Readable one-line format for a terminal, extras as key=value."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [record.levelname.lower(), record.name, record.getMessage()]
        request_id = request_id_var.get()
        if request_id:
            parts.append(f"request_id={request_id}")
        parts.extend(f"{k}={v}" for k, v in _trace_fields().items())
        parts.extend(f"{k}={v}" for k, v in _extra_fields(record).items())
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(service: str, level: str = "info", fmt: str = "json") -> None:
    """Send all logs to stderr in the chosen format, replacing other handlers."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service) if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # peewee logs every query at DEBUG, which may include user data.
    logging.getLogger("peewee").setLevel(max(root.level, logging.INFO))
