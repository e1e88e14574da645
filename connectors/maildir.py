"""Maildir source: who wrote to whom and when, from the headers of every message in a Maildir.

Both layouts are read: Maildir++ (the inbox's cur/new at the root, folders as `.Sent`,
`.Archive.2023`), as Dovecot and Courier write it, and nested maildirs (`Sent/cur`,
`Archive/2023/cur`), as mbsync with `SubFolders Verbatim` or Dovecot's `LAYOUT=fs` write it. Folder
names are shown with `/` between levels (`Archive/2023`); the root folder is `INBOX`.

Only each file's header block is read. A re-sync lists only the cur/new folders whose modification
time changed, and reads only messages the store does not know yet, so flag changes (which rename a
file) and moves from new/ to cur/ cost a listing, not a read.
"""

from __future__ import annotations

import base64
import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar, Literal, NamedTuple

from pydantic import Field

from connectors.base import ConfigPath, ConnectorOptions, Context, Cursor, SourceError
from connectors.mailheaders import Fields, MailHeaders, headers_of
from connectors.mailpool import Result, read_ahead
from syncd.model import Interaction

DEFAULT_SKIP = ("Drafts", "Junk", "Spam", "Trash", "Deleted", "Deleted Items", "Deleted Messages")
ROOT_FOLDER = "INBOX"
_MAILDIR_PARTS = frozenset({"cur", "new", "tmp"})
_INFO_SEPARATORS = (":2,", "!2,", ";2,")  # ":" normally; "!" or ";" where ":" is not allowed
_MAX_DEPTH = 16
# A folder changed this recently may change again within the same timestamp tick after it was
# listed; its time is not recorded, so the next scan lists it again.
_SETTLE_NS = 2_000_000_000


class MaildirOptions(ConnectorOptions):
    type: Literal["maildir"]
    path: ConfigPath
    # Folder names to read (`INBOX`, `Sent`, `Archive/2023`; any case); None reads all of them.
    folders: list[str] | None = None
    # Folders not read when their last name is one of these (any case): `INBOX/Trash`, `Junk`.
    skip: list[str] = Field(default_factory=lambda: list(DEFAULT_SKIP))


@dataclass(frozen=True)
class Folder:
    name: str  # "INBOX", "Sent", "Archive/2023"
    path: Path


_MODIFIED_BASE64 = re.compile(r"&([A-Za-z0-9+,]*)-")


def _decode_utf7_part(match: re.Match[str]) -> str:
    encoded = match.group(1)
    if not encoded:
        return "&"
    data = encoded.replace(",", "/") + "=" * (-len(encoded) % 4)
    try:
        return base64.b64decode(data).decode("utf-16-be")
    except ValueError:
        return match.group(0)


def folder_name(stored: str) -> str:
    """A folder's name as the mail client shows it: IMAP servers and mbsync store names in
    modified UTF-7 ("Entw&APw-rfe" is "Entwürfe")."""
    return _MODIFIED_BASE64.sub(_decode_utf7_part, stored) if "&" in stored else stored


def is_maildir(path: str | Path) -> bool:
    return os.path.isdir(os.path.join(path, "cur")) or os.path.isdir(os.path.join(path, "new"))


def _nested_folders(path: Path, name: str, depth: int = 0) -> Iterator[Folder]:
    if is_maildir(path):
        yield Folder(name, path)
    if depth >= _MAX_DEPTH:
        return
    for child in sorted(os.scandir(path), key=lambda entry: entry.name):
        if child.name in _MAILDIR_PARTS or child.name.startswith(".") or not child.is_dir():
            continue
        yield from _nested_folders(Path(child.path), f"{name}/{folder_name(child.name)}", depth + 1)


def find_folders(root: Path) -> list[Folder]:
    """Every maildir folder under `root`, in both the Maildir++ and the nested layout."""
    folders = [Folder(ROOT_FOLDER, root)] if is_maildir(root) else []
    for entry in sorted(os.scandir(root), key=lambda entry: entry.name):
        if entry.name in _MAILDIR_PARTS or not entry.is_dir():
            continue
        if entry.name.startswith("."):  # Maildir++: ".Archive.2023" is "Archive/2023"
            name = "/".join(folder_name(part) for part in entry.name.split(".") if part)
            if name and is_maildir(entry.path):
                folders.append(Folder(name, Path(entry.path)))
        else:
            folders.extend(_nested_folders(Path(entry.path), folder_name(entry.name)))
    return folders


def is_skipped_folder(name: str, skip: Iterable[str]) -> bool:
    """Trash, Junk, Drafts...: a folder whose last name is in `skip` (`INBOX/Trash`, `Junk`)."""
    last = name.rsplit("/", 1)[-1].casefold()
    return any(last == word.casefold() for word in skip)


def split_info(file_name: str) -> tuple[str, str]:
    """A message file name as (unique name, flags): "123.M4P5.host:2,RS" -> ("123.M4P5.host", "RS").

    The unique name stays the same when the mail client changes the flags (which renames the file).
    """
    for separator in _INFO_SEPARATORS:
        unique, found, flags = file_name.partition(separator)
        if found:
            return unique, flags
    return file_name, ""


def is_trashed(flags: str) -> bool:
    """Flagged D (draft) or T (trashed): the user never sent it, or threw it away."""
    return "T" in flags or "D" in flags


def _delivery_time(unique: str) -> datetime | None:
    """Deliverers start the unique name with the delivery time in seconds."""
    stamp = unique.split(".", 1)[0]
    if not stamp.isdigit():
        return None
    try:
        return datetime.fromtimestamp(int(stamp), UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _modified(path: str) -> datetime:
    return datetime.fromtimestamp(os.stat(path).st_mtime, UTC)


class _Message(NamedTuple):
    path: str
    unique: str
    ref: str


class _Listed(NamedTuple):
    """A folder's cur/ or new/ listing whose messages have all been read: its time may be kept."""

    key: str
    modified: int


def _text(name: str) -> str:
    """A file or folder name as text that can be stored: one that is not UTF-8 (the system hands
    it over with lone surrogates) gets its odd bytes written as `\\xNN`."""
    if name.isascii():
        return name
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(name).decode("utf-8", "backslashreplace")
    return name


def _path_of(step: _Message | _Listed) -> str | None:
    return step.path if isinstance(step, _Message) else None


def _dir_times(state: dict[str, object]) -> dict[str, int]:
    dirs = state.get("dirs")
    if not isinstance(dirs, dict):
        return {}
    return {key: value for key, value in dirs.items() if isinstance(value, int)}


class MaildirSource:
    """Mail in a Maildir (Dovecot, Courier, mbsync, offlineimap, getmail): one item per message."""

    Options: ClassVar[type[MaildirOptions]] = MaildirOptions
    type: ClassVar[str] = "maildir"

    def __init__(self, options: MaildirOptions, context: Context) -> None:
        self.options = options
        self.context = context

    def check(self) -> list[str]:
        try:
            folders = self._folders()
        except SourceError as error:
            return [str(error)]
        return list(self._missing_folders(folders))

    def scan(self, cursor: Cursor) -> Iterator[Interaction]:
        folders = self._folders()
        for problem in self._missing_folders(folders):
            self.context.warn(self.options.path, problem)
        times = _dir_times(cursor.state)
        cursor.state["dirs"] = times
        visited: set[str] = set()
        for step, result in read_ahead(self._steps(folders, cursor, times, visited), _path_of):
            if isinstance(step, _Listed):
                # Every message of the listing has been yielded: the cursor may claim it.
                times[step.key] = step.modified
            elif (found := self._interaction(step, result)) is not None:
                yield found
        for key in set(times) - visited:
            del times[key]

    def _steps(
        self, folders: list[Folder], cursor: Cursor, times: dict[str, int], visited: set[str]
    ) -> Iterator[_Message | _Listed]:
        """The messages to read, folder by folder, each listing followed by its marker."""
        for folder in self._selected(folders):
            for part in ("new", "cur"):  # new/ first: a message moved to cur/ meanwhile is found
                key = f"{folder.name}/{part}"
                visited.add(key)
                yield from self._list_dir(folder, part, key, cursor, times.get(key))

    def _list_dir(
        self, folder: Folder, part: str, key: str, cursor: Cursor, seen: int | None
    ) -> Iterator[_Message | _Listed]:
        directory = os.path.join(folder.path, part)
        try:
            modified = os.stat(directory).st_mtime_ns  # before listing: later arrivals change it
            if seen == modified:
                return
            names = sorted(os.listdir(directory))
        except FileNotFoundError:
            return
        except OSError as error:
            self.context.warn(directory, f"cannot list this folder: {error.strerror}")
            return
        for file_name in names:
            unique, flags = split_info(file_name)
            if file_name.startswith(".") or is_trashed(flags):
                continue
            ref = _text(f"{folder.name}/{unique}")
            if not cursor.known(ref):
                yield _Message(f"{directory}/{file_name}", unique, ref)
        if time.time_ns() - modified > _SETTLE_NS:
            yield _Listed(key, modified)

    def _interaction(self, message: _Message, result: Result) -> Interaction | None:
        path = message.path
        if isinstance(result, FileNotFoundError):
            return None  # moved or deleted by the mail client since the listing
        if not isinstance(result, Fields):  # what reading it raised
            self.context.warn(path, f"cannot read this message: {result and result.strerror}")
            return None
        headers: MailHeaders = headers_of(result)
        try:
            at = headers.date or _delivery_time(message.unique) or _modified(path)
        except FileNotFoundError:
            return None
        except OSError as error:
            self.context.warn(path, f"cannot read this message: {error.strerror}")
            return None
        interaction = headers.interaction(
            source=self.context.name,
            ref=message.ref,
            evidence=f"<{headers.message_id}>" if headers.message_id else path,
            fallback_at=at,
        )
        if interaction is None:
            self.context.warn(path, "no From address in the header; message skipped", line=1)
        return interaction

    def _folders(self) -> list[Folder]:
        root = self.options.path
        if not root.is_dir():
            what = "is not a folder" if root.exists() else "does not exist"
            raise SourceError(f"{root} {what}; set `path` to your Maildir (the folder with cur/)")
        try:
            folders = find_folders(root)
        except OSError as error:
            raise SourceError(f"cannot read the Maildir {root}: {error.strerror}") from error
        if not folders:
            raise SourceError(f"no Maildir folders (with cur/ and new/) found in {root}")
        return folders

    def _selected(self, folders: list[Folder]) -> Iterator[Folder]:
        wanted = self.options.folders
        chosen = None if wanted is None else {name.casefold() for name in wanted}
        for folder in folders:
            if chosen is not None and folder.name.casefold() not in chosen:
                continue
            if not is_skipped_folder(folder.name, self.options.skip):
                yield folder

    def _missing_folders(self, folders: list[Folder]) -> Iterator[str]:
        present = {folder.name.casefold() for folder in folders}
        for name in self.options.folders or ():
            if name.casefold() not in present:
                known = ", ".join(folder.name for folder in folders)
                yield f"folder {name!r} is not in {self.options.path} (it has: {known})"
