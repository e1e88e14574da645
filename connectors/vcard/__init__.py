"""The `vcard` source: address books as .vcf files, folders of them, or vdirs (vdirsyncer, khard).

Files are split into BEGIN:VCARD..END:VCARD blocks and parsed line by line (connectors.vcard.text);
one broken line or card costs that line or card, never the file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, ClassVar, Literal

from connectors.base import ConfigPath, ConnectorOptions, Context, Cursor, SourceError, handed_over
from connectors.files import find_files
from connectors.vcard.text import (
    Block,
    Property,
    Warn,
    blocks,
    components,
    decoded_lines,
    properties,
    text_of,
    transfer_decoded,
)
from syncd.model import Card, Identity, IdentityKind

SUFFIXES = (".vcf", ".vcard")


class VCardOptions(ConnectorOptions):
    type: Literal["vcard"]
    path: ConfigPath


# --- names -----------------------------------------------------------------------------------

# Words that belong to a surname when an exporter puts them in N's prefix field ("van der", "'t"),
# unlike titles such as "Dr." or "mr.", which are left out of the name.
_NAME_PARTICLES = {
    "'s", "'t", "aan", "bij", "d'", "da", "das", "de", "del", "della", "den", "der", "des",
    "di", "do", "dos", "du", "het", "in", "la", "le", "op", "te", "ten", "ter", "uit", "van",
    "vom", "von", "zu", "zum",
}  # fmt: skip


def _name_from_n(prop: Property) -> str:
    """N is Family;Given;Additional;Prefixes;Suffixes: the name as a person says it."""
    parts = [part.replace(",", " ").strip() for part in components(prop.value, ";")]
    family, given, additional, prefix = (parts + [""] * 4)[:4]
    particles = prefix.split()
    particle = prefix if particles and set(particles) <= _NAME_PARTICLES else ""
    return " ".join(part for part in (given, additional, particle, family) if part)


def _organisation(first: dict[str, Property]) -> str | None:
    if "ORG" not in first:
        return None
    return components(first["ORG"].value, ";")[0].strip() or None


def _card_name(first: dict[str, Property]) -> str:
    if "FN" in first and (full_name := text_of(first["FN"])):
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


def _email(prop: Property, warn: Warn) -> str | None:
    value = text_of(prop).removeprefix("mailto:").strip("<> \t")
    if value and "@" not in value:
        warn(prop.line, f"EMAIL {value!r} is not an address; ignored")
        return None
    return value or None


def _phone(prop: Property, warn: Warn) -> str | None:
    value = text_of(prop)
    if value.lower().startswith("tel:"):
        value = value[4:].split(";", 1)[0].strip()  # drop URI parameters such as ;ext=
    if value and not any(character.isdigit() for character in value):
        warn(prop.line, f"TEL {value!r} has no digits; ignored")
        return None
    return value or None


def _linkedin(prop: Property) -> str | None:
    """A LinkedIn profile from URL, IMPP or Apple's X-SOCIALPROFILE (URL or x-user= forms)."""
    value = text_of(prop)
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


def _identities(props: list[Property], warn: Warn) -> tuple[Identity, ...]:
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


def _groups(props: list[Property]) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for prop in props:
        if prop.name == "CATEGORIES":
            for group in components(prop.value, ","):
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


def _birthday(props: list[Property], warn: Warn) -> str | None:
    for prop in props:
        if prop.name != "BDAY" or not text_of(prop):
            continue
        birthday = _birthday_of(text_of(prop), next(iter(prop.param("X-APPLE-OMIT-YEAR")), None))
        if birthday:
            return birthday
        warn(prop.line, f"BDAY {text_of(prop)!r} is not a date; birthday ignored")
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


def _decoded(props: list[Property], warn: Warn) -> list[Property]:
    """The properties syncd reads, transfer-decoded; one that cannot be decoded is reported."""
    kept: list[Property] = []
    for prop in props:
        if prop.name not in _USED:
            continue
        try:
            kept.append(transfer_decoded(prop))
        except ValueError:
            warn(prop.line, f"{prop.name} value cannot be decoded; ignored")
    return kept


def _card(block: Block, place: Place, source: str, warn: Warn) -> Card | None:
    props = _decoded(properties(block, warn), warn)
    first: dict[str, Property] = {}
    for prop in props:
        first.setdefault(prop.name, prop)
    name, identities = _card_name(first), _identities(props, warn)
    if not name and not identities:
        warn(block.line, "card has no name, email, phone or LinkedIn profile; skipped")
        return None
    uid = text_of(first["UID"]) if "UID" in first else ""
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
    cards = (_card(block, place, source, warn) for block in blocks(decoded_lines(raw), warn))
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

        def advance() -> None:
            gone.extend(set(before) - set(refs))
            files[str(file)] = entry

        yield from handed_over(cards, advance)

    def _unreadable(self, file: Path, error: OSError) -> None:
        reason = error.strerror or str(error)
        if file == self.options.path:
            raise SourceError(f"cannot read {file}: {reason}; check its permissions") from error
        self.context.warn(file, f"cannot read this file: {reason}; its cards were not imported")

    def _place(self, file: Path) -> Place:
        root = self.options.path
        relative = file.name if file == root else file.relative_to(root).as_posix()
        return Place(file, relative)
