"""The `caldav` source: meetings from the user's calendars on a CalDAV server.

Each pass reads the events that changed since the last one (sync-collection, else ctag and ETags)
and expands them as the `ics` source does, up to now. An event that did not change can still have
occurrences that were in the future last time: the server is asked for the events with occurrences
since the last pass (a calendar-query with a time-range), and only their new occurrences count.

`cursor.state` is {"calendars": {url: {"sync_token" or "ctag", "etags": {name: digest},
"until": ISO time}}}.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Literal

from connectors.base import ConnectorOptions, SourceError, handed_over
from connectors.dav import CALDAV, NAMESPACES, DavOptions, xml
from connectors.davsync import (
    Collection,
    DavSource,
    Item,
    State,
    changes,
    chosen,
    collections,
    items_in,
    members,
    multiget,
)
from connectors.ical import PERSON
from connectors.ics import meetings_in
from syncd.model import Interaction

# Floating and all-day times are placed in UTC by servers: ask for a wider span, then filter.
_SLACK = timedelta(days=2)
# A follow-up syncd wrote as an event is no meeting, even in a calendar this source reads.
_FOLLOW_UP = re.compile(rf"^{PERSON}[;:]", re.IGNORECASE | re.MULTILINE)


class CalDavSourceOptions(DavOptions):
    type: Literal["caldav"]
    calendars: list[str] | None = None  # display names or paths; None: every calendar


def _moment(value: object) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo is not None else None


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


class CalDavSource(DavSource[Interaction]):
    """Meetings from every calendar (or the ones named) that a CalDAV account holds."""

    type: ClassVar[str] = "caldav"
    Options: ClassVar[builtins.type[ConnectorOptions]] = CalDavSourceOptions
    what = "calendars"
    kind = CALDAV
    state_key = "calendars"
    options: CalDavSourceOptions

    def picked(self) -> list[Collection]:
        with_events = [c for c in collections(self.client, CALDAV) if c.takes("VEVENT")]
        return chosen(with_events, self.options.calendars, CALDAV, SourceError)

    def _scan(self, calendar: Collection, states: dict[str, State]) -> Iterator[Interaction]:
        before = states.get(calendar.url)
        until = _moment(before.get("until")) if isinstance(before, dict) else None
        if before is None or until is None:
            before = {}  # no usable state: read it all
        now = self.context.now.astimezone(UTC)
        listing = changes(self.client, calendar, before)
        read = multiget(self.client, CALDAV, calendar, list(listing.changed))
        meetings = [meeting for item in read for meeting in self._meetings(item, None, now)]
        if until is not None and not listing.fresh:
            fetched = {calendar.item_name(item.url) for item in read}
            for item in self._occurring(calendar, until, now):
                if calendar.item_name(item.url) not in fetched:
                    meetings += self._meetings(item, until, now)
        meetings.sort(key=lambda meeting: (meeting.at, meeting.ref))

        def advance() -> None:
            states[calendar.url] = {
                **listing.state(calendar, before, read),
                "until": now.isoformat(),
            }

        yield from handed_over(meetings, advance)

    def _meetings(self, item: Item, since: datetime | None, now: datetime) -> list[Interaction]:
        if _FOLLOW_UP.search(item.text):
            return []
        return meetings_in(item.text, item.url, self.context, since, now) or []

    def _occurring(self, calendar: Collection, since: datetime, now: datetime) -> list[Item]:
        """The events with an occurrence in about [since, now), changed or not."""
        body = (
            f"<C:calendar-query {NAMESPACES}><D:prop><D:getetag/><C:calendar-data/></D:prop>"
            '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
            f'<C:time-range start="{_utc(since - _SLACK)}" end="{_utc(now + _SLACK)}"/>'
            "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"
        )
        response = self.client.request(
            "REPORT", calendar.url, xml(body), {"Depth": "1"}, ok=(207, 400, 403, 501)
        )
        if response.status == 207:
            return items_in(self.client.multistatus(response, calendar.url), CALDAV)
        # A server that cannot search by time: every event is read again, to the same end.
        return multiget(self.client, CALDAV, calendar, list(members(self.client, calendar)))
