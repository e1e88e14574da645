"""A logged-in, read-only IMAP connection, and the one-line errors a user sees when there is none.

imapclient holds the conversation (TLS, STARTTLS, login, OAuth2, LIST, STATUS, EXAMINE); the bulk
UID SEARCH and header FETCH go through `wire` on the same socket.
"""

from __future__ import annotations

import imaplib
import ssl
import subprocess
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date
from typing import Any

from imapclient import IMAPClient, SocketTimeout
from imapclient.exceptions import CapabilityError, LoginError

from connectors.base import Context, SourceError, network_problem
from connectors.imap.folders import Listed, listed
from connectors.imap.options import ImapOptions
from connectors.imap.wire import (
    ConnectionLost,
    Fetched,
    Refused,
    Wire,
    fetch_command,
    fetched,
    search_command,
    searched,
)

# Told which UID window the server refused, and why.
Refusal = Callable[[str, Refused], None]
# UID windows asked for beyond the one being read: with windows of 500, a round trip of up to
# about 60 ms costs no waiting (bench/imap.py --latency measures it).
AHEAD = 3
CONNECT_TIMEOUT = 30.0
READ_TIMEOUT = 120.0
TOKEN_TIMEOUT = 60
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class FolderStatus:
    messages: int
    uidnext: int
    uidvalidity: int


class Unreachable(SourceError):
    """The server cannot be reached (refused, timed out, the network is down)."""


class Session:
    """One logged-in connection; every command only reads (EXAMINE, BODY.PEEK)."""

    def __init__(self, client: Any, options: ImapOptions, name: str) -> None:
        self.client = client
        self.options = options
        self.name = name
        self.broken = False  # a dead connection is shut, not logged out (which would wait)
        self.wire = Wire(client.socket())
        with self._talking("asking for its capabilities"):
            capabilities = set(client.capabilities())
        self.gmail = b"X-GM-EXT-1" in capabilities  # X-GM-MSGID: one id across labels
        self.extended_search = b"ESEARCH" in capabilities

    def folders(self) -> list[Listed]:
        with self._talking("listing the folders"):
            return listed(self.client.list_folders())

    def status(self, folder: str) -> FolderStatus:
        with self._talking(f"asking for the status of {folder!r}"):
            found = self.client.folder_status(folder, [b"MESSAGES", b"UIDNEXT", b"UIDVALIDITY"])
        return FolderStatus(
            int(found.get(b"MESSAGES", 0)),
            int(found.get(b"UIDNEXT", 0)),
            int(found.get(b"UIDVALIDITY", 0)),
        )

    def examine(self, folder: str) -> FolderStatus:
        """Open `folder` read-only: EXAMINE never changes a flag, not even \\Recent."""
        with self._talking(f"opening {folder!r}"):
            found = self.client.select_folder(folder, readonly=True)
        return FolderStatus(
            int(found.get(b"EXISTS", 0)),
            int(found.get(b"UIDNEXT", 0)),
            int(found.get(b"UIDVALIDITY", 0)),
        )

    def search(self, first_uid: int, since: date | None) -> list[tuple[int, int]]:
        """UID ranges of the open folder's messages from `first_uid` on (received since `since`)."""
        day = f"{since.day}-{_MONTHS[since.month - 1]}-{since.year}" if since else None
        with self._talking("searching the folder"):
            return searched(self.wire.run(search_command(first_uid, day, self.extended_search)))

    def fetch(self, windows: Iterable[str], refused: Refusal) -> Iterator[Fetched]:
        """The header fields, INTERNALDATE (and on Gmail X-GM-MSGID) of the messages in each UID
        window. The next windows are asked for while one is read, so round trips overlap (the
        commands are a few hundred bytes: they never wait on the answers). A window the server
        answers with NO is passed to `refused` and the next one read."""
        upcoming = iter(windows)
        asked: deque[tuple[str, bytes]] = deque()
        with self._talking("fetching headers"):
            while True:
                while len(asked) <= AHEAD and (uids := next(upcoming, None)) is not None:
                    asked.append((uids, self.wire.send(fetch_command(uids, self.gmail))))
                if not asked:
                    return
                uids, tag = asked.popleft()
                try:
                    yield from fetched(self.wire.answers(tag), self.gmail)
                except Refused as error:
                    refused(uids, error)

    def close(self) -> None:
        """Log out; a connection that broke, or was left in the middle of an answer, is shut."""
        with suppress(imaplib.IMAP4.error, OSError):
            if self.wire.busy or self.broken:
                self.client.shutdown()
            else:
                self.client.logout()

    @contextmanager
    def _talking(self, doing: str) -> Iterator[None]:
        try:
            yield
        except (ConnectionLost, imaplib.IMAP4.abort, OSError, EOFError) as error:
            self.broken = True
            raise ConnectionLost(
                f"{self.name}: the connection to {self.options.host} broke while {doing}: "
                f"{_reason(error)}"
            ) from error
        except imaplib.IMAP4.error as error:
            raise SourceError(
                f"{self.name}: {self.options.host} refused {doing}: {_reason(error)}"
            ) from error


# --- connecting ------------------------------------------------------------------------------


def open_session(options: ImapOptions, context: Context) -> Session:
    """Connect and log in, or raise one SourceError naming the source and what to change."""
    secret = _secret(options, context)  # first: a missing secret needs no connection to report
    tls = _tls_context(options, context.name)
    client = _connect(options, tls, context.name)
    try:
        _login(client, options, tls, secret, context.name)
        return Session(client, options, context.name)
    except BaseException:
        _shut(client)
        raise


def _secret(options: ImapOptions, context: Context) -> str:
    if options.auth == "oauth2":
        return _token(options.oauth2_token_command or [], context.name)
    try:
        return context.secret(options)
    except SourceError as error:
        if str(error).startswith(context.name):
            raise
        raise SourceError(f"{context.name}: {error}") from error  # say which source it was for


def _token(command: list[str], name: str) -> str:
    """An OAuth2 access token: the first line the command prints (fetched anew at each login)."""
    what = f"{name}: oauth2_token_command {command[0]!r}"
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=TOKEN_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SourceError(f"{what} could not run: {error}") from None
    lines = done.stdout.splitlines()
    if done.returncode != 0 or not lines or not lines[0].strip():
        raise SourceError(f"{what} printed no token (exit code {done.returncode})")
    return lines[0].strip()


def _tls_context(options: ImapOptions, name: str) -> ssl.SSLContext | None:
    if options.security == "none":
        return None
    if options.ca_file is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(options.ca_file))
    except (OSError, ssl.SSLError) as error:
        raise SourceError(f"{name}: ca_file {options.ca_file} cannot be read: {error}") from None


def _connect(options: ImapOptions, tls: ssl.SSLContext | None, name: str) -> Any:
    try:
        return IMAPClient(
            options.host,
            options.server_port,
            ssl=options.security == "tls",
            ssl_context=tls,
            timeout=SocketTimeout(CONNECT_TIMEOUT, READ_TIMEOUT),
        )
    except (OSError, imaplib.IMAP4.error) as error:
        raise _connect_error(error, options, name) from None


def _login(
    client: Any, options: ImapOptions, tls: ssl.SSLContext | None, secret: str, name: str
) -> None:
    try:
        if options.security == "starttls":
            client.starttls(tls)
        if options.auth == "oauth2":
            _oauth2_login(client, options.user, secret)
        else:
            client.login(options.user, secret)
    except CapabilityError:
        raise SourceError(
            f'{name}: {options.host} does not offer STARTTLS; use security = "tls" (port 993)'
        ) from None
    except LoginError as error:
        raise SourceError(
            f"{name}: {options.host} refused the login for {options.user!r}: wrong user name "
            f"or {'token' if options.auth == 'oauth2' else 'password'} ({_reason(error)})"
        ) from None
    except (OSError, imaplib.IMAP4.error) as error:
        raise _connect_error(error, options, name) from None


def _oauth2_login(client: Any, user: str, token: str) -> None:
    if client.has_capability("AUTH=OAUTHBEARER"):
        client.oauthbearer_login(user, token)
    else:
        client.oauth2_login(user, token)


def _connect_error(error: BaseException, options: ImapOptions, name: str) -> SourceError:
    where = f"{options.host}:{options.server_port}"
    ports = '"tls" is usually port 993, "starttls" port 143'
    message = network_problem(error, options.host, where, ports)
    if message is None:
        return Unreachable(f"{name}: cannot reach {where}: {_reason(error)}")
    # A refused or silent server may come back: worth another try; a bad certificate is not.
    retry = isinstance(error, ConnectionRefusedError | TimeoutError)
    return (Unreachable if retry else SourceError)(f"{name}: {message}")


def _reason(error: BaseException) -> str:
    """An error's text on one line; imaplib and imapclient put the server's answer in as bytes."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    value = error.args[0] if error.args else ""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    if text[:2] in ("b'", 'b"') and text[-1:] == text[1]:  # str() of bytes, as LoginError holds
        text = text[2:-1]
    return " ".join(text.split()) or type(error).__name__


def _shut(client: Any) -> None:
    with suppress(OSError):
        client.shutdown()
