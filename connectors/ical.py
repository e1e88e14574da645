"""The iCalendar form of a follow-up: rendering a `Reminder`, reading back what the user did.

Every sink that writes iCalendar (files, vdirs, CalDAV, invitations) renders through `render`, so a
follow-up looks the same wherever it lands, and reads back through `state_of`.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import icalendar

from connectors.base import SinkError
from syncd.model import FollowUpStatus, Reminder, ReminderState

PERSON = "X-SYNCD-PERSON"
HEADER = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//syncd//syncd//EN\r\n"
FOOTER = "END:VCALENDAR\r\n"

# Every character str.splitlines() breaks on: some readers split items that way, so these become
# newlines (escaped in the file) and no reader sees a line end where there is none.
_LINE_BREAKS = re.compile(r"\r\n|[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
# Other control characters are not allowed in iCalendar text at all.
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")


class _Text(icalendar.vText):
    """TEXT escaped as RFC 5545 says (icalendar would turn a literal backslash-N into a newline)."""

    def to_ical(self) -> bytes:
        escaped = str(self).replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
        return escaped.replace("\n", "\\n").encode("utf-8")


# Lone surrogates (undecodable bytes carried through from a mail header) cannot be written as UTF-8.
_SURROGATES = re.compile(r"[\ud800-\udfff]")


def _clean(value: str) -> str:
    # A leading byte-order mark would be eaten by the reader's UTF-8 decoding anyway.
    text = _SURROGATES.sub("\ufffd", _LINE_BREAKS.sub("\n", value))
    return _CONTROLS.sub("", text).lstrip("\ufeff")


def _text(value: str) -> _Text:
    return _Text(_clean(value))


def _utc(moment: datetime, timezone: ZoneInfo) -> datetime:
    """An aware moment in UTC; a floating one is taken to be in the user's time zone."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone)).astimezone(UTC)


def _day(value: date) -> date:
    return value.date() if isinstance(value, datetime) else value


def _description(reminder: Reminder) -> str:
    """The description, then each way to reach the person it does not already name, one a line."""
    lines = [reminder.description] if reminder.description else []
    lines += [link for link in reminder.links if link not in reminder.description]
    return "\n".join(lines)


def _add_times(item: icalendar.Component, reminder: Reminder, timezone: ZoneInfo) -> None:
    if isinstance(item, icalendar.Todo):
        item.add("due", _day(reminder.due))
        item.add("status", "NEEDS-ACTION")
        return
    # Without a time of day, an all-day event. With one, in UTC: that needs no VTIMEZONE, and its
    # bytes do not change when the tz database does.
    start = reminder.start
    item.add("dtstart", _day(reminder.due) if start is None else _utc(start, timezone))
    item.add("duration", timedelta(days=1) if start is None else reminder.duration)
    item.add("transp", "TRANSPARENT")


def render(reminder: Reminder, timezone: ZoneInfo, newline: str = "\r\n") -> str:
    """The follow-up as one VTODO or VEVENT block, the same text every time it is rendered."""
    kinds = {"VTODO": icalendar.Todo, "VEVENT": icalendar.Event}
    if reminder.component.upper() not in kinds:
        raise SinkError(f"follow-up {reminder.uid}: component must be VTODO or VEVENT")
    if _clean(reminder.uid) != reminder.uid:  # it would not be found again under the same UID
        raise SinkError(f"follow-up {reminder.uid!r}: a UID cannot hold control characters")
    item = kinds[reminder.component.upper()]()
    # DTSTAMP is required; without a planned stamp the due day stands in (never the wall clock).
    stamp = reminder.stamp or datetime.combine(_day(reminder.due), time())
    item.add("uid", _text(reminder.uid))
    item.add("dtstamp", _utc(stamp, timezone))
    item.add("created", _utc(stamp, timezone))
    item.add("summary", _text(reminder.summary))
    item.add("description", _text(_description(reminder)))
    if reminder.categories:
        item.add("categories", [_clean(name) for name in reminder.categories])
    if reminder.links:
        item.add("url", reminder.links[0])
    item.add("sequence", reminder.sequence)
    item.add(PERSON, _text(reminder.person_id))
    _add_times(item, reminder, timezone)
    return str(item.to_ical().decode("utf-8")).replace("\r\n", newline)


def etag(text: str) -> str:
    return '"' + hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest() + '"'


def _moment(item: icalendar.Component, name: str) -> date | None:
    if name not in item:
        return None
    value = item.decoded(name)
    if not isinstance(value, date):
        raise ValueError(f"{name} is not a date or time: {value!r}")
    return value


def _on_day(value: date, timezone: ZoneInfo) -> date:
    """The day a DUE/DTSTART stands on in the user's time zone (floating times as written)."""
    if isinstance(value, datetime) and value.tzinfo:
        return value.astimezone(timezone).date()
    return _day(value)


def _completed_at(item: icalendar.Component, timezone: ZoneInfo, changed: datetime) -> datetime:
    """COMPLETED; else when the item was last modified; else `changed` (e.g. the file's mtime)."""
    for name in ("COMPLETED", "LAST-MODIFIED"):
        value = _moment(item, name)
        if value is not None:
            moment = value if isinstance(value, datetime) else datetime.combine(value, time())
            return _utc(moment, timezone)
    return changed


def _is_completed(item: icalendar.Component) -> bool:
    percent = str(item.get("PERCENT-COMPLETE", "")).strip()
    status = str(item.get("STATUS", "")).upper()
    return status == "COMPLETED" or "COMPLETED" in item or percent == "100"


def state_of(
    uid: str, text: str, tag: str | None, timezone: ZoneInfo, changed: datetime
) -> ReminderState:
    """What the user made of a follow-up, from its VTODO/VEVENT text as the calendar has it now.

    Raises on text that is not iCalendar; a caller reports that and never takes it for deletion.
    """
    item = icalendar.Component.from_ical(text)
    if _is_completed(item):
        done = _completed_at(item, timezone, changed)
        return ReminderState(uid, FollowUpStatus.COMPLETED, completed_at=done, etag=tag)
    if str(item.get("STATUS", "")).upper() == "CANCELLED":
        return ReminderState(uid, FollowUpStatus.DELETED)
    when = _moment(item, "DUE") or _moment(item, "DTSTART")
    due = _on_day(when, timezone) if when else None
    return ReminderState(uid, FollowUpStatus.OPEN, due=due, etag=tag)
