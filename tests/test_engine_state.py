"""The engine under random interleavings of what happens in months of running: new mail, passes,
follow-ups completed or deleted by the user, the user's own items in the calendar, crashes in a
source and in the middle of writing. After each pass that finished: every due person has exactly
one open follow-up, a second pass changes nothing, and nothing syncd did not create is touched."""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from connectors import base
from syncd import config as configuration
from syncd import engine, followups, planner
from syncd.model import (
    Channel,
    FollowUpStatus,
    Identity,
    IdentityKind,
    Interaction,
    Party,
    Reminder,
    ReminderState,
)
from syncd.people import relationships
from syncd.store import Store
from tests import fakes

ME = "me@example.org"
PEOPLE = [f"p{n}@example.net" for n in range(6)]
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class CrashingSink(fakes.MemorySink):
    """The in-memory calendar; with `crash_after_put` set, the process dies right after the
    calendar took a follow-up and before syncd could note it in its database."""

    crash_after_put: ClassVar[bool] = False

    def put(self, reminder: Reminder) -> str:
        tag = super().put(reminder)
        if CrashingSink.crash_after_put:
            CrashingSink.crash_after_put = False
            raise RuntimeError("killed after writing")
        return tag


def theirs(uid: str) -> Reminder:
    return Reminder(uid, "", "", date(2026, 1, 1), "Dentist", "the user's own", stamp=START)


class Months(RuleBasedStateMachine):
    # Whether a pass may die between the calendar taking a follow-up and the database noting it.
    crashes_while_writing: ClassVar[bool] = False

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="syncd-state-"))
        for table in (fakes.FEEDS, fakes.CRASH, fakes.ITEMS, fakes.STATES):
            table.clear()
        CrashingSink.crash_after_put = False
        fakes.FEEDS["mail"] = []
        self.config = configuration.validate({
            "me": {"emails": [ME], "timezone": "Europe/Amsterdam"},
            "state": {"database": "state.sqlite"},
            "sources": {"mail": {"type": "memory", "feed": "mail"}},
            "sinks": {"calendar": {"type": "memory"}},
            "cadence": {"default": "20d", "learn": False},
            "reminders": {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                          "per_day": 50},
        }, self.folder)  # fmt: skip
        self.store = Store.open(self.config.state.database)
        self.now = START
        self.mails = 0
        self.dismissed: set[str] = set()  # uids of follow-ups the user deleted
        self.own: dict[str, Reminder] = {}  # the user's own items in the calendar
        self.synced = False  # the last pass finished

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- what happens --

    @initialize()
    def users_own_item(self) -> None:
        self.add_own_item()

    @rule(person=st.sampled_from(PEOPLE), days_ago=st.integers(0, 40),
          outgoing=st.booleans())  # fmt: skip
    def mail(self, person: str, days_ago: int, outgoing: bool) -> None:
        self.mails += 1
        me, them = (
            Party(Identity(IdentityKind.EMAIL, ME)),
            Party(Identity(IdentityKind.EMAIL, person)),
        )
        sender, recipient = (me, them) if outgoing else (them, me)
        self.synced = False
        fakes.FEEDS["mail"].append(Interaction(
            "mail", f"m{self.mails}", self.now - timedelta(days=days_ago), Channel.EMAIL,
            sender=sender, recipients=(recipient,), message_id=f"m{self.mails}@example.org",
        ))  # fmt: skip

    @rule(days=st.integers(1, 15))
    def time_passes(self, days: int) -> None:
        self.now += timedelta(days=days)
        self.synced = False  # who is due is checked as of the last pass

    @rule()
    def add_own_item(self) -> None:
        uid = f"dentist-{len(self.own)}@calendar.example"
        self.own[uid] = fakes.ITEMS[uid] = theirs(uid)

    @precondition(lambda self: len(fakes.FEEDS["mail"]) > self.read())
    @rule(data=st.data())
    def source_crashes(self, data: st.DataObject) -> None:
        unread = len(fakes.FEEDS["mail"]) - self.read()
        fakes.CRASH["mail"] = self.read() + data.draw(st.integers(1, unread))

    @precondition(lambda self: self.crashes_while_writing)
    @rule()
    def crash_while_writing(self) -> None:
        CrashingSink.crash_after_put = True

    @rule()
    def sync(self) -> None:
        self.synced = False
        try:
            engine.sync(self.config, self.store, self.now)
        except RuntimeError:
            return  # a crash: the next pass must set everything right
        fakes.CRASH.clear()
        CrashingSink.crash_after_put = False
        self.synced = True
        items, states, rows = dict(fakes.ITEMS), dict(fakes.STATES), self.store.followups()
        again = engine.sync(self.config, self.store, self.now)
        assert (again.written, again.withdrawn, again.completed, again.dismissed) == ([], 0, 0, 0)
        assert (fakes.ITEMS, fakes.STATES, self.store.followups()) == (items, states, rows)

    @precondition(lambda self: bool(self.open_followups()))
    @rule(data=st.data())
    def user_completes_one(self, data: st.DataObject) -> None:
        uid = data.draw(st.sampled_from(sorted(self.open_followups())))
        fakes.STATES[uid] = ReminderState(uid, FollowUpStatus.COMPLETED, completed_at=self.now)
        self.synced = False

    @precondition(lambda self: bool(self.open_followups()))
    @rule(data=st.data())
    def user_deletes_one(self, data: st.DataObject) -> None:
        uid = data.draw(st.sampled_from(sorted(self.open_followups())))
        del fakes.ITEMS[uid]
        self.dismissed.add(uid)
        self.synced = False

    # -- what must hold --

    @invariant()
    def nothing_syncd_did_not_create_is_touched(self) -> None:
        for uid, item in self.own.items():
            assert fakes.ITEMS.get(uid) is item

    @invariant()
    def every_due_person_has_exactly_one_open_follow_up(self) -> None:
        if not self.synced:
            return
        today = self.now.astimezone(self.config.me.zone).date()
        open_items = self.open_in_calendar()
        for person in relationships(self.store, self.config):
            cycle = followups.cycle_of(person, self.config)
            mine = [uid for uid, item in open_items.items() if item.person_id == person.id]
            due = person.listed and person.due is not None and person.due <= today
            expected = (
                due
                and cycle is not None
                and planner.uid_for(person.id, cycle) not in (self.dismissed)
            )
            assert mine == ([planner.uid_for(person.id, cycle or "")] if expected else []), (
                person.name, person.due, today, mine,
            )  # fmt: skip

    # -- helpers --

    def read(self) -> int:
        return int(self.store.cursor_state("mail").get("done", 0))

    def open_in_calendar(self) -> dict[str, Reminder]:
        """syncd's items in the calendar that the user has not completed."""
        return {
            uid: item for uid, item in fakes.ITEMS.items()
            if uid not in self.own and not _completed(fakes.STATES.get(uid))
        }  # fmt: skip

    def open_followups(self) -> set[str]:
        """Open follow-ups as syncd knows them (noted in its database) and the calendar has."""
        noted = {f.uid for f in self.store.followups("calendar") if f.status == followups.OPEN}
        return noted & set(self.open_in_calendar())


def _completed(state: ReminderState | None) -> bool:
    return state is not None and state.status is FollowUpStatus.COMPLETED


def test_months_of_random_events_keep_the_invariants(
    memory: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(base.SINKS, "memory", "tests.test_engine_state:CrashingSink")
    run_state_machine_as_test(
        Months,
        settings=settings(
            max_examples=150,
            stateful_step_count=50,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


class MonthsWithCrashesWhileWriting(Months):
    crashes_while_writing = True


def test_a_crash_between_calendar_and_database_leaves_no_unknown_follow_up(
    memory: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(base.SINKS, "memory", "tests.test_engine_state:CrashingSink")
    months = MonthsWithCrashesWhileWriting()
    try:
        months.mail(person=PEOPLE[0], days_ago=18, outgoing=True)
        months.crash_while_writing()
        months.time_passes(days=2)  # due now
        months.sync()  # dies right after the calendar took the follow-up
        months.mail(person=PEOPLE[0], days_ago=0, outgoing=False)  # then they wrote: not due
        months.sync()
        months.every_due_person_has_exactly_one_open_follow_up()
    finally:
        months.teardown()
