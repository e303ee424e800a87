"""Keep what a browser sent out of the web app's log.

When an event fails, Reflex logs the event whole: its router data carries
every header of the tab's websocket request (cookies, and anything a proxy
adds) and its payload carries what the user typed (a password, if sign-in
failed). ``install()`` makes every log record of the process name such an
event by its handler only, whoever logs it, so no header, cookie, token or
form value reaches a log line.
"""

from __future__ import annotations

import logging
import re
from typing import Any

# Event(name='state.handler', router_data={...}, payload={...}) as Reflex's Event repr writes it.
_EVENT = re.compile(r"Event\(name=('[^']*'), router_data=.*?\}\)(?= \[txid=|:|\s*$)", re.DOTALL)
_HEADERS = re.compile(r"""(['"]headers['"]\s*:\s*)\{.*?\}(?=,\s*['"](?:ip|query|token|sid)['"]|\s*\})""", re.DOTALL)

REDACTED = "<not logged>"


def redact(message: str) -> str:
    """``message`` without the router data and payload of any event, and without request headers."""
    message = _EVENT.sub(rf"Event(name=\1, router_data={REDACTED}, payload={REDACTED})", message)
    return _HEADERS.sub(rf"\g<1>{REDACTED}", message)


def install() -> None:
    """Redact every log record this process makes from now on (idempotent)."""
    make_record = logging.getLogRecordFactory()
    if getattr(make_record, "_mesh_redacts", False):
        return

    def redacted_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return record
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return record

    redacted_record._mesh_redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacted_record)
