from __future__ import annotations

import os
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import Context, Cursor, SourceError
from connectors.ics import IcsOptions, IcsSource
from syncd.model import Channel, Identity, IdentityKind, Interaction, Party

DATA = Path(__file__).parent / "data" / "ics"
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
NOW = datetime(2026, 4, 15, 12, 0, tzinfo=UTC)
WEEKLY = "5qk1v0n7cbm3g8t2h6j4l9p0rs@google.com"
OUTLOOK_UID = (
    "040000008200E00074C5B7101A82E00800000000D0A3F1B4E7A8DC01000000000000000010000000"
    "6B6D0C8E1E5F3A94C9B3F1E0A2C4D6E8F"
)


def source(path: Path, now: datetime = NOW, zone: ZoneInfo = AMSTERDAM) -> IcsSource:
    return IcsSource(IcsOptions(type="ics", path=path), Context("calendar", zone, now))


def scan(
    path: Path, now: datetime = NOW, zone: ZoneInfo = AMSTERDAM, cursor: Cursor | None = None
) -> list[Interaction]:
    return list(source(path, now, zone).scan(cursor or Cursor()))


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def party(address: str, name: str = "", partstat: str = "", cutype: str = "") -> Party:
    return Party(Identity(IdentityKind.EMAIL, address), name, partstat, cutype)


def event_lines(path: Path) -> list[int]:
    """The line numbers of every BEGIN:VEVENT in a file, as a user's editor shows them."""
    lines = path.read_bytes().decode().split("\r\n")
    return [number for number, line in enumerate(lines, start=1) if line == "BEGIN:VEVENT"]


def by_title(meetings: list[Interaction]) -> dict[str, Interaction]:
    return {meeting.title: meeting for meeting in meetings}


def write_calendar(path: Path, *events: list[str]) -> Path:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Test//EN"]
    for event in events:
        lines += ["BEGIN:VEVENT", *event, "END:VEVENT"]
    path.write_text("\r\n".join([*lines, "END:VCALENDAR", ""]), newline="")
    return path


# --- one meeting: who was there and how they answered -------------------------------------------


def test_outlook_meeting_names_organizer_and_attendees_with_their_answers() -> None:
    path = DATA / "outlook_meeting.ics"
    meeting = by_title(scan(path))["Kwartaaloverleg"]
    assert meeting.ref == OUTLOOK_UID
    assert meeting.channel is Channel.MEETING
    assert meeting.source == "calendar"
    # 14:00 "W. Europe Standard Time" on 10 March is 13:00 UTC.
    assert meeting.at == utc(2026, 3, 10, 13, 0)
    assert meeting.sender == party("piet.jansen@example.nl", "Jansen, Piet")
    assert meeting.recipients == (
        party("anna.devries@example.nl", "de Vries, Anna", "ACCEPTED"),
        party("Sanne.Bakker@example.nl", "Bakker, Sanne", "DECLINED"),
        party("rembrandt@example.nl", "Rembrandt", cutype="RESOURCE"),
        party("sales@example.nl", "Team Sales", cutype="GROUP"),
    )
    assert meeting.evidence == f"{path}:{event_lines(path)[0]} UID {OUTLOOK_UID}"
    assert meeting.signals == {"status": ""}


def test_attendees_without_a_mail_address_are_left_out_unless_apple_gives_one() -> None:
    meeting = scan(DATA / "apple_rdate.ics")[0]
    # Tom is written as urn:uuid: with EMAIL=; the room "Studio" has no address at all.
    assert meeting.recipients == (
        party("sanne@example.com", "Sanne Bakker", "ACCEPTED", "INDIVIDUAL"),
        party("tom@example.com", "Tom Visser", "ACCEPTED", "INDIVIDUAL"),
    )
    assert meeting.sender == party("sanne@example.com", "Sanne Bakker")


def test_thunderbird_room_keeps_its_cutype_and_the_organizer_its_answer() -> None:
    meeting = scan(DATA / "thunderbird_floating.ics")[0]
    assert meeting.sender == party("me@example.org", partstat="ACCEPTED")
    assert party("kamer-2@example.org", "", "NEEDS-ACTION", "ROOM") in meeting.recipients


def test_an_uppercase_mailto_and_an_attendee_given_once_are_read(tmp_path: Path) -> None:
    path = write_calendar(
        tmp_path / "one.ics",
        [
            "UID:one@x",
            "DTSTART:20260301T100000Z",
            "SUMMARY:Call",
            "ORGANIZER:MAILTO:boss@example.org",
            "ATTENDEE;PARTSTAT=tentative;CUTYPE=individual:MailTo:eva@example.org",
            "STATUS:confirmed",
        ],
    )
    [meeting] = scan(path)
    assert meeting.sender == party("boss@example.org")
    assert meeting.recipients == (party("eva@example.org", "", "TENTATIVE", "INDIVIDUAL"),)
    assert meeting.signals == {"status": "CONFIRMED"}


# --- recurring events ----------------------------------------------------------------------------


def weekly() -> dict[str, Interaction]:
    return {m.ref: m for m in scan(DATA / "google_weekly.ics") if m.ref.startswith(WEEKLY)}


def test_weekly_series_yields_each_past_monday_except_the_excluded_one() -> None:
    assert sorted(weekly()) == [
        f"{WEEKLY}/2026-03-02T08:00:00Z",
        f"{WEEKLY}/2026-03-09T08:00:00Z",  # moved to Tuesday, see below
        f"{WEEKLY}/2026-03-23T08:00:00Z",  # cancelled, still reported
        f"{WEEKLY}/2026-03-30T07:00:00Z",
        f"{WEEKLY}/2026-04-06T07:00:00Z",
        f"{WEEKLY}/2026-04-13T07:00:00Z",
    ]  # 16 March is an EXDATE; 20 April has not happened yet


def test_weekly_series_keeps_its_local_time_across_the_dst_change() -> None:
    series = weekly()
    # 09:00 in Amsterdam: 08:00 UTC in winter time, 07:00 UTC after 29 March.
    assert series[f"{WEEKLY}/2026-03-02T08:00:00Z"].at == utc(2026, 3, 2, 8, 0)
    assert series[f"{WEEKLY}/2026-03-30T07:00:00Z"].at == utc(2026, 3, 30, 7, 0)


def test_moved_occurrence_counts_at_its_new_start_with_its_own_attendees() -> None:
    path = DATA / "google_weekly.ics"
    moved = weekly()[f"{WEEKLY}/2026-03-09T08:00:00Z"]
    assert moved.at == utc(2026, 3, 10, 13, 0)
    assert moved.title == "Weekly sync (moved to Tuesday)"
    assert party("carla@example.com", "Carla Mol", "ACCEPTED", "INDIVIDUAL") in moved.recipients
    bram = party("bram@example.com", "bram@example.com", "DECLINED", "INDIVIDUAL")
    assert bram in moved.recipients
    assert moved.evidence == f"{path}:{event_lines(path)[1]} UID {WEEKLY}"


def test_cancelled_occurrence_is_reported_with_its_status() -> None:
    series = weekly()
    assert series[f"{WEEKLY}/2026-03-23T08:00:00Z"].signals == {"status": "CANCELLED"}
    assert series[f"{WEEKLY}/2026-03-30T07:00:00Z"].signals == {"status": "CONFIRMED"}
    regular = series[f"{WEEKLY}/2026-03-30T07:00:00Z"]
    room = "c_1881a2b3c4d5e6f7@resource.calendar.google.com"
    assert party(room, "Amsterdam-3-Zolder (6)", "ACCEPTED", "RESOURCE") in regular.recipients


def test_rdate_adds_occurrences_at_their_own_times() -> None:
    meetings = scan(DATA / "apple_rdate.ics")
    assert [(m.ref.rsplit("/", 1)[1], m.at) for m in meetings] == [
        ("2026-03-04T09:00:00Z", utc(2026, 3, 4, 9, 0)),
        ("2026-03-18T09:00:00Z", utc(2026, 3, 18, 9, 0)),
        ("2026-04-01T12:00:00Z", utc(2026, 4, 1, 12, 0)),  # 14:00 summer time
    ]


def test_recurring_all_day_event_has_date_refs(tmp_path: Path) -> None:
    path = write_calendar(
        tmp_path / "days.ics",
        ["UID:standup@x", "DTSTART;VALUE=DATE:20260406", "RRULE:FREQ=DAILY;COUNT=3"],
    )
    meetings = scan(path)
    assert [m.ref for m in meetings] == [f"standup@x/2026-04-0{day}" for day in (6, 7, 8)]
    assert meetings[0].at == utc(2026, 4, 5, 22, 0)


# --- times ---------------------------------------------------------------------------------------


def test_utc_event_is_one_meeting_named_by_its_uid() -> None:
    lunch = by_title(scan(DATA / "google_weekly.ics"))["Lunch with Bram"]
    assert lunch.ref == "0a1b2c3d4e5f6g7h8i9j0k1l2m@google.com"
    assert lunch.at == utc(2026, 3, 5, 12, 0)


def test_all_day_event_starts_at_midnight_in_the_users_zone() -> None:
    path = DATA / "outlook_meeting.ics"
    assert by_title(scan(path))["Heidag"].at == utc(2026, 3, 19, 23, 0)
    assert by_title(scan(path, zone=ZoneInfo("UTC")))["Heidag"].at == utc(2026, 3, 20, 0, 0)


def test_floating_time_is_read_in_the_users_zone() -> None:
    path = DATA / "thunderbird_floating.ics"
    assert scan(path)[0].at == utc(2026, 3, 12, 9, 0)
    assert scan(path, zone=ZoneInfo("America/New_York"))[0].at == utc(2026, 3, 12, 14, 0)


def test_custom_vtimezone_from_outlook_is_applied() -> None:
    # "Customized Time Zone" is +05:30 all year, defined only in the file.
    [review] = scan(DATA / "outlook_custom_zone.ics")
    assert review.at == utc(2026, 3, 11, 5, 0)


def test_windows_zone_name_follows_the_zone_database_for_old_meetings(tmp_path: Path) -> None:
    # Outlook's VTIMEZONE carries only today's rule; in 1995 summer time ended on 24 September.
    text = (DATA / "outlook_meeting.ics").read_text()
    old = text.replace(":20260310T1", ":19951010T1")
    (tmp_path / "old.ics").write_text(old, newline="")
    assert by_title(scan(tmp_path / "old.ics"))["Kwartaaloverleg"].at == utc(1995, 10, 10, 13, 0)


def test_floating_repeats_are_found_by_a_later_scan_in_a_zone_west_of_utc(tmp_path: Path) -> None:
    path = write_calendar(
        tmp_path / "walk.ics",
        ["UID:walk@x", "DTSTART:20260302T100000", "RRULE:FREQ=WEEKLY;COUNT=4", "SUMMARY:Walk"],
    )
    new_york, cursor = ZoneInfo("America/New_York"), Cursor()
    assert len(scan(path, now=utc(2026, 3, 9, 13, 0), zone=new_york, cursor=cursor)) == 1
    [second] = scan(path, now=utc(2026, 3, 9, 15, 0), zone=new_york, cursor=cursor)
    assert second.at == utc(2026, 3, 9, 14, 0)  # 10:00 summer time in New York


def test_unknown_time_zone_is_read_as_the_users_zone_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_calendar(
        tmp_path / "mars.ics",
        ["UID:a@x", "DTSTART;TZID=Mars/Olympus:20260310T100000", "SUMMARY:A"],
        ["UID:b@x", "DTSTART;TZID=Mars/Olympus:20260311T100000", "SUMMARY:B"],
    )
    assert [m.at for m in scan(path)] == [utc(2026, 3, 10, 9, 0), utc(2026, 3, 11, 9, 0)]
    assert caplog.text.count("unknown time zone 'Mars/Olympus'") == 1


def test_nothing_is_yielded_before_it_has_started() -> None:
    path = DATA / "google_weekly.ics"
    assert scan(path, now=utc(2026, 3, 2, 8, 0)) == []
    [first] = scan(path, now=utc(2026, 3, 2, 8, 0, 1))
    assert first.ref == f"{WEEKLY}/2026-03-02T08:00:00Z"
    assert all(m.at < NOW for m in scan(path))
    assert "Kick-off next project" not in by_title(scan(path))  # on 1 June


# --- incremental scans ---------------------------------------------------------------------------


@pytest.fixture
def calendar(tmp_path: Path) -> Path:
    return Path(shutil.copy(DATA / "google_weekly.ics", tmp_path / "google.ics"))


def test_second_scan_at_the_same_time_yields_nothing(calendar: Path) -> None:
    cursor = Cursor()
    assert len(scan(calendar, cursor=cursor)) == 7
    assert scan(calendar, cursor=cursor) == []
    entry = cursor.state["files"][str(calendar)]
    assert entry == {
        "mtime_ns": calendar.stat().st_mtime_ns,
        "size": calendar.stat().st_size,
        "until": "2026-04-15T12:00:00+00:00",
    }


def test_later_scan_yields_only_the_occurrences_that_started_since(calendar: Path) -> None:
    cursor = Cursor()
    assert scan(calendar, now=utc(2026, 3, 1), cursor=cursor) == []
    week = scan(calendar, now=utc(2026, 3, 6), cursor=cursor)
    assert [m.title for m in week] == ["Weekly sync", "Lunch with Bram"]
    later = scan(calendar, now=utc(2026, 4, 21), cursor=cursor)
    assert [m.ref.rsplit("/", 1)[-1] for m in later] == [
        "2026-03-09T08:00:00Z",
        "2026-03-23T08:00:00Z",
        "2026-03-30T07:00:00Z",
        "2026-04-06T07:00:00Z",
        "2026-04-13T07:00:00Z",
        "2026-04-20T07:00:00Z",
    ]


def test_changed_file_is_read_again_from_its_start(calendar: Path) -> None:
    cursor = Cursor()
    scan(calendar, cursor=cursor)
    text = calendar.read_bytes().replace(b"SUMMARY:Lunch with Bram", b"SUMMARY:Lunch")
    calendar.write_bytes(text)
    again = scan(calendar, cursor=cursor)
    assert len(again) == 7
    assert "Lunch" in by_title(again)


def test_the_file_state_moves_only_with_its_last_occurrence(calendar: Path) -> None:
    cursor = Cursor()
    meetings = source(calendar).scan(cursor)
    for _ in range(6):
        next(meetings)
    assert str(calendar) not in cursor.state["files"]
    next(meetings)  # the seventh and last
    assert str(calendar) in cursor.state["files"]


def test_a_removed_file_is_forgotten(tmp_path: Path) -> None:
    folder = tmp_path / "vdir"
    folder.mkdir()
    kept = Path(shutil.copy(DATA / "apple_rdate.ics", folder / "kept.ics"))
    gone = Path(shutil.copy(DATA / "thunderbird_floating.ics", folder / "gone.ics"))
    cursor = Cursor()
    assert len(scan(folder, cursor=cursor)) == 4
    gone.unlink()
    assert scan(folder, cursor=cursor) == []
    assert list(cursor.state["files"]) == [str(kept)]


def test_state_from_elsewhere_or_damaged_makes_a_full_read(calendar: Path) -> None:
    cursor = Cursor(state={"files": {str(calendar): {"mtime_ns": "x", "until": "soon"}}})
    assert len(scan(calendar, cursor=cursor)) == 7


# --- damaged input -------------------------------------------------------------------------------


def test_broken_events_are_skipped_with_a_warning_naming_their_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = DATA / "thunderbird_broken.ics"
    context = Context("calendar", AMSTERDAM, NOW)
    meetings = list(IcsSource(IcsOptions(type="ics", path=path), context).scan(Cursor()))
    assert [m.title for m in meetings] == ["Intake Femke", "Review Hans"]
    _, bad_start, garbage, no_end, good_2 = event_lines(path)
    assert context.warnings == 3
    assert f"{path}:{bad_start}: event skipped: DTSTART is not valid" in caplog.text
    assert f"{path}:{garbage}: event skipped: a line is not valid" in caplog.text
    assert f"{path}:{no_end}: event skipped: END:VEVENT is missing" in caplog.text
    assert meetings[1].evidence == f"{path}:{good_2} UID good-2@example.org"


def test_a_file_that_is_not_a_calendar_is_a_warning_and_the_rest_is_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shutil.copy(DATA / "thunderbird_floating.ics", tmp_path / "a.ics")
    (tmp_path / "b.ics").write_text("Dear Anna,\nhere are the notes.\n")
    (tmp_path / ".status").mkdir()
    (tmp_path / ".status" / "c.ics").write_text("not read: vdirsyncer's own folder")
    assert [m.title for m in scan(tmp_path)] == ["Koffie met Lotte"]
    assert f"{tmp_path / 'b.ics'}: not an iCalendar file" in caplog.text
    assert "c.ics" not in caplog.text


def test_a_series_that_repeats_every_second_is_skipped_not_expanded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_calendar(
        tmp_path / "odd.ics",
        ["UID:tick@x", "DTSTART:20000101T000000Z", "RRULE:FREQ=SECONDLY", "SUMMARY:Tick"],
        ["UID:ages@x", "DTSTART:00010101T090000Z", "RRULE:FREQ=DAILY", "SUMMARY:Ages"],
        ["UID:brief@x", "DTSTART:20260301T090000Z", "RRULE:FREQ=MINUTELY;COUNT=3", "SUMMARY:Brief"],
        ["UID:ok@x", "DTSTART:20260301T100000Z", "SUMMARY:Real"],
    )
    started = time.monotonic()
    assert [m.title for m in scan(path)] == ["Brief"] * 3 + ["Real"]
    assert time.monotonic() - started < 5
    assert "event tick@x skipped: it repeats too often" in caplog.text
    assert "event ages@x skipped: it repeats too often" in caplog.text


def test_a_meeting_with_an_impossible_end_still_counts_at_its_start(tmp_path: Path) -> None:
    path = write_calendar(
        tmp_path / "ends.ics",
        [
            "UID:a@x",
            "DTSTART:20260302T100000Z",
            "DTEND:20260302T090000Z",
            "RRULE:FREQ=DAILY;COUNT=2",
        ],
        ["UID:b@x", "DTSTART:20260303T100000Z", "DTEND:soon", "DTEND:later", "DURATION:-PT1H"],
    )
    assert [m.at for m in scan(path)] == [
        utc(2026, 3, 2, 10, 0),
        utc(2026, 3, 3, 10, 0),
        utc(2026, 3, 3, 10, 0),
    ]


def test_a_time_zone_name_too_long_for_the_zone_database_is_a_warning(tmp_path: Path) -> None:
    zone = "x" * 300
    lines = ["BEGIN:VCALENDAR", "BEGIN:VTIMEZONE", f"TZID:{zone}", "END:VTIMEZONE", "END:VCALENDAR"]
    (tmp_path / "zone.ics").write_text("\r\n".join(lines))
    write_calendar(tmp_path / "event.ics", ["UID:z@x", f"DTSTART;TZID={zone}:20260302T100000"])
    context = Context("calendar", AMSTERDAM, NOW)
    meetings = list(IcsSource(IcsOptions(type="ics", path=tmp_path), context).scan(Cursor()))
    assert meetings == []
    assert context.warnings == 2  # the definition and the event that names it, each skipped


def test_event_without_uid_is_named_by_its_place_in_the_file(tmp_path: Path) -> None:
    first, second = ["DTSTART:20260301T100000Z"], ["DTSTART:20260302T100000Z"]
    path = write_calendar(tmp_path / "nouid.ics", first, second)
    assert [m.ref for m in scan(path)] == [f"{path}:4", f"{path}:7"]


def test_a_missing_path_cannot_be_scanned_and_check_says_so(tmp_path: Path) -> None:
    missing = source(tmp_path / "nowhere.ics")
    with pytest.raises(SourceError, match=r"nowhere\.ics"):
        list(missing.scan(Cursor()))
    [problem] = missing.check()
    assert problem.startswith(f"{tmp_path / 'nowhere.ics'} does not exist")
    assert source(DATA).check() == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_a_source_error(calendar: Path) -> None:
    calendar.chmod(0)
    assert source(calendar).check() != []
    with pytest.raises(SourceError, match="cannot read"):
        list(source(calendar).scan(Cursor()))


# --- a big calendar ------------------------------------------------------------------------------


def big_calendar_start(number: int) -> datetime:
    local = datetime(2016, 1, 4, 9) + timedelta(days=(number * 7919) % 3650, hours=number % 8)
    return local.replace(tzinfo=AMSTERDAM)


def big_calendar(path: Path, events: int = 5000) -> list[datetime]:
    """Ten years of meetings as Thunderbird exports them, one in fifty repeating weekly 100 times.

    Returns when each occurrence starts, in UTC, worked out without any calendar library.
    """
    lines = ["BEGIN:VCALENDAR", "PRODID:-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN"]
    starts = []
    for number in range(events):
        start = big_calendar_start(number)
        repeats = number % 50 == 0
        lines += [
            "BEGIN:VEVENT",
            f"UID:meeting-{number}@example.org",
            f"DTSTART;TZID=Europe/Amsterdam:{start:%Y%m%dT%H%M%S}",
            f"DTEND;TZID=Europe/Amsterdam:{start + timedelta(hours=1):%Y%m%dT%H%M%S}",
            f"SUMMARY:Meeting {number}",
            f"ORGANIZER;CN=Person {number % 40}:mailto:p{number % 40}@example.org",
            f"ATTENDEE;PARTSTAT=ACCEPTED;CN=Person {number % 70}:mailto:p{number % 70}@example.org",
            *(["RRULE:FREQ=WEEKLY;COUNT=100"] if repeats else []),
            "END:VEVENT",
        ]
        starts += [
            (start + timedelta(weeks=k)).astimezone(UTC) for k in range(100 if repeats else 1)
        ]
    path.write_text("\r\n".join([*lines, "END:VCALENDAR", ""]), newline="")
    return starts


def test_a_ten_year_calendar_is_read_once_and_then_only_where_time_moved(tmp_path: Path) -> None:
    starts = big_calendar(tmp_path / "export.ics")
    cursor = Cursor()
    began = time.monotonic()
    first = scan(tmp_path / "export.ics", now=utc(2026, 1, 1), cursor=cursor)
    full = time.monotonic() - began
    began = time.monotonic()
    later = scan(tmp_path / "export.ics", now=utc(2026, 3, 1), cursor=cursor)
    incremental = time.monotonic() - began
    assert sorted(m.at for m in first) == sorted(s for s in starts if s < utc(2026, 1, 1))
    since_new_year = [s for s in starts if utc(2026, 1, 1) <= s < utc(2026, 3, 1)]
    assert sorted(m.at for m in later) == sorted(since_new_year)
    assert len({m.ref for m in first + later}) == len(first) + len(later)
    assert full < 60
    assert incremental < full / 4


# --- anything at all -----------------------------------------------------------------------------


hypothesis_settings = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
FIXTURES = [
    path.read_text()
    for path in sorted(DATA.glob("*.ics"))
    # Its made-up TZID would stay cached in mutated form for the rest of the test run.
    if path.name != "outlook_custom_zone.ics"
]


def scan_text(text: str | bytes) -> list[Interaction]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.ics"
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
        try:
            meetings = scan(path)
        except SourceError:
            return []
    assert all(m.at < NOW and m.at.utcoffset() == timedelta(0) for m in meetings)
    return meetings


@hypothesis_settings
@given(raw=st.binary(max_size=3000))
def test_random_bytes_never_crash(raw: bytes) -> None:
    scan_text(raw)


ical_lines = st.sampled_from(
    [
        "BEGIN:VEVENT", "END:VEVENT", "BEGIN:VCALENDAR", "END:VCALENDAR", "BEGIN:VALARM",
        "END:VALARM", "BEGIN:VTIMEZONE", "END:VTIMEZONE", "UID:x", "DTSTART:20260301T100000Z",
        "DTSTART;VALUE=DATE:20260301", "DTSTART;TZID=Europe/Amsterdam:20260301T100000",
        "DTSTART:20260301T100000", "RRULE:FREQ=DAILY;COUNT=3", "RRULE:FREQ=WEEKLY",
        "RDATE:20260302T100000Z", "EXDATE:20260302T100000Z", "RECURRENCE-ID:20260302T100000Z",
        "ATTENDEE;CN=A:mailto:a@x", "ORGANIZER:urn:uuid:1", "STATUS:CANCELLED", " folded",
        "DTEND:20260201T100000Z", "DURATION:-PT1H", "RRULE:FREQ=YEARLY;UNTIL=20200101",
    ]
)  # fmt: skip


zone_names = st.text(min_size=1, max_size=300)
zone_lines = st.one_of(
    zone_names.map(lambda zone: f"TZID:{zone}"),
    zone_names.map(lambda zone: f"DTSTART;TZID={zone}:20260301T100000"),
)
any_lines = st.one_of(ical_lines, zone_lines, st.text(max_size=60))


@hypothesis_settings
@given(lines=st.lists(any_lines, max_size=40))
def test_random_calendars_never_crash(lines: list[str]) -> None:
    scan_text("\r\n".join(["BEGIN:VCALENDAR", *lines, "END:VCALENDAR"]))


@hypothesis_settings
@given(fixture=st.sampled_from(FIXTURES), data=st.data())
def test_mutated_exports_never_crash(fixture: str, data: st.DataObject) -> None:
    lines = fixture.split("\r\n")
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(lines) - 1))
        action = data.draw(st.sampled_from(["drop", "repeat", "garble", "insert", "truncate"]))
        if action == "drop":
            del lines[at]
        elif action == "repeat":
            lines.insert(at, lines[at])
        elif action == "garble":
            cut = data.draw(st.integers(0, len(lines[at])))
            lines[at] = lines[at][:cut] + data.draw(st.text(max_size=8)) + lines[at][cut:]
        elif action == "insert":
            lines.insert(at, data.draw(any_lines))
        else:
            lines = lines[:at]
        if not lines:
            break
    scan_text("\r\n".join(lines))
