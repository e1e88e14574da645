"""The few mail headers syncd reads, picked fast from a raw header block (Maildir, mbox, IMAP).

Only the fields in `HEADER_FIELDS` are looked at; a message body is never passed in or read. The
general `email` parser is not used: it parses every header of every message, which costs more than
reading the file. Here the wanted fields are picked with one regular expression, encoded words are
decoded only where `=?` occurs, and the common address and date forms take a fast path that falls
back to `email.utils` for anything unusual (groups, comments, named zones, ...).
"""

from __future__ import annotations

import binascii
import re
from datetime import UTC, date, datetime, timedelta, timezone
from email.utils import getaddresses, parsedate_tz
from functools import lru_cache
from typing import NamedTuple

from syncd.model import Channel, Identity, IdentityKind, Interaction, Party

# What an IMAP source asks for with BODY.PEEK[HEADER.FIELDS (...)].
HEADER_FIELDS: tuple[str, ...] = (
    "From",
    "To",
    "Cc",
    "Bcc",
    "Date",
    "Message-ID",
    "Subject",
    "List-Id",
    "List-Unsubscribe",
    "List-Post",
    "Precedence",
    "Auto-Submitted",
    "X-Autoreply",
    "X-Autorespond",
    "Return-Path",
)
# Passed on to the counting rules as they are (lower-case name -> value).
SIGNAL_FIELDS: frozenset[str] = frozenset(name.lower() for name in HEADER_FIELDS[7:])
_RECIPIENT_FIELDS = ("to", "cc", "bcc")
_KEYS = {name: name.lower() for name in HEADER_FIELDS}  # the usual spelling, without lower()


def _any_case(name: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in name)


# A wanted field at a line start, with its folded continuation lines. Anchored on "\n" (not "^")
# with a look-ahead on the first letter, and spelled in character classes rather than IGNORECASE:
# this lets the regex engine skip the unwanted lines (Received, DKIM...) three times faster.
_FIELD = re.compile(
    r"\n(?=[" + "".join(sorted({_any_case(n[0])[1:3] for n in HEADER_FIELDS})) + r"])"
    r"(" + "|".join(_any_case(name) for name in HEADER_FIELDS) + r")[ \t]*:(.*(?:\n[ \t].*)*)"
)
_BLANK_LINE = re.compile(rb"\n\r?\n")  # measured faster than bytes.find here


def header_end(data: bytes, start: int = 0) -> int:
    """The offset of the blank line that ends the header block in `data`, or -1 if none yet."""
    found = _BLANK_LINE.search(data, start)
    return found.start() + 1 if found else -1


def decode_8bit(raw: bytes) -> str:
    """Raw header bytes as text: UTF-8 when valid, else Windows-1252 (what 8-bit mail mostly is)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:  # the five bytes cp1252 leaves undefined
        return raw.decode("latin-1")


def _header_text(raw: bytes) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        # Decode line by line so one Latin-1 line does not garble the UTF-8 ones.
        text = "\n".join(decode_8bit(line) for line in raw.split(b"\n"))
    return "\n" + (text.replace("\r", "") if "\r" in text else text)


def pick_fields(header: bytes) -> dict[str, str]:
    """The wanted fields of a header block by lower-case name, values as written (still folded).

    The first occurrence wins, except To/Cc/Bcc, whose repeats are joined (some mailers split them).
    """
    fields: dict[str, str] = {}
    for name, value in _FIELD.findall(_header_text(header)):
        key = _KEYS.get(name) or name.lower()
        if key not in fields:
            fields[key] = value
        elif key in _RECIPIENT_FIELDS and not value.isspace():
            fields[key] = f"{fields[key]}, {value}"
    return fields


# --- RFC 2047 encoded words -------------------------------------------------------------------

_ENCODED_WORD = re.compile(r"=\?([A-Za-z0-9._:+*-]+)\?([bBqQ])\?([^?]*)\?=")
# Labels that in practice mean Windows-1252, as browsers and mail clients treat them.
_LATIN1_LABELS = frozenset({"iso-8859-1", "iso8859-1", "latin1", "latin-1", "us-ascii", "ascii"})


def _word_bytes(encoding: str, payload: str) -> bytes | None:
    try:
        data = payload.encode("ascii")
        if encoding in "bB":
            return binascii.a2b_base64(data + b"=" * (-len(data) % 4))
        return binascii.a2b_qp(data, header=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        return None


def _charset_text(charset: str, data: bytes) -> str:
    if charset in _LATIN1_LABELS or charset in ("utf-8", "utf8"):
        return decode_8bit(data)  # mislabelled mail is common; this reads it as the sender meant
    try:
        return data.decode(charset, "replace")
    except (LookupError, ValueError):  # unknown, or not a text encoding ("base64", "idna")
        return decode_8bit(data)


def decode_words(text: str) -> str:
    """Decode RFC 2047 encoded words; adjacent words are joined, so split characters survive."""
    if "=?" not in text:
        return text
    pieces: list[str] = []
    pending: list[tuple[str, bytes]] = []  # (charset, bytes) of adjacent words, not yet decoded
    position = 0
    for word in _ENCODED_WORD.finditer(text):
        data = _word_bytes(word.group(2), word.group(3))
        if data is None:
            continue  # not decodable: left in the text as written
        between = text[position : word.start()]
        if not (pending and between.isspace()) and between:
            pieces.extend(_charset_text(cs, b) for cs, b in pending)
            pending = []
            pieces.append(between)
        charset = word.group(1).split("*", 1)[0].lower()
        if pending and pending[-1][0] == charset:
            pending[-1] = (charset, pending[-1][1] + data)
        else:
            pending.append((charset, data))
        position = word.end()
    pieces.extend(_charset_text(cs, b) for cs, b in pending)
    pieces.append(text[position:])
    return "".join(pieces)


_FOLDING = re.compile(r"[ \t\r\n]+")


def clean_text(text: str) -> str:
    """Decoded, with runs of whitespace (left by folding) made single spaces."""
    if "=?" not in text and "\n" not in text and "  " not in text and "\t" not in text:
        return text.strip()
    # Folding whitespace only: a no-break space in a name is the sender's own.
    return _FOLDING.sub(" ", decode_words(text)).strip()


# --- addresses --------------------------------------------------------------------------------

_ADDR = r"[^<>\"(),:;@\s\[\]\\]+@[^<>\"(),:;@\s\[\]\\]+"
# One list item in a common form: `addr`, `Name <addr>` or `"Quoted, Name" <addr>`.
_SIMPLE_ADDRESS = re.compile(
    r"\s*(?:(?:\"((?:[^\"\\]|\\.)*)\"|([^\"<>(),:;@\\\[\]]*?))\s*<(" + _ADDR + r")>"
    r"|(" + _ADDR + r"))\s*(?:,|$)"
)
_ESCAPE = re.compile(r"\\(.)")


def _simple_addresses(value: str) -> list[tuple[str, str]] | None:
    found: list[tuple[str, str]] = []
    position, end = 0, len(value)
    while position < end:
        match = _SIMPLE_ADDRESS.match(value, position)
        if match is None or match.end() == position:
            return None
        quoted, phrase, bracketed, bare = match.groups()
        if bare is not None:
            found.append(("", bare))
        elif quoted is not None:
            found.append((_ESCAPE.sub(r"\1", quoted) if "\\" in quoted else quoted, bracketed))
        else:
            found.append((phrase, bracketed))
        position = match.end()
    return found


def addresses(value: str) -> list[tuple[str, str]]:
    """(display name, address) pairs of an address list; names decoded, empties left out."""
    pairs = _simple_addresses(value)
    if pairs is None:
        pairs = getaddresses([value])
    return [(clean_text(name), address) for name, address in pairs if "@" in address]


# (display name, address)
Address = tuple[str, str]


# The same From and To values recur across thousands of messages; a mailbox has some thousands of
# distinct ones (a few MB here), and caches that hold them all save a good part of the parsing.
@lru_cache(maxsize=16384)
def _addresses(value: str) -> tuple[Address, ...]:
    return tuple(addresses(value))


@lru_cache(maxsize=16384)
def _parties(pairs: tuple[Address, ...]) -> tuple[Party, ...]:
    return tuple(Party(Identity(IdentityKind.EMAIL, address), name) for name, address in pairs)


# --- dates ------------------------------------------------------------------------------------

MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
# "Tue, 1 Jul 2003 10:52:37 +0200", optionally followed by a comment such as "(CEST)".
_SIMPLE_DATE = re.compile(
    r"\s*(?:[A-Za-z]{3},?\s*)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4}|\d{2})\s+"
    r"(\d{1,2}):(\d{2})(?::(\d{2}))?\s+([+-]\d{4})\s*(?:\(.*\))?\s*$"
)
_OFFSETS: dict[str, int] = {}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DAY = date(1970, 1, 1).toordinal()
# The seconds a datetime can hold: a date outside cannot be read, as before it became seconds.
_FIRST_SECOND = (date.min.toordinal() - _EPOCH_DAY) * 86400
_LAST_SECOND = (date.max.toordinal() - _EPOCH_DAY + 1) * 86400 - 1


def _offset(numeric: str) -> int:
    """A numeric zone ("+0200") in seconds, kept; ValueError beyond a day, as `timezone` has it."""
    seconds = int(numeric[1:3]) * 3600 + int(numeric[3:5]) * 60
    if seconds >= 86400:
        raise ValueError(f"zone {numeric} is a day or more")
    return _OFFSETS.setdefault(numeric, -seconds if numeric[0] == "-" else seconds)


def _simple_seconds(value: str) -> int | None:
    """The common form, worked out without building a datetime (a tenth of the cost)."""
    match = _SIMPLE_DATE.match(value)
    if match is None:
        return None
    day, month_name, year, hour, minute, second, zone = match.groups()
    month = MONTHS.get(month_name.lower())
    if month is None:
        return None
    number = int(year)
    if len(year) == 2:  # the same reading as email.utils: 69-99 -> 19xx, 00-68 -> 20xx
        number += 1900 if number > 68 else 2000
    hours, minutes, seconds = int(hour), int(minute), int(second or 0)
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ValueError(f"no such time: {value}")
    days = date(number, month, int(day)).toordinal() - _EPOCH_DAY  # ValueError: 31 February
    offset = _OFFSETS.get(zone)
    if offset is None:
        offset = _offset(zone)
    found = days * 86400 + hours * 3600 + minutes * 60 + seconds - offset
    if not _FIRST_SECOND <= found <= _LAST_SECOND:
        raise OverflowError(f"out of range: {value}")
    return found


def _any_date(value: str) -> datetime | None:
    try:
        parts = parsedate_tz(value)
    except (ValueError, IndexError, TypeError):
        return None
    if parts is None:
        return None
    zone = timezone(timedelta(seconds=parts[9] or 0))  # no zone or an unknown one: UTC
    return datetime(*parts[:6], tzinfo=zone).astimezone(UTC)


def date_seconds(value: str) -> int | None:
    """A Date header in seconds since the epoch; None when it cannot be read."""
    try:
        found = _simple_seconds(value)
        if found is None and (at := _any_date(value)) is not None:
            found = int(at.timestamp())
    except (ValueError, OverflowError):  # day 31 of February, year 0, zone +9999, ...
        return None
    return found


def parse_date(value: str) -> datetime | None:
    """A Date header as an aware UTC datetime; None when it cannot be read."""
    seconds = date_seconds(value)
    return None if seconds is None else _EPOCH + timedelta(seconds=seconds)


# --- the result -------------------------------------------------------------------------------


def parse_message_id(value: str) -> str | None:
    """The id inside the angle brackets (or the bare token some mailers write); None when empty."""
    start = value.find("<")
    end = value.find(">", start + 1)
    if start >= 0 and end > start:
        found = value[start + 1 : end]
        if " " in found or not found.isprintable():  # folded, or written with spaces
            found = "".join(found.split())
        return found or None
    tokens = value.split()
    return tokens[0].strip("<>") or None if tokens else None


class MailHeaders(NamedTuple):
    """What syncd takes from one message's header block."""

    sender: Party | None
    recipients: tuple[Party, ...]
    date: datetime | None  # UTC; None when missing or unreadable
    subject: str
    message_id: str | None
    signals: dict[str, str]

    def interaction(
        self, *, source: str, ref: str, evidence: str, fallback_at: datetime
    ) -> Interaction | None:
        """The message as an e-mail interaction; None when it names no sender (the caller warns).

        `fallback_at` (aware) is used when the Date header is missing or unreadable: the delivery
        time (Maildir file name, mbox From_ line, IMAP INTERNALDATE). A caller for whom that
        costs something may pass `self.date` when there is one.
        """
        if self.sender is None:
            return None
        return Interaction(
            source=source,
            ref=ref,
            at=self.date or fallback_at.astimezone(UTC),
            channel=Channel.EMAIL,
            sender=self.sender,
            recipients=self.recipients,
            title=self.subject,
            evidence=evidence,
            message_id=self.message_id,
            signals=self.signals,
        )


class Fields(NamedTuple):
    """A header block's fields as read, the addresses not yet made into parties: plain values,
    cheap to pass from a helper process (`connectors.mailpool`)."""

    senders: tuple[Address, ...]  # From
    recipients: tuple[Address, ...]  # To, Cc and Bcc
    date: int | None  # seconds since the epoch; None when missing or unreadable
    subject: str
    message_id: str | None
    signals: dict[str, str]


def read_fields(header: bytes) -> Fields:
    """The first half of `parse_headers`: everything but the parties."""
    fields = pick_fields(header)
    recipients: tuple[Address, ...] = ()
    for name in _RECIPIENT_FIELDS:
        if name in fields:
            recipients += _addresses(fields[name])
    date = fields.get("date")
    message_id = fields.get("message-id")
    return Fields(
        senders=_addresses(fields.get("from", "")),
        recipients=recipients,
        date=date_seconds(date) if date else None,
        subject=clean_text(fields.get("subject", "")),
        message_id=parse_message_id(message_id) if message_id else None,
        signals={name: " ".join(fields[name].split()) for name in SIGNAL_FIELDS & fields.keys()},
    )


def headers_of(fields: Fields) -> MailHeaders:
    """The second half of `parse_headers`: the parties (cached, so cheap for the usual ones)."""
    senders = _parties(fields.senders)
    return MailHeaders(
        sender=senders[0] if senders else None,
        recipients=_parties(fields.recipients),
        date=None if fields.date is None else _EPOCH + timedelta(seconds=fields.date),
        subject=fields.subject,
        message_id=fields.message_id,
        signals=fields.signals,
    )


def parse_headers(header: bytes) -> MailHeaders:
    """Read a raw header block: the bytes before the blank line, which `header_end` finds.

    The caller cuts there (it must not read the body anyway); what is passed is all taken as
    header lines. An IMAP `BODY.PEEK[HEADER.FIELDS (...)]` answer can be passed as it is.
    """
    return headers_of(read_fields(header))
