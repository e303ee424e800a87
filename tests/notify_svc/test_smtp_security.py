"""The SMTP client against a real SMTP server (aiosmtpd) with STARTTLS or
implicit TLS and a login: certificates are verified, credentials are sent
only over TLS, and refusals are told apart from outages."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from local_stack.ports import free_port
from notify_svc.email_message import OutgoingEmail
from notify_svc.mailer import Mailer, PermanentSmtpError, SmtpConfig

USER, PASSWORD = "mesh", "correct horse"


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Envelope] = []

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]) -> str:  # noqa: N802, E501
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        self.messages.append(envelope)
        return "250 OK"


def authenticator(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: object) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (USER.encode(), PASSWORD.encode())
    return AuthResult(success=ok)


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed(tmp_path)


def serve(inbox: Inbox, certificate: tuple[Path, Path], implicit_tls: bool) -> Iterator[int]:
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    port = free_port()
    options = {"authenticator": authenticator, "auth_required": True, "auth_require_tls": True}
    if implicit_tls:
        # aiosmtpd does not count implicit TLS as TLS for AUTH; the connection is encrypted anyway.
        options["auth_require_tls"] = False
        controller = Controller(inbox, hostname="127.0.0.1", port=port, ssl_context=context, **options)
    else:
        controller = Controller(
            inbox, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True, **options
        )
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def message(to: str) -> OutgoingEmail:
    data = f"From: notify@mesh.example\r\nTo: {to}\r\nSubject: hello\r\n\r\nhi\r\n".encode()
    return OutgoingEmail("notify@mesh.example", to, "hello", "<hello@mesh.example>", data)


def send(config: SmtpConfig, to: str = "ada@example.com") -> None:
    mailer = Mailer(config, 1)
    try:
        asyncio.run(mailer.send(message(to)))
    finally:
        mailer.close()


@pytest.mark.parametrize("security", ["starttls", "tls"])
# The implicit-TLS server is encrypted from the first byte; aiosmtpd warns
# only because it cannot tell (see serve()).
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_login_over_tls_with_a_verified_certificate(security: str, certificate: tuple[Path, Path]) -> None:
    inbox = Inbox()
    for port in serve(inbox, certificate, implicit_tls=security == "tls"):
        config = SmtpConfig("127.0.0.1", port, security, USER, PASSWORD, timeout=5, ca_file=str(certificate[0]))
        send(config)
        assert [e.rcpt_tos for e in inbox.messages] == [["ada@example.com"]]

        with pytest.raises(Exception):  # noqa: B017, PT011 - a wrong password: refused, nothing sent
            send(SmtpConfig("127.0.0.1", port, security, USER, "wrong", timeout=1, ca_file=str(certificate[0])))
        with pytest.raises(Exception, match="(?i)certificate"):  # the system CAs do not know this server
            send(SmtpConfig("127.0.0.1", port, security, USER, PASSWORD, timeout=5))
        with pytest.raises(PermanentSmtpError):
            send(SmtpConfig("127.0.0.1", port, security, USER, PASSWORD, timeout=5, ca_file=str(certificate[0])),
                 to="nobody@example.com")
        assert len(inbox.messages) == 1


def test_no_plain_text_login_when_the_server_demands_starttls(certificate: tuple[Path, Path]) -> None:
    inbox = Inbox()
    for port in serve(inbox, certificate, implicit_tls=False):
        with pytest.raises(Exception):  # noqa: B017, PT011 - refused one way or another, and nothing sent
            send(SmtpConfig("127.0.0.1", port, "none", USER, PASSWORD, timeout=5))
        assert inbox.messages == []
