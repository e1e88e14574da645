"""The `invite` sink: follow-ups as calendar invitations sent by mail (iMIP, RFC 6047).

For a calendar syncd cannot write to (Gmail, Outlook, iCloud), it sends the user an invitation to
a short event, from syncd's own address (the ORGANIZER) to the user (the ATTENDEE). A change is the
same UID with a higher SEQUENCE; a follow-up no longer needed is withdrawn with METHOD:CANCEL.

The calendars and the MIME message are built in connectors.invite.imip; this module holds the
options, the sink and the SMTP sending.

A mail sink cannot see the calendar: every follow-up it sent reads back as open.
"""

from __future__ import annotations

import builtins
import smtplib
import ssl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC
from email.message import EmailMessage
from email.utils import format_datetime
from typing import ClassVar, Literal, Self

from pydantic import Field, field_validator, model_validator

from connectors.base import (
    ConfigPath,
    ConnectorOptions,
    Context,
    SecretOptions,
    SinkError,
    SourceError,
    is_loopback,
    network_problem,
)
from connectors.ical import etag
from connectors.invite.imip import (
    CANCELLED_SUBJECT,
    CANCELLED_TEXT,
    FOLLOW_UP_TIME,
    Mailbox,
    _text_of,
    cancellation,
    invitation,
    mail,
    message_id,
)
from syncd.model import FollowUpStatus, Reminder, ReminderState

__all__ = [
    "CANCELLED_SUBJECT",
    "CANCELLED_TEXT",
    "DEFAULT_PORTS",
    "FOLLOW_UP_TIME",
    "TIMEOUT",
    "InviteOptions",
    "InviteSink",
    "Mailbox",
    "cancellation",
    "invitation",
    "mail",
    "message_id",
]

TIMEOUT = 30.0  # seconds for connecting and for each SMTP reply
DEFAULT_PORTS = {"tls": 465, "starttls": 587, "none": 25}


class InviteOptions(SecretOptions):
    """`[sinks.NAME] type = "invite"`: the SMTP server and who invites whom."""

    type: Literal["invite"]
    host: str = Field(min_length=1)
    # None: 465 for security = "tls", 587 for "starttls", 25 for "none".
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["tls", "starttls", "none"] = "tls"
    # syncd's own address, the ORGANIZER: replies (accept, decline) go there.
    sender: str = Field(alias="from")
    # The user, the ATTENDEE: where the invitations arrive.
    to: str
    # The certificate authority to trust instead of the system's (a self-hosted server's own CA).
    ca_file: ConfigPath | None = None

    def own_addresses(self) -> list[str]:
        return [Mailbox.parse(self.sender).address]

    @field_validator("sender", "to")
    @classmethod
    def _an_address(cls, value: str) -> str:
        Mailbox.parse(value)
        return value

    @model_validator(mode="after")
    def _safe_and_complete(self) -> Self:
        if self.security == "none" and not is_loopback(self.host):
            raise ValueError(
                'security = "none" would send mail and password unencrypted; it is allowed only '
                'for a server on this machine (localhost, 127.0.0.1); use "tls" (port 465) or '
                '"starttls" (port 587)'
            )
        if self.organizer.address.lower() == self.attendee.address.lower():
            raise ValueError(
                "from and to are the same address; from is syncd's own address (the organizer), "
                "to is yours (the one invited), and a calendar needs them to differ"
            )
        if self.username and not self.has_secret:
            raise ValueError(
                "username is set, so the SMTP login needs a secret: set "
                'password = { keyring = "..." }, password_command or password_file'
            )
        if self.has_secret and not self.username:
            raise ValueError("a secret is set but no username to log in with; set username")
        return self

    @property
    def server_port(self) -> int:
        return self.port if self.port is not None else DEFAULT_PORTS[self.security]

    @property
    def organizer(self) -> Mailbox:
        return Mailbox.parse(self.sender)

    @property
    def attendee(self) -> Mailbox:
        return Mailbox.parse(self.to)


# -- sending --------------------------------------------------------------------------------------


def _reason(error: BaseException) -> str:
    if isinstance(error, smtplib.SMTPResponseException):
        text = error.smtp_error
        text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        return f"{error.smtp_code} {' '.join(text.split())}"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


class InviteSink:
    """Sends each follow-up to the user as a calendar invitation."""

    type: ClassVar[str] = "invite"
    Options: ClassVar[builtins.type[ConnectorOptions]] = InviteOptions

    def __init__(self, options: InviteOptions, context: Context) -> None:
        self.options = options
        self.context = context

    # -- the Sink protocol ------------------------------------------------------------------------

    def put(self, reminder: Reminder) -> str:
        calendar = invitation(reminder, self.options, self.context)
        tag = etag(calendar)
        if reminder.etag == tag:  # this very invitation was sent before
            return tag
        summary, text = _text_of(calendar)
        headers = self._headers(reminder.uid, reminder.sequence)
        self._send(mail(calendar, "REQUEST", summary, text, headers))
        return tag

    def remove(self, uid: str) -> None:
        # Only the uid is known here: a sequence from the clock is higher than any the engine gave.
        sequence = int(self.context.now.timestamp())
        calendar = cancellation(uid, sequence, self.options, self.context.now)
        headers = self._headers(uid, sequence)
        self._send(mail(calendar, "CANCEL", CANCELLED_SUBJECT, CANCELLED_TEXT + "\n", headers))

    def read_back(self, uids: Iterable[str]) -> Iterator[ReminderState]:
        # The user's calendar is out of reach; a decline arrives as mail (see the mail sources).
        return (ReminderState(uid, FollowUpStatus.OPEN) for uid in uids)

    def check(self) -> list[str]:
        try:
            with self._session():
                return []
        except SinkError as error:
            return [str(error)]

    # -- internals --------------------------------------------------------------------------------

    def _headers(self, uid: str, sequence: int) -> dict[str, str]:
        first = message_id(uid, 0)
        headers = {
            "From": str(self.options.organizer),
            "To": str(self.options.attendee),
            "Date": format_datetime(self.context.now.astimezone(UTC)),
            "Message-ID": message_id(uid, sequence),
        }
        if sequence != 0:  # updates and the withdrawal thread under the first invitation
            headers["In-Reply-To"] = headers["References"] = first
        return headers

    def _send(self, message: EmailMessage) -> None:
        with self._session() as smtp:
            smtp.send_message(
                message, self.options.organizer.address, [self.options.attendee.address]
            )

    @property
    def _where(self) -> str:
        return f"{self.options.host}:{self.options.server_port}"

    @contextmanager
    def _session(self) -> Iterator[smtplib.SMTP]:
        """A connection that is encrypted as configured and logged in; closed afterwards."""
        secret = self._secret()  # first: a missing secret needs no connection to report
        tls = self._tls()
        try:
            smtp = self._connect(tls)
        except (OSError, smtplib.SMTPException) as error:
            raise self._problem(error) from None
        try:
            self._start(smtp, tls, secret)
            yield smtp
        except (OSError, smtplib.SMTPException) as error:
            smtp.close()
            raise self._problem(error) from None
        except BaseException:
            smtp.close()
            raise
        with suppress(OSError, smtplib.SMTPException):
            smtp.quit()  # the mail is accepted by now: a failing goodbye changes nothing
        smtp.close()

    def _secret(self) -> str | None:
        if not self.options.username:
            return None
        try:
            return self.context.secret(self.options)
        except SourceError as error:
            raise SinkError(str(error)) from None

    def _tls(self) -> ssl.SSLContext | None:
        if self.options.security == "none":
            return None
        ca_file = self.options.ca_file
        try:
            return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        except (OSError, ssl.SSLError) as error:
            raise SinkError(f"ca_file {ca_file} cannot be read: {_reason(error)}") from None

    def _connect(self, tls: ssl.SSLContext | None) -> smtplib.SMTP:
        host, port = self.options.host, self.options.server_port
        if self.options.security == "tls":
            return smtplib.SMTP_SSL(host, port, timeout=TIMEOUT, context=tls)
        return smtplib.SMTP(host, port, timeout=TIMEOUT)

    def _start(self, smtp: smtplib.SMTP, tls: ssl.SSLContext | None, secret: str | None) -> None:
        smtp.ehlo()
        if self.options.security == "starttls":
            if not smtp.has_extn("starttls"):
                raise SinkError(
                    f'{self._where} does not offer STARTTLS; use security = "tls" (port 465)'
                )
            smtp.starttls(context=tls)
            smtp.ehlo()
        if secret is None:
            return
        if not smtp.has_extn("auth"):
            raise SinkError(f"{self._where} offers no login (AUTH) on this connection")
        try:
            smtp.login(self.options.username or "", secret)
        except smtplib.SMTPAuthenticationError as error:
            raise SinkError(
                f"{self.options.host} refused the login for {self.options.username!r}: wrong "
                f"user name or password ({_reason(error)})"
            ) from None

    def _problem(self, error: BaseException) -> SinkError:
        """What went wrong, in words that say what to change."""
        where, host = self._where, self.options.host
        if isinstance(error, smtplib.SMTPSenderRefused):
            return SinkError(
                f"{host} refused to send from {self.options.organizer.address} "
                f"({_reason(error)}); many servers only send from the address you log in with"
            )
        if isinstance(error, smtplib.SMTPRecipientsRefused):
            return SinkError(f"{host} refused the recipient {self.options.attendee.address}")
        if isinstance(error, smtplib.SMTPResponseException):
            return SinkError(f"{host} refused the invitation ({_reason(error)})")
        ports = '"tls" is usually port 465, "starttls" port 587'
        if (message := network_problem(error, host, where, ports)) is not None:
            return SinkError(message)
        return SinkError(f"cannot send through {where}: {_reason(error)}")
