"""The `caldav` sink: follow-ups as tasks or events in one calendar on a CalDAV server.

It creates with If-None-Match: * and updates with If-Match on the ETag it got, so a change the user
made in their calendar is never overwritten (HTTP 412 becomes PreconditionFailed), and it only
changes or removes items that carry X-SYNCD-PERSON. With component = "auto" it writes what the
calendar takes (its supported-calendar-component-set): tasks where it can, events where it cannot.
"""

from __future__ import annotations

import builtins
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import datetime, time
from typing import ClassVar, Literal
from urllib.parse import quote, unquote, urljoin, urlsplit
from xml.sax.saxutils import escape

from connectors.base import ConnectorOptions, Context, PreconditionFailed, SinkError
from connectors.dav import CALDAV, DAV, NAMESPACES, Client, DavOptions, client_for, xml
from connectors.davsync import (
    Collection,
    Item,
    collection_at,
    collections,
    home_of,
    items_in,
    matches,
    multiget,
)
from connectors.ical import FOOTER, HEADER, render, state_of
from connectors.icsfile import Block, Unreadable, find_item, split_calendar
from syncd.model import FollowUpStatus, Reminder, ReminderState

MORNING = time(9)  # when a follow-up that had to become an event starts, if it has no time
_SAFE_NAME = re.compile(r"[A-Za-z0-9@_+=-][A-Za-z0-9@._+=-]{0,150}")
_FOLD = re.compile(r"\r?\n[ \t]")
# Characters XML 1.0 cannot carry: a UID with one of them cannot be searched for.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_CALENDAR_TYPE = "text/calendar; charset=utf-8"


class CalDavSinkOptions(DavOptions):
    type: Literal["caldav"]
    calendar: str  # display name, or a path ("/dav/calendars/ada/followups/")
    component: Literal["auto", "VTODO", "VEVENT"] = "auto"


def _file_name(uid: str) -> str:
    """`<uid>.ics`; a UID that is not a safe name gets one made from its hash."""
    if _SAFE_NAME.fullmatch(uid):
        return quote(f"{uid}.ics", safe="@+=")
    return f"syncd-{hashlib.sha256(uid.encode('utf-8', 'surrogatepass')).hexdigest()[:32]}.ics"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "syncd"


def _content_lines(text: str) -> list[str]:
    """An item's properties, unfolded and sorted: equal when a server only re-wrapped them."""
    return sorted(line for line in re.split(r"\r?\n", _FOLD.sub("", text)) if line.strip())


def _blocks(text: str) -> list[Block]:
    """The parts of a calendar object; none when it cannot be taken apart."""
    try:
        return split_calendar(text)
    except Unreadable:
        return []


def _ours(text: str, uid: str) -> str | None:
    """The block of follow-up `uid` in a calendar object, if syncd wrote it; else None."""
    block = find_item(_blocks(text), uid)
    return block.text if block is not None and block.ours else None


class CalDavSink:
    """Follow-ups as tasks (VTODO) or events (VEVENT) in one calendar on a CalDAV server."""

    type: ClassVar[str] = "caldav"
    Options: ClassVar[builtins.type[ConnectorOptions]] = CalDavSinkOptions

    def __init__(self, options: CalDavSinkOptions, context: Context) -> None:
        self.options = options
        self.context = context
        self._client: Client | None = None
        self._calendar: Collection | None = None
        # Where the server keeps a follow-up when it chose another place than <uid>.ics.
        self._urls: dict[str, str] = {}
        self._cannot_search = False  # the server refused a calendar-query by UID

    # -- finding the calendar -------------------------------------------------------------------

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = client_for(self.options, self.context, SinkError)
        return self._client

    def calendar(self) -> Collection | None:
        """The calendar syncd writes in, or None when the server has none of that name."""
        if self._calendar is None:
            self._calendar = self._find_calendar()
        return self._calendar

    def writable_calendar(self) -> Collection:
        """The calendar syncd writes in; created when it is missing."""
        self._calendar = self.calendar() or self._create_calendar()
        return self._calendar

    def _named_path(self) -> str | None:
        """The calendar's URL when the config gives a path rather than a display name."""
        wanted = self.options.calendar.strip()
        return urljoin(self.client.url, wanted.rstrip("/") + "/") if "/" in wanted else None

    def _find_calendar(self) -> Collection | None:
        if (path := self._named_path()) is not None:
            return collection_at(self.client, CALDAV, path)
        found = collections(self.client, CALDAV)
        return next((c for c in found if matches(c, self.options.calendar)), None)

    def _create_calendar(self) -> Collection:
        name = self.options.calendar.strip()
        url = self._named_path() or urljoin(home_of(self.client, CALDAV), _slug(name) + "/")
        title = unquote(urlsplit(url).path).rstrip("/").rpartition("/")[2] if "/" in name else name
        body = (
            f"<C:mkcalendar {NAMESPACES}><D:set><D:prop><D:displayname>{escape(title)}"
            '</D:displayname><C:supported-calendar-component-set><C:comp name="VTODO"/>'
            '<C:comp name="VEVENT"/></C:supported-calendar-component-set></D:prop></D:set>'
            "</C:mkcalendar>"
        )
        response = self.client.request("MKCALENDAR", url, xml(body), ok=(201, 400, 403, 405, 409))
        created = collection_at(self.client, CALDAV, url) if response.status == 201 else None
        if created is None:
            raise SinkError(
                f"there is no calendar {name!r} on {self.client.host}, and the server did not "
                f"let syncd create it (HTTP {response.status}); create it in your calendar app, "
                "or set `calendar` to one that exists"
            )
        self.context.logger.info("%s: created calendar %r at %s", self.context.name, title, url)
        return created

    # -- what gets written ----------------------------------------------------------------------

    def _component(self, wanted: str, calendar: Collection) -> str:
        """VTODO or VEVENT as configured; with "auto", what the calendar takes."""
        forced = self.options.component
        if forced != "auto":
            if not calendar.takes(forced):
                raise SinkError(
                    f'calendar {calendar.name!r} does not take {forced}s; set component = "auto" '
                    "to write what it takes, or choose another calendar"
                )
            return forced
        if wanted not in ("VTODO", "VEVENT") or calendar.takes(wanted):
            return wanted
        other = "VEVENT" if wanted == "VTODO" else "VTODO"
        if not calendar.takes(other):
            taken = ", ".join(sorted(calendar.components))
            raise SinkError(f"calendar {calendar.name!r} takes neither tasks nor events ({taken})")
        return other

    def _as_written(self, reminder: Reminder, calendar: Collection) -> Reminder:
        component = self._component(reminder.component.upper(), calendar)
        if component == reminder.component.upper():
            return reminder
        start = reminder.start
        if component == "VEVENT" and start is None:
            start = datetime.combine(reminder.due, MORNING, self.context.timezone)
        return replace(reminder, component=component, start=start)

    def _url_of(self, uid: str, calendar: Collection) -> str:
        return self._urls.get(uid) or urljoin(calendar.url, _file_name(uid))

    # -- the sink protocol ----------------------------------------------------------------------

    def check(self) -> list[str]:
        try:
            calendar = self.writable_calendar()
            component = self._component("VTODO", calendar)
        except SinkError as problem:
            return [str(problem)]
        if self.options.component == "auto" and calendar.takes("VEVENT") and component == "VTODO":
            component = "VTODO or VEVENT, as [reminders] component says"
        self.context.logger.info(
            "%s: follow-ups go to calendar %r (%s) as %s",
            self.context.name, calendar.name, calendar.url, component,
        )  # fmt: skip
        return []

    def put(self, reminder: Reminder) -> str:
        calendar = self.writable_calendar()
        reminder = self._as_written(reminder, calendar)
        block = render(reminder, self.context.timezone)
        url = self._url_of(reminder.uid, calendar)
        condition = {"If-Match": reminder.etag} if reminder.etag else {"If-None-Match": "*"}
        response = self.client.request(
            "PUT", url, HEADER + block + FOOTER, {"Content-Type": _CALENDAR_TYPE, **condition},
            ok=(200, 201, 204, 412),
        )  # fmt: skip
        if response.status == 412:
            return self._already_there(reminder, url, block)
        if location := response.headers.get("Location"):
            url = self._urls[reminder.uid] = urljoin(url, location)
        etag = response.headers.get("ETag")
        # A weak or missing ETag: the server changed what it stored; ask what it holds now.
        return etag if etag and not etag.startswith("W/") else self._etag_at(url)

    def _already_there(self, reminder: Reminder, url: str, block: str) -> str:
        """After a 412: the same follow-up as syncd would write is fine; anything else stands."""
        if reminder.etag is None:
            item = self._get(url)
            held = _ours(item.text, reminder.uid) if item else None
            if item and held is not None and _content_lines(held) == _content_lines(block):
                return item.etag
        raise PreconditionFailed(
            f"follow-up {reminder.uid} in calendar {self.options.calendar!r} was changed or "
            "deleted since syncd wrote it; syncd leaves it as it is"
        )

    def remove(self, uid: str) -> None:
        calendar = self.calendar()
        if calendar is None:
            return
        item = self._get(self._url_of(uid, calendar)) or self._search(uid, calendar)
        if item is None:
            return
        if _ours(item.text, uid) is None:
            self.context.warn(item.url, f"not removed: it is not follow-up {uid} as syncd wrote it")
            return
        response = self.client.request(
            "DELETE", item.url, headers={"If-Match": item.etag}, ok=(200, 204, 404, 412)
        )
        if response.status == 412:
            self.context.logger.info("%s: %s changed meanwhile; kept", self.context.name, uid)

    def read_back(self, uids: Iterable[str]) -> Iterator[ReminderState]:
        wanted = list(uids)
        if not wanted:
            return
        calendar = self.calendar()
        if calendar is None:  # a calendar that is gone is no mass deletion
            raise SinkError(
                f"calendar {self.options.calendar!r} is gone from {self.client.host}, yet syncd "
                "wrote follow-ups there; restore it, or remove this sink from the config"
            )
        urls = {uid: self._url_of(uid, calendar) for uid in wanted}
        found = multiget(self.client, CALDAV, calendar, list(urls.values()))
        by_path = {unquote(urlsplit(item.url).path): item for item in found}
        for uid in wanted:
            item = by_path.get(unquote(urlsplit(urls[uid]).path)) or self._search(uid, calendar)
            yield self._state(uid, item)

    def _state(self, uid: str, item: Item | None) -> ReminderState:
        """What the user made of a follow-up; one that cannot be read is open, never deleted."""
        if item is None:
            return ReminderState(uid, FollowUpStatus.DELETED)
        try:
            block = find_item(split_calendar(item.text), uid)
            if block is None:  # something else stands at its place
                return ReminderState(uid, FollowUpStatus.DELETED)
            return state_of(uid, block.text, item.etag, self.context.timezone, self.context.now)
        except Exception as error:  # icalendar raises many kinds on broken input
            self.context.warn(item.url, f"follow-up {uid} cannot be read, left as it is: {error}")
            return ReminderState(uid, FollowUpStatus.OPEN)

    # -- single items ---------------------------------------------------------------------------

    def _get(self, url: str) -> Item | None:
        response = self.client.request("GET", url, ok=(200, 404, 410))
        if response.status != 200:
            return None
        text = response.body.decode("utf-8", "replace")
        return Item(url, response.headers.get("ETag") or self._etag_at(url), text)

    def _etag_at(self, url: str) -> str:
        found = self.client.propfind(url, ("<D:getetag/>",), "0")
        etag = found[0].text(f"{DAV}getetag") if found else None
        if not etag:
            raise SinkError(
                f"{self.client.host} gives no ETag for {unquote(urlsplit(url).path)}; without "
                "one syncd cannot tell the user's changes from its own"
            )
        return etag

    def _search(self, uid: str, calendar: Collection) -> Item | None:
        """Follow-up `uid` wherever the server keeps it (a calendar-query by UID), or None."""
        if _NOT_XML.search(uid) or self._cannot_search:
            return None
        for component in ("VTODO", "VEVENT"):
            body = (
                f"<C:calendar-query {NAMESPACES}><D:prop><D:getetag/><C:calendar-data/></D:prop>"
                f'<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="{component}">'
                '<C:prop-filter name="UID"><C:text-match collation="i;octet">'
                f"{escape(uid)}</C:text-match></C:prop-filter></C:comp-filter></C:comp-filter>"
                "</C:filter></C:calendar-query>"
            )
            response = self.client.request(
                "REPORT", calendar.url, xml(body), {"Depth": "1"}, ok=(207, 400, 403, 501)
            )
            if response.status != 207:  # a server that cannot search, asked no more this pass:
                self._cannot_search = True  # what is not at its place is gone
                return None
            found = items_in(self.client.multistatus(response, calendar.url), CALDAV)
            for item in found:
                if find_item(_blocks(item.text), uid) is not None:
                    self._urls[uid] = item.url
                    return item
        return None
