"""A private SMTP server on 127.0.0.1 for tests: aiosmtpd, in this process, keeping what it gets.

Plain, STARTTLS or implicit TLS, with a certificate from a throw-away certificate authority
(`ca_file`), and AUTH PLAIN/LOGIN against a dict of users when `users` is given. Every accepted
message is kept with its envelope, to be parsed as the receiving mail program would.
"""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.servers.dovecot import make_certificates

HOST = "127.0.0.1"
Security = Literal["none", "starttls", "tls"]


@dataclass(frozen=True)
class Delivery:
    """One accepted message: the SMTP envelope, who logged in, and the message itself."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    login: str | None
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Keeper:
    """The aiosmtpd handler: keeps each message it accepts."""

    deliveries: list[Delivery] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = session.auth_data
        login = data.login.decode() if isinstance(data, LoginPassword) else None
        content = envelope.original_content or b""
        self.deliveries.append(
            Delivery(envelope.mail_from or "", tuple(envelope.rcpt_tos), login, content)
        )
        return "250 OK kept"


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    security: Security
    ca_file: Path | None
    keeper: Keeper

    @property
    def deliveries(self) -> list[Delivery]:
        return self.keeper.deliveries

    @property
    def messages(self) -> list[EmailMessage]:
        return [delivery.message for delivery in self.deliveries]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _authenticator(users: dict[str, str]) -> Any:
    def check(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> Any:
        if isinstance(data, LoginPassword):
            login, password = data.login.decode(), data.password.decode()
            if users.get(login) == password:
                return AuthResult(success=True, auth_data=data)
        return AuthResult(success=False, handled=False)

    return check


def _server_tls(folder: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "server.pem", folder / "server.key")
    return context


@contextmanager
def smtp_server(
    security: Security = "none", users: dict[str, str] | None = None
) -> Iterator[SmtpServer]:
    """Run a server until the block ends; with `users`, AUTH is offered (over TLS only)."""
    with tempfile.TemporaryDirectory(prefix="syncd-smtp-") as name:
        folder = Path(name)
        tls = None
        if security != "none":
            make_certificates(folder)
            tls = _server_tls(folder)
        keeper = Keeper()
        options: dict[str, Any] = {"server_hostname": "localhost"}
        if security == "starttls":
            options |= {"tls_context": tls, "require_starttls": True}
        if security == "tls":
            options["ssl_context"] = tls
        if users is not None:
            options |= {"authenticator": _authenticator(users), "auth_require_tls": True}
        controller = Controller(keeper, hostname=HOST, port=free_port(), **options)
        controller.start()
        try:
            ca_file = folder / "ca.pem" if tls else None
            yield SmtpServer(HOST, controller.port, security, ca_file, keeper)
        finally:
            controller.stop()
