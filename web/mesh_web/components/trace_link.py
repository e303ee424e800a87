"""A result's link to its trace in a trace viewer (Phoenix, Jaeger, ...).

``WEB_TRACE_URL`` (``ServiceSettings.trace_url_template``, checked by
``service_clients.parse_trace_url_template``) is the viewer's
address of one trace, with ``{trace_id}`` where the id goes, e.g.
``http://127.0.0.1:16686/trace/{trace_id}`` (Jaeger). Unset, or for a result
without a trace id (tracing was off), no link is shown.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import reflex as rx

from mesh_web.service_clients import TRACE_ID_PLACEHOLDER

_TRACE_ID = re.compile(r"[0-9a-f]{32}")


def trace_url(trace_id: str, template: str) -> str:
    """The viewer's URL of trace ``trace_id`` by ``template``, or "" when there is none to link to."""
    if not template or not _TRACE_ID.fullmatch(trace_id):
        return ""
    return template.replace(TRACE_ID_PLACEHOLDER, quote(trace_id))


def trace_link(url: rx.Var[str]) -> rx.Component:
    """ "Trace →", opening ``url`` in a new tab; nothing while ``url`` is empty."""
    return rx.cond(
        url != "",
        rx.link("Trace →", href=url, is_external=True, size="2", data_testid="result-trace-link"),
    )
