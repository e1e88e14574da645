"""The bulk of an IMAP sync read straight off the connection: UID SEARCH and header FETCH.

A general IMAP response parser (imapclient's, imaplib's) tokenises every byte into Python objects;
for a header fetch that costs many times what the server and the network do. Here a FETCH response
is cut at its CRLFs and its one literal, and only UID, INTERNALDATE and X-GM-MSGID are picked out
of the text with regular expressions; the header bytes go to `connectors.mailheaders` unchanged.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Generator, Iterable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import NamedTuple, Protocol

from connectors.base import SourceError
from connectors.mailheaders import HEADER_FIELDS, MONTHS

# One answer line with its first literal (the header block), or None when it carries none.
Response = tuple[bytes, bytes | None]

_CHUNK = 1 << 18
# A literal larger than this is not a header block: the server or the stream is broken.
MAX_LITERAL = 64 << 20
FETCH_ITEMS = (
    b"UID INTERNALDATE BODY.PEEK[HEADER.FIELDS (" + " ".join(HEADER_FIELDS).upper().encode() + b")]"
)

_FETCH = re.compile(rb"\* \d+ FETCH \(")
_COMMON = re.compile(rb'\* \d+ FETCH \(UID (\d+) INTERNALDATE "([^"]*)" ')
_UID = re.compile(rb"[( ]UID (\d+)")
_INTERNALDATE = re.compile(rb'INTERNALDATE "([^"]*)"')
_GMAIL_ID = re.compile(rb"X-GM-MSGID (\d+)")
_QUOTED_HEADER = re.compile(rb'BODY\[HEADER\.FIELDS [^\]]*\] (?:"((?:[^"\\]|\\.)*)"|NIL)', re.I)
_ESEARCH_ALL = re.compile(rb" ALL ([0-9:,]+)")
_INTERNALDATE_FORM = re.compile(
    rb"\s*(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$"
)


class ConnectionLost(SourceError):
    """The connection dropped after login; worth reconnecting and going on."""


class Refused(SourceError):
    """The server answered a command with NO or BAD."""


class Socket(Protocol):
    def sendall(self, data: bytes, /) -> None: ...
    def recv(self, size: int, /) -> bytes: ...


class Fetched(NamedTuple):
    """One message as a header FETCH returned it."""

    uid: int
    header: bytes  # the requested header fields, as the server sent them
    internaldate: bytes  # as sent (b"17-Jul-1996 02:44:25 -0700"); read when Date is missing
    gmail_id: int | None = None  # X-GM-MSGID: one message under all its Gmail labels


class Wire:
    """Tagged commands written to the socket of a logged-in session, their answers read back.

    Used between the session's other commands only: it starts reading after a complete answer,
    when the server has nothing more to say, and stops at the last tagged answer it waits for.
    Several commands may be sent before their answers are read (pipelining), in order.
    """

    def __init__(self, sock: Socket) -> None:
        self._sock = sock
        self._tags = itertools.count(1)
        self._data = b""
        self._waiting: dict[bytes, bytes] = {}  # tag -> the command's name, for messages

    @property
    def busy(self) -> bool:
        """Answers are still on their way: the session's other commands must not be used."""
        return bool(self._waiting)

    def send(self, command: bytes) -> bytes:
        """Send `command` now; its answers are read with `answers(tag)`."""
        tag = b"S%d " % next(self._tags)
        self._waiting[tag] = command.split(b" (", 1)[0]
        self._send(tag + command + b"\r\n")
        return tag

    def answers(self, tag: bytes) -> Iterator[Response]:
        """The untagged answers up to `tag`'s; Refused if it ends in NO or BAD. Answers come in
        the order the commands were sent, so they must be read in that order."""
        done = yield from self._answers(tag)
        name = self._waiting.pop(tag).decode("ascii", "replace")
        status, _, text = done[len(tag) :].partition(b" ")
        if status.upper() != b"OK":
            message = text.decode("utf-8", "replace").strip()
            raise Refused(f"{name}: {status.decode('ascii', 'replace')} {message}")

    def run(self, command: bytes) -> Iterator[Response]:
        """Send `command` and yield its untagged answers."""
        return self.answers(self.send(command))

    def _send(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except OSError as error:
            raise ConnectionLost(error.strerror or str(error) or type(error).__name__) from error

    def _receive(self) -> bytes:
        try:
            data = self._sock.recv(_CHUNK)
        except OSError as error:
            raise ConnectionLost(error.strerror or str(error) or type(error).__name__) from error
        if not data:
            raise ConnectionLost("the server closed the connection")
        return data

    def _answers(self, tag: bytes) -> Generator[Response, None, bytes]:
        data, position = self._data, 0
        while True:
            found = _complete(data, position)
            if found is None:
                data, position = data[position:] + self._receive(), 0
                continue
            text, literal, position = found
            if text.startswith(tag):
                self._data = data[position:]
                return text
            yield text, literal


def _complete(data: bytes, start: int) -> tuple[bytes, bytes | None, int] | None:
    """The answer starting at `start` (text, first literal, where the next one starts), or None
    while `data` does not hold all of it yet. The text keeps the `{size}` markers."""
    end = data.find(b"\r\n", start)
    if end < 0:
        return None
    text = data[start:end]
    literal: bytes | None = None
    while (size := _literal_size(text)) is not None:
        begin = end + 2
        if len(data) < begin + size or (end := data.find(b"\r\n", begin + size)) < 0:
            return None
        if literal is None:
            literal = data[begin : begin + size]
        text += data[begin + size : end]
    return text, literal, end + 2


def _literal_size(text: bytes) -> int | None:
    """The size in a `{size}` (or `{size+}`) that ends a line, announcing a literal."""
    if text[-1:] != b"}":
        return None
    digits = text[text.rfind(b"{") + 1 : -1].removesuffix(b"+")
    if not digits.isdigit() or not digits.isascii():
        return None
    size = int(digits)
    if size > MAX_LITERAL:
        raise ConnectionLost(f"the server announced a {size}-byte answer; the stream is broken")
    return size


# --- FETCH -----------------------------------------------------------------------------------


def fetch_command(uids: str, gmail: bool) -> bytes:
    items = FETCH_ITEMS + b" X-GM-MSGID" if gmail else FETCH_ITEMS
    return b"UID FETCH %s (%s)" % (uids.encode(), items)


def fetched(answers: Iterable[Response], gmail: bool = False) -> Iterator[Fetched]:
    """The messages in the answers to a header FETCH; other answers (EXISTS, a flag change someone
    else made, which carries no UID) are passed over."""
    for text, literal in answers:
        common = None if gmail else _COMMON.match(text)
        if common is not None:  # most servers' order: one regex instead of four
            uid, date = int(common.group(1)), common.group(2)
        elif _FETCH.match(text) and (found := _UID.search(text)):
            uid, date = int(found.group(1)), _search_group(_INTERNALDATE, text)
        else:
            continue
        header = literal if literal is not None else _quoted_header(text)
        gmail_id = _search_group(_GMAIL_ID, text) if gmail else b""
        yield Fetched(uid, header, date, int(gmail_id) if gmail_id else None)


def _search_group(pattern: re.Pattern[bytes], text: bytes) -> bytes:
    found = pattern.search(text)
    return found.group(1) if found else b""


def _quoted_header(text: bytes) -> bytes:
    found = _QUOTED_HEADER.search(text)
    if found is None or found.group(1) is None:
        return b""
    return re.sub(rb"\\(.)", rb"\1", found.group(1))


def internal_date(value: bytes) -> datetime | None:
    """An INTERNALDATE ("17-Jul-1996 02:44:25 -0700") in UTC; None if unreadable or beyond
    what a datetime holds once in UTC (year 1 east of Greenwich)."""
    found = _INTERNALDATE_FORM.match(value)
    if found is None:
        return None
    day, month, year, hour, minute, second, sign, zone_h, zone_m = found.groups()
    offset = timedelta(hours=int(zone_h), minutes=int(zone_m))
    try:
        zone = timezone(-offset if sign == b"-" else offset)
        return datetime(
            int(year), MONTHS.get(month.decode().lower(), 0), int(day),
            int(hour), int(minute), int(second), tzinfo=zone,
        ).astimezone(UTC)  # fmt: skip
    except (ValueError, OverflowError):  # month 0, day 31 of June, zone beyond a day, year 1
        return None


# --- SEARCH ----------------------------------------------------------------------------------


def search_command(first_uid: int, since: str | None, extended: bool) -> bytes:
    """UID SEARCH for every message from `first_uid` on; ESEARCH answers in ranges, not numbers."""
    command = b"UID SEARCH RETURN (ALL) " if extended else b"UID SEARCH "
    command += b"UID %d:*" % first_uid
    return command + (b" SINCE " + since.encode() if since else b"")


def searched(answers: Iterable[Response]) -> list[tuple[int, int]]:
    """The UIDs a SEARCH or ESEARCH found, as sorted, merged (first, last) ranges."""
    ranges: list[tuple[int, int]] = []
    for text, _ in answers:
        upper = text[:10].upper()
        if upper.startswith(b"* SEARCH"):
            ranges += ((int(n), int(n)) for n in text[8:].split() if n.isdigit())
        elif upper.startswith(b"* ESEARCH"):
            found = _ESEARCH_ALL.search(text)
            ranges += _sequence_set(found.group(1)) if found else []
    return _merged(ranges)


def _sequence_set(text: bytes) -> Iterator[tuple[int, int]]:
    for part in text.split(b","):
        first, _, last = part.partition(b":")
        if first.isdigit() and (not last or last.isdigit()):
            low, high = int(first), int(last or first)
            yield min(low, high), max(low, high)


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
        else:
            merged.append((low, high))
    return merged


def windows(ranges: list[tuple[int, int]], after: int, size: int) -> Iterator[str]:
    """UID sets of at most `size` messages, above UID `after`, in order (`1:500`, `501:620,700`)."""
    parts: list[str] = []
    count = 0
    for low, high in ranges:
        low = max(low, after + 1)
        while low <= high:
            take = min(high, low + size - count - 1)
            parts.append(f"{low}:{take}" if take > low else str(low))
            count += take - low + 1
            low = take + 1
            if count == size:
                yield ",".join(parts)
                parts, count = [], 0
    if parts:
        yield ",".join(parts)
