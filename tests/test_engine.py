"""The sync pass with in-memory sources and sinks: batches, crashes, relationships, follow-ups."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from syncd import config as configuration
from syncd import corrections, engine
from syncd.model import (
    Card,
    Channel,
    FollowUpStatus,
    Identity,
    IdentityKind,
    Interaction,
    Party,
    ReminderState,
)
from syncd.people import relationships
from syncd.store import Store
from tests import fakes

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # a Monday, 09:00 in Amsterdam
ME = "sanne@bakkerontwerp.nl"


def party(address: str, name: str = "") -> Party:
    return Party(Identity(IdentityKind.EMAIL, address), name)


def mail(ref: str, sender: str, to: list[str], days_ago: int, **signals: str) -> Interaction:
    return Interaction(
        "mail", ref, NOW - timedelta(days=days_ago), Channel.EMAIL, sender=party(sender),
        recipients=tuple(party(a) for a in to), title=f"mail {ref}", message_id=f"{ref}@test",
        signals=dict(signals),
    )  # fmt: skip


def card(ref: str, name: str, *addresses: str, groups: tuple[str, ...] = ()) -> Card:
    ids = tuple(Identity(IdentityKind.EMAIL, a) for a in addresses)
    return Card("book", ref, name, ids, groups=groups)


def make_config(tmp_path: Path, **extra: Any) -> configuration.Config:
    raw: dict[str, Any] = {
        "me": {"emails": [ME], "timezone": "Europe/Amsterdam"},
        "state": {"database": "state.sqlite"},
        "sources": {"mail": {"type": "memory", "feed": "mail"},
                    "book": {"type": "memory", "feed": "book"}},
        "sinks": {"calendar": {"type": "memory"}},
        "cadence": {"default": "30d", "learn": False},
    }  # fmt: skip
    raw.update(extra)
    return configuration.validate(raw, tmp_path)


@pytest.fixture
def setup(tmp_path: Path, memory: None) -> tuple[configuration.Config, Store]:
    fakes.FEEDS.update({"mail": [], "book": []})
    config = make_config(tmp_path)
    return config, Store.open(config.state.database)


def listed(store: Store, config: configuration.Config) -> dict[str, Any]:
    return {p.name: p for p in relationships(store, config) if p.listed}


def test_a_crash_mid_source_keeps_whole_batches_and_counts_nothing_twice(setup: Any) -> None:
    config, store = setup
    total = engine.BATCH * 5 // 2
    fakes.FEEDS["mail"] = [mail(f"m{n}", ME, [f"p{n % 7}@x.nl"], n % 300) for n in range(total)]
    fakes.CRASH["mail"] = engine.BATCH * 2 + 200
    with pytest.raises(RuntimeError):
        engine.sync(config, store, NOW)
    assert store.cursor_state("mail") == {"done": engine.BATCH * 2}
    assert len(store.known_refs("mail")) == engine.BATCH * 2
    engine.sync(config, store, NOW)
    assert store.db.execute("SELECT count(*) FROM interactions").fetchone()[0] == total
    assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_one_failing_source_does_not_stop_the_others(setup: Any) -> None:
    config, store = setup
    del fakes.FEEDS["mail"]
    fakes.FEEDS["book"] = [card("c1", "Jan de Vries", "jan@example.nl")]
    summary = engine.sync(config, store, NOW)
    assert summary.failed
    assert [s.error for s in summary.sources] == ["feed mail is unreachable", None]
    assert "Jan de Vries" in listed(store, config)


def test_someone_who_only_wrote_to_me_is_not_a_relationship_until_i_answer(setup: Any) -> None:
    config, store = setup
    fakes.FEEDS["mail"] = [mail("r1", "recruiter@agency.nl", [ME], 20),
                           mail("r2", "recruiter@agency.nl", [ME], 10)]  # fmt: skip
    engine.sync(config, store, NOW)
    assert listed(store, config) == {}
    fakes.FEEDS["mail"].append(mail("r3", ME, ["recruiter@agency.nl"], 5))
    engine.sync(config, store, NOW)
    person = listed(store, config)["recruiter@agency.nl"]
    assert person.last_direction == "out"
    assert person.interactions == 3


def test_newsletters_never_count_or_make_a_relationship(setup: Any) -> None:
    config, store = setup
    fakes.FEEDS["mail"] = [mail("n1", "news@blog.nl", [ME], 3, **{"list-unsubscribe": "<x>"})]
    fakes.FEEDS["book"] = [card("c1", "Blog", "news@blog.nl")]
    engine.sync(config, store, NOW)
    person = listed(store, config)["Blog"]  # in the address book, so listed, but no contact
    assert person.last_contact is None
    assert person.due is None


def test_person_ids_survive_a_rebuilt_database(setup: Any, tmp_path: Path) -> None:
    config, store = setup
    fakes.FEEDS["book"] = [card("c1", "Jan de Vries", "jan@example.nl", "jan@home.nl"),
                           card("c2", "Eva Smit", "eva@example.nl")]  # fmt: skip
    fakes.FEEDS["mail"] = [mail("m1", ME, ["jan@home.nl", "eva@example.nl"], 40)]
    engine.sync(config, store, NOW)
    first = {p.name: p.id for p in relationships(store, config)}
    engine.sync(config, store, NOW + timedelta(days=1))
    assert {p.name: p.id for p in relationships(store, config)} == first
    rebuilt = Store.open(tmp_path / "rebuilt.sqlite")
    engine.sync(config, rebuilt, NOW)
    assert {p.name: p.id for p in relationships(rebuilt, config)} == first


def test_adding_an_address_to_me_rejudges_old_mail(setup: Any, tmp_path: Path) -> None:
    config, store = setup
    fakes.FEEDS["mail"] = [mail("m1", "sanne@gmail.com", ["eva@example.nl"], 12)]
    engine.sync(config, store, NOW)
    assert listed(store, config) == {}
    wider = make_config(tmp_path, me={"emails": [ME, "sanne@gmail.com"],
                                      "timezone": "Europe/Amsterdam"})  # fmt: skip
    engine.sync(wider, store, NOW)
    assert listed(store, wider)["eva@example.nl"].last_direction == "out"


def test_follow_ups_are_written_once_and_completion_restarts_the_clock(setup: Any) -> None:
    config, store = setup
    fakes.FEEDS["book"] = [card("c1", "Jan de Vries", "jan@example.nl")]
    fakes.FEEDS["mail"] = [mail("m1", ME, ["jan@example.nl"], 45)]
    summary = engine.sync(config, store, NOW)
    assert [name for name, _ in summary.written] == ["Jan de Vries"]
    (uid,) = fakes.ITEMS
    reminder = fakes.ITEMS[uid]
    assert reminder.summary == "Catch up with Jan de Vries"
    assert reminder.due == date(2026, 11, 23)
    assert "mailto:jan@example.nl" in reminder.description
    assert engine.sync(config, store, NOW).written == []  # nothing new: nothing rewritten
    done_at = NOW + timedelta(hours=3)
    fakes.STATES[uid] = ReminderState(uid, FollowUpStatus.COMPLETED, completed_at=done_at)
    later = engine.sync(config, store, NOW + timedelta(days=1))
    assert later.completed == 1
    jan = listed(store, config)["Jan de Vries"]
    assert jan.last_channel == "followup"
    assert jan.due == date(2026, 12, 23)


def test_a_deleted_follow_up_is_not_written_again_that_cycle(setup: Any) -> None:
    config, store = setup
    fakes.FEEDS["book"] = [card("c1", "Jan de Vries", "jan@example.nl")]
    fakes.FEEDS["mail"] = [mail("m1", ME, ["jan@example.nl"], 45)]
    engine.sync(config, store, NOW)
    fakes.ITEMS.clear()  # the user deleted it
    summary = engine.sync(config, store, NOW + timedelta(days=1))
    assert summary.dismissed == 1
    assert summary.written == []
    assert fakes.ITEMS == {}


def test_contact_before_the_follow_up_withdraws_it(setup: Any) -> None:
    config, store = setup
    fakes.FEEDS["book"] = [card("c1", "Jan de Vries", "jan@example.nl")]
    fakes.FEEDS["mail"] = [mail("m1", ME, ["jan@example.nl"], 45)]
    engine.sync(config, store, NOW)
    fakes.FEEDS["mail"].append(mail("m2", "jan@example.nl", [ME], 0))
    summary = engine.sync(config, store, NOW + timedelta(hours=1))
    assert summary.withdrawn == 1
    assert fakes.ITEMS == {}


def test_a_moved_follow_up_keeps_the_users_day(setup: Any) -> None:
    config, store = setup
    fakes.FEEDS["book"] = [card("c1", "Jan de Vries", "jan@example.nl")]
    fakes.FEEDS["mail"] = [mail("m1", ME, ["jan@example.nl"], 45)]
    engine.sync(config, store, NOW)
    (uid,) = fakes.ITEMS
    moved = date(2026, 11, 27)
    fakes.STATES[uid] = ReminderState(uid, FollowUpStatus.OPEN, due=moved)
    engine.sync(config, store, NOW + timedelta(hours=1))
    assert [f.planned for f in store.followups("calendar")] == [moved]


def test_a_declined_invitation_is_not_written_again(setup: Any) -> None:
    config, store = setup
    fakes.FEEDS["book"] = [card("c1", "Jan de Vries", "jan@example.nl")]
    fakes.FEEDS["mail"] = [mail("m1", ME, ["jan@example.nl"], 45)]
    engine.sync(config, store, NOW)
    assert len(fakes.ITEMS) == 1
    reply = mail("r1", ME, ["syncd@example.nl"], 0)
    title = "Declined: Catch up with Jan de Vries @ Mon 23 Nov"
    fakes.FEEDS["mail"].append(replace(reply, at=NOW + timedelta(hours=1), title=title))
    summary = engine.sync(config, store, NOW + timedelta(hours=2))
    assert summary.dismissed == 1
    assert [f.status for f in store.followups("calendar")] == ["dismissed"]


def test_ignoring_an_address_takes_it_out_of_what_is_stored_without_reading_again(
    setup: Any,
) -> None:
    config, store = setup
    fakes.FEEDS["mail"] = [mail("a1", ME, ["jan@x.nl"], 10),
                           mail("a2", ME, ["jan@x.nl", "piet@x.nl"], 5),
                           mail("a3", "jan@x.nl", [ME], 3)]  # fmt: skip
    engine.sync(config, store, NOW)
    assert {"jan@x.nl", "piet@x.nl"} <= listed(store, config).keys()
    read = store.cursor_state("mail")
    fakes.FEEDS["mail"] = []  # read again, the source would give nothing to judge anew
    corrections.ignore(store, config, "jan@x.nl", NOW)
    assert store.cursor_state("mail") == read
    engine.sync(config, store, NOW)
    assert store.cursor_state("mail") == read
    rows = store.db.execute("SELECT ref, counts, rule FROM interactions ORDER BY ref").fetchall()
    assert rows == [("a1", 0, "ignored by you"), ("a2", 1, None), ("a3", 0, "ignored by you")]
    people = listed(store, config)
    assert "jan@x.nl" not in people
    assert people["piet@x.nl"].interactions == 1


def test_a_domain_added_to_rules_ignore_is_taken_out_and_taking_it_back_gives_it_back(
    setup: Any, tmp_path: Path
) -> None:
    config, store = setup
    fakes.FEEDS["mail"] = [mail("r1", ME, ["recruiter@agency.nl"], 9),
                           mail("r2", ME, ["jan@x.nl"], 8)]  # fmt: skip
    engine.sync(config, store, NOW)
    ignoring = make_config(tmp_path, rules={"ignore": ["@agency.nl"]})
    engine.sync(ignoring, store, NOW)
    assert store.cursor_state("mail") == {"done": 2}  # not read again
    assert "recruiter@agency.nl" not in listed(store, ignoring)
    assert "jan@x.nl" in listed(store, ignoring)
    fakes.FEEDS["mail"] = []  # the mail is gone from its source since
    engine.sync(config, store, NOW)  # the domain is no longer ignored: its parties come back
    recruiter = listed(store, config)["recruiter@agency.nl"]
    assert recruiter.interactions == 1
    assert store.db.execute("SELECT count(*) FROM ignored_parties").fetchone() == (0,)
