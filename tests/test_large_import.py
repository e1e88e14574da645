"""A large import end to end, scaled down: a real Maildir through the header helper, the writer
thread and the store, in many batches, and then the same again with nothing new."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from connectors import mailpool
from syncd import config as configuration
from syncd import engine
from syncd.people import relationships
from syncd.report import Summary
from syncd.store import Store

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
ME = "sanne@bakkerontwerp.nl"
PEOPLE = [(f"Klant {n}", f"klant{n}@example.nl") for n in range(12)]


def deliver(root: Path, count: int) -> None:
    for part in ("cur", "new", "tmp"):
        (root / part).mkdir(parents=True, exist_ok=True)
    (root / ".Sent" / "cur").mkdir(parents=True, exist_ok=True)
    for n in range(count):
        name, address = PEOPLE[n % len(PEOPLE)]
        sent = (n // len(PEOPLE)) % 3 == 0  # each of them written to as well
        at = NOW - timedelta(days=count - n, hours=n % 7)
        lines = [
            f"From: {'Sanne Bakker <' + ME + '>' if sent else f'{name} <{address}>'}",
            f"To: {f'{name} <{address}>' if sent else ME}",
            f"Subject: offerte {n}",
            f"Date: {format_datetime(at)}",
            f"Message-ID: <m{n}@example.nl>",
        ]
        if n % 10 == 9:
            lines.append("List-Id: <nieuws.example.nl>")
        folder = root / ".Sent" / "cur" if sent else root / "cur"
        body = "\n".join(lines) + "\n\n" + "tekst\n" * 50
        (folder / f"{1_700_000_000 + n}.M{n}P1.host:2,S").write_text(body)


def make_config(tmp_path: Path, maildir: Path) -> configuration.Config:
    raw: dict[str, Any] = {
        "me": {"emails": [ME], "timezone": "Europe/Amsterdam"},
        "state": {"database": "state.sqlite"},
        "sources": {"mail": {"type": "maildir", "path": str(maildir)}},
        "cadence": {"default": "30d", "learn": False},
    }
    return configuration.validate(raw, tmp_path)


@pytest.fixture
def scaled_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """What 100,000 messages do, with 600: a helper from 50 on, many chunks and batches."""
    monkeypatch.setattr(mailpool, "LEAST", 50)
    monkeypatch.setattr(mailpool, "CHUNK", 16)
    monkeypatch.setattr(mailpool, "AHEAD", 3)
    monkeypatch.setattr(engine, "BATCH", 64)


@pytest.mark.usefixtures("scaled_down")
def test_a_large_maildir_is_stored_whole_and_a_second_pass_finds_nothing(tmp_path: Path) -> None:
    deliver(tmp_path / "Maildir", 600)
    config = make_config(tmp_path, tmp_path / "Maildir")
    store = Store.open(tmp_path / "state.sqlite")
    summary = Summary()
    engine.import_all(config, store, NOW, summary)
    assert summary.sources[0].items == 600
    assert summary.sources[0].error is None
    rows = store.db.execute("SELECT count(*), sum(counts) FROM interactions").fetchone()
    assert rows == (600, 540)  # every tenth is a mailing list
    assert len(store.known_refs("mail")) == 600
    assert store.db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    people = {p.name: p for p in relationships(store, config) if p.listed}
    assert sorted(people) == sorted(name for name, _ in PEOPLE)
    assert sum(p.interactions for p in people.values()) == 540
    for number, (name, _) in enumerate(PEOPLE):
        newest = max(n for n in range(number, 600, len(PEOPLE)) if n % 10 != 9)
        assert people[name].last_title == f"offerte {newest}"

    again = Summary()
    engine.import_all(config, store, NOW, again)
    assert again.sources[0].items == 0
    assert store.db.execute("SELECT count(*) FROM interactions").fetchone() == (600,)
