"""Reading a LinkedIn data export: where it is, what is left of a damaged zip, and its CSV rows.

The bytes become rows here; what the rows mean (connections, messages) is the package's concern.
Every problem is reported with the file and line it is in, and costs only what it touches.
"""

from __future__ import annotations

import csv
import glob
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from itertools import islice
from pathlib import Path, PurePosixPath

from connectors.base import SourceError
from connectors.files import find_files

# Reports bad input at a line (or, with None, the whole) of the file being read.
Warn = Callable[[int | None, str], None]
# Reports bad input in a file or zip member of the export (`Context.warn` without a line).
WarnAbout = Callable[[str, str], None]

CONNECTIONS, MESSAGES = "connections.csv", "messages.csv"

# --- where the export is ---------------------------------------------------------------------

_GLOB = re.compile(r"[*?[]")
_HOW_TO = (
    "download your data from LinkedIn (Settings, Data privacy, Get a copy of your data) and "
    "point `path` at the zip, its unpacked folder, or a glob such as ~/Downloads/*LinkedIn*.zip"
)
_NAME_DATE = re.compile(r"(\d{1,2})-(\d{1,2})-(\d{4})")


def _newness(path: Path) -> tuple[date, float]:
    modified = path.stat().st_mtime
    match = _NAME_DATE.search(path.name)
    try:
        named = date(int(match[3]), int(match[1]), int(match[2])) if match else None
    except ValueError:
        named = None
    return named or datetime.fromtimestamp(modified).date(), modified


def locate(path: Path) -> Path:
    """The export `path` names; a glob picks the newest match (date in its name, else mtime)."""
    if path.exists():
        return path
    found = [Path(match) for match in glob.glob(str(path))] if _GLOB.search(str(path)) else []
    if not found:
        raise SourceError(f"{path}: no such file or folder; {_HOW_TO}")
    try:
        return max(found, key=_newness)
    except OSError as error:  # removed while we looked
        raise SourceError(f"cannot read {error.filename}: {error.strerror}") from error


def _is_wanted(name: str) -> bool:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    hidden = any(part.startswith((".", "__MACOSX")) for part in parts)
    return bool(parts) and not hidden and parts[-1].lower() in (CONNECTIONS, MESSAGES)


def _wanted(names: list[str]) -> list[str]:
    """Connections.csv and messages.csv among `names`: the shallowest of each, if any."""
    depth_first = sorted((n for n in names if _is_wanted(n)), key=lambda n: -n.count("/"))
    return list({PurePosixPath(name).name.lower(): name for name in depth_first}.values())


def _folder_files(folder: Path) -> list[Path]:
    found = [f.relative_to(folder).as_posix() for f in find_files(folder, (".csv",))]
    return [folder / name for name in _wanted(found)]


def export_version(export: Path) -> list[list[object]]:
    """What `export` is now, by size and mtime: a changed or newer export reads again."""
    files = _folder_files(export) if export.is_dir() else [export]
    try:
        stats = [(file, file.stat()) for file in files]
    except OSError as error:
        raise SourceError(f"cannot read {export}: {error.strerror}") from error
    return sorted([str(file), stat.st_size, stat.st_mtime_ns] for file, stat in stats)


# --- reading the export ----------------------------------------------------------------------


@dataclass(frozen=True)
class ExportFile:
    """One CSV of the export, as a user finds it (`export.zip!messages.csv`), and its bytes."""

    label: str
    raw: bytes
    whole: bool = True  # False: the download or the zip is cut off inside this file

    @property
    def kind(self) -> str:
        member = self.label.rsplit("!", 1)[-1]  # `export.zip!folder/messages.csv`
        return PurePosixPath(member.replace("\\", "/")).name.lower()


_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_LOCAL_SIGNATURE = b"PK\x03\x04"
_CHUNK = 1 << 16


def _inflate(raw: bytes, start: int) -> tuple[bytes, bool]:
    """Deflated data from `start` for as long as it is intact, and whether it ended properly."""
    inflater, view = zlib.decompressobj(-zlib.MAX_WBITS), memoryview(raw)
    parts: list[bytes] = []
    try:
        for offset in range(start, len(raw), _CHUNK):
            parts.append(inflater.decompress(view[offset : offset + _CHUNK]))
            if inflater.eof:
                break
    except zlib.error:
        pass
    return b"".join(parts), inflater.eof


def _salvaged(path: Path, raw: bytes) -> list[ExportFile]:
    """The wanted members of a zip whose table of contents (at its end) is cut off or damaged,
    found by their local headers: a half-downloaded export still yields what arrived."""
    found: list[ExportFile] = []
    at = raw.find(_LOCAL_SIGNATURE)
    while 0 <= at <= len(raw) - _LOCAL_HEADER.size:
        _, _, flags, method, _, _, _, size, _, name_size, extra_size = _LOCAL_HEADER.unpack_from(
            raw, at
        )
        start = at + _LOCAL_HEADER.size
        name = raw[start : start + name_size].decode(
            "utf-8" if flags & 0x800 else "cp437", errors="replace"
        )
        start += name_size + extra_size
        if _is_wanted(name) and method == zipfile.ZIP_DEFLATED:
            data, whole = _inflate(raw, start)
            found.append(ExportFile(f"{path}!{name}", data, whole))
        elif _is_wanted(name) and method == zipfile.ZIP_STORED and not flags & 0x8:
            data = raw[start : start + size]
            found.append(ExportFile(f"{path}!{name}", data, len(data) == size))
        at = raw.find(_LOCAL_SIGNATURE, at + 4)
    return found


def _zip_files(path: Path, warn: WarnAbout) -> list[ExportFile]:
    try:
        with zipfile.ZipFile(path) as archive:
            members = [archive.getinfo(name) for name in _wanted(archive.namelist())]
            return [f for info in members if (f := _member(archive, path, info, warn))]
    except zipfile.BadZipFile as error:
        found = _salvaged(path, path.read_bytes())
        if not found:
            raise SourceError(
                f"{path} is damaged or incomplete ({error}) and holds no readable "
                "Connections.csv or messages.csv; download the export again"
            ) from error
        warn(str(path), f"damaged or incomplete zip ({error}); read what is left of it")
        return found


def _member(
    archive: zipfile.ZipFile, path: Path, info: zipfile.ZipInfo, warn: WarnAbout
) -> ExportFile | None:
    label = f"{path}!{info.filename}"
    try:
        return ExportFile(label, archive.read(info))
    except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, ValueError) as error:
        warn(label, f"cannot be unpacked ({error}); its rows were not imported")
        return None


def read_export(export: Path, warn: WarnAbout) -> list[ExportFile]:
    """Connections.csv and messages.csv of a zip, a folder or a single CSV file.

    Raises SourceError when none of them can be read: the user pointed at the wrong thing.
    """
    try:
        if export.is_dir():
            files = [ExportFile(str(file), file.read_bytes()) for file in _folder_files(export)]
        elif zipfile.is_zipfile(export) or export.suffix.lower() == ".zip":
            files = _zip_files(export, warn)
        else:
            files = (
                [ExportFile(str(export), export.read_bytes())] if _is_wanted(export.name) else []
            )
    except OSError as error:
        raise SourceError(f"cannot read {export}: {error.strerror or error}") from error
    if not files:
        raise SourceError(f"no readable Connections.csv or messages.csv in {export}; {_HOW_TO}")
    return sorted(files, key=lambda file: file.kind)  # connections first


# --- CSV -------------------------------------------------------------------------------------

_LINE_END = re.compile(r"\r\n|\r|\n")
_DELIMITERS = (",", ";", "\t")  # a spreadsheet may save with its locale's list separator
_HEADER_SEARCH = 20  # recent exports put a `Notes:` paragraph and a blank line above the header
_SPREADSHEET_ERRORS = {"#N/A", "#NAME?", "#VALUE!", "#REF!", "#NUM!", "#NULL!", "#DIV/0!"}


def _decoded(file: ExportFile, warn: Warn) -> str:
    raw = file.raw
    if not file.whole:
        raw = raw[: raw.rfind(b"\n") + 1]  # the last line is cut off mid-way
        warn(raw.count(b"\n") + 1, "the file is cut off at this line; the rest was not read")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16", errors="replace")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        warn(raw.count(b"\n", 0, error.start) + 1, "not UTF-8; read as Windows-1252")
        return raw.decode("cp1252", errors="replace")


@dataclass(frozen=True)
class Row:
    line: int
    cells: dict[str, str]  # upper-cased column name -> value, stripped

    def __getitem__(self, column: str) -> str:
        return self.cells.get(column, "")


def _header(lines: list[str], required: set[str]) -> tuple[int, str, list[str]] | None:
    for index, line in enumerate(lines[:_HEADER_SEARCH]):
        for delimiter in _DELIMITERS:
            try:
                cells = next(csv.reader([line], delimiter=delimiter), [])
            except csv.Error:
                continue
            names = [name.strip().upper() for name in cells]
            if required <= set(names):
                return index, delimiter, names
    return None


def _fitted(fields: list[str], width: int, spanned: int) -> list[str] | None:
    """The record as wide as the header: a spreadsheet drops trailing empty cells."""
    if len(fields) > width and not any(field.strip() for field in fields[width:]):
        fields = fields[:width]
    if len(fields) == width or (len(fields) < width and spanned == 1):
        return fields + [""] * (width - len(fields))
    return None


def _records(lines: list[str], begin: int, delimiter: str, width: int, warn: Warn) -> Iterator[
    tuple[int, list[str]]
]:  # fmt: skip
    """Records and their first line; one that a stray quote ran into later rows costs that line,
    and reading resumes at the next."""
    while begin < len(lines):
        reader, base = csv.reader(islice(lines, begin, None), delimiter=delimiter), begin
        try:
            for fields in reader:
                end = base + reader.line_num
                row = _fitted(fields, width, end - begin)
                if row is None and end - begin > 1:
                    warn(begin + 1, "a quote opened on this line is not closed; line skipped")
                    break
                if row is None:
                    warn(begin + 1, f"{len(fields)} columns, the header has {width}; row skipped")
                else:
                    yield begin + 1, row
                begin = end
            else:
                return
        except csv.Error as error:
            warn(begin + 1, f"not readable as CSV ({error}); line skipped")
        begin += 1


def read_rows(file: ExportFile, required: set[str], warn: Warn) -> Iterator[Row]:
    """The rows below the header row, columns by name; empty rows and spreadsheet errors are
    reported."""
    lines = _LINE_END.split(_decoded(file, warn))
    if lines[-1] == "":
        lines.pop()  # what follows the last line end
    lines = [line + "\n" for line in lines]
    found = _header(lines, required)
    if found is None:
        warn(None, f"no header row with the columns {', '.join(sorted(required))}; not read")
        return
    index, delimiter, names = found
    for line, fields in _records(lines, index + 1, delimiter, len(names), warn):
        cells = dict(zip(names, (field.strip() for field in fields), strict=True))
        if errors := [name for name, value in cells.items() if value in _SPREADSHEET_ERRORS]:
            warn(line, f"spreadsheet error in {', '.join(errors).title()}; taken as empty")
            cells.update(dict.fromkeys(errors, ""))
        if not any(cells.values()):
            warn(line, "empty row; skipped")
        else:
            yield Row(line, cells)
