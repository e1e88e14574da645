"""An iCalendar text as written: its top-level components, cut by hand, and one VEVENT parsed.

A file is cut into its top-level components by hand before parsing, so a broken event costs only
itself and every warning names the line its BEGIN:VEVENT stands on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import icalendar

# Components that stand directly in a VCALENDAR: one opening inside another means an END is missing.
_TOP_LEVEL = frozenset({"VCALENDAR", "VEVENT", "VTODO", "VJOURNAL", "VFREEBUSY", "VTIMEZONE"})
# Lines end as icalendar ends them; str.splitlines() would also break at form feeds inside values.
_NEWLINE = re.compile(r"\r?\n")
_FOLD = re.compile(r"\r?\n[ \t]")
# A folded continuation starts with a space, so it never matches.
_MARKER = re.compile(r"(BEGIN|END)\s*:\s*(\S+)\s*$", re.IGNORECASE)
# Properties the expansion reads; an event with one of them broken cannot be placed in time.
_TIMING = frozenset({"DTSTART", "RRULE", "RDATE", "EXDATE", "RECURRENCE-ID"})
REPEATS = ("RRULE", "RDATE", "RECURRENCE-ID")


@dataclass
class Block:
    """One top-level component as written: its name, the line of its BEGIN, its raw lines."""

    name: str
    line: int
    lines: list[str]
    complete: bool = False

    @property
    def text(self) -> str:
        return "\r\n".join(self.lines) + "\r\n"


class BrokenEvent(Exception):
    """Why one VEVENT was skipped, in a user's words."""


def _marker(line: str) -> tuple[str, str]:
    """("BEGIN" or "END", the component name) for a BEGIN/END line, else ("", "")."""
    found = _MARKER.match(line)
    return (found[1].upper(), found[2].upper()) if found else ("", "")


def _ends_block(keyword: str, name: str) -> bool:
    """Whether this BEGIN/END line cannot stand inside an open top-level component."""
    return (keyword == "BEGIN" and name in _TOP_LEVEL) or (keyword, name) == ("END", "VCALENDAR")


def split_components(text: str) -> tuple[bool, list[Block]]:
    """Whether `text` is an iCalendar stream at all, and its top-level components in order."""
    is_calendar = False
    blocks: list[Block] = []
    current: Block | None = None
    for number, line in enumerate(_NEWLINE.split(text), start=1):
        keyword, name = _marker(line)
        is_calendar = is_calendar or (keyword, name) == ("BEGIN", "VCALENDAR")
        if current is not None:
            if (keyword, name) == ("END", current.name):
                current.lines.append(line)
                current.complete = True
                current = None
                continue
            if not _ends_block(keyword, name):
                current.lines.append(line)
                continue
            current = None  # its END is missing: it stays incomplete
        if keyword == "BEGIN" and name != "VCALENDAR":
            current = Block(name, number, [line])
            blocks.append(current)
    return is_calendar, blocks


def unfolded(block: Block) -> list[str]:
    """The block's content lines with RFC 5545 folding undone (a long TZID folds DTSTART)."""
    return _NEWLINE.split(_FOLD.sub("", block.text))


def started_before(block: Block, day: date) -> bool:
    """Whether a one-off event plainly started before `day`, judged from its text alone.

    Lets a scan of an unchanged file skip parsing its old one-off events: they have no new
    occurrences. Anything unclear (a repeat, an odd DTSTART) answers False and gets parsed.
    """
    start = ""
    for line in unfolded(block):
        name = re.split(r"[;:]", line, maxsplit=1)[0].strip().upper()
        if name in REPEATS:
            return False
        if name == "DTSTART":
            start = line.rpartition(":")[2].strip()
    try:
        return date(int(start[:4]), int(start[4:6]), int(start[6:8])) < day
    except ValueError:
        return False


def parse_event(block: Block) -> icalendar.Event:
    if not block.complete:
        raise BrokenEvent("END:VEVENT is missing")
    try:
        event = icalendar.Event.from_ical(block.text)
    except Exception as error:  # the parser's failures on damaged text are many and undocumented
        raise BrokenEvent(f"it cannot be parsed ({error})") from None
    if not isinstance(event, icalendar.Event):
        raise BrokenEvent("it cannot be parsed")
    for name, message in event.errors:
        if name is None or name in _TIMING:
            raise BrokenEvent(f"{name or 'a line'} is not valid ({message})")
    for name in ("DTEND", "DURATION"):
        event.pop(name, None)  # a meeting counts at its start: a broken or odd end must not matter
    if "DTSTART" not in event:
        raise BrokenEvent("DTSTART is missing")
    return event


def when(event: icalendar.Event, name: str) -> date:
    """The date or date-time of DTSTART or RECURRENCE-ID (a period or a list is broken)."""
    value = getattr(event.get(name), "dt", None)
    if not isinstance(value, date):
        raise BrokenEvent(f"{name} is not one date or date-time")
    return value
