"""mbox source: who wrote to whom and when, from the headers of every message in mbox files.

`path` is one mbox file, or a folder: then every file below it that is an mbox (it begins with a
`From ` line, or is empty) is read, whatever its name; mbox files often have no suffix (mutt's
`~/Mail/inbox`, Thunderbird's `Inbox` beside `Inbox.msf`), and sniffing the first bytes is what
leaves Thunderbird's index files and other clutter out. Hidden files are skipped.

Messages are split on `From ` lines at a line start that carry a date (mboxo and mboxrd; escaped
`>From ` lines are body text). Only the header block is parsed; body bytes are scanned for the next
`From ` line but never decoded. Content-Length is not trusted: clients that rewrite a mailbox leave
stale values, and the line numbers given as evidence need every line counted anyway.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO, ClassVar, Literal

from connectors.base import ConfigPath, ConnectorOptions, Context, Cursor, SourceError
from connectors.files import find_files
from connectors.mailheaders import MONTHS, parse_headers
from connectors.mailpool import MAX_HEADER
from syncd.model import Interaction

_CHUNK = 1 << 20
_HEAD_BYTES = 4096
_SEPARATOR = b"\nFrom "
# The date of a From_ line: "Sat Mar 14 10:00:00 2020", with a zone where some writers add one.
_FROM_DATE = re.compile(
    rb"From \S*\s+[A-Za-z]{3}\s+([A-Za-z]{3})\s+(\d{1,2})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?"
    rb"\s+(?:([+-]\d{4}|[A-Za-z]{3,5})\s+)?(\d{4})\b(?:\s+([+-]\d{4}))?"
)
# Enough of a From_ line to find its date; the rest may be arbitrarily long junk.
_SEPARATOR_PEEK = 512


class MboxOptions(ConnectorOptions):
    type: Literal["mbox"]
    path: ConfigPath  # an mbox file, or a folder of them (read recursively)


def is_separator(line: bytes) -> bool:
    """A From_ line that starts a message: `From ` at the line start, followed by a date."""
    return line.startswith(b"From ") and _FROM_DATE.match(line) is not None


def separator_date(line: bytes) -> datetime | None:
    """The delivery time on a From_ line, in UTC (a line without a zone is taken as UTC)."""
    match = _FROM_DATE.match(line)
    if match is None:
        return None
    month, day, hour, minute, second, zone, year, late_zone = match.groups()
    number = MONTHS.get(month.decode().lower())
    zone = late_zone or zone
    offset = timedelta(0)
    if zone and zone[:1] in b"+-":
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5]))
        offset = -offset if zone[:1] == b"-" else offset
    if number is None:
        return None
    try:
        local = datetime(int(year), number, int(day), int(hour), int(minute), int(second or 0))
        return local.replace(tzinfo=timezone(offset)).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


@dataclass(frozen=True)
class MboxMessage:
    offset: int  # where its From_ line starts
    line: int  # that line's number, from 1
    separator: bytes  # the From_ line
    header: bytes  # the header block, without the From_ line and the blank line
    end: int  # where the next message starts (or where the data ended)
    end_line: int  # the line number at `end`


class _Reader:
    """A forward-only window on a file with absolute offsets and line numbers, read in chunks.

    `position` is always at a line start, and the byte before it (the newline) is kept in the
    buffer, so a search for "\nFrom " from `position - 1` also finds a From_ line right there.
    """

    def __init__(self, file: BinaryIO, offset: int, line: int) -> None:
        file.seek(offset)
        self.file = file
        self.buffer = b""
        self.base = offset  # the file offset of buffer[0]
        self.position = 0  # the read position in buffer
        self.line = line  # the line number at the read position

    @property
    def offset(self) -> int:
        return self.base + self.position

    def _fill(self) -> bool:
        chunk = self.file.read(_CHUNK)
        if not chunk:
            return False
        keep = max(self.position - 1, 0)
        self.buffer = self.buffer[keep:] + chunk
        self.base += keep
        self.position -= keep
        return True

    def _advance(self, to: int) -> None:
        self.line += self.buffer.count(b"\n", self.position, to)
        self.position = to

    def _line_end(self, limit: int | None = None) -> int:
        """The index just past the line at `position` (or `limit` bytes on, or the data's end)."""
        start = self.position
        while True:
            end = self.buffer.find(b"\n", start)
            if end >= 0:
                return end + 1
            if limit is not None and len(self.buffer) - self.position >= limit:
                return self.position + limit
            scanned = len(self.buffer) - self.position
            if not self._fill():
                return len(self.buffer)
            start = self.position + scanned

    def read_line(self) -> bytes:
        """The next line with its newline; b"" at the end of the data."""
        end = self._line_end()  # may refill the buffer: take it first
        line = self.buffer[self.position : end]
        self._advance(end)
        return line

    def unread(self, line: bytes) -> None:
        self.position -= len(line)
        self.line -= line.count(b"\n")

    def _at_separator(self, trust: bool) -> bool:
        end = self._line_end(_SEPARATOR_PEEK)  # may refill the buffer: take it first
        peek = self.buffer[self.position : end]
        return peek.startswith(b"From ") and (trust or is_separator(peek))

    def next_separator(self, trust_first: bool = False) -> bool:
        """Move to the start of the next From_ line; False at the end of the data.

        With `trust_first`, a `From ` line right at the read position counts without a date check:
        the start of a file, or where the last scan ended.
        """
        if trust_first and self._at_separator(trust=True):
            return True
        while True:
            found = self.buffer.find(_SEPARATOR, max(self.position - 1, 0))
            if found < 0:
                # a separator may straddle the chunk boundary: keep its possible start
                self._advance(max(self.position, len(self.buffer) - len(_SEPARATOR) + 1))
                if not self._fill():
                    self._advance(len(self.buffer))
                    return False
                continue
            self._advance(found + 1)
            if self._at_separator(trust=False):
                return True
            self._advance(self.position + 1)

    def header_block(self) -> bytes:
        """The header lines after a From_ line, up to the blank line (consumed) or a From_ line."""
        lines: list[bytes] = []
        size = 0
        while True:
            line = self.read_line()
            if line in (b"", b"\n", b"\r\n"):
                return b"".join(lines)
            if line.startswith(b"From ") and is_separator(line):  # a message without a body
                self.unread(line)
                return b"".join(lines)
            if size < MAX_HEADER:
                lines.append(line)
                size += len(line)


def split_mbox(file: BinaryIO, offset: int = 0, line: int = 1) -> Iterator[MboxMessage]:
    """The messages of an mbox from `offset` (a From_ line's start, or 0), headers only."""
    reader = _Reader(file, offset, line)
    found = reader.next_separator(trust_first=True)
    while found:
        start, start_line = reader.offset, reader.line
        separator = reader.read_line()
        header = reader.header_block()
        found = reader.next_separator()
        yield MboxMessage(start, start_line, separator, header, reader.offset, reader.line)


# --- the source -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _FileState:
    """How far a file was read, and what it looked like then: {"offset", "line", "size", ...}."""

    offset: int
    line: int
    size: int
    mtime_ns: int
    head: str  # hash of the first 4 KB (or less, in a smaller file)

    @classmethod
    def load(cls, saved: object) -> _FileState | None:
        """The saved state; None when missing or not of this shape (then: from the start)."""
        if not isinstance(saved, dict) or set(saved) != _STATE_KEYS:
            return None
        numbers = [saved[key] for key in _STATE_KEYS if key != "head"]
        if not all(type(n) is int and n >= 0 for n in numbers) or not isinstance(
            saved["head"], str
        ):
            return None
        return cls(**saved)

    def dump(self) -> dict[str, int | str]:
        return {"offset": self.offset, "line": self.line, "size": self.size,
                "mtime_ns": self.mtime_ns, "head": self.head}  # fmt: skip


_STATE_KEYS = frozenset({"offset", "line", "size", "mtime_ns", "head"})


def _head_hash(file: BinaryIO, size: int) -> str:
    file.seek(0)
    return hashlib.blake2b(file.read(min(size, _HEAD_BYTES)), digest_size=16).hexdigest()


def _resume_point(saved: _FileState | None, file: BinaryIO, size: int) -> tuple[int, int]:
    """Where to go on reading: the saved offset if the file only grew since, else the start."""
    if saved is None or size < saved.size or saved.offset > size:
        return 0, 1
    if _head_hash(file, saved.size) != saved.head:
        return 0, 1  # rewritten: the mail client expunged or changed a message
    file.seek(saved.offset)
    if saved.offset < size and file.read(5) != b"From ":
        return 0, 1  # something before the old end changed length
    return saved.offset, saved.line


def _looks_like_mbox(path: Path) -> bool:
    """Empty or beginning with a From_ line; an unreadable file is taken, to be warned about."""
    try:
        with path.open("rb") as file:
            start = file.read(5)
    except OSError:
        return True
    return start in (b"", b"From ")


def _mbox_files(root: Path) -> list[Path]:
    if root.is_file():
        if not os.access(root, os.R_OK):
            raise SourceError(f"cannot read {root}: check its permissions")
        if not _looks_like_mbox(root):
            raise SourceError(f"{root} is not an mbox file: it does not begin with a 'From ' line")
        return [root]
    files = [path for path in find_files(root, ("",)) if _looks_like_mbox(path)]
    if not files:
        raise SourceError(f"no mbox files (files beginning with a 'From ' line) in {root}")
    return files


class MboxSource:
    """Mail in mbox files (mutt, Thunderbird, Gmail's Takeout, procmail): one item per message."""

    Options: ClassVar[type[MboxOptions]] = MboxOptions
    type: ClassVar[str] = "mbox"

    def __init__(self, options: MboxOptions, context: Context) -> None:
        self.options = options
        self.context = context

    def check(self) -> list[str]:
        try:
            files = _mbox_files(self.options.path)
        except SourceError as error:
            return [str(error)]
        return [f"{path} cannot be read" for path in files if not os.access(path, os.R_OK)]

    def scan(self, cursor: Cursor) -> Iterator[Interaction]:
        root = self.options.path
        files = _mbox_files(root)
        saved = cursor.state.get("files")
        states: dict[str, object] = dict(saved) if isinstance(saved, dict) else {}
        cursor.state["files"] = states
        names = {self._name(path): path for path in files}
        for gone in set(states) - set(names):
            del states[gone]
        for name, path in names.items():
            yield from self._scan_file(path, name, cursor, states)

    def _name(self, path: Path) -> str:
        root = self.options.path
        return path.name if path == root else path.relative_to(root).as_posix()

    def _scan_file(
        self, path: Path, name: str, cursor: Cursor, states: dict[str, object]
    ) -> Iterator[Interaction]:
        saved = _FileState.load(states.get(name))
        try:
            with path.open("rb") as file:
                status = os.fstat(file.fileno())
                if saved and (saved.size, saved.mtime_ns) == (status.st_size, status.st_mtime_ns):
                    return
                yield from self._read_file(file, path, name, saved, status, cursor, states)
        except FileNotFoundError:
            return  # removed since it was listed
        except OSError as error:
            self.context.warn(path, f"cannot read this mbox file: {error.strerror}")

    def _read_file(
        self,
        file: BinaryIO,
        path: Path,
        name: str,
        saved: _FileState | None,
        status: os.stat_result,
        cursor: Cursor,
        states: dict[str, object],
    ) -> Iterator[Interaction]:
        size, modified = status.st_size, datetime.fromtimestamp(status.st_mtime, UTC)
        offset, line = _resume_point(saved, file, size)
        head = _head_hash(file, size)
        progress = _FileState(offset, line, size, status.st_mtime_ns, head)
        for message in split_mbox(file, offset, line):
            progress = _FileState(message.end, message.end_line, size, status.st_mtime_ns, head)
            states[name] = progress.dump()
            interaction = self._interaction(path, name, message, modified)
            if interaction is not None and not cursor.known(interaction.ref):
                yield interaction
        states[name] = progress.dump()

    def _interaction(
        self, path: Path, name: str, message: MboxMessage, modified: datetime
    ) -> Interaction | None:
        headers = parse_headers(message.header)
        interaction = headers.interaction(
            source=self.context.name,
            ref=headers.message_id or f"{name}:offset:{message.offset}",
            evidence=f"{path}:{message.line}",
            fallback_at=separator_date(message.separator) or modified,
        )
        if interaction is None:
            self.context.warn(path, "no From address in the header; message skipped", message.line)
        return interaction
