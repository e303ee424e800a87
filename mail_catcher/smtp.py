"""The SMTP side: every accepted message goes into the store."""

from __future__ import annotations

import logging
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from mail_catcher.store import Captured, MessageStore

logger = logging.getLogger("mail_catcher.smtp")


class CatchAllHandler:
    """aiosmtpd handler that accepts every recipient and keeps the message."""

    def __init__(self, store: MessageStore) -> None:
        self.store = store

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.original_content or b""
        captured = Captured.receive(raw, str(envelope.mail_from or ""), [str(r) for r in envelope.rcpt_tos])
        self.store.add(captured)
        logger.info(
            "received",
            extra={
                "id": captured.id,
                "from": captured.envelope_from,
                "to": len(captured.envelope_to),
                "size": len(raw),
            },
        )
        return "250 Message accepted for delivery"


def smtp_factory(store: MessageStore, max_size: int) -> Any:
    """A protocol factory for ``loop.create_server``."""
    handler = CatchAllHandler(store)
    return lambda: SMTP(handler, data_size_limit=max_size, hostname="mail-catcher", auth_require_tls=False)
