"""The contract between syncd's core and its connectors: Source, Sink, Cursor, the registry.

A connector module imports this module and `syncd.model`, nothing else of syncd. Each connector
class names its config `type`, declares its keys as a pydantic `Options` model (its config schema:
an unknown key is an error naming it), and is built as `Connector(options, context)`.
"""

from __future__ import annotations

import builtins
import importlib
import ipaddress
import logging
import socket
import ssl
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar, Protocol, TypeVar, runtime_checkable
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo, field_validator

from syncd.model import Card, Identity, Interaction, Reminder, ReminderState


class SourceError(Exception):
    """A source cannot be read; the message says what the user can do about it."""


class SinkError(Exception):
    """A sink cannot be written; follow-ups stay pending and are written on a later pass."""


class PreconditionFailed(SinkError):
    """The item changed on the server since syncd wrote it (HTTP 412): re-read, never overwrite."""


_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine, where a connection never crosses a network."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def network_problem(error: BaseException, host: str, where: str, ports: str) -> str | None:
    """Words for failing to reach or trust a server, the same for every connector; None when
    `error` is none of those. `where` is host:port; `ports` says which security uses which port."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return (
            f"the certificate of {host} cannot be trusted ({error.verify_message}); if the "
            "server uses its own certificate authority, set ca_file to its certificate"
        )
    if isinstance(error, ssl.SSLError):
        return f"TLS with {where} failed ({error.reason}); check security ({ports})"
    if isinstance(error, socket.gaierror):
        return f"the host {host!r} is unknown; check host"
    if isinstance(error, ConnectionRefusedError):
        return f"{where} refused the connection; check host and port"
    if isinstance(error, TimeoutError) or isinstance(error.__context__, TimeoutError):
        return f"{where} did not answer; check host, port and the network"
    return None


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    path = value.expanduser()
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    return path


# A path in the config file: `~` expands, a relative path is relative to the config file's folder.
ConfigPath = Annotated[Path, AfterValidator(_resolve_path)]


class ConnectorOptions(BaseModel):
    """Base of every connector's config schema: `[sources.NAME]` / `[sinks.NAME]` keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str

    def own_addresses(self) -> list[str]:
        """Mail addresses this connector sends from itself (an invitation sink's `from`): mail to
        or from them is never contact with anyone."""
        return []


class SecretOptions(ConnectorOptions):
    """Keys for a connector that logs in: the secret is never in the config file itself.

    `password = { keyring = "service" }` (the system keyring, user name = `username`),
    `password_command = ["pass", "show", "mail"]` (its first line of output), or `password_file`
    (e.g. a systemd credential, `password_file = "%d/mail"`).
    """

    username: str | None = None
    password: dict[str, str] | None = None
    password_command: list[str] | None = None
    password_file: ConfigPath | None = None

    @field_validator("password", mode="before")
    @classmethod
    def _no_plain_password(cls, value: object) -> object:
        if isinstance(value, str):
            raise ValueError(
                "a password in the config file is refused; store it with `syncd secret set NAME` "
                'and write password = { keyring = "NAME" }, or use password_command or '
                "password_file"
            )
        if isinstance(value, dict) and set(value) != {"keyring"}:
            raise ValueError('expected password = { keyring = "service name" }')
        return value

    @property
    def has_secret(self) -> bool:
        return bool(self.password or self.password_command or self.password_file)


def _no_secrets(options: SecretOptions) -> str:
    raise SourceError("no way to find secrets was given to this connector")


@dataclass
class Context:
    """What a connector may know of the world: its name, the user's time zone, the clock, who the
    user is, and how to fetch a secret."""

    name: str
    timezone: ZoneInfo
    now: datetime  # aware; every "up to now" is measured against this
    # The user's own identities from [me], normalised: mail from these is "out".
    me: tuple[Identity, ...] = ()
    # The secret for a SecretOptions connector; raises SourceError naming what is missing.
    secret: Callable[[SecretOptions], str] = _no_secrets
    logger: logging.Logger = field(init=False)
    warnings: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.logger = logging.getLogger(f"syncd.{self.name}")

    def warn(self, where: str | Path, message: str, line: int | None = None) -> None:
        """Report bad input that was skipped: `file:line: message`, and count it."""
        self.warnings += 1
        place = f"{where}:{line}" if line is not None else str(where)
        self.logger.warning("%s: %s: %s", self.name, place, message)


@dataclass
class Cursor:
    """Where a source left off. `state` is JSON-serialisable and stored with the data it covers.

    `known(ref)` answers whether the store already holds an item of this source with that ref, so a
    source can skip what it has yielded before without keeping that list in its own state.
    """

    state: dict[str, Any] = field(default_factory=dict)
    known: Callable[[str], bool] = field(default=lambda ref: False)


Item = TypeVar("Item")


def handed_over(items: list[Item], advance: Callable[[], None]) -> Iterator[Item]:
    """Yield `items`, moving the cursor (`advance`) just before the last: it covers them all (and
    with no items, it moves at once)."""
    yield from items[:-1]
    advance()
    yield from items[-1:]


@runtime_checkable
class Source(Protocol):
    type: ClassVar[str]
    Options: ClassVar[builtins.type[ConnectorOptions]]

    def scan(self, cursor: Cursor) -> Iterator[Card | Interaction]:
        """Yield what changed since the cursor.

        Advances `cursor.state` only for what it has yielded (set the state, then yield), so the
        engine can commit the cursor with each batch. Bad items are skipped with `context.warn`;
        a source that cannot be read at all raises `SourceError`.
        """
        ...

    def check(self) -> list[str]:
        """Problems that keep this source from being read, in a user's words; empty when fine."""
        ...


@runtime_checkable
class Sink(Protocol):
    type: ClassVar[str]
    Options: ClassVar[builtins.type[ConnectorOptions]]

    def put(self, reminder: Reminder) -> str:
        """Create or update the follow-up with `reminder.uid`; return its etag.

        `reminder.etag` is what this sink returned last time (None for a new follow-up); a sink
        that can tell raises PreconditionFailed when the item changed since, and never overwrites.
        """
        ...

    def remove(self, uid: str) -> None:
        """Remove a follow-up syncd wrote; a missing one is not an error."""
        ...

    def read_back(self, uids: Iterable[str]) -> Iterator[ReminderState]:
        """Report, for each uid syncd wrote, whether it is open, completed, deleted or moved."""
        ...

    def check(self) -> list[str]:
        """Problems that keep this sink from being written, in a user's words; empty when fine."""
        ...


# config `type` -> "module:Class"; imported only when a config names it.
SOURCES: dict[str, str] = {
    "vcard": "connectors.vcard:VCardSource",
    "ics": "connectors.ics:IcsSource",
    "maildir": "connectors.maildir:MaildirSource",
    "mbox": "connectors.mbox:MboxSource",
    "imap": "connectors.imap:ImapSource",
    "linkedin": "connectors.linkedin:LinkedInSource",
    "whatsapp": "connectors.whatsapp:WhatsAppSource",
    "caldav": "connectors.caldav:CalDavSource",
    "carddav": "connectors.carddav:CardDavSource",
}
# Source types whose cards are the user's address book: a card there makes a relationship. Other
# cards (LinkedIn connections) join identities but do not make anyone a relationship by themselves.
ADDRESS_BOOKS: frozenset[str] = frozenset({"vcard", "carddav"})


def is_address_book(type_name: str | None) -> bool:
    return type_name in ADDRESS_BOOKS


SINKS: dict[str, str] = {
    "ics": "connectors.icsfile:IcsFileSink",
    "vdir": "connectors.icsfile:VdirSink",
    "caldav": "connectors.caldav:CalDavSink",
    "invite": "connectors.invite:InviteSink",
}


class UnknownType(LookupError):
    pass


def _load(table: dict[str, str], kind: str, type_name: str) -> type[Any]:
    try:
        target = table[type_name]
    except KeyError:
        known = ", ".join(sorted(table))
        raise UnknownType(f"unknown {kind} type {type_name!r}; expected one of: {known}") from None
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)  # type: ignore[no-any-return]


def source_class(type_name: str) -> type[Source]:
    return _load(SOURCES, "source", type_name)


def sink_class(type_name: str) -> type[Sink]:
    return _load(SINKS, "sink", type_name)
