"""The caldav sink and source against a real Radicale: what the user sees in their calendar app,
what syncd reads back, and what a server's odd answers cost.

The sink runs the shared `SinkContract`, with a calendar app (plain HTTP) playing the user.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import icalendar
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from icalendar.parser import Contentline

from connectors import dav
from connectors.base import (
    Context,
    Cursor,
    PreconditionFailed,
    Sink,
    SinkError,
    SourceError,
    sink_class,
    source_class,
)
from connectors.caldav import CalDavSink, CalDavSource
from connectors.ical import FOOTER, HEADER, render
from syncd import config as configuration
from syncd import engine
from syncd.model import FollowUpStatus, Interaction, ReminderState
from syncd.people import relationships
from syncd.store import Store
from tests.connectors.test_icsfile import (
    BERLIN,
    UID,
    SinkContract,
    follow_up,
    mangled,
    new_context,
)
from tests.servers import radicale as servers
from tests.servers.radicale import DavAccount, free_port

radicale = servers.radicale
radicale_tls = servers.radicale_tls
dav_account = servers.dav_account

DATA = Path(__file__).parent / "data" / "caldav"
CARDS = Path(__file__).parent / "data" / "carddav"
NOW = datetime(2024, 4, 2, 9, 0, tzinfo=BERLIN)


def login(account: DavAccount, **options: Any) -> dict[str, Any]:
    """The keys a config gives to log in as `account` (the test context hands out the secret)."""
    return {
        "url": account.url(),
        "username": account.username,
        "password": {"keyring": "syncd-test"},
        **options,
    }


def context_for(account: DavAccount, now: datetime = NOW, password: str | None = None) -> Context:
    secret = account.password if password is None else password
    return Context("followups", BERLIN, now, secret=lambda options: secret)


def sink_for(account: DavAccount, context: Context | None = None, **options: Any) -> CalDavSink:
    values = {"type": "caldav", "calendar": "Follow-ups", **login(account), **options}
    return CalDavSink(CalDavSink.Options.model_validate(values), context or context_for(account))


def source_for(account: DavAccount, context: Context | None = None, **options: Any) -> CalDavSource:
    values = {"type": "caldav", **login(account), **options}
    options_model = CalDavSource.Options.model_validate(values)
    return CalDavSource(options_model, context or context_for(account))


def uids_in(data: bytes) -> list[str]:
    """The UIDs in a calendar object, read line by line (so also from an item icalendar refuses)."""
    lines = re.split(r"\r?\n", re.sub(r"\r?\n[ \t]", "", data.decode("utf-8")))
    found = [Contentline(line).parts() for line in lines if line.upper().startswith("UID")]
    return [str(value) for name, _, value in found if name.upper() == "UID"]


def calendar_items(data: bytes) -> list[icalendar.Component]:
    items = icalendar.Calendar.from_ical(data).subcomponents
    return [item for item in items if item.name in ("VTODO", "VEVENT")]


def path_of(sink: CalDavSink) -> str:
    calendar = sink.calendar()
    assert calendar is not None
    return urlsplit(calendar.url).path


@dataclasses.dataclass
class Requests:
    """What syncd asked the server: (method, the request body's first element) in order."""

    seen: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    def names(self) -> list[str]:
        return [f"{method} {body}".strip() for method, body in self.seen]


@pytest.fixture
def requests(monkeypatch: pytest.MonkeyPatch) -> Requests:
    """Records every request the DAV connectors send."""
    record = Requests()
    send = dav.Client._send

    def spy(client: dav.Client, method: str, url: str, body: str | None, headers: Any) -> Any:
        kind = ElementTree.fromstring(body).tag.rpartition("}")[2] if body else ""
        record.seen.append((method, kind))
        return send(client, method, url, body, headers)

    monkeypatch.setattr(dav.Client, "_send", spy)
    return record


# --- the sink: the contract every sink keeps ---------------------------------------------------


class TestCalDavSink(SinkContract):
    """A user's Radicale calendar, changed by their calendar app over plain WebDAV."""

    @pytest.fixture(autouse=True)
    def _account(self, dav_account: DavAccount) -> None:
        self.account = dav_account

    def make_sink(self, folder: Path, context: Context) -> Sink:
        # Each sink writes its own calendar, named after its folder; the first write creates it.
        context.secret = lambda options: self.account.password
        return sink_for(self.account, context, calendar=f"Follow-ups {folder.name}")

    def item_path(self, sink: Sink, uid: str) -> str:
        assert isinstance(sink, CalDavSink)
        for path, data in self.account.contents(path_of(sink)).items():
            if uid in uids_in(data):
                return path
        raise AssertionError(f"no item with UID {uid!r} on the server")

    def calendar_data(self, sink: Sink, uid: str) -> bytes:
        return self.account.get(self.item_path(sink, uid)).body

    def user_saves(self, sink: Sink, uid: str, data: bytes) -> None:
        self.account.put(self.item_path(sink, uid), data)

    def user_deletes(self, sink: Sink, uid: str) -> None:
        self.account.delete(self.item_path(sink, uid))

    def snapshot(self, sink: Sink) -> dict[str, bytes]:
        assert isinstance(sink, CalDavSink)
        return self.account.contents(path_of(sink))

    # Where a server differs from a file: an update names the ETag syncd was given.
    def test_writing_again_by_uid_updates_the_one_item(self, sink: Sink) -> None:
        old = sink.put(follow_up())
        new = sink.put(follow_up(due=date(2024, 5, 10), sequence=1, etag=old))
        assert new != old
        assert self.state(sink).due == date(2024, 5, 10)
        assert len(self.snapshot(sink)) == 1
        assert self.stored(sink, UID)["SEQUENCE"] == 1

    # Radicale refuses an unreadable DUE; a SEQUENCE that is no number it lets through.
    def test_a_broken_item_warns_and_is_not_deleted(self, sink: Sink, context: Context) -> None:
        sink.put(follow_up())
        broken = self.calendar_data(sink, UID).replace(b"SEQUENCE:0", b"SEQUENCE:zero")
        self.user_saves(sink, UID, broken)
        assert self.state(sink) == ReminderState(UID, FollowUpStatus.OPEN)
        assert context.warnings == 1
        assert b"SEQUENCE:zero" in self.calendar_data(sink, UID)

    def test_a_new_follow_up_never_overwrites_what_is_there(self, sink: Sink) -> None:
        sink.put(follow_up())
        self.user_edits(sink, UID, lambda task: task.__setitem__("SUMMARY", "Lunch with Ada"))
        before = self.snapshot(sink)
        with pytest.raises(PreconditionFailed):
            sink.put(follow_up())  # as after a crash: syncd holds no ETag for it
        assert self.snapshot(sink) == before

    def test_a_changed_follow_up_is_left_as_the_user_made_it(self, sink: Sink) -> None:
        tag = sink.put(follow_up())
        self.user_edits(sink, UID, lambda task: task.__setitem__("SUMMARY", "Lunch with Ada"))
        before = self.snapshot(sink)
        with pytest.raises(PreconditionFailed, match="changed or deleted since syncd wrote it"):
            sink.put(follow_up(due=date(2024, 5, 10), sequence=1, etag=tag))
        assert self.snapshot(sink) == before
        assert self.state(sink).etag != tag  # read-back hands the engine the user's version

    def test_rewriting_with_its_etag_keeps_the_etag(self, sink: Sink) -> None:
        tag = sink.put(follow_up())
        before = self.snapshot(sink)
        assert sink.put(follow_up(etag=tag)) == tag
        assert self.snapshot(sink) == before

    def test_an_item_the_user_saved_under_another_name_is_still_found(self, sink: Sink) -> None:
        sink.put(follow_up())
        data = self.calendar_data(sink, UID)
        old_path = self.item_path(sink, UID)
        self.account.delete(old_path)
        self.account.put(old_path.replace(".ics", "-copy.ics"), data)
        assert self.state(sink).status == FollowUpStatus.OPEN
        sink.remove(UID)
        assert self.snapshot(sink) == {}

    def test_removing_leaves_an_item_syncd_did_not_write(
        self, sink: Sink, context: Context
    ) -> None:
        sink.put(follow_up())
        self.user_edits(sink, UID, lambda task: task.pop("X-SYNCD-PERSON"))
        before = self.snapshot(sink)
        sink.remove(UID)
        assert self.snapshot(sink) == before
        assert context.warnings == 1

    def test_a_calendar_that_is_gone_is_an_error_not_a_mass_deletion(self, sink: Sink) -> None:
        sink.put(follow_up())
        assert isinstance(sink, CalDavSink)
        self.account.delete(path_of(sink))
        fresh = sink_for(self.account, new_context(), calendar=sink.options.calendar)
        fresh.context.secret = lambda options: self.account.password
        with pytest.raises(SinkError, match="is gone"):
            list(fresh.read_back([UID]))
        fresh.remove(UID)  # nothing to remove, nothing created
        assert fresh.calendar() is None


# --- the sink: the calendar and the component -------------------------------------------------


def test_the_calendar_is_created_once_and_check_says_what_is_written(
    dav_account: DavAccount, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    sink = sink_for(dav_account)
    assert sink.check() == []
    assert sink_for(dav_account).check() == []
    listing = dav_account.request(
        "PROPFIND", dav_account.home,
        '<D:propfind xmlns:D="DAV:"><D:prop><D:displayname/></D:prop></D:propfind>', Depth="1",
    )  # fmt: skip
    assert listing.body.count(b"<displayname>Follow-ups</displayname>") == 1
    assert "as VTODO or VEVENT, as [reminders] component says" in caplog.text


def test_a_calendar_named_by_its_path(dav_account: DavAccount) -> None:
    path = dav_account.make_calendar("Work")
    sink = sink_for(dav_account, calendar=path)
    sink.put(follow_up())
    assert len(dav_account.members(path)) == 1


def test_events_when_asked_for(dav_account: DavAccount) -> None:
    sink = sink_for(dav_account, component="VEVENT")
    tag = sink.put(follow_up(start=None))
    (data,) = dav_account.contents(path_of(sink)).values()
    (event,) = icalendar.Calendar.from_ical(data).walk("VEVENT")
    # A task has no time; as an event it starts at nine on its day, where the user lives.
    assert event.decoded("DTSTART") == datetime(2024, 5, 3, 9, 0, tzinfo=BERLIN)
    assert event["TRANSP"] == "TRANSPARENT"
    assert list(sink.read_back([UID])) == [
        ReminderState(UID, FollowUpStatus.OPEN, due=date(2024, 5, 3), etag=tag)
    ]


def test_a_calendar_without_tasks_gets_events(
    dav_account: DavAccount, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    dav_account.make_calendar("Meetings", components=("VEVENT",))
    sink = sink_for(dav_account, calendar="Meetings")
    assert sink.check() == []
    assert (
        f"calendar 'Meetings' ({dav_account.url()}{dav_account.home[1:]}meetings/) as VEVENT"
        in (caplog.text)
    )
    start = datetime(2024, 5, 3, 10, 30, tzinfo=BERLIN)
    sink.put(follow_up(start=start))
    (data,) = dav_account.contents(path_of(sink)).values()
    (event,) = icalendar.Calendar.from_ical(data).walk("VEVENT")
    assert event.decoded("DTSTART") == start
    assert event["SUMMARY"] == "Get in touch with Ada Lovelace"
    assert not icalendar.Calendar.from_ical(data).walk("VTODO")


def test_tasks_forced_on_a_calendar_without_tasks(dav_account: DavAccount) -> None:
    dav_account.make_calendar("Meetings", components=("VEVENT",))
    sink = sink_for(dav_account, calendar="Meetings", component="VTODO")
    (problem,) = sink.check()
    assert problem.startswith("calendar 'Meetings' does not take VTODOs")
    with pytest.raises(SinkError, match="does not take VTODOs"):
        sink.put(follow_up())
    assert dav_account.members(path_of(sink)) == []


def test_check_says_what_is_wrong(dav_account: DavAccount, radicale: servers.Radicale) -> None:
    wrong = sink_for(dav_account, context_for(dav_account, password="wrong"))
    assert wrong.check() == [
        f"{urlsplit(radicale.url).netloc} refused the login of user {dav_account.username!r} "
        "(HTTP 401); check username and password"
    ]
    port = free_port()
    nobody = sink_for(dav_account, url=f"http://127.0.0.1:{port}/")
    (problem,) = nobody.check()
    assert problem.startswith(f"cannot reach 127.0.0.1:{port} (")
    assert problem.endswith("check `url` and that the server is running")
    someone_else = radicale.new_account()
    (problem,) = sink_for(dav_account, calendar=f"{someone_else.home}tasks/").check()
    assert "(HTTP 403)" in problem
    anonymous = CalDavSink.Options.model_validate(
        {"type": "caldav", "url": radicale.url, "calendar": "Follow-ups"}
    )
    (problem,) = CalDavSink(anonymous, new_context()).check()
    assert problem.endswith("asks for a login (HTTP 401); set username and a password")


def test_a_password_never_travels_unencrypted() -> None:
    with pytest.raises(ValueError, match="unencrypted"):
        CalDavSink.Options.model_validate(
            {"type": "caldav", "url": "http://dav.example.org/", "calendar": "x",
             "username": "ada", "password_command": ["pass", "dav"]}
        )  # fmt: skip
    with pytest.raises(ValueError, match="server's address"):
        CalDavSink.Options.model_validate(
            {"type": "caldav", "url": "dav.example.org", "calendar": "x"}
        )
    with pytest.raises(ValueError, match="a password in the config file is refused"):
        CalDavSink.Options.model_validate(
            {"type": "caldav", "url": "https://x.org/", "calendar": "x", "password": "hunter2"}
        )


def test_tls_is_verified_against_the_given_authority(
    radicale_tls: servers.Radicale, tmp_path: Path
) -> None:
    account = radicale_tls.new_account()
    assert radicale_tls.ca_file is not None
    trusted = sink_for(account, ca_file=str(radicale_tls.ca_file))
    assert trusted.check() == []
    (problem,) = sink_for(account).check()
    assert "TLS certificate of 127.0.0.1" in problem
    assert "set ca_file" in problem
    (tmp_path / "junk.pem").write_text("not a certificate")
    (problem,) = sink_for(account, ca_file=str(tmp_path / "junk.pem")).check()
    assert problem.startswith(f"ca_file {tmp_path / 'junk.pem'} cannot be used")


def test_the_config_names_the_connectors() -> None:
    assert sink_class("caldav") is CalDavSink
    assert source_class("caldav") is CalDavSource
    with pytest.raises(ValueError, match="calendars"):
        CalDavSource.Options.model_validate(
            {"type": "caldav", "url": "https://x.org/", "calendars": "Work"}
        )


# --- the source --------------------------------------------------------------------------------


@pytest.fixture
def work(dav_account: DavAccount) -> str:
    """A Work calendar with a weekly stand-up (one skipped, one moved), a lunch, a workshop."""
    path = dav_account.make_calendar("Work", components=("VEVENT",))
    for name in ("standup", "lunch", "workshop"):
        dav_account.put(f"{path}{name}.ics", (DATA / f"{name}.ics").read_bytes())
    return path


def meetings(source: CalDavSource, cursor: Cursor) -> list[tuple[str, datetime]]:
    found = list(source.scan(cursor))
    assert all(isinstance(item, Interaction) for item in found)
    return [(meeting.ref, meeting.at) for meeting in found if isinstance(meeting, Interaction)]


STANDUP = "0f4c2a8e-5b1d-4e8a-9c3f-standup"
LUNCH = "8C1E4A6F-2B7D-4F0E-9A1C-3D5B7E9F1A2C"
WORKSHOP = "5q9r2k1m7v3n8b4c6x0z@google.com"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_meetings_up_to_now_then_only_what_is_new(
    dav_account: DavAccount, work: str, requests: Requests
) -> None:
    source = source_for(dav_account)
    cursor = Cursor()
    assert meetings(source, cursor) == [
        (f"{STANDUP}/2024-03-04T09:00:00Z", utc(2024, 3, 4, 9)),
        (f"{STANDUP}/2024-03-11T09:00:00Z", utc(2024, 3, 11, 9)),
        (LUNCH, utc(2024, 3, 20, 11, 30)),
        (f"{STANDUP}/2024-03-25T09:00:00Z", utc(2024, 3, 26, 13)),  # moved to Tuesday
        (f"{STANDUP}/2024-04-01T08:00:00Z", utc(2024, 4, 1, 8)),  # summer time
    ]
    requests.seen.clear()
    assert meetings(source, cursor) == []
    assert "REPORT calendar-multiget" not in requests.names()
    assert "REPORT sync-collection" not in requests.names()
    # Two weeks on, nothing changed on the server: the new occurrences and the past workshop.
    source.context.now = NOW + timedelta(weeks=2)
    assert meetings(source, cursor) == [
        (f"{STANDUP}/2024-04-08T08:00:00Z", utc(2024, 4, 8, 8)),
        (WORKSHOP, utc(2024, 4, 10, 7)),
        (f"{STANDUP}/2024-04-15T08:00:00Z", utc(2024, 4, 15, 8)),
    ]
    assert meetings(source, cursor) == []


def test_a_changed_event_is_read_again_and_a_removed_one_forgotten(
    dav_account: DavAccount, work: str
) -> None:
    source = source_for(dav_account)
    cursor = Cursor()
    list(source.scan(cursor))
    moved = (DATA / "lunch.ics").read_text().replace("20240320T1", "20240321T1")
    dav_account.put(f"{work}lunch.ics", moved)
    dav_account.delete(f"{work}workshop.ics")
    assert meetings(source, cursor) == [(LUNCH, utc(2024, 3, 21, 11, 30))]
    (state,) = cursor.state["calendars"].values()
    assert sorted(state["etags"]) == ["lunch.ics", "standup.ics"]
    assert set(state) == {"sync_token", "etags", "until"}


def test_evidence_names_the_item_on_the_server(dav_account: DavAccount, work: str) -> None:
    found = [m for m in source_for(dav_account).scan(Cursor()) if isinstance(m, Interaction)]
    lunch = next(meeting for meeting in found if meeting.ref == LUNCH)
    assert lunch.evidence == f"{dav_account.url(work)}lunch.ics:5 UID {LUNCH}"
    assert lunch.title == "Lunch with Jan"
    assert [party.identity.value for party in lunch.recipients] == [
        "jan@devries.nl",
        "sanne@bakkerontwerp.nl",
    ]


def test_follow_ups_written_as_events_are_no_meetings(dav_account: DavAccount, work: str) -> None:
    sink = sink_for(dav_account, calendar=work, component="VEVENT")
    sink.put(follow_up(due=date(2024, 3, 28), start=datetime(2024, 3, 28, 9, tzinfo=BERLIN)))
    refs = [ref for ref, _ in meetings(source_for(dav_account), Cursor())]
    assert len(refs) == 5
    assert UID not in refs


def test_without_sync_tokens_the_ctag_and_etags_tell_what_changed(
    dav_account: DavAccount, work: str, monkeypatch: pytest.MonkeyPatch, requests: Requests
) -> None:
    from connectors.caldav import source as module

    found = module.collections
    monkeypatch.setattr(
        module, "collections",
        lambda client, kind: [dataclasses.replace(c, sync_token=None) for c in found(client, kind)],
    )  # fmt: skip
    source = source_for(dav_account)
    cursor = Cursor()
    assert len(meetings(source, cursor)) == 5
    assert "ctag" in next(iter(cursor.state["calendars"].values()))
    requests.seen.clear()
    assert meetings(source, cursor) == []
    assert requests.names().count("PROPFIND propfind") == 3  # discovery only: ctag unchanged
    dav_account.put(f"{work}lunch.ics", (DATA / "lunch.ics").read_text().replace("Jan", "Jan!"))
    assert [ref for ref, _ in meetings(source, cursor)] == [LUNCH]


def test_a_sync_token_the_server_forgot_costs_a_listing_not_a_download(
    dav_account: DavAccount, work: str, requests: Requests
) -> None:
    source = source_for(dav_account)
    cursor = Cursor()
    list(source.scan(cursor))
    (state,) = cursor.state["calendars"].values()
    state["sync_token"] = "http://radicale.org/ns/sync/forgotten"
    dav_account.put(f"{work}lunch.ics", (DATA / "lunch.ics").read_text().replace("Jan", "Jan!"))
    requests.seen.clear()
    assert [ref for ref, _ in meetings(source, cursor)] == [LUNCH]
    assert requests.names().count("REPORT sync-collection") == 2  # refused, then from scratch


def test_calendars_by_name_and_a_name_that_is_not_there(dav_account: DavAccount, work: str) -> None:
    dav_account.make_calendar("Private", components=("VEVENT",))
    assert len(list(source_for(dav_account, calendars=["Work"]).scan(Cursor()))) == 5
    assert list(source_for(dav_account, calendars=["Private"]).scan(Cursor())) == []
    with pytest.raises(
        SourceError,
        match=r"there is no calendar 'Holidays' on the server; found: 'Private', 'Work'",
    ):
        list(source_for(dav_account, calendars=["Holidays"]).scan(Cursor()))
    assert (
        source_for(dav_account, calendars=["Holidays"])
        .check()[0]
        .startswith("there is no calendar 'Holidays'")
    )
    assert source_for(dav_account).check() == []


def test_a_server_that_suddenly_lists_no_calendars_is_an_error(
    dav_account: DavAccount, work: str
) -> None:
    cursor = Cursor()
    list(source_for(dav_account).scan(cursor))
    dav_account.delete(work)
    with pytest.raises(SourceError, match="lists no calendar"):
        list(source_for(dav_account).scan(cursor))


def test_a_source_that_cannot_log_in_says_so(dav_account: DavAccount) -> None:
    source = source_for(dav_account, context_for(dav_account, password="wrong"))
    with pytest.raises(SourceError, match="refused the login"):
        list(source.scan(Cursor()))


# --- any answer a server might give -----------------------------------------------------------

CALENDAR_URL = "http://127.0.0.1:9/ada/work/"
LISTING = (
    '<?xml version="1.0"?><multistatus xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
    "<response><href>/ada/work/</href><propstat><prop><resourcetype><collection/><C:calendar/>"
    "</resourcetype><displayname>Work</displayname><sync-token>t1</sync-token></prop>"
    "<status>HTTP/1.1 200 OK</status></propstat></response></multistatus>"
)


def calendar_objects() -> dict[str, bytes]:
    """What the Work calendar holds, by item name: three meetings and a follow-up syncd wrote."""
    files = {name: (DATA / f"{name}.ics").read_bytes() for name in ("standup", "lunch", "workshop")}
    followup = HEADER + render(follow_up(), BERLIN) + FOOTER
    return {**files, UID: followup.encode()}


def response(name: str, extra: str = "") -> str:
    return (
        f'<response><href>/ada/work/{name}.ics</href><propstat><prop><getetag>"{len(name)}"'
        f"</getetag>{extra}</prop><status>HTTP/1.1 200 OK</status></propstat></response>"
    )


SYNCED = (
    '<?xml version="1.0"?><multistatus xmlns="DAV:"><sync-token>t2</sync-token>'
    + "".join(response(name) for name in calendar_objects())
    + "</multistatus>"
)


def multiget_answer(items: dict[str, bytes]) -> bytes:
    """A calendar-multiget answer as Radicale writes it."""
    responses = "".join(
        response(
            name, f"<C:calendar-data>{escape(text.decode('utf-8', 'replace'))}</C:calendar-data>"
        )
        for name, text in items.items()
    )
    return (
        "<?xml version='1.0' encoding='utf-8'?>\n<multistatus xmlns=\"DAV:\" "
        f'xmlns:C="urn:ietf:params:xml:ns:caldav">{responses}</multistatus>'
    ).encode()


def answering(report: bytes) -> Callable[..., dav.Response]:
    """A stand-in for the network: the calendar, its listing, and `report` for item reports."""

    def send(client: dav.Client, method: str, url: str, body: str | None, headers: Any) -> Any:
        if method == "PROPFIND":
            return dav.Response(207, Message(), LISTING.encode())
        if body and "sync-collection" in body:
            return dav.Response(207, Message(), SYNCED.encode())
        if body and "calendar-query" in body:
            return dav.Response(207, Message(), b'<multistatus xmlns="DAV:"/>')
        return dav.Response(207, Message(), report)

    return send


def server_answers() -> st.SearchStrategy[bytes]:
    """A multiget answer broken at the XML level, or well-formed around broken calendar data."""
    objects = calendar_objects()
    whole = multiget_answer(objects)
    one_broken = st.sampled_from(sorted(objects)).flatmap(
        lambda name: mangled(objects[name]).map(
            lambda broken: multiget_answer({**objects, name: broken})
        )
    )
    return st.one_of(mangled(whole), one_broken)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answer=server_answers())
def test_any_answer_to_read_back_is_a_state_or_a_sink_error(answer: bytes) -> None:
    context = new_context()
    options = CalDavSink.Options.model_validate(
        {"type": "caldav", "url": CALENDAR_URL, "calendar": "/ada/work/"}
    )
    sink = CalDavSink(options, context)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dav.Client, "_send", answering(answer))
        try:
            states = list(sink.read_back([UID, "other@syncd"]))
        except SinkError:
            return
    assert [state.uid for state in states] == [UID, "other@syncd"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answer=server_answers())
def test_any_answer_to_a_scan_is_meetings_warnings_or_a_source_error(answer: bytes) -> None:
    options = CalDavSource.Options.model_validate({"type": "caldav", "url": CALENDAR_URL})
    source = CalDavSource(options, new_context())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dav.Client, "_send", answering(answer))
        try:
            found = list(source.scan(Cursor()))
        except SourceError:
            return
    assert all(isinstance(item, Interaction) and item.at < NOW for item in found)


def test_the_unbroken_answer_reads_as_it_should(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the property tests start from: every meeting, and the follow-up open on its day."""
    monkeypatch.setattr(dav.Client, "_send", answering(multiget_answer(calendar_objects())))
    options = CalDavSource.Options.model_validate({"type": "caldav", "url": CALENDAR_URL})
    source = CalDavSource(options, new_context())
    assert len(list(source.scan(Cursor()))) == 5
    sink_options = CalDavSink.Options.model_validate(
        {"type": "caldav", "url": CALENDAR_URL, "calendar": "/ada/work/"}
    )
    states = list(CalDavSink(sink_options, new_context()).read_back([UID, "other@syncd"]))
    assert [(state.status, state.due) for state in states] == [
        (FollowUpStatus.OPEN, date(2024, 5, 3)),
        (FollowUpStatus.DELETED, None),
    ]
    assert source.context.warnings == 0


# --- the whole pass ----------------------------------------------------------------------------


def test_a_sync_writes_a_follow_up_once_and_counts_it_when_completed(
    dav_account: DavAccount, work: str, tmp_path: Path
) -> None:
    """Cards from a file, meetings from the Work calendar, follow-ups into Follow-ups."""
    (tmp_path / "password").write_text(dav_account.password + "\n")
    server = {"url": dav_account.url(), "username": dav_account.username,
              "password_file": "password"}  # fmt: skip
    config = configuration.validate(
        {
            "me": {"emails": ["sanne@bakkerontwerp.nl"], "timezone": "Europe/Berlin"},
            "state": {"database": "state.sqlite"},
            "sources": {
                "contacts": {"type": "vcard", "path": str(CARDS)},
                "work": {"type": "caldav", **server, "calendars": ["Work"]},
            },
            "sinks": {"calendar": {"type": "caldav", **server, "calendar": "Follow-ups"}},
            "cadence": {"default": "30d", "learn": False},
        },
        tmp_path,
    )
    store = Store.open(config.state.database)
    monday = datetime(2024, 4, 22, 7, 0, tzinfo=UTC)  # 9:00 in Berlin; Jan was due 19 April
    first = engine.sync(config, store, monday)
    assert first.written == [("Jan de Vries", "calendar")]
    assert not first.failed
    written = dav_account.contents(f"{dav_account.home}follow-ups/")
    (task,) = [item for data in written.values() for item in calendar_items(data)]
    assert (task["SUMMARY"], task.decoded("DUE")) == ("Catch up with Jan de Vries", monday.date())

    second = engine.sync(config, store, monday + timedelta(hours=1))
    assert second.written == []
    assert dav_account.contents(f"{dav_account.home}follow-ups/") == written

    (path,) = written
    done = datetime(2024, 4, 22, 15, 5, tzinfo=UTC)
    completed = written[path].replace(
        b"STATUS:NEEDS-ACTION", b"STATUS:COMPLETED\r\nCOMPLETED:20240422T150500Z"
    )
    dav_account.put(path, completed)
    as_the_user_left_it = dav_account.contents(f"{dav_account.home}follow-ups/")
    third = engine.sync(config, store, monday + timedelta(hours=8))
    assert third.completed == 1
    jan = next(p for p in relationships(store, config) if p.name == "Jan de Vries")
    assert (jan.last_contact, jan.last_channel) == (done, "followup")
    assert dav_account.contents(f"{dav_account.home}follow-ups/") == as_the_user_left_it


def test_a_server_that_refuses_to_search_is_asked_once_per_pass() -> None:
    """Radicale searches; some servers answer a calendar-query with 501 (stood in for here)."""
    asked: list[str] = []

    def send(client: dav.Client, method: str, url: str, body: str | None, headers: Any) -> Any:
        if method == "PROPFIND":
            return dav.Response(207, Message(), LISTING.encode())
        if body and "calendar-query" in body:
            asked.append(url)
            return dav.Response(501, Message(), b"")
        return dav.Response(207, Message(), b'<multistatus xmlns="DAV:"/>')  # nothing in place

    options = CalDavSink.Options.model_validate(
        {"type": "caldav", "url": CALENDAR_URL, "calendar": "/ada/work/"}
    )
    sink = CalDavSink(options, new_context())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dav.Client, "_send", send)
        states = list(sink.read_back(["a@syncd", "b@syncd", "c@syncd"]))
    assert [state.status for state in states] == [FollowUpStatus.DELETED] * 3
    assert len(asked) == 1
