"""From parsed VEVENTs to meetings: series by UID, and their occurrences in a span of time.

`meetings_in` reads one iCalendar text (a file, or a CalDAV item) and gives every occurrence that
started in [since, now) as one MEETING `Interaction`, recurrences expanded and overrides applied;
an event that cannot be placed in time is skipped with a warning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events
from icalendar.timezone import tzp

from connectors.base import Context
from connectors.ics.text import (
    REPEATS,
    Block,
    BrokenEvent,
    parse_event,
    split_components,
    started_before,
    unfolded,
    when,
)
from syncd.model import Channel, Identity, IdentityKind, Interaction, Party

# How often each FREQ fires per day, to catch a series no meeting has before expanding it.
_PER_DAY = {"SECONDLY": 86400, "MINUTELY": 1440, "HOURLY": 24, "DAILY": 1, "WEEKLY": 1 / 7}
_PER_DAY |= {"MONTHLY": 1 / 28, "YEARLY": 1 / 365}
# Carries the line of BEGIN:VEVENT through the copies recurring_ical_events makes per occurrence.
_LINE = "X-SYNCD-LINE"
# Span widening so that floating and all-day times, compared as UTC by the library, are not missed;
# each occurrence is then filtered on its real start.
_SLACK = timedelta(days=2)


def _first(value: Any) -> Any:
    """The first of a property given more than once (icalendar then returns a list)."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _all(value: Any) -> list[Any]:
    """Every value of a property that may be given once, many times or not at all."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _text(value: Any) -> str:
    value = _first(value)
    return "" if value is None else str(value).strip()


def _param(address: Any, name: str) -> str:
    value = getattr(address, "params", {}).get(name, "")
    # An unquoted CN="Smith, John" comes back split at the comma.
    return ",".join(value).strip() if isinstance(value, list) else str(value).strip()


def _party(address: Any) -> Party | None:
    """An ORGANIZER or ATTENDEE with a mail address; None for urn:uuid: and the like."""
    if address is None:
        return None
    value = str(address).strip()
    # Apple writes some attendees as urn:uuid: with the address in an EMAIL parameter.
    email = value[7:] if value.lower().startswith("mailto:") else _param(address, "EMAIL")
    if not email.strip():
        return None
    return Party(
        Identity(IdentityKind.EMAIL, email.strip()),
        name=_param(address, "CN"),
        partstat=_param(address, "PARTSTAT").upper(),
        cutype=_param(address, "CUTYPE").upper(),
    )


def _utc(value: date, zone: ZoneInfo) -> datetime:
    """A DTSTART-like value in UTC: floating times and all-day dates are in the user's zone."""
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(), zone)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def _recurrence_key(value: date, zone: ZoneInfo) -> str:
    """A RECURRENCE-ID as refs carry it: UTC to the second, or the date of an all-day one."""
    if not isinstance(value, datetime):
        return value.isoformat()
    return _utc(value, zone).strftime("%Y-%m-%dT%H:%M:%SZ")


def _too_often(rule: Any, days: float) -> bool:
    """Whether an RRULE fires over 100,000 times in `days`: no meeting does, and it would stall."""
    per_day = _PER_DAY.get(_text(rule.get("FREQ")).upper(), 1) / (_first(rule.get("INTERVAL")) or 1)
    per_day *= math.prod(len(rule.get(part) or [0]) for part in ("BYSECOND", "BYMINUTE", "BYHOUR"))
    return min(days * per_day, _first(rule.get("COUNT")) or math.inf) > 100_000


@dataclass
class _Series:
    """Every component of one UID in one file: the event and the overrides of its occurrences."""

    uid: str
    line: int
    events: list[icalendar.Event] = field(default_factory=list)
    # The meeting as each VEVENT writes it, by its line; an occurrence is a copy with its own start.
    written: dict[str, Interaction] = field(default_factory=dict)
    recurring: bool = False
    earliest: datetime = field(default_factory=lambda: datetime.max.replace(tzinfo=UTC))

    def add(self, event: icalendar.Event, meeting: Interaction) -> None:
        self.events.append(event)
        self.written[_text(event.get(_LINE))] = meeting
        self.recurring = self.recurring or any(name in event for name in REPEATS)
        self.earliest = min(self.earliest, meeting.at)

    def occurrences(self, since: datetime | None, now: datetime) -> list[icalendar.Event]:
        """One copy of the event per occurrence in about [since, now), overrides applied."""
        calendar = icalendar.Calendar()
        for event in self.events:
            calendar.add_component(event)
        query = recurring_ical_events.of(calendar, keep_recurrence_attributes=True)
        return list(query.between((since or self.earliest) - _SLACK, now + _SLACK))

    def repeats_too_often(self, now: datetime) -> bool:
        days = (now - self.earliest).days
        rules = [rule for event in self.events for rule in _all(event.get("RRULE"))]
        return any(_too_often(rule, days) for rule in rules)


@dataclass
class _CalendarFile:
    """One .ics file or CalDAV item as read in this scan: its series and their past occurrences."""

    path: Path | str  # where warnings and evidence point: the file, or the item's URL
    context: Context
    unknown_zones: set[str] = field(default_factory=set)

    def warn(self, message: str, line: int | None = None) -> None:
        self.context.warn(self.path, message, line=line)

    def learn_zone(self, block: Block) -> None:
        """Parse a VTIMEZONE so the events that name its TZID resolve (icalendar caches it).

        A TZID the time-zone database knows (Olson, or Windows names such as "W. Europe Standard
        Time") keeps the database's full history rather than the file's one current rule.
        """
        tzids = [line[5:] for line in unfolded(block) if line.upper().startswith("TZID:")]
        try:
            if tzids and tzp.timezone(tzids[0].strip()) is not None:
                return
            if not block.complete:
                raise ValueError("END:VTIMEZONE is missing")
            icalendar.Timezone.from_ical(block.text)
        except Exception as error:  # a damaged definition must not stop the events
            self.warn(f"time zone definition skipped: {error}", line=block.line)

    def series(self, blocks: list[Block], skip_before: date | None) -> list[_Series]:
        """The file's events grouped by UID; old one-offs before `skip_before` are not parsed."""
        for block in blocks:
            if block.name == "VTIMEZONE":
                self.learn_zone(block)
        found: dict[str, _Series] = {}
        for block in blocks:
            old = skip_before is not None and started_before(block, skip_before)
            if block.name == "VEVENT" and not old:
                self.add_event(block, found)
        return list(found.values())

    def add_event(self, block: Block, found: dict[str, _Series]) -> None:
        try:
            event = parse_event(block)
            start = _utc(when(event, "DTSTART"), self.context.timezone)
        except (BrokenEvent, OverflowError) as problem:
            self.warn(f"event skipped: {problem}", line=block.line)
            return
        self.note_unknown_zone(event, block.line)
        # Without a UID the place in the file is the only name the event has.
        uid = _text(event.get("UID")) or f"{self.path}:{block.line}"
        event[_LINE] = str(block.line)
        meeting = self.meeting(event, uid, start, block.line)
        found.setdefault(uid, _Series(uid, block.line)).add(event, meeting)

    def note_unknown_zone(self, event: icalendar.Event, line: int) -> None:
        """Warn once per file of a TZID that resolved to nothing, leaving a floating time."""
        zone, start = _param(event.get("DTSTART"), "TZID"), when(event, "DTSTART")
        if zone and isinstance(start, datetime) and start.tzinfo is None:
            if zone not in self.unknown_zones:
                where = self.context.timezone.key
                self.warn(f"unknown time zone {zone!r}: its times are read as {where}", line=line)
            self.unknown_zones.add(zone)

    def meetings(self, series: _Series, since: datetime | None, now: datetime) -> list[Interaction]:
        """The occurrences of `series` that started in [since, now)."""
        try:
            if series.repeats_too_often(now):
                raise BrokenEvent("it repeats too often to be a meeting")
            if series.recurring or len(series.events) > 1:
                found = [self.occurrence(series, copy) for copy in series.occurrences(since, now)]
            else:
                found = list(series.written.values())
        except Exception as error:  # rrule and time-zone arithmetic fail in many ways on bad input
            reason = error if isinstance(error, BrokenEvent) else f"bad dates ({error})"
            self.warn(f"event {series.uid} skipped: {reason}", series.line)
            return []
        start = since or datetime.min.replace(tzinfo=UTC)
        return [meeting for meeting in found if start <= meeting.at < now]

    def meeting(self, event: icalendar.Event, uid: str, start: datetime, line: int) -> Interaction:
        attendees = (_party(address) for address in _all(event.get("ATTENDEE")))
        return Interaction(
            source=self.context.name,
            ref=uid,
            at=start,
            channel=Channel.MEETING,
            sender=_party(_first(event.get("ORGANIZER"))),
            recipients=tuple(party for party in attendees if party is not None),
            title=_text(event.get("SUMMARY")),
            evidence=f"{self.path}:{line} UID {uid}",
            signals={"status": _text(event.get("STATUS")).upper()},
        )

    def occurrence(self, series: _Series, copy: icalendar.Event) -> Interaction:
        """One occurrence, from the copy recurring_ical_events made of the event or its override."""
        zone = self.context.timezone
        ref = series.uid
        if series.recurring:
            ref = f"{series.uid}/{_recurrence_key(when(copy, 'RECURRENCE-ID'), zone)}"
        written = series.written[_text(copy.get(_LINE))]
        return replace(written, ref=ref, at=_utc(when(copy, "DTSTART"), zone))


def meetings_in(
    text: str, where: Path | str, context: Context, since: datetime | None, now: datetime
) -> list[Interaction] | None:
    """The meetings of one iCalendar text that started in [since, now), in order of time.

    `where` names the text in warnings and evidence (a file, or the URL of a CalDAV item). None,
    with a warning, when the text is no iCalendar at all; broken events are skipped with a warning.
    """
    is_calendar, blocks = split_components(text)
    if not is_calendar:
        context.warn(where, "not an iCalendar file (no BEGIN:VCALENDAR); skipped")
        return None
    calendar = _CalendarFile(where, context)
    skip_before = since.date() - _SLACK if since is not None else None
    found = [
        meeting
        for series in calendar.series(blocks, skip_before)
        for meeting in calendar.meetings(series, since, now)
    ]
    return sorted(found, key=lambda meeting: (meeting.at, meeting.ref))
