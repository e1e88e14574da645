"""The file sinks: follow-ups as VTODO/VEVENT items in one .ics file (`ics`) or a vdir (`vdir`).

Both render a `Reminder` the same way and read back what khal, todoman or any calendar program
made of it since. Only items that carry X-SYNCD-PERSON are ever changed or removed; everything
else in the file or folder is kept byte for byte. Writes are atomic and skipped when nothing
would change, so a re-run neither changes a byte nor touches a file's mtime.
"""

from __future__ import annotations

import builtins
import functools
import hashlib
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar, Literal

from icalendar.parser import Contentline

from connectors.base import ConfigPath, ConnectorOptions, Context, SinkError
from connectors.ical import FOOTER, HEADER, PERSON, etag, render, state_of
from syncd.model import FollowUpStatus, Reminder, ReminderState

_FOLD = re.compile(r"\r?\n[ \t]")
_SAFE_NAME = re.compile(r"[A-Za-z0-9@_+=-][A-Za-z0-9@._+=-]{0,150}")


class Unreadable(ValueError):
    """The text is not a calendar syncd can take apart; `line` is where it went wrong."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class Block:
    """A piece of a calendar file as found: one line of the calendar itself, or a whole item."""

    text: str
    line: int  # where it starts in the file, from 1
    uid: str | None = None  # items only
    ours: bool = False  # the item carries X-SYNCD-PERSON


def _lines(text: str) -> list[str]:
    # Split after "\n" only: other line breaks may sit inside a value.
    return [line for line in re.split(r"(?<=\n)", text) if line]


def _marker(line: str) -> tuple[str, str] | None:
    """("BEGIN", name) or ("END", name) for a component boundary; None for a property line.

    A folded line's continuation starts with a space: it is never a boundary.
    """
    if not line or line[0] not in "BbEe\ufeff":  # most lines; this is the hot path
        return None
    kind, colon, name = line.lstrip("\ufeff").partition(":")
    if colon and kind.upper() in ("BEGIN", "END"):
        return kind.upper(), name.strip().upper()
    return None


def _track(stack: list[str], line: str, number: int) -> None:
    marker = _marker(line)
    if marker is None:
        return
    kind, name = marker
    if kind == "BEGIN":
        if not stack and name != "VCALENDAR":
            raise Unreadable(number, f"BEGIN:{name} outside of a VCALENDAR")
        stack.append(name)
    elif not stack or stack[-1] != name:
        raise Unreadable(number, f"END:{name} does not close BEGIN:{stack[-1] if stack else name}")
    else:
        stack.pop()


def split_calendar(text: str) -> list[Block]:
    """Take a calendar file apart into its own lines and its items, each kept as written."""
    blocks: list[Block] = []
    stack: list[str] = []
    item: list[str] = []
    number = 0
    for number, line in enumerate(_lines(text), 1):
        inside = len(stack) >= 2
        _track(stack, line, number)
        if not (inside or len(stack) >= 2):
            blocks.append(Block(line, number))
            continue
        item.append(line)
        if len(stack) == 1:
            text_of_item = "".join(item)
            blocks.append(Block(text_of_item, number - len(item) + 1, *_identify(text_of_item)))
            item = []
    if stack:
        raise Unreadable(number, f"BEGIN:{stack[-1]} is never closed")
    if not any(_marker(block.text) == ("BEGIN", "VCALENDAR") for block in blocks):
        raise Unreadable(1, "no BEGIN:VCALENDAR: this is not an iCalendar file")
    return blocks


@functools.lru_cache(maxsize=4096)  # every put reads the whole file again; most items are as before
def _identify(text: str) -> tuple[str | None, bool]:
    """The item's UID and whether syncd wrote it, from its own lines (so even a broken item)."""
    uid, ours, depth = None, False, 0
    for content in re.split(r"\r?\n", _FOLD.sub("", text))[1:]:
        marker = _marker(content)
        if marker is not None:
            depth += 1 if marker[0] == "BEGIN" else -1
            continue
        if depth != 0:
            continue  # properties of an alarm inside the item do not name the item
        name = content.partition(":")[0].partition(";")[0].strip().upper()
        ours = ours or name == PERSON
        if name == "UID" and uid is None:
            uid = _value(content)
    return uid, ours


def _value(content: str) -> str | None:
    try:
        # icalendar's own line parser, so a UID is read here exactly as icalendar reads it
        return Contentline(content).parts()[2]  # type: ignore[no-untyped-call]
    except ValueError:
        return None


def _is_ours(text: str, uid: str) -> bool:
    try:
        block = find_item(split_calendar(text), uid)
    except Unreadable:
        return False
    return block is not None and block.ours


def find_item(blocks: Iterable[Block], uid: str) -> Block | None:
    return next((block for block in blocks if block.uid == uid), None)


def item_state(
    uid: str, block: Block | None, tag: str, file: Path, context: Context
) -> ReminderState:
    """What the user made of one follow-up; an item that cannot be read is open, never deleted."""
    if block is None:
        return ReminderState(uid, FollowUpStatus.DELETED)
    try:
        changed = datetime.fromtimestamp(file.stat().st_mtime, UTC)
        return state_of(uid, block.text, tag, context.timezone, changed)
    except Exception as error:  # icalendar raises many kinds on broken input
        context.warn(file, f"follow-up {uid} cannot be read, left as it is: {error}", block.line)
        return ReminderState(uid, FollowUpStatus.OPEN)


def read_text(path: Path) -> str | None:
    """The file's text (bytes that are not UTF-8 kept as they are), or None when it is missing."""
    try:
        return path.read_bytes().decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise SinkError(f"cannot read {path}: {error.strerror or error}") from error


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` so that readers see the old file or the new one, never half."""
    # Hidden, so that khal and vdirsyncer skip it while it is being written.
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = path.stat().st_mode & 0o777 if path.exists() else None
        descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(descriptor, "wb") as out:
            if mode is not None:
                os.fchmod(out.fileno(), mode)
            out.write(text.encode("utf-8", "surrogateescape"))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except OSError as error:
        temp.unlink(missing_ok=True)
        raise SinkError(f"cannot write {path}: {error.strerror or error}") from error


def folder_problems(folder: Path) -> list[str]:
    """Why files cannot be written in `folder` (or in the folders syncd would create for it)."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return [f"{folder} cannot be created: {existing} is not a folder"]
    if not os.access(existing, os.W_OK | os.X_OK):
        return [f"{existing} is not writable; syncd needs to write follow-ups in {folder}"]
    return []


class IcsFileOptions(ConnectorOptions):
    type: Literal["ics"]
    path: ConfigPath


class VdirOptions(ConnectorOptions):
    type: Literal["vdir"]
    path: ConfigPath


class _FileSink:
    """What both file sinks share: where they write, and no mass deletion when it is gone."""

    def __init__(self, options: IcsFileOptions | VdirOptions, context: Context) -> None:
        self.path = options.path
        self.context = context

    def read_back(self, uids: Iterable[str]) -> Iterator[ReminderState]:
        wanted = list(uids)
        if wanted and not self.path.exists():  # a disk not mounted is no mass deletion
            raise SinkError(
                f"{self.path} is missing, yet syncd wrote follow-ups there; restore it (is a disk "
                "not mounted?), or remove this sink from the config"
            )
        return self._states(wanted) if wanted else iter(())

    def _states(self, uids: list[str]) -> Iterator[ReminderState]:
        raise NotImplementedError


class IcsFileSink(_FileSink):
    """Follow-ups in one .ics file, sorted by UID after the items syncd did not write."""

    type: ClassVar[str] = "ics"
    Options: ClassVar[builtins.type[ConnectorOptions]] = IcsFileOptions

    def put(self, reminder: Reminder) -> str:
        old = read_text(self.path)
        blocks = self._blocks_to_write(old)
        newline = "\n" if old and not old.split("\n", 1)[0].endswith("\r") else "\r\n"
        item = Block(render(reminder, self.context.timezone, newline), 0, reminder.uid, True)
        theirs = find_item((block for block in blocks if not block.ours), reminder.uid)
        if theirs is not None:
            raise SinkError(
                f"{self.path}:{theirs.line}: an item with UID {reminder.uid} that syncd did not "
                "write is in the way; syncd leaves it alone and will not write this follow-up"
            )
        self._write(old, _assemble(blocks, reminder.uid, item))
        return etag(item.text)

    def remove(self, uid: str) -> None:
        old = read_text(self.path)
        if old is None:
            return
        self._write(old, _assemble(self._blocks_to_write(old), uid, None))

    def _states(self, uids: list[str]) -> Iterator[ReminderState]:
        try:
            blocks = split_calendar(read_text(self.path) or "")
        except Unreadable as error:
            self.context.warn(self.path, f"follow-ups left as they are: {error}", error.line)
            yield from (ReminderState(uid, FollowUpStatus.OPEN) for uid in uids)
            return
        for uid in uids:
            block = find_item(blocks, uid)
            tag = etag(block.text) if block else ""
            yield item_state(uid, block, tag, self.path, self.context)

    def check(self) -> list[str]:
        if self.path.is_dir():
            return [f'{self.path} is a folder; use type = "vdir" for a folder of .ics files']
        if problems := folder_problems(self.path.parent):
            return problems
        if self.path.exists() and not os.access(self.path, os.R_OK | os.W_OK):
            return [f"{self.path} is not readable and writable"]
        try:
            self._blocks_to_write(read_text(self.path))
        except SinkError as error:
            return [str(error)]
        return []

    def _write(self, old: str | None, new: str) -> None:
        if old != new:
            write_atomically(self.path, new)

    def _blocks_to_write(self, text: str | None) -> list[Block]:
        if not text or not text.strip():
            return split_calendar(HEADER + FOOTER)
        try:
            return split_calendar(text)
        except Unreadable as error:
            raise SinkError(
                f"{self.path}:{error.line}: {error}; syncd will not write into a file it cannot "
                "take apart: fix it or point the sink at another file"
            ) from error


def _assemble(blocks: list[Block], uid: str, item: Block | None) -> str:
    """The file with `uid` replaced by `item` (or dropped); syncd's items sorted, before the end."""
    theirs = [block for block in blocks if not block.ours]
    ours = [block for block in blocks if block.ours and block.uid != uid]
    ours = sorted([*ours, *([item] if item else [])], key=lambda block: block.uid or "")
    ends = [i for i, block in enumerate(theirs) if _marker(block.text) == ("END", "VCALENDAR")]
    at = ends[-1] if ends else len(theirs)
    return "".join(block.text for block in [*theirs[:at], *ours, *theirs[at:]])


class VdirSink(_FileSink):
    """Follow-ups as `<uid>.ics` files in a vdir folder, as khal, todoman and vdirsyncer use it."""

    type: ClassVar[str] = "vdir"
    Options: ClassVar[builtins.type[ConnectorOptions]] = VdirOptions

    def file_for(self, uid: str) -> Path:
        """`<uid>.ics`; a UID that is not a safe file name gets a readable name plus its hash."""
        if _SAFE_NAME.fullmatch(uid):
            return self.path / f"{uid}.ics"
        readable = re.sub(r"[^A-Za-z0-9@_+=-]", "_", uid)[:80]
        return self.path / f"{readable}-{hashlib.sha256(uid.encode()).hexdigest()[:16]}.ics"

    def put(self, reminder: Reminder) -> str:
        file = self.file_for(reminder.uid)
        new = HEADER + render(reminder, self.context.timezone) + FOOTER
        old = read_text(file)
        if old is not None and old != new and not _is_ours(old, reminder.uid):
            raise SinkError(
                f"{file} holds something syncd did not write; syncd leaves it alone and will not "
                f"write follow-up {reminder.uid}"
            )
        if old != new:
            write_atomically(file, new)
        return etag(new)

    def remove(self, uid: str) -> None:
        file = self.file_for(uid)
        old = read_text(file)
        if old is None:
            return
        if not _is_ours(old, uid):
            self.context.warn(file, f"not removed: it is not follow-up {uid} as syncd wrote it")
            return
        try:
            file.unlink()
        except OSError as error:
            raise SinkError(f"cannot remove {file}: {error.strerror or error}") from error

    def _states(self, uids: list[str]) -> Iterator[ReminderState]:
        return (self._state(uid) for uid in uids)

    def check(self) -> list[str]:
        if self.path.exists() and not self.path.is_dir():
            return [f'{self.path} is a file; use type = "ics" for one .ics file']
        return folder_problems(self.path)

    def _state(self, uid: str) -> ReminderState:
        file = self.file_for(uid)
        text = read_text(file)
        if text is None:
            return ReminderState(uid, FollowUpStatus.DELETED)
        try:
            block = find_item(split_calendar(text), uid)
        except Unreadable as error:
            self.context.warn(file, f"cannot be read, follow-up left as it is: {error}", error.line)
            return ReminderState(uid, FollowUpStatus.OPEN)
        return item_state(uid, block, etag(text), file, self.context)
