"""The ics and vdir sinks: what a khal or todoman user sees, and what syncd reads back.

`SinkContract` holds the tests every sink must pass; a sink's test class says how to build it and
how a calendar program edits and deletes an item in it.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from icalendar.parser import unescape_backslash

from connectors.base import Context, Sink, SinkError, sink_class
from connectors.icsfile import IcsFileOptions, IcsFileSink, VdirOptions, VdirSink
from syncd.model import FollowUpStatus, Reminder, ReminderState

BERLIN = ZoneInfo("Europe/Berlin")
STAMP = datetime(2024, 4, 2, 7, 30, tzinfo=UTC)
UID = "syncd-3f2a9c-1@syncd"
LONG_AGO = 1_000_000_000  # an mtime to compare against: 2001-09-09

# The property tests run once per sink class; replaying one class's examples on another is fine.
INHERITED = [HealthCheck.too_slow, HealthCheck.differing_executors]

# Any text a name or note can hold; control characters are covered by their own test.
TEXT = st.text(
    st.characters(
        exclude_categories=("Cs", "Cc", "Zl", "Zp"),
        exclude_characters="\ufeff",
        include_characters="\n\t",
    )
)

Edit = Callable[[icalendar.Component], None]


def follow_up(uid: str = UID, **changes: object) -> Reminder:
    reminder = Reminder(
        uid=uid,
        person_id="3f2a9c",
        person_name="Ada Lovelace",
        due=date(2024, 5, 3),
        summary="Get in touch with Ada Lovelace",
        description="Last contact 2024-02-01 by email.",
        links=("mailto:ada@example.org", "tel:+493012345678", "https://www.linkedin.com/in/ada"),
        categories=("syncd", "clients"),
        stamp=STAMP,
    )
    return dataclasses.replace(reminder, **changes)  # type: ignore[arg-type]


def new_context() -> Context:
    return Context("followups", BERLIN, datetime(2024, 4, 2, 9, 0, tzinfo=BERLIN))


def files_below(folder: Path) -> dict[str, bytes]:
    """Every file under `folder`, hidden ones included, by relative name."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def calendar_items(path: Path) -> list[icalendar.Component]:
    calendar = icalendar.Calendar.from_ical(path.read_bytes())
    return [item for item in calendar.subcomponents if item.name in ("VTODO", "VEVENT")]


class SinkContract:
    """What every sink does; subclasses say how to build one and how a user's program edits it."""

    @pytest.fixture
    def context(self) -> Context:
        return new_context()

    @pytest.fixture
    def sink(self, tmp_path: Path, context: Context) -> Sink:
        return self.make_sink(tmp_path, context)

    # -- per sink type --------------------------------------------------------------------------

    def make_sink(self, folder: Path, context: Context) -> Sink:
        raise NotImplementedError

    def calendar_data(self, sink: Sink, uid: str) -> bytes:
        """The iCalendar object that holds the follow-up `uid`, as stored."""
        raise NotImplementedError

    def user_saves(self, sink: Sink, uid: str, data: bytes) -> None:
        """Store `data` as the object holding `uid`, as the user's calendar program would."""
        raise NotImplementedError

    def user_deletes(self, sink: Sink, uid: str) -> None:
        raise NotImplementedError

    def snapshot(self, sink: Sink) -> dict[str, bytes]:
        """Everything the user's calendar holds, to compare before and after."""
        raise NotImplementedError

    # -- shared helpers -------------------------------------------------------------------------

    def user_edits(self, sink: Sink, uid: str, edit: Edit) -> None:
        """Change the item as khal or todoman do: parse the object, change it, save it whole."""
        calendar = icalendar.Calendar.from_ical(self.calendar_data(sink, uid))
        edit(next(item for item in calendar.subcomponents if item.get("UID") == uid))
        calendar.add_missing_timezones()
        self.user_saves(sink, uid, calendar.to_ical())

    def items(self, sink: Sink, uid: str) -> list[icalendar.Component]:
        calendar = icalendar.Calendar.from_ical(self.calendar_data(sink, uid))
        return [item for item in calendar.subcomponents if item.name in ("VTODO", "VEVENT")]

    def stored(self, sink: Sink, uid: str) -> icalendar.Component:
        return next(item for item in self.items(sink, uid) if item.get("UID") == uid)

    def state(self, sink: Sink, uid: str = UID) -> ReminderState:
        (state,) = sink.read_back([uid])
        return state

    # -- writing --------------------------------------------------------------------------------

    def test_a_written_follow_up_reads_back_open_on_its_day(self, sink: Sink) -> None:
        tag = sink.put(follow_up())
        assert self.state(sink) == ReminderState(
            UID, FollowUpStatus.OPEN, due=date(2024, 5, 3), etag=tag
        )

    def test_writing_the_same_follow_up_again_changes_no_byte(self, sink: Sink) -> None:
        first = sink.put(follow_up())
        sink.put(follow_up("syncd-other@syncd"))
        before = self.snapshot(sink)
        assert sink.put(follow_up()) == first
        assert self.snapshot(sink) == before

    def test_the_stamp_not_the_clock_dates_the_item(self, sink: Sink) -> None:
        sink.put(follow_up(stamp=None))
        item = self.stored(sink, UID)
        assert item.decoded("DTSTAMP") == datetime(2024, 5, 2, 22, 0, tzinfo=UTC)

    def test_writing_again_by_uid_updates_the_one_item(self, sink: Sink) -> None:
        old = sink.put(follow_up())
        new = sink.put(follow_up(due=date(2024, 5, 10), sequence=1))
        assert new != old
        assert self.state(sink).due == date(2024, 5, 10)
        assert [item["UID"] for item in self.items(sink, UID)].count(UID) == 1
        assert self.stored(sink, UID)["SEQUENCE"] == 1

    def test_removing_drops_the_follow_up_and_a_missing_one_is_fine(self, sink: Sink) -> None:
        sink.put(follow_up())
        sink.put(follow_up("syncd-other@syncd"))
        sink.remove(UID)
        sink.remove(UID)
        sink.remove("never-written@syncd")
        assert self.state(sink).status == FollowUpStatus.DELETED
        assert self.state(sink, "syncd-other@syncd").status == FollowUpStatus.OPEN

    # -- what the calendar looks like -----------------------------------------------------------

    def test_a_task_carries_what_the_user_needs(self, sink: Sink) -> None:
        sink.put(follow_up())
        calendar = icalendar.Calendar.from_ical(self.calendar_data(sink, UID))
        assert (calendar["VERSION"], calendar["PRODID"]) == ("2.0", "-//syncd//syncd//EN")
        task = self.stored(sink, UID)
        assert task.name == "VTODO"
        assert task["DUE"].params["VALUE"] == "DATE"
        assert task.decoded("DUE") == date(2024, 5, 3)
        assert task.decoded("DTSTAMP") == task.decoded("CREATED") == STAMP
        assert (task["STATUS"], task["SUMMARY"]) == (
            "NEEDS-ACTION",
            "Get in touch with Ada Lovelace",
        )
        assert task["X-SYNCD-PERSON"] == "3f2a9c"
        assert task["URL"] == "mailto:ada@example.org"
        assert task["CATEGORIES"].cats == ["syncd", "clients"]
        assert task["DESCRIPTION"].splitlines() == [
            "Last contact 2024-02-01 by email.",
            "mailto:ada@example.org",
            "tel:+493012345678",
            "https://www.linkedin.com/in/ada",
        ]

    def test_links_already_in_the_description_are_not_repeated(self, sink: Sink) -> None:
        sink.put(
            follow_up(description="Write to mailto:ada@example.org", links=follow_up().links[:2])
        )
        lines = self.stored(sink, UID)["DESCRIPTION"].splitlines()
        assert lines == ["Write to mailto:ada@example.org", "tel:+493012345678"]

    def test_description_keeps_non_ascii_text_and_newlines(self, sink: Sink) -> None:
        text = "Zuletzt: Kaffee in Köln ☕\nFrage nach dem Angebot; Preis, Termin\n\n— Grüße"
        tag = sink.put(follow_up(description=text, links=()))
        assert self.stored(sink, UID)["DESCRIPTION"] == text
        assert self.state(sink).etag == tag

    def test_control_characters_do_not_break_the_file(self, sink: Sink) -> None:
        sink.put(follow_up(summary="\ufeffAda\r\nLovelace\x00\u2028(x)", description="a\rb\x1bc"))
        task = self.stored(sink, UID)
        assert task["SUMMARY"] == "Ada\nLovelace\n(x)"
        assert task["DESCRIPTION"].splitlines()[:2] == ["a", "bc"]

    def test_a_uid_that_would_not_read_back_the_same_is_refused(self, sink: Sink) -> None:
        # Written anyway, it would be found under another UID and written again on every pass.
        for uid in ("a\x00b", "\ufeffsyncd-1"):
            with pytest.raises(SinkError, match="UID"):
                sink.put(follow_up(uid))

    def test_an_event_is_a_transparent_slot_at_its_start(self, sink: Sink) -> None:
        start = datetime(2024, 5, 3, 0, 30, tzinfo=BERLIN)
        reminder = follow_up(component="VEVENT", start=start, duration=timedelta(minutes=20))
        tag = sink.put(reminder)
        event = self.stored(sink, UID)
        assert event.name == "VEVENT"
        assert event.decoded("DTSTART") == start
        assert b"DTSTART:20240502T223000Z" in self.calendar_data(sink, UID)
        assert event.decoded("DURATION") == timedelta(minutes=20)
        assert event["TRANSP"] == "TRANSPARENT"
        assert "DUE" not in event
        assert (event["X-SYNCD-PERSON"], event["CATEGORIES"].cats) == (
            "3f2a9c",
            ["syncd", "clients"],
        )
        # 00:30 in Berlin is the evening before in UTC; the follow-up still stands on the 3rd.
        assert self.state(sink) == ReminderState(
            UID, FollowUpStatus.OPEN, due=date(2024, 5, 3), etag=tag
        )

    def test_an_event_without_a_time_is_all_day(self, sink: Sink) -> None:
        sink.put(follow_up(component="VEVENT"))
        event = self.stored(sink, UID)
        assert event.decoded("DTSTART") == date(2024, 5, 3)
        assert event.decoded("DURATION") == timedelta(days=1)

    def test_an_unknown_component_is_refused(self, sink: Sink) -> None:
        with pytest.raises(SinkError, match="VTODO or VEVENT"):
            sink.put(follow_up(component="VJOURNAL"))

    # -- reading back what the user did ---------------------------------------------------------

    def test_never_written_reads_back_deleted(self, sink: Sink) -> None:
        sink.put(follow_up())
        assert self.state(sink, "other@syncd").status == FollowUpStatus.DELETED

    def test_completed_in_todoman(self, sink: Sink) -> None:
        sink.put(follow_up())
        done = datetime(2024, 5, 4, 10, 15, tzinfo=UTC)

        def complete(task: icalendar.Component) -> None:
            task["STATUS"] = "COMPLETED"
            task.add("COMPLETED", done)
            task.add("PERCENT-COMPLETE", 100)
            task.add("LAST-MODIFIED", done + timedelta(seconds=1))

        self.user_edits(sink, UID, complete)
        state = self.state(sink)
        assert (state.status, state.completed_at) == (FollowUpStatus.COMPLETED, done)

    def test_completed_by_status_alone_takes_last_modified(self, sink: Sink) -> None:
        sink.put(follow_up())
        edited = datetime(2024, 5, 5, 8, 0, tzinfo=UTC)

        def complete(task: icalendar.Component) -> None:
            task["STATUS"] = "COMPLETED"
            task.add("LAST-MODIFIED", edited)

        self.user_edits(sink, UID, complete)
        assert self.state(sink).completed_at == edited

    def test_moved_to_another_day(self, sink: Sink) -> None:
        sink.put(follow_up())
        self.user_edits(sink, UID, lambda task: task["DUE"].__setattr__("dt", date(2024, 5, 9)))
        assert self.state(sink).due == date(2024, 5, 9)

    @pytest.mark.parametrize(
        ("due", "day"),
        [
            (datetime(2024, 5, 10, 9, 0, tzinfo=BERLIN), date(2024, 5, 10)),
            # 20:00 in New York is 02:00 the next day where the user lives.
            (datetime(2024, 5, 10, 20, 0, tzinfo=ZoneInfo("America/New_York")), date(2024, 5, 11)),
        ],
    )
    def test_moved_to_a_time_with_a_time_zone(self, sink: Sink, due: datetime, day: date) -> None:
        sink.put(follow_up())

        def move(task: icalendar.Component) -> None:
            del task["DUE"]
            task.add("DUE", due)

        self.user_edits(sink, UID, move)
        assert b"DUE;TZID=" in self.calendar_data(sink, UID)
        assert self.state(sink).due == day

    def test_event_moved_in_khal(self, sink: Sink) -> None:
        sink.put(follow_up(component="VEVENT", start=datetime(2024, 5, 3, 9, tzinfo=BERLIN)))

        def move(event: icalendar.Component) -> None:
            del event["DTSTART"]
            event.add("DTSTART", datetime(2024, 5, 7, 14, tzinfo=BERLIN))

        self.user_edits(sink, UID, move)
        assert self.state(sink).due == date(2024, 5, 7)

    def test_deleted_by_the_user(self, sink: Sink) -> None:
        sink.put(follow_up())
        sink.put(follow_up("syncd-other@syncd"))
        self.user_deletes(sink, UID)
        assert self.state(sink).status == FollowUpStatus.DELETED
        assert self.state(sink, "syncd-other@syncd").status == FollowUpStatus.OPEN

    def test_cancelled_counts_as_deleted(self, sink: Sink) -> None:
        sink.put(follow_up())
        self.user_edits(sink, UID, lambda task: task.__setitem__("STATUS", "CANCELLED"))
        assert self.state(sink).status == FollowUpStatus.DELETED

    def test_a_broken_item_warns_and_is_not_deleted(self, sink: Sink, context: Context) -> None:
        sink.put(follow_up())
        broken = self.calendar_data(sink, UID).replace(b"DUE;VALUE=DATE:20240503", b"DUE:05/03")
        self.user_saves(sink, UID, broken)
        assert self.state(sink) == ReminderState(UID, FollowUpStatus.OPEN)
        assert context.warnings == 1
        assert self.calendar_data(sink, UID) == broken

    def test_a_user_edit_changes_the_etag(self, sink: Sink) -> None:
        tag = sink.put(follow_up())
        self.user_edits(sink, UID, lambda task: task.__setitem__("SUMMARY", "Lunch with Ada"))
        assert self.state(sink).etag not in (None, tag)

    # -- any input ------------------------------------------------------------------------------

    @settings(max_examples=60, deadline=None, suppress_health_check=INHERITED)
    @given(uid=TEXT.filter(str.strip), name=TEXT, description=TEXT, person_id=TEXT)
    def test_any_text_round_trips(
        self, uid: str, name: str, description: str, person_id: str
    ) -> None:
        with tempfile.TemporaryDirectory() as folder:
            sink = self.make_sink(Path(folder), new_context())
            reminder = follow_up(
                uid, summary=f"Write to {name}", description=description, person_id=person_id
            )
            reminder = dataclasses.replace(reminder, links=(), person_name=name)
            tag = sink.put(reminder)
            item = self.stored(sink, uid)
            assert item["SUMMARY"] == f"Write to {name}"
            assert str(item.get("DESCRIPTION", "")) == description
            # An X- property is TEXT (RFC 5545 3.8.8.2); icalendar hands it over still escaped.
            assert unescape_backslash(item["X-SYNCD-PERSON"]) == person_id
            assert sink.put(reminder) == tag
            assert len(self.items(sink, uid)) == 1
            assert self.state(sink, uid) == ReminderState(
                uid, FollowUpStatus.OPEN, due=date(2024, 5, 3), etag=tag
            )


class FileSinkContract(SinkContract):
    """What every sink that writes files does: atomic, mtime-stable writes; files as evidence."""

    def file_of(self, sink: Sink, uid: str) -> Path:
        """The file that holds the follow-up `uid`."""
        raise NotImplementedError

    def storage(self, sink: Sink) -> Path:
        """The folder the sink writes in."""
        raise NotImplementedError

    def calendar_data(self, sink: Sink, uid: str) -> bytes:
        return self.file_of(sink, uid).read_bytes()

    def user_saves(self, sink: Sink, uid: str, data: bytes) -> None:
        self.file_of(sink, uid).write_bytes(data)

    def snapshot(self, sink: Sink) -> dict[str, bytes]:
        return files_below(self.storage(sink))

    def test_writing_the_same_follow_up_again_leaves_the_mtime(self, sink: Sink) -> None:
        sink.put(follow_up())
        os.utime(self.file_of(sink, UID), (LONG_AGO, LONG_AGO))
        sink.put(follow_up())
        assert self.file_of(sink, UID).stat().st_mtime == LONG_AGO

    def test_writes_leave_no_temporary_files(self, sink: Sink) -> None:
        for number in range(3):
            sink.put(follow_up(f"syncd-{number}@syncd"))
        sink.remove("syncd-1@syncd")
        names = self.snapshot(sink)
        assert not [name for name in names if name.startswith(".") or ".tmp" in name]

    def test_a_failed_write_keeps_the_old_file_whole(
        self, sink: Sink, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        sink.put(follow_up())
        before = self.snapshot(sink)

        def disk_full(source: object, target: object) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "replace", disk_full)
        with pytest.raises(SinkError, match="No space left"):
            sink.put(follow_up(summary="Call Ada"))
        assert self.snapshot(sink) == before

    def test_missing_storage_is_an_error_not_a_mass_deletion(self, sink: Sink) -> None:
        with pytest.raises(SinkError, match="not mounted"):
            list(sink.read_back([UID]))
        assert list(sink.read_back([])) == []

    def test_completed_by_status_alone_takes_the_file_time(self, sink: Sink) -> None:
        sink.put(follow_up())
        self.user_edits(sink, UID, lambda task: task.__setitem__("STATUS", "COMPLETED"))
        os.utime(self.file_of(sink, UID), (LONG_AGO, LONG_AGO))
        state = self.state(sink)
        assert state.status == FollowUpStatus.COMPLETED
        assert state.completed_at == datetime.fromtimestamp(LONG_AGO, UTC)

    @settings(max_examples=150, deadline=None, suppress_health_check=INHERITED)
    @given(data=st.data())
    def test_a_mangled_file_never_crashes(self, data: st.DataObject) -> None:
        with tempfile.TemporaryDirectory() as folder:
            context = new_context()
            sink = self.make_sink(Path(folder), context)
            sink.put(follow_up())
            path = self.file_of(sink, UID)
            path.write_bytes(data.draw(mangled(path.read_bytes())))
            try:
                list(sink.read_back([UID, "other@syncd"]))
                sink.put(follow_up(due=date(2024, 6, 1)))
                sink.remove(UID)
            except SinkError:
                pass


def mangled(original: bytes) -> st.SearchStrategy[bytes]:
    """The file as a crash, a sync conflict or a careless edit might leave it."""
    lines = original.split(b"\n")

    def cut(start: int, length: int) -> bytes:
        return original[:start] + original[start + length :]

    def insert(at: int, junk: bytes) -> bytes:
        return original[:at] + junk + original[at:]

    def shuffle(order: list[int]) -> bytes:
        return b"\n".join(lines[i % len(lines)] for i in order)

    size = len(original)
    junk = st.binary(max_size=40) | st.sampled_from(
        [b"BEGIN:VTODO\r\n", b"END:VCALENDAR\r\n", b"END:VTODO\r\n", b"UID:\r\n", b" \r\n", b"\xff"]
    )
    return st.one_of(
        st.binary(max_size=300),
        st.builds(cut, st.integers(0, size), st.integers(1, size)),
        st.builds(insert, st.integers(0, size), junk),
        st.builds(shuffle, st.lists(st.integers(0, len(lines) - 1), max_size=len(lines) + 3)),
    )


class TestIcsFileSink(FileSinkContract):
    def make_sink(self, folder: Path, context: Context) -> Sink:
        options = IcsFileOptions(type="ics", path=folder / "calendars" / "followups.ics")
        return IcsFileSink(options, context)

    def file_of(self, sink: Sink, uid: str) -> Path:
        assert isinstance(sink, IcsFileSink)
        return sink.path

    def storage(self, sink: Sink) -> Path:
        assert isinstance(sink, IcsFileSink)
        return sink.path.parent

    def user_deletes(self, sink: Sink, uid: str) -> None:
        path = self.file_of(sink, uid)
        calendar = icalendar.Calendar.from_ical(path.read_bytes())
        calendar.subcomponents = [i for i in calendar.subcomponents if i.get("UID") != uid]
        path.write_bytes(calendar.to_ical())

    @pytest.fixture
    def users_calendar(self, sink: IcsFileSink) -> bytes:
        """A calendar the user keeps by hand: LF line ends, a time zone, folded lines, odd bytes."""
        text = (
            b"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//Handmade//EN\nX-WR-CALNAME:Work\n"
            b"BEGIN:VTIMEZONE\nTZID:Europe/Berlin\nBEGIN:STANDARD\nDTSTART:19701025T030000\n"
            b"TZOFFSETFROM:+0200\nTZOFFSETTO:+0100\nEND:STANDARD\nEND:VTIMEZONE\n"
            b"BEGIN:VEVENT\nUID:dentist@home\nDTSTAMP:20240101T000000Z\n"
            b"DTSTART;TZID=Europe/Berlin:20240510T090000\nsummary:Zahnarzt \xe2\x80\x93 bring the\n"
            b"  insurance card\nX-OLD-BYTES:\xff\xfe\nDESCRIPTION:a folded line whose rest is\n"
            b" BEGIN:VTODO\nEND:VEVENT\n"
            b"BEGIN:VTODO\nUID:syncd-3f2a9c-2@syncd\nSUMMARY:my own task, same person\nEND:VTODO\n"
            b"END:VCALENDAR\n"
        )
        sink.path.parent.mkdir(parents=True)
        sink.path.write_bytes(text)
        return text

    def test_the_users_own_items_stay_byte_for_byte(
        self, sink: IcsFileSink, users_calendar: bytes
    ) -> None:
        sink.put(follow_up("syncd-b@syncd"))
        sink.put(follow_up("syncd-a@syncd"))
        text = sink.path.read_bytes()
        before_end = users_calendar.rindex(b"END:VCALENDAR")
        assert text.startswith(users_calendar[:before_end])
        assert text.endswith(b"END:VCALENDAR\n")
        ours = text[before_end : -len(b"END:VCALENDAR\n")]
        assert ours.index(b"UID:syncd-a@syncd") < ours.index(b"UID:syncd-b@syncd")
        assert b"\r" not in ours  # the file's own line ends
        sink.remove("syncd-a@syncd")
        sink.remove("syncd-b@syncd")
        assert sink.path.read_bytes() == users_calendar

    def test_items_are_sorted_by_uid_whatever_the_order_of_writing(self, tmp_path: Path) -> None:
        files = []
        for order in (["a", "c", "b"], ["c", "b", "a"]):
            sink = self.make_sink(tmp_path / "-".join(order), new_context())
            for uid in order:
                sink.put(follow_up(uid))
            files.append(self.file_of(sink, "a").read_bytes())
        assert files[0] == files[1]
        assert [item["UID"] for item in calendar_items(self.file_of(sink, "a"))] == ["a", "b", "c"]

    def test_a_users_item_with_the_same_uid_is_not_overwritten(
        self, sink: IcsFileSink, users_calendar: bytes
    ) -> None:
        with pytest.raises(SinkError, match="did not write"):
            sink.put(follow_up("syncd-3f2a9c-2@syncd"))
        sink.remove("syncd-3f2a9c-2@syncd")
        assert sink.path.read_bytes() == users_calendar

    def test_a_file_that_cannot_be_taken_apart_is_never_written(
        self, sink: IcsFileSink, context: Context
    ) -> None:
        sink.put(follow_up())
        half = sink.path.read_bytes()[:200]  # as a crashed editor might leave it
        sink.path.write_bytes(half)
        with pytest.raises(SinkError, match="will not write"):
            sink.put(follow_up("syncd-new@syncd"))
        with pytest.raises(SinkError):
            sink.remove(UID)
        assert sink.path.read_bytes() == half
        assert list(sink.read_back([UID, "x"])) == [
            ReminderState(UID, FollowUpStatus.OPEN),
            ReminderState("x", FollowUpStatus.OPEN),
        ]
        assert context.warnings == 1
        assert "will not write" in sink.check()[0]

    def test_an_emptied_file_warns_and_deletes_nothing(
        self, sink: IcsFileSink, context: Context
    ) -> None:
        sink.put(follow_up())
        sink.path.write_bytes(b"")
        assert self.state(sink) == ReminderState(UID, FollowUpStatus.OPEN)
        assert context.warnings == 1

    def test_check(self, sink: IcsFileSink, tmp_path: Path) -> None:
        assert sink.check() == []
        (tmp_path / "calendars").mkdir()
        sink.path.mkdir()
        assert 'type = "vdir"' in sink.check()[0]
        (tmp_path / "a-file").write_text("")
        blocked = IcsFileSink(
            IcsFileOptions(type="ics", path=tmp_path / "a-file" / "x.ics"), new_context()
        )
        assert "is not a folder" in blocked.check()[0]


class TestVdirSink(FileSinkContract):
    def make_sink(self, folder: Path, context: Context) -> Sink:
        return VdirSink(VdirOptions(type="vdir", path=folder / "calendars" / "followups"), context)

    def file_of(self, sink: Sink, uid: str) -> Path:
        assert isinstance(sink, VdirSink)
        return sink.file_for(uid)

    def storage(self, sink: Sink) -> Path:
        assert isinstance(sink, VdirSink)
        return sink.path

    def user_deletes(self, sink: Sink, uid: str) -> None:
        self.file_of(sink, uid).unlink()

    @pytest.fixture
    def users_files(self, sink: VdirSink) -> dict[str, bytes]:
        """What khal, todoman and vdirsyncer keep in a vdir besides syncd's follow-ups."""
        files = {
            "dentist.ics": b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:dentist\r\nEND:VEVENT\r\n"
            b"END:VCALENDAR\r\n",
            "color": b"#ff0000\n",
            "displayname": b"Follow-ups\n",
            ".vdirsyncer/status": b"{}",
        }
        for name, content in files.items():
            (sink.path / name).parent.mkdir(parents=True, exist_ok=True)
            (sink.path / name).write_bytes(content)
        return files

    def test_one_file_per_follow_up_and_nothing_else_touched(
        self, sink: VdirSink, users_files: dict[str, bytes]
    ) -> None:
        sink.put(follow_up())
        sink.put(follow_up("syncd-other@syncd"))
        sink.remove("syncd-other@syncd")
        assert files_below(sink.path) == {
            **users_files,
            f"{UID}.ics": (sink.path / f"{UID}.ics").read_bytes(),
        }
        assert [item["UID"] for item in calendar_items(sink.path / f"{UID}.ics")] == [UID]

    @pytest.mark.parametrize("uid", ["../../escape", "a/b\\c:d", ".hidden", "x" * 300, "Grüße 🙂"])
    def test_any_uid_becomes_a_safe_file_in_the_folder(self, sink: VdirSink, uid: str) -> None:
        sink.put(follow_up(uid))
        (file,) = sink.path.iterdir()
        assert file.suffix == ".ics"
        assert not file.name.startswith(".")
        assert len(file.name.encode()) < 255
        assert self.state(sink, uid).status == FollowUpStatus.OPEN

    def test_uids_that_differ_only_in_unsafe_characters_get_different_files(
        self, sink: VdirSink
    ) -> None:
        assert sink.file_for("a/b") != sink.file_for("a:b")

    def test_a_users_file_in_the_way_is_left_alone(self, sink: VdirSink, context: Context) -> None:
        users = (
            b"BEGIN:VCALENDAR\r\nBEGIN:VTODO\r\nUID:"
            + UID.encode()
            + b"\r\nEND:VTODO\r\nEND:VCALENDAR\r\n"
        )
        sink.path.mkdir(parents=True)
        sink.file_for(UID).write_bytes(users)
        with pytest.raises(SinkError, match="did not write"):
            sink.put(follow_up())
        sink.remove(UID)
        assert sink.file_for(UID).read_bytes() == users
        assert context.warnings == 1

    def test_a_half_written_file_warns_and_is_not_deleted(
        self, sink: VdirSink, context: Context
    ) -> None:
        sink.put(follow_up())
        sink.file_for(UID).write_bytes(sink.file_for(UID).read_bytes()[:150])
        assert self.state(sink) == ReminderState(UID, FollowUpStatus.OPEN)
        assert context.warnings == 1

    def test_check(self, sink: VdirSink, tmp_path: Path) -> None:
        assert sink.check() == []
        (tmp_path / "calendars").mkdir()
        sink.path.write_text("")
        assert 'type = "ics"' in sink.check()[0]


def test_the_config_names_the_sinks(tmp_path: Path) -> None:
    assert sink_class("ics") is IcsFileSink
    assert sink_class("vdir") is VdirSink
    options = VdirSink.Options.model_validate(
        {"type": "vdir", "path": "calendars/followups"}, context={"base_dir": tmp_path}
    )
    assert isinstance(options, VdirOptions)
    assert options.path == tmp_path / "calendars" / "followups"
    assert isinstance(VdirSink(options, new_context()), Sink)
    with pytest.raises(ValueError, match="colour"):
        IcsFileSink.Options.model_validate({"type": "ics", "path": "a.ics", "colour": "red"})
    with pytest.raises(ValueError, match="ics"):
        IcsFileSink.Options.model_validate({"type": "vdir", "path": "a.ics"})
