"""The `vcard` source: address books as .vcf files, folders of them, or vdirs (vdirsyncer, khard).

Files are split into BEGIN:VCARD..END:VCARD blocks and parsed line by line here rather than with
vobject: real exports carry quoted-printable soft line breaks (vCard 2.1), folds inside multi-byte
characters and stray garbage lines, and one such quirk must cost one line or one card, not the file.
"""

from __future__ import annotations

import base64
import os
import quopri
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any, ClassVar, Literal

from connectors.base import ConfigPath, ConnectorOptions, Context, Cursor, SourceError
from connectors.files import find_files
from syncd.model import Card, Identity, IdentityKind

SUFFIXES = (".vcf", ".vcard")

# Reports bad input at a line of the file being read.
Warn = Callable[[int, str], None]


class VCardOptions(ConnectorOptions):
    type: Literal["vcard"]
    path: ConfigPath


# --- lines -----------------------------------------------------------------------------------

_LINE_END = re.compile(rb"\r\n|\r|\n")
_UTF8_BOM = b"\xef\xbb\xbf"
_CARD_MARKER = re.compile(rb"^\s*(BEGIN|END)\s*:\s*VCARD\s*$", re.IGNORECASE)


@dataclass
class _Line:
    number: int  # where it starts in the file, 1-based
    chunks: list[bytes] = field(default_factory=list)

    def quoted_printable_continues(self) -> bool:
        """A vCard 2.1 quoted-printable value ending in "=" goes on at the next line's start."""
        header = self.chunks[0].split(b":", 1)[0].upper()
        return b"QUOTED-PRINTABLE" in header and self.chunks[-1].endswith(b"=")


def _unfolded_lines(raw: bytes) -> list[_Line]:
    """Join folded lines, on bytes: exporters fold at 75 octets, even inside a UTF-8 character."""
    lines: list[_Line] = []
    for number, physical in enumerate(_LINE_END.split(raw), start=1):
        # A soft break first: the next line is value, even when it starts with a space.
        if lines and lines[-1].quoted_printable_continues() and not _CARD_MARKER.match(physical):
            lines[-1].chunks[-1] = lines[-1].chunks[-1][:-1]
            lines[-1].chunks.append(physical)
        elif lines and physical[:1] in (b" ", b"\t"):
            lines[-1].chunks.append(physical[1:])
        else:
            lines.append(_Line(number, [physical]))
    return lines


def _decoded_lines(raw: bytes) -> list[tuple[int, str]]:
    """Logical lines and where they start; a file that is not UTF-8 is read as Windows-1252."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raw = raw.decode("utf-16", errors="replace").encode("utf-8")
    lines = _unfolded_lines(raw.removeprefix(_UTF8_BOM))
    # Decoded after unfolding: a fold inside a UTF-8 character is no reason to read it as 1252.
    text = _charset_decode(b"\n".join(b"".join(line.chunks) for line in lines), None)
    return list(zip((line.number for line in lines), text.split("\n"), strict=True))


# --- blocks ----------------------------------------------------------------------------------


@dataclass
class _Block:
    """The lines of one BEGIN:VCARD..END:VCARD, and where it stands in its file."""

    line: int  # of BEGIN:VCARD
    position: int  # 1-based count of BEGIN:VCARD in the file
    lines: list[tuple[int, str]] = field(default_factory=list)


def _marker(text: str) -> str | None:
    # A BOM mid-file is what `cat *.vcf > all.vcf` leaves of files saved on Windows.
    compact = "".join(text.replace("\ufeff", "").split()).upper()
    return compact[:-6] if compact in ("BEGIN:VCARD", "END:VCARD") else None


def _blocks(lines: list[tuple[int, str]], warn: Warn) -> Iterator[_Block]:
    """Complete cards only; a card without END, and text outside cards, are reported."""
    block: _Block | None = None
    positions = 0
    stray = False
    for number, text in lines:
        marker = _marker(text)
        if marker == "BEGIN":
            if block is not None:
                warn(block.line, "card has no END:VCARD before the next BEGIN:VCARD; skipped")
            positions += 1
            block, stray = _Block(number, positions), False
        elif marker == "END" and block is not None:
            yield block
            block = None
        elif block is not None:
            block.lines.append((number, text))
        elif text.strip() and not stray:
            warn(number, "text outside BEGIN:VCARD..END:VCARD; ignored")
            stray = True
    if block is not None:
        warn(block.line, "card has no END:VCARD; skipped")


# --- properties ------------------------------------------------------------------------------

_PROPERTY = re.compile(
    r"""(?:[\w-]+\.)?(?P<name>[\w-]+)
        (?P<params>(?:;[^:;"]*(?:"[^"]*"[^:;"]*)*)*)
        :(?P<value>.*)""",
    re.VERBOSE | re.DOTALL,
)
_PARAM = re.compile(r';(?P<key>[^=;]*)(?:=(?P<values>(?:"[^"]*"|[^;"])*))?')
_PARAM_VALUE = re.compile(r'"([^"]*)"|([^,]+)')
# vCard 2.1 allows a parameter's value without its name: TEL;CELL;PREF, NOTE;QUOTED-PRINTABLE.
_BARE_ENCODINGS = {"QUOTED-PRINTABLE", "BASE64", "B", "8BIT", "7BIT"}


@dataclass(frozen=True)
class _Property:
    name: str  # upper case, group ("item1.") dropped
    params: dict[str, list[str]]  # upper-case keys, values as written
    value: str  # still transfer-encoded and escaped
    line: int

    def param(self, key: str) -> list[str]:
        return self.params.get(key, [])


def _params(text: str) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for match in _PARAM.finditer(text):
        key, values = match["key"].strip().upper(), match["values"]
        if values is None:
            key, values = ("ENCODING" if key in _BARE_ENCODINGS else "TYPE"), key
        found = [quoted or plain.strip() for quoted, plain in _PARAM_VALUE.findall(values)]
        params.setdefault(key, []).extend(found)
    return params


def _property(number: int, text: str) -> _Property | None:
    match = _PROPERTY.fullmatch(text.rstrip())
    if match is None:
        return None
    return _Property(match["name"].upper(), _params(match["params"]), match["value"], number)


def _properties(block: _Block, warn: Warn) -> list[_Property]:
    found: list[_Property] = []
    bad: list[int] = []
    for number, text in block.lines:
        if not text.strip():
            continue
        parsed = _property(number, text)
        if parsed is None:
            bad.append(number)
        else:
            found.append(parsed)
    if bad:
        warn(bad[0], f"{len(bad)} line(s) in this card are not vCard properties; ignored")
    return found


# --- values ----------------------------------------------------------------------------------

_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


def _charset_decode(data: bytes, charset: str | None) -> str:
    for encoding in filter(None, (charset, "utf-8", "cp1252")):
        try:
            return data.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("latin-1")


def _transfer_decoded(prop: _Property) -> _Property:
    """The property with ENCODING=QUOTED-PRINTABLE / BASE64 undone, in its CHARSET.

    Raises ValueError when a BASE64 value is not base64.
    """
    encoding = next(iter(prop.param("ENCODING")), "").upper()
    charset = next(iter(prop.param("CHARSET")), None)
    if encoding == "QUOTED-PRINTABLE":
        data = quopri.decodestring(prop.value.encode("utf-8"))
    elif encoding in ("B", "BASE64"):
        data = base64.b64decode("".join(prop.value.split()), validate=True)
    else:
        return prop
    return replace(prop, value=_charset_decode(data, charset))


def _unescape(text: str) -> str:
    return _ESCAPE.sub(lambda match: "\n" if match[1] in "nN" else match[1], text)


def _components(value: str, separator: str) -> list[str]:
    """Split on `separator` where no backslash escapes it, and undo the backslash escapes."""
    parts: list[str] = []
    current: list[str] = []
    characters = iter(value)
    for character in characters:
        if character == "\\":
            current.append(character + next(characters, ""))
        elif character == separator:
            parts.append(_unescape("".join(current)))
            current = []
        else:
            current.append(character)
    parts.append(_unescape("".join(current)))
    return parts


def _text(prop: _Property) -> str:
    return _unescape(prop.value).strip()


# --- names -----------------------------------------------------------------------------------

# Words that belong to a surname when an exporter puts them in N's prefix field ("van der", "'t"),
# unlike titles such as "Dr." or "mr.", which are left out of the name.
_NAME_PARTICLES = {
    "'s", "'t", "aan", "bij", "d'", "da", "das", "de", "del", "della", "den", "der", "des",
    "di", "do", "dos", "du", "het", "in", "la", "le", "op", "te", "ten", "ter", "uit", "van",
    "vom", "von", "zu", "zum",
}  # fmt: skip


def _name_from_n(prop: _Property) -> str:
    """N is Family;Given;Additional;Prefixes;Suffixes: the name as a person says it."""
    parts = [part.replace(",", " ").strip() for part in _components(prop.value, ";")]
    family, given, additional, prefix = (parts + [""] * 4)[:4]
    particles = prefix.split()
    particle = prefix if particles and set(particles) <= _NAME_PARTICLES else ""
    return " ".join(part for part in (given, additional, particle, family) if part)


def _organisation(first: dict[str, _Property]) -> str | None:
    if "ORG" not in first:
        return None
    return _components(first["ORG"].value, ";")[0].strip() or None


def _card_name(first: dict[str, _Property]) -> str:
    if "FN" in first and (full_name := _text(first["FN"])):
        return full_name
    if "N" in first and (assembled := _name_from_n(first["N"])):
        return assembled
    return _organisation(first) or ""


# --- identities, groups, birthday ------------------------------------------------------------

_LINKEDIN_PROFILE = re.compile(r"linkedin\.com/in/", re.IGNORECASE)
_LINKEDIN_SLUG = re.compile(r"[\w-]+")
_BIRTHDAY = re.compile(
    r"(?:(?P<year>\d{4})-?|--)(?P<month>\d\d)-?(?P<day>\d\d)(?:T[\d:.,]*(?:Z|[+-][\d:]+)?)?"
)
# Apple writes a birthday without a year as year 1604; some exporters write 0000.
_NO_YEAR = {"0000", "1604"}


def _email(prop: _Property, warn: Warn) -> str | None:
    value = _text(prop).removeprefix("mailto:").strip("<> \t")
    if value and "@" not in value:
        warn(prop.line, f"EMAIL {value!r} is not an address; ignored")
        return None
    return value or None


def _phone(prop: _Property, warn: Warn) -> str | None:
    value = _text(prop)
    if value.lower().startswith("tel:"):
        value = value[4:].split(";", 1)[0].strip()  # drop URI parameters such as ;ext=
    if value and not any(character.isdigit() for character in value):
        warn(prop.line, f"TEL {value!r} has no digits; ignored")
        return None
    return value or None


def _linkedin(prop: _Property) -> str | None:
    """A LinkedIn profile from URL, IMPP or Apple's X-SOCIALPROFILE (URL or x-user= forms)."""
    value = _text(prop)
    if _LINKEDIN_PROFILE.search(value):
        return value
    if prop.name != "X-SOCIALPROFILE" or "linkedin" not in map(str.lower, prop.param("TYPE")):
        return None
    for user in [*prop.param("X-USER"), value.removeprefix("x-apple:")]:
        if _LINKEDIN_PROFILE.search(user):
            return user.strip()
        if _LINKEDIN_SLUG.fullmatch(user.strip()):
            return f"https://www.linkedin.com/in/{user.strip()}"
    return None


def _identities(props: list[_Property], warn: Warn) -> tuple[Identity, ...]:
    found: dict[Identity, None] = {}  # an ordered set: first mention first
    for prop in props:
        value: str | None = None
        kind = IdentityKind.LINKEDIN
        if prop.name == "EMAIL":
            kind, value = IdentityKind.EMAIL, _email(prop, warn)
        elif prop.name == "TEL":
            kind, value = IdentityKind.PHONE, _phone(prop, warn)
        elif prop.name in ("URL", "X-SOCIALPROFILE", "IMPP"):
            value = _linkedin(prop)
        if value:
            found[Identity(kind, value)] = None
    return tuple(found)


# Groups every Google Contacts export puts on cards; they say nothing about the relationship.
_SYSTEM_GROUPS = {"mycontacts", "starred", "imported on", "other contacts"}


def _groups(props: list[_Property]) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for prop in props:
        if prop.name == "CATEGORIES":
            for group in _components(prop.value, ","):
                name = group.strip().lower()
                if name and name not in _SYSTEM_GROUPS and not name.startswith("imported on "):
                    found[name] = None
    return tuple(found)


def _birthday_of(text: str, omit_year: str | None) -> str | None:
    """BDAY as "YYYY-MM-DD", or "--MM-DD" when the year is unknown (omit_year: Apple's stand-in)."""
    match = _BIRTHDAY.fullmatch(text.strip())
    if match is None:
        return None
    year, month, day = match["year"], match["month"], match["day"]
    if year in _NO_YEAR or year == omit_year:
        year = None
    try:
        date(int(year or 2000), int(month), int(day))  # 2000: a year-less 29 February is fine
    except ValueError:
        return None
    return f"{year}-{month}-{day}" if year else f"--{month}-{day}"


def _birthday(props: list[_Property], warn: Warn) -> str | None:
    for prop in props:
        if prop.name != "BDAY" or not _text(prop):
            continue
        birthday = _birthday_of(_text(prop), next(iter(prop.param("X-APPLE-OMIT-YEAR")), None))
        if birthday:
            return birthday
        warn(prop.line, f"BDAY {_text(prop)!r} is not a date; birthday ignored")
    return None


# --- cards -----------------------------------------------------------------------------------

# What a Card is made of; the rest (PHOTO, ADR, NOTE, ...) is never decoded.
_USED = {
    "FN", "N", "ORG", "UID", "BDAY", "CATEGORIES", "EMAIL", "TEL", "URL", "IMPP", "X-SOCIALPROFILE",
}  # fmt: skip


@dataclass(frozen=True)
class Place:
    """Where a file's cards come from: the file (evidence) and its path below the source (ref).

    For a CardDAV item, `file` is its URL and `relative` its name in the address book.
    """

    file: Path | str
    relative: str


def _decoded(props: list[_Property], warn: Warn) -> list[_Property]:
    """The properties syncd reads, transfer-decoded; one that cannot be decoded is reported."""
    kept: list[_Property] = []
    for prop in props:
        if prop.name not in _USED:
            continue
        try:
            kept.append(_transfer_decoded(prop))
        except ValueError:
            warn(prop.line, f"{prop.name} value cannot be decoded; ignored")
    return kept


def _card(block: _Block, place: Place, source: str, warn: Warn) -> Card | None:
    props = _decoded(_properties(block, warn), warn)
    first: dict[str, _Property] = {}
    for prop in props:
        first.setdefault(prop.name, prop)
    name, identities = _card_name(first), _identities(props, warn)
    if not name and not identities:
        warn(block.line, "card has no name, email, phone or LinkedIn profile; skipped")
        return None
    uid = _text(first["UID"]) if "UID" in first else ""
    return Card(
        source=source,
        ref=uid or f"{place.relative}#{block.position}",
        name=name,
        identities=identities,
        groups=_groups(props),
        birthday=_birthday(props, warn),
        organisation=_organisation(first),
        evidence=f"{place.file}:{block.line}",
    )


def parse_cards(raw: bytes, place: Place, source: str, warn: Warn) -> list[Card]:
    """Every readable card in one file's bytes; what cannot be read is reported through `warn`."""
    cards = (_card(block, place, source, warn) for block in _blocks(_decoded_lines(raw), warn))
    return [card for card in cards if card is not None]


# --- the source ------------------------------------------------------------------------------


def _refs(entry: list[Any]) -> list[str]:
    """The refs a file's cursor entry lists ([mtime_ns, size, refs]; older entries have none)."""
    return list(entry[2]) if len(entry) > 2 and isinstance(entry[2], list) else []


class VCardSource:
    """Cards from a .vcf file, a folder of .vcf files, or a vdir; re-reads only changed files."""

    Options: ClassVar[type[VCardOptions]] = VCardOptions
    type: ClassVar[str] = "vcard"

    def __init__(self, options: VCardOptions, context: Context) -> None:
        self.options = options
        self.context = context

    def check(self) -> list[str]:
        path = self.options.path
        if not path.exists():
            return [f"{path} does not exist; set `path` to a .vcf file or a folder of them"]
        if not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
            return [f"cannot read {path}: permission denied"]
        if not any(find_files(path, SUFFIXES)):
            return [f"{path} holds no .vcf files"]
        return []

    def scan(self, cursor: Cursor) -> Iterator[Card]:
        """Yield the cards of every file added or changed since the cursor's last scan, then a
        withdrawal (a card without identities) for each card that is in none of the files now."""
        files = cursor.state.get("files")
        if not isinstance(files, dict):
            files = cursor.state["files"] = {}
        gone = cursor.state.setdefault("gone", [])
        seen: set[str] = set()
        for file in find_files(self.options.path, SUFFIXES):
            seen.add(str(file))
            yield from self._scan_file(file, files, gone)
        for path in set(files) - seen:
            gone.extend(_refs(files.pop(path)))
        yield from self._withdraw(files, gone)

    def _withdraw(self, files: dict[str, list[Any]], gone: list[str]) -> Iterator[Card]:
        """Cards that left the address book (deleted, or their file removed): withdrawn, unless
        they moved to another file."""
        live = {ref for entry in files.values() for ref in _refs(entry)}
        leaving = sorted(set(gone) - live)
        gone.clear()
        for ref in leaving:
            yield Card(self.context.name, ref, name="", identities=())

    def _scan_file(
        self, file: Path, files: dict[str, list[Any]], gone: list[str]
    ) -> Iterator[Card]:
        try:
            stat = file.stat()
            version = [stat.st_mtime_ns, stat.st_size]
            if files.get(str(file), [])[:2] == version:
                return
            raw = file.read_bytes()
        except OSError as error:
            self._unreadable(file, error)
            return

        def warn(line: int, message: str) -> None:
            self.context.warn(file, message, line=line)

        cards = parse_cards(raw, self._place(file), self.context.name, warn)
        refs = [card.ref for card in cards]
        before = _refs(files.get(str(file), []))
        entry = [*version, refs]
        for index, card in enumerate(cards):
            if index == len(cards) - 1:
                gone.extend(set(before) - set(refs))
                files[str(file)] = entry
            yield card
        if not cards:
            gone.extend(before)
            files[str(file)] = entry

    def _unreadable(self, file: Path, error: OSError) -> None:
        reason = error.strerror or str(error)
        if file == self.options.path:
            raise SourceError(f"cannot read {file}: {reason}; check its permissions") from error
        self.context.warn(file, f"cannot read this file: {reason}; its cards were not imported")

    def _place(self, file: Path) -> Place:
        root = self.options.path
        relative = file.name if file == root else file.relative_to(root).as_posix()
        return Place(file, relative)
