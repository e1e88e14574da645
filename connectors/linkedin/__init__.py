"""The `linkedin` source: connections and messages from LinkedIn's "Get a copy of your data" export.

`path` is the export as downloaded (a zip), the folder it unpacks to, or a glob such as
`~/Downloads/*LinkedInDataExport*.zip`: a glob picks the export with the latest date in its name
(LinkedIn names them `..._MM-DD-YYYY.zip`), else the one modified last. Columns are found by name,
so the 2018 to 2024 layouts all read, and damage costs the rows it touches, not the export.
Message text (CONTENT) is never read into anything: only who, when, and a subject or title.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar, Literal
from urllib.parse import unquote
from zoneinfo import ZoneInfo

from connectors.base import ConfigPath, ConnectorOptions, Context, Cursor, SourceError
from connectors.linkedin.export import (
    CONNECTIONS,
    ExportFile,
    Row,
    Warn,
    export_version,
    locate,
    read_export,
    read_rows,
)
from syncd.model import Card, Channel, Direction, Identity, IdentityKind, Interaction, Party


class LinkedInOptions(ConnectorOptions):
    type: Literal["linkedin"]
    path: ConfigPath


# --- profile URLs ----------------------------------------------------------------------------

_PROFILE = re.compile(r"linkedin\.com/in/([^/?#\s]+)", re.IGNORECASE)


@functools.lru_cache(maxsize=4096)  # messages.csv names the same few profiles on every row
def profile_url(raw: str) -> str | None:
    """`https://www.linkedin.com/in/<slug>` for any spelling of a profile URL; None for others.

    Connections.csv percent-encodes (`andr%C3%A9-...`), messages.csv does not; hosts and case vary.
    """
    match = _PROFILE.search(raw)
    slug = unquote(match[1]).strip().lower() if match else ""
    return f"https://www.linkedin.com/in/{slug}" if slug else None


# --- dates -----------------------------------------------------------------------------------

# "09 Sep 2022" as exported, "9-Sep-22" once a spreadsheet saved it, "1/8/18, 6:14 PM" (2018).
_LOCAL_FORMATS = (
    "%d %b %Y", "%d-%b-%y", "%d-%b-%Y", "%m/%d/%y, %I:%M %p", "%m/%d/%Y, %I:%M %p",
    "%m/%d/%y %I:%M %p", "%m/%d/%y", "%m/%d/%Y", "%Y-%m-%d", "%Y-%m-%d %H:%M:%S",
)  # fmt: skip


def _utc(text: str) -> datetime | None:
    """messages.csv's `2023-06-11 15:33:58 UTC` (endorsements write `2023/06/11`)."""
    try:
        found = datetime.fromisoformat(text.removesuffix(" UTC").replace("/", "-"))
    except ValueError:
        return None
    return found.replace(tzinfo=UTC) if found.tzinfo is None else None


def moment(text: str, zone: ZoneInfo) -> datetime | None:
    """A date as the export writes it, in UTC; local dates and times are in `zone`."""
    text = " ".join(text.replace("\u202f", " ").split())
    if text.endswith(" UTC"):
        return _utc(text)
    for form in _LOCAL_FORMATS:
        try:
            return datetime.strptime(text, form).replace(tzinfo=zone).astimezone(UTC)
        except (ValueError, OverflowError):
            continue
    return None


# --- connections -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Sheet:
    """What a row becomes part of: the file, the source, the user's time zone, and where to warn."""

    file: ExportFile
    source: str
    zone: ZoneInfo
    warn: Warn

    def evidence(self, row: Row) -> str:
        return f"{self.file.label}:{row.line}"


def _connection_identities(row: Row, url: str | None, name: str) -> tuple[Identity, ...]:
    found = [Identity(IdentityKind.LINKEDIN, row["URL"])] if url else []
    if "@" in row["EMAIL ADDRESS"]:
        found.append(Identity(IdentityKind.EMAIL, row["EMAIL ADDRESS"]))
    # An export without URLs (2018): the name is what 2018 messages, which carry names only, share.
    return tuple(found) or (Identity(IdentityKind.NAME, name),)


def connection(row: Row, sheet: Sheet) -> Iterator[Card | Interaction]:
    """A connection's card, and connecting as one contact (channel linkedin, direction out)."""
    name = " ".join(f"{row['FIRST NAME']} {row['LAST NAME']}".split())
    url = profile_url(row["URL"])
    if row["URL"] and url is None:
        sheet.warn(row.line, f"URL {row['URL']!r} is not a LinkedIn profile; ignored")
    if not name and url is None:
        sheet.warn(row.line, "connection has no name and no profile URL; skipped")
        return
    identities = _connection_identities(row, url, name)
    ref = url or f"name:{name}"
    company = row["COMPANY"] or None
    yield Card(sheet.source, ref, name, identities, organisation=company,
               evidence=sheet.evidence(row))  # fmt: skip
    at = moment(row["CONNECTED ON"], sheet.zone)
    if at is None:
        sheet.warn(row.line, f"Connected On {row['CONNECTED ON']!r} is not a date; not counted")
        return
    yield Interaction(
        source=sheet.source, ref=f"connected:{ref}", at=at, channel=Channel.LINKEDIN,
        recipients=(Party(identities[0], name),), title="Connected on LinkedIn",
        evidence=sheet.evidence(row), direction=Direction.OUT,
        # Contact, but not by itself a relationship: 500 connections are not 500 friendships.
        signals={"event": "connected"},
    )  # fmt: skip


# --- messages --------------------------------------------------------------------------------

_TITLE_LENGTH = 80
_TAG = re.compile(r"<[^>]*>")
_YES = {"YES", "TRUE", "1"}
_URL_SEPARATORS = re.compile(r"[;,\s]+")


@functools.lru_cache(maxsize=4096)
def party_key(party: Party) -> str:
    """Who a party is, for comparing: the normalised profile URL, else the name."""
    value = party.identity.value
    if party.identity.kind is IdentityKind.LINKEDIN:
        return profile_url(value) or value
    return f"name:{value.casefold()}"


def _party(name: str, url: str) -> Party | None:
    if profile_url(url):
        return Party(Identity(IdentityKind.LINKEDIN, url), name)
    return Party(Identity(IdentityKind.NAME, name), name) if name else None


def _names(names: str, count: int) -> list[str]:
    if count == 1:
        return [names]
    for separator in (";", ","):
        split = [name.strip() for name in names.split(separator)]
        if len(split) == count:
            return split
    return [""] * count  # "Vries, Jan de, Anna Smit": which comma is whose is anyone's guess


def _recipients(names: str, urls: str) -> list[Party]:
    """TO and RECIPIENT PROFILE URLS; names pair with URLs only when the counts agree."""
    links = [link for link in _URL_SEPARATORS.split(urls) if profile_url(link)]
    if not links:
        return [party for party in [_party(names, "")] if party]
    named = zip(links, _names(names, len(links)), strict=True)
    return [Party(Identity(IdentityKind.LINKEDIN, url), name) for url, name in named]


@dataclass(frozen=True)
class Message:
    """A message row with what syncd keeps of it; CONTENT never gets this far."""

    line: int
    conversation: str
    at: datetime
    author: Party
    recipients: tuple[Party, ...]
    title: str
    outgoing: bool | None  # the 2018 DIRECTION column; None when the export does not say

    @property
    def ref(self) -> str:
        """Stable across re-exports: conversation (or its people), time, author."""
        people = ",".join(sorted(map(party_key, self.recipients)))
        author = party_key(self.author).removeprefix("https://www.linkedin.com/in/")
        return f"{self.conversation or people}/{self.at:%Y-%m-%dT%H:%M:%SZ}/{author}"


def _title(row: Row) -> str:
    text = " ".join(_TAG.sub(" ", row["SUBJECT"] or row["CONVERSATION TITLE"]).split())
    return text[:_TITLE_LENGTH] or "LinkedIn message"


def _is_countable(row: Row) -> bool:
    """Not a draft, not spam, and not sponsored (InMail ads have no sender profile)."""
    if row["IS MESSAGE DRAFT"].upper() in _YES or row["FOLDER"].upper() in {"DRAFT", "SPAM"}:
        return False
    sponsored = "SENDER PROFILE URL" in row.cells and not row["SENDER PROFILE URL"]
    return not sponsored and row["FROM"].casefold() != "linkedin member"


def message(row: Row, sheet: Sheet) -> Message | None:
    """The row as a message that may count; drafts, spam and sponsored messages are not."""
    if not _is_countable(row):
        return None
    author = _party(row["FROM"], row["SENDER PROFILE URL"])
    at = moment(row["DATE"], sheet.zone)
    if author is None or at is None:
        problem = "no sender" if author is None else f"DATE {row['DATE']!r} is not a date"
        sheet.warn(row.line, f"{problem}; message skipped")
        return None
    direction = row["DIRECTION"].upper()
    return Message(
        row.line, row["CONVERSATION ID"], at, author,
        tuple(_recipients(row["TO"], row["RECIPIENT PROFILE URLS"])), _title(row),
        {"OUTGOING": True, "INCOMING": False}.get(direction),
    )  # fmt: skip


def my_keys(messages: list[Message], me: set[str], warn: Warn) -> set[str]:
    """The user's profile: [me] linkedin when the file names it, else the most frequent sender.

    2018 exports say the direction themselves (DIRECTION), so their rows do not take part.
    """
    messages = [m for m in messages if m.outgoing is None]
    named = {party_key(p) for m in messages for p in (m.author, *m.recipients)}
    if me & named or not messages:
        return me
    [(mine, _)] = Counter(party_key(m.author) for m in messages).most_common(1)
    if me:
        warn(None, f"[me] linkedin is not in this file; taking its most frequent sender, {mine}")
    return {mine}


def as_interaction(item: Message, mine: set[str], sheet: Sheet) -> Interaction:
    outgoing = item.outgoing if item.outgoing is not None else party_key(item.author) in mine
    skip = {*mine, party_key(item.author)}
    others = tuple(party for party in item.recipients if party_key(party) not in skip)
    return Interaction(
        source=sheet.source, ref=item.ref, at=item.at, channel=Channel.LINKEDIN,
        sender=item.author, recipients=others,
        title=item.title, evidence=f"{sheet.file.label}:{item.line}",
        direction=Direction.OUT if outgoing else Direction.IN,
    )  # fmt: skip


# --- the source ------------------------------------------------------------------------------

_CONNECTION_COLUMNS = {"FIRST NAME", "LAST NAME"}
_MESSAGE_COLUMNS = {"FROM", "DATE"}


class LinkedInSource:
    """Connections (a card each; connecting counts once) and messages from a LinkedIn export.

    `cursor.state` is {"export": [[file, size, mtime_ns], ...], "cards": [ref, ...]}: an
    unchanged export is not read again; a changed or newer one is read whole, interactions the
    store holds are skipped, and a connection that is in it no more is withdrawn (a card without
    identities; connecting, which happened, still counts).
    """

    Options: ClassVar[type[LinkedInOptions]] = LinkedInOptions
    type: ClassVar[str] = "linkedin"

    def __init__(self, options: LinkedInOptions, context: Context) -> None:
        self.options = options
        self.context = context

    def check(self) -> list[str]:
        try:
            read_export(locate(self.options.path), lambda where, message: None)
        except SourceError as error:
            return [str(error)]
        return []

    def scan(self, cursor: Cursor) -> Iterator[Card | Interaction]:
        """Yield the cards, and the interactions the store does not hold yet, of the export."""
        export = locate(self.options.path)
        version = export_version(export)
        if cursor.state.get("export") == version:
            return
        yielded: set[str] = set()
        connections: set[str] = set()
        for file in read_export(export, self.context.warn):
            for item in self._items(file):
                if isinstance(item, Interaction):
                    if item.ref in yielded or cursor.known(item.ref):
                        continue
                    yielded.add(item.ref)
                else:
                    connections.add(item.ref)
                yield item
        before = cursor.state.get("cards")
        for ref in sorted(set(before if isinstance(before, list) else []) - connections):
            yield Card(self.context.name, ref, name="", identities=())
        cursor.state["cards"] = sorted(connections)
        cursor.state["export"] = version

    def _items(self, file: ExportFile) -> Iterator[Card | Interaction]:
        def warn(line: int | None, message: str) -> None:
            self.context.warn(file.label, message, line=line)

        sheet = Sheet(file, self.context.name, self.context.timezone, warn)
        if file.kind == CONNECTIONS:
            for row in read_rows(file, _CONNECTION_COLUMNS, warn):
                yield from connection(row, sheet)
            return
        rows = read_rows(file, _MESSAGE_COLUMNS, warn)
        messages = [found for row in rows if (found := message(row, sheet))]
        mine = my_keys(messages, self._me(), warn)
        for item in messages:
            yield as_interaction(item, mine, sheet)

    def _me(self) -> set[str]:
        urls = (profile_url(i.value) for i in self.context.me if i.kind is IdentityKind.LINKEDIN)
        return {url for url in urls if url}
