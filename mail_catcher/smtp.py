"""The SMTP side: an aiosmtpd handler that accepts every recipient and keeps the message."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiosmtpd.smtp import SMTP, Envelope, Session

from mail_catcher.mime import header_message_id
from mail_catcher.store import MessageStore

logger = logging.getLogger("mail_catcher.smtp")

DEFAULT_MAX_SIZE = 10 * 1024 * 1024


class CatchAllHandler:
    """Keeps every message in the store; the client hears 250 only once it is stored
    (or, with duplicate Message-IDs ignored, once it is known to be a duplicate)."""

    def __init__(self, store: MessageStore) -> None:
        self.store = store

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.original_content or b""
        mail_from = str(envelope.mail_from or "")
        recipients = [str(r) for r in envelope.rcpt_tos]
        try:
            if self.store.persistent:
                # Writing to disk happens off the event loop.
                message = await asyncio.to_thread(self.store.add, raw, mail_from, recipients)
            else:
                # In memory, keeping it costs less than a hop to a thread (parsing comes later).
                message = self.store.add(raw, mail_from, recipients)
        except OSError as exc:
            logger.error("could not store a message", extra={"from": mail_from, "error": str(exc)})
            return "451 4.3.0 Could not store the message; try again later"
        if message is None:
            logger.info(
                "ignored a message whose Message-ID is kept already",
                extra={"message_id": header_message_id(raw), "from": mail_from, "to": len(recipients)},
            )
            return "250 2.0.0 Ok: duplicate Message-ID, ignored"
        # Per message at debug, as mailpit does: a burst of mail is not a burst of log lines.
        logger.debug(
            "received",
            extra={"id": message.id, "from": mail_from, "to": len(recipients), "size": len(raw)},
        )
        return f"250 2.0.0 Ok: queued as {message.id}"


def smtp_factory(store: MessageStore, max_size: int = DEFAULT_MAX_SIZE) -> Callable[[], SMTP]:
    """A protocol factory for ``loop.create_server``: one SMTP session per connection."""
    handler = CatchAllHandler(store)

    def protocol() -> SMTP:
        return SMTP(
            handler,
            data_size_limit=max_size,
            enable_SMTPUTF8=True,
            hostname="mail-catcher",
            ident="mail_catcher",
        )

    return protocol
