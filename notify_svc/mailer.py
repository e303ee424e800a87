"""Sending e-mail over SMTP: plain, STARTTLS or implicit TLS, with optional login.

smtplib blocks, so each send runs on a small thread pool; each thread keeps
its own connection open between e-mails (one TLS handshake and login per
connection, not per e-mail) and opens a new one when the old one broke. The
TLS context (CA certificates loaded once) is made on the first TLS
connection and shared; plain SMTP never loads it.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from notify_svc.email_message import OutgoingEmail

_tracer = trace.get_tracer("notify_svc.mailer")

# A connection unused this long is checked with NOOP before the next e-mail.
_IDLE_CHECK_SECONDS = 5.0


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to reach the SMTP server."""

    host: str
    port: int
    security: str = "none"  # none | starttls | tls
    username: str = ""
    password: str = ""
    timeout: float = 20.0
    ca_file: str = ""  # empty: the system's CA certificates


class PermanentSmtpError(Exception):
    """The server refused the e-mail for good (5xx); retrying will not help."""


class Mailer:
    """Sends OutgoingEmails; ``await send(message)`` raises on failure.

    A 5xx answer raises PermanentSmtpError; anything else (connection refused,
    timeouts, 4xx) raises the underlying error, worth retrying later.
    """

    def __init__(self, config: SmtpConfig, connections: int) -> None:
        self.config = config
        self._local = threading.local()
        self._executor = ThreadPoolExecutor(max_workers=connections, thread_name_prefix="smtp")
        self._all: list[smtplib.SMTP] = []
        self._lock = threading.Lock()
        self._context: ssl.SSLContext | None = None

    def _tls_context(self) -> ssl.SSLContext:
        with self._lock:
            if self._context is None:
                self._context = ssl.create_default_context(cafile=self.config.ca_file or None)
            return self._context

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        client: smtplib.SMTP
        if c.security == "tls":
            client = smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout, context=self._tls_context())
        else:
            client = smtplib.SMTP(c.host, c.port, timeout=c.timeout)
        try:
            client.ehlo()
            if c.security == "starttls":
                client.starttls(context=self._tls_context())
                client.ehlo()
            if c.username:
                client.login(c.username, c.password)
        except BaseException:
            client.close()
            raise
        with self._lock:
            self._all.append(client)
        return client

    def _drop(self) -> None:
        client = getattr(self._local, "client", None)
        self._local.client = None
        if client is not None:
            with self._lock:
                if client in self._all:
                    self._all.remove(client)
            try:
                client.close()
            except OSError:
                pass

    def _client(self) -> smtplib.SMTP:
        """This thread's connection; a kept one idle for a while is checked first,
        so a connection the server closed never fails an e-mail half-way."""
        client = getattr(self._local, "client", None)
        if client is not None and time.monotonic() - getattr(self._local, "used", 0.0) > _IDLE_CHECK_SECONDS:
            try:
                client.noop()
            except (smtplib.SMTPException, OSError):
                self._drop()
                client = None
        if client is None:
            client = self._local.client = self._connect()
        return client

    def _send(self, message: OutgoingEmail) -> None:
        client = self._client()
        try:
            client.sendmail(message.envelope_from, [message.envelope_to], message.data)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            self._reset(client)
            if all(500 <= code < 600 for code in codes):
                raise PermanentSmtpError(f"recipient refused: {exc.recipients}") from exc
            raise
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            self._reset(client)
            if 500 <= exc.smtp_code < 600:
                raise PermanentSmtpError(f"{exc.smtp_code} {exc.smtp_error!r}") from exc
            raise
        except BaseException:
            self._drop()
            raise
        self._local.used = time.monotonic()

    def _reset(self, client: smtplib.SMTP) -> None:
        try:
            client.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()

    async def send(self, message: OutgoingEmail) -> None:
        """Hand ``message`` to the SMTP server (off the event loop); a CLIENT span."""
        c = self.config
        with _tracer.start_as_current_span(
            "SMTP send",
            kind=SpanKind.CLIENT,
            attributes={"server.address": c.host, "server.port": c.port, "network.protocol.name": "smtp"},
        ):
            await asyncio.get_running_loop().run_in_executor(self._executor, self._send, message)

    def close(self) -> None:
        """Wait for sends in progress, then close every connection."""
        self._executor.shutdown(wait=True)
        with self._lock:
            clients, self._all = self._all, []
        for client in clients:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()
