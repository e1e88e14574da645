"""The files a file-based connector reads: one file, a folder, or a vdir (a folder of folders)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from connectors.base import SourceError


def find_files(path: Path, suffixes: tuple[str, ...]) -> Iterator[Path]:
    """Yield `path` itself, or every file below it whose name ends in one of `suffixes`, sorted.

    Hidden files and folders (vdirsyncer's `.status`, editors' swap files) are skipped. A path that
    does not exist is a `SourceError`: where the user pointed at data, finding nothing is no answer.
    """
    if path.is_file():
        yield path
        return
    if not path.is_dir():
        raise SourceError(f"{path} does not exist or is not a file or folder")
    wanted = tuple(s.lower() for s in suffixes)
    for child in sorted(path.rglob("*")):
        relative = child.relative_to(path)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if child.is_file() and child.name.lower().endswith(wanted):
            yield child
