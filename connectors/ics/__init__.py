"""The `ics` source: meetings from iCalendar files, one .ics file, a folder of them, or a vdir.

Every occurrence of every VEVENT that started before now becomes one MEETING `Interaction`; whether
it counts as contact (cancelled, declined, too big, without the user) is for `syncd.rules` to judge.
This module holds the source, its options and its cursor of files; a file's text is cut into
components and its events parsed in connectors.ics.text, and the events become meetings, their
recurrences expanded, in connectors.ics.meetings.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Literal

from connectors.base import ConfigPath, ConnectorOptions, Context, Cursor, SourceError, handed_over
from connectors.files import find_files
from connectors.ics.meetings import meetings_in
from connectors.ics.text import split_components
from syncd.model import Interaction

__all__ = ["IcsOptions", "IcsSource", "meetings_in", "split_components"]


class IcsOptions(ConnectorOptions):
    type: Literal["ics"]
    path: ConfigPath


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Older Outlook exports are in the Windows code page.
        return data.decode("cp1252", errors="replace")


def _unchanged_since(entry: Any, stamp: dict[str, int]) -> datetime | None:
    """When the file, unchanged since then, was last expanded up to; None if it must be re-read."""
    if not isinstance(entry, dict) or any(entry.get(key) != value for key, value in stamp.items()):
        return None
    try:
        until = datetime.fromisoformat(str(entry.get("until")))
    except ValueError:
        return None
    return until.astimezone(UTC) if until.tzinfo is not None else None


class IcsSource:
    """Meetings from an .ics file, a folder of .ics files, or a vdir.

    `cursor.state` is {"files": {path: {"mtime_ns", "size", "until"}}}: an unchanged file is only
    expanded over the time that passed since `until`; a changed one is read again from its start.
    """

    type: ClassVar[str] = "ics"
    Options: ClassVar[builtins.type[IcsOptions]] = IcsOptions

    def __init__(self, options: IcsOptions, context: Context) -> None:
        self.options = options
        self.context = context

    def check(self) -> list[str]:
        path = self.options.path
        if not path.exists():
            return [f"{path} does not exist; point `path` at an .ics file or a folder of them"]
        needed = os.R_OK | os.X_OK if path.is_dir() else os.R_OK
        if not os.access(path, needed):
            return [f"{path} cannot be read by this user; check its permissions"]
        return []

    def scan(self, cursor: Cursor) -> Iterator[Interaction]:
        files = cursor.state.get("files")
        if not isinstance(files, dict):
            files = cursor.state["files"] = {}
        now = self.context.now.astimezone(UTC)
        present: set[str] = set()
        for path in find_files(self.options.path, (".ics",)):
            present.add(str(path))
            yield from self._scan_file(path, files, now)
        for gone in set(files) - present:
            del files[gone]

    def _scan_file(self, path: Path, files: dict[str, Any], now: datetime) -> Iterator[Interaction]:
        try:
            status = path.stat()
            stamp = {"mtime_ns": status.st_mtime_ns, "size": status.st_size}
            since = _unchanged_since(files.get(str(path)), stamp)
            if since is not None and since >= now:
                return
            text = _decode(path.read_bytes())
        except OSError as error:
            self._unreadable(path, error)
            return
        meetings = meetings_in(text, path, self.context, since, now)
        if meetings is None:
            return
        entry = {**stamp, "until": now.isoformat()}
        yield from handed_over(meetings, partial(files.__setitem__, str(path), entry))

    def _unreadable(self, path: Path, error: OSError) -> None:
        reason = error.strerror or str(error)
        if path == self.options.path:
            raise SourceError(f"cannot read {path}: {reason}; check that this user may read it")
        self.context.warn(path, f"cannot be read ({reason}); skipped")
