"""The text of a WhatsApp chat export: its encoding, the lines that start messages, and date order.

An export follows the phone's language and region, not syncd's, so each file decides its own line
format (Android or iOS) and date order here. Lines become `_Line`s of one `_Chat`; who the authors
are, and what the messages mean, is the package's concern (connectors.whatsapp).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, time
from typing import NamedTuple

# Direction marks WhatsApp writes around names, numbers, media and system lines.
_MARKS = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
# The narrow no-break space before AM/PM (newer exports), no-break and thin spaces.
_SPACES = str.maketrans(dict.fromkeys("\u202f\u00a0\u2009\u2007", " "))
_DATE = r"(?P<a>\d{1,4})(?P<sep>[./-])(?P<b>\d{1,2})(?P=sep)(?P<c>\d{2,4})\.?"
_TIME = r"(?P<h>\d{1,2})[:.](?P<m>\d{2})(?:[:.](?P<s>\d{2}))?(?:\s?(?P<half>[ap]\.?\s?m\.?))?"
_ANDROID = re.compile(rf"{_DATE},?\s{_TIME}\s[-\u2013]\s(?P<rest>.*)", re.IGNORECASE)
_IOS = re.compile(rf"\[{_DATE},?\s{_TIME}\]\s(?P<rest>.*)", re.IGNORECASE)
_TITLE = re.compile(
    r"(?:whatsapp[ -]chat (?:with|met|mit|-)|chat de whatsapp con|discussion whatsapp avec"
    r"|conversa do whatsapp com) (?P<title>.+?)(?: \(\d+\))?",
    re.IGNORECASE,
)
# Notices WhatsApp writes into a chat (English, Dutch); never messages.
_NOTICE = re.compile(
    r"(?:messages and calls are end-to-end encrypted"
    r"|messages (?:to|you send to) this (?:chat|group)"
    r"|berichten en oproepen worden end-to-end versleuteld|berichten (?:die )?(?:je )?naar deze"
    r"|[^:]*security code|[^:]*beveiligingscode|you (?:un)?blocked this contact|je hebt dit contact"
    r"|this chat is with a business|disappearing messages|verdwijnende berichten)",
    re.IGNORECASE,
)
# What happens to a group, after the name of who did it; these make a chat a group chat.
_GROUP_EVENT = re.compile(
    r"[^:]*?\s(?:created group|created this group|changed the subject|changed the group name"
    r"|changed this group's icon|deleted this group's icon|changed the group description"
    r"|changed this group's settings|added|removed|left|joined using this group's invite link"
    r"|(?:heeft|hebt) (?:groep|de groep|het onderwerp|de groepsnaam|het pictogram"
    r"|de groepsafbeelding|de groepsbeschrijving|\S.* toegevoegd|\S.* verwijderd)"
    r"|is vertrokken|is lid geworden)\b"
)
# Group events that quote a name someone chose, which may hold ": " like a message does.
_NAMED_GROUP_EVENT = re.compile(
    r"[^:]+\s(?:created group|changed the subject|changed the group name"
    r"|(?:heeft|hebt) (?:groep|het onderwerp|de groepsnaam|de groepsbeschrijving))"
)
_NEWLINE = re.compile(r"\r?\n")


class _Line(NamedTuple):
    """One line that starts a message or a system entry."""

    number: int
    fields: tuple[str, str, str]
    clock: time | None  # None: not a time of day
    author: str  # "" for a system line
    marked: bool  # iOS marks media and system lines with U+200E


@dataclass
class _Chat:
    title: str  # the chat's name from the file name: the partner, or the group
    label: str  # the file warnings and evidence name; `zip/_chat.txt` inside a zip
    lines: list[_Line]
    group_events: bool  # someone created, joined or left: this is a group
    us_dates: bool  # "/" dates with AM/PM: month first when the dates leave it open


def chat_title(file_name: str) -> str | None:
    """The chat name an export's file name holds (`WhatsApp Chat with NAME (1).txt` -> NAME)."""
    stem = re.sub(r"\.(txt|zip)$", "", file_name, flags=re.IGNORECASE)
    found = _TITLE.fullmatch(_MARKS.sub("", stem).strip())
    return found["title"].strip() if found and found["title"].strip() else None


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    # UTF-16 without a byte-order mark: every other byte of Latin text is zero.
    for encoding, zeros in (("utf-16-le", data[1::2]), ("utf-16-be", data[0::2])):
        if len(data) >= 4 and zeros.count(0) * 2 > len(zeros):
            return data.decode(encoding, errors="replace")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")  # older Windows tools re-save in it


def _clock(found: re.Match[str]) -> time | None:
    hour, minute, second = int(found["h"]), int(found["m"]), int(found["s"] or 0)
    half = (found["half"] or " ").lower()[0]
    if half != " ":
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if half == "p" else 0)
    try:
        return time(hour, minute, second)
    except ValueError:
        return None


def _entry(rest: str, marked: bool, ios: bool) -> tuple[str, bool]:
    """(author, is a group event) of what follows the time; author "" for a system line."""
    author, colon, text = rest.partition(": ")
    if not ios and (not colon or _NAMED_GROUP_EVENT.match(rest)):
        return "", bool(_GROUP_EVENT.match(rest))
    text = _MARKS.sub("", text).strip()
    if ios and (not colon or (marked and (_NOTICE.match(text) or _GROUP_EVENT.match(text)))):
        return "", bool(_GROUP_EVENT.match(text))
    return " ".join(_MARKS.sub("", author).split()), False


def parse_chat(text: str, title: str, label: str, warn: Callable[[str, int], None]) -> _Chat:
    """The lines of an export that start a message or a system entry; the rest continue them."""
    chat = _Chat(title, label, [], group_events=False, us_dates=False)
    stray: list[int] = []
    for number, raw in enumerate(_NEWLINE.split(text), start=1):
        line = raw.translate(_SPACES)
        plain = _MARKS.sub("", line)
        found = _IOS.fullmatch(plain) or _ANDROID.fullmatch(plain)
        if found is None:
            if not chat.lines and plain.strip():
                stray.append(number)
            continue
        ios = plain.startswith("[")
        author, group_event = _entry(found["rest"], "\u200e" in line, ios)
        chat.group_events = chat.group_events or group_event
        half = found["half"] or ""
        chat.us_dates = chat.us_dates or (found["sep"] == "/" and half.isalpha())
        fields = (found["a"], found["b"], found["c"])
        chat.lines.append(_Line(number, fields, _clock(found), author, "\u200e" in line))
    if stray and chat.lines:
        warn(f"{len(stray)} line(s) before the first message cannot be read; skipped", stray[0])
    return chat


def _day(fields: tuple[str, str, str], order: str) -> date | None:
    year_first = len(fields[0]) == 4
    if (order == "ymd") != year_first or (not year_first and len(fields[2]) == 3):
        return None
    numbers = dict(zip(order, map(int, fields), strict=True))
    year = numbers["y"] + (2000 if numbers["y"] < 100 else 0)
    if not 2000 <= year <= 2100:  # WhatsApp began in 2009
        return None
    try:
        return date(year, numbers["m"], numbers["d"])
    except ValueError:
        return None


def _fit(lines: list[_Line], order: str) -> tuple[int, int]:
    """How well a date order reads the file: valid dates, then fewest steps back in time."""
    days = [day for line in lines if (day := _day(line.fields, order)) is not None]
    backwards = sum(later < earlier for earlier, later in itertools.pairwise(days))
    return len(days), -backwards


def date_order(chat: _Chat) -> str:
    """The date order ("dmy", "mdy" or "ymd") that makes the file's dates valid and in order;
    on a tie, month first for US-style files ("/" and AM/PM), else day first."""
    if sum(len(line.fields[0]) == 4 for line in chat.lines) * 2 > len(chat.lines):
        return "ymd"
    candidates = ("mdy", "dmy") if chat.us_dates else ("dmy", "mdy")
    return max(candidates, key=lambda order: _fit(chat.lines, order))
