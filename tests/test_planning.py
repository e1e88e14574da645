"""Thirty days of passes over 300 overdue people: the calendar fills a few a day, never a flood."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from syncd import config as configuration
from syncd import engine
from syncd.model import Card, Channel, Identity, IdentityKind, Interaction, Party
from syncd.store import Store
from tests import fakes

START = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)  # a Monday, 07:00 in Amsterdam
ME = "me@example.nl"


def overdue_people(count: int) -> tuple[list[Card], list[Interaction]]:
    cards, mails = [], []
    for n in range(count):
        address = f"person{n}@example.nl"
        group = ("family", "friends", "clients")[n % 3]
        cards.append(Card("book", f"c{n}", f"Person {n:03d}",
                          (Identity(IdentityKind.EMAIL, address),), groups=(group,)))  # fmt: skip
        sent = START - timedelta(days=40 + n)  # everyone overdue, by different amounts
        mails.append(Interaction(
            "mail", f"m{n}", sent, Channel.EMAIL,
            sender=Party(Identity(IdentityKind.EMAIL, ME)),
            recipients=(Party(Identity(IdentityKind.EMAIL, address)),), message_id=f"m{n}@x",
        ))  # fmt: skip
    return cards, mails


def test_three_hundred_overdue_people_over_thirty_days(tmp_path: Path, memory: None) -> None:
    cards, mails = overdue_people(300)
    fakes.FEEDS.update({"book": cards, "mail": mails})
    raw: dict[str, Any] = {
        "me": {"emails": [ME], "timezone": "Europe/Amsterdam"},
        "state": {"database": "state.sqlite"},
        "sources": {"book": {"type": "memory", "feed": "book"},
                    "mail": {"type": "memory", "feed": "mail"}},
        "sinks": {"calendar": {"type": "memory"}},
        "cadence": {"default": "30d", "learn": False,
                    "groups": {"family": "14d", "friends": "21d", "clients": "30d"}},
        "reminders": {"per_day": 3},
    }  # fmt: skip
    config = configuration.validate(raw, tmp_path)
    store = Store.open(config.state.database)
    written_on: dict[str, date] = {}
    first = engine.sync(config, store, START)
    assert first.due == 300
    assert len(first.written) == 15  # five working days of three: only the coming week
    assert first.later == 285
    for day in range(30):
        now = START + timedelta(days=day)
        engine.sync(config, store, now)
        for uid, reminder in fakes.ITEMS.items():
            assert written_on.setdefault(uid, reminder.due) == reminder.due  # never moved
    per_day = Counter(written_on.values())
    assert max(per_day.values()) == 3
    assert all(day.weekday() < 5 for day in per_day)
    people = Counter(uid.split("-")[1] for uid in written_on)
    assert max(people.values()) == 1  # nobody written twice
    assert len(written_on) == 3 * len(per_day)
    # Most overdue relative to their cadence first: the first day holds the most overdue.
    first_day = {
        fakes.ITEMS[uid].person_name for uid in written_on if written_on[uid] == START.date()
    }
    assert first_day == {"Person 297", "Person 294", "Person 291"}  # family, longest overdue
