from __future__ import annotations

import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from syncd.model import Channel, Identity, IdentityKind, Interaction, Party
from syncd.schema import MIGRATIONS
from syncd.store import Store

AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def mail(source: str, ref: str, message_id: str | None, title: str = "Hi") -> Interaction:
    jan = Party(Identity(IdentityKind.EMAIL, "jan@example.nl"), "Jan de Vries")
    return Interaction(source, ref, AT, Channel.EMAIL, sender=jan, title=title,
                       message_id=message_id, counterparts=(jan,))  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "state" / "syncd.sqlite")


def test_database_is_private_and_in_wal_mode(store: Store) -> None:
    mode = stat.S_IMODE(store.path.stat().st_mode)
    assert mode == 0o600
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_reopening_keeps_data_and_schema(store: Store) -> None:
    store.write_batch("mail", [], [mail("mail", "a", "m1@x")], {"n": 1})
    store.close()
    again = Store.open(store.path)
    assert again.known_refs("mail") == {"a"}
    assert again.cursor_state("mail") == {"n": 1}


def test_same_message_in_two_sources_is_stored_once(store: Store) -> None:
    store.write_batch("maildir", [], [mail("maildir", "INBOX/1", "m1@x")], {})
    store.write_batch("mbox", [], [mail("mbox", "m1@x", "m1@x")], {})
    assert store.db.execute("SELECT count(*) FROM interactions").fetchone()[0] == 1
    assert store.known_refs("maildir") == {"INBOX/1"}
    assert store.known_refs("mbox") == {"m1@x"}


def test_same_ref_again_updates_instead_of_adding(store: Store) -> None:
    store.write_batch("cal", [], [mail("cal", "uid-1", None, "Planning")], {})
    store.write_batch("cal", [], [mail("cal", "uid-1", None, "Planning (moved)")], {})
    rows = store.db.execute("SELECT title FROM interactions").fetchall()
    assert rows == [("Planning (moved)",)]


def test_cursor_does_not_move_when_the_batch_fails(store: Store) -> None:
    store.write_batch("mail", [], [mail("mail", "a", "m1@x")], {"done": 1})
    broken = mail("mail", "b", "m2@x")
    object.__setattr__(broken, "at", "not a time")
    with pytest.raises(AttributeError):
        store.write_batch("mail", [], [mail("mail", "c", "m3@x"), broken], {"done": 3})
    assert store.cursor_state("mail") == {"done": 1}
    assert store.known_refs("mail") == {"a"}


def test_integrity_after_writes(store: Store) -> None:
    store.write_batch("mail", [], [mail("mail", str(n), f"m{n}@x") for n in range(50)], {})
    assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with pytest.raises(sqlite3.IntegrityError):
        store.db.execute("INSERT INTO refs VALUES ('mail', '1', 1)")


def test_an_interaction_stored_again_gets_its_parties_anew(store: Store) -> None:
    first = mail("mail", "a", "m1@x")
    piet = Party(Identity(IdentityKind.EMAIL, "piet@example.nl"), "Piet")
    again = Interaction("mail", "a", AT, Channel.EMAIL, sender=piet, title="Hi",
                        message_id="m1@x", counterparts=(piet,))  # fmt: skip
    store.write_batch("mail", [], [first, mail("mail", "b", "m2@x")], {})
    store.write_batch("mail", [], [again], {})
    rows = store.db.execute(
        "SELECT i.key, p.value FROM parties p JOIN interactions i ON i.id = p.interaction_id"
        " ORDER BY i.key"
    ).fetchall()
    assert rows == [("mid:m1@x", "piet@example.nl"), ("mid:m2@x", "jan@example.nl")]


def test_the_same_message_twice_in_one_batch_is_one_row_with_both_refs(store: Store) -> None:
    store.write_batch("mail", [], [mail("mail", "INBOX/1", "m1@x", "Hi"),
                                   mail("mail", "Archive/1", "m1@x", "Hi again")], {})  # fmt: skip
    assert store.db.execute("SELECT title FROM interactions").fetchall() == [("Hi again",)]
    assert store.known_refs("mail") == {"INBOX/1", "Archive/1"}
    assert store.db.execute("SELECT count(DISTINCT interaction_id) FROM refs").fetchone() == (1,)


def test_refs_without_a_message_id_are_kept_apart_by_source(store: Store) -> None:
    store.write_batch("cal", [], [mail("cal", "uid-1", None)], {})
    store.write_batch("ics", [], [mail("ics", "uid-1", None)], {})
    keys = [key for (key,) in store.db.execute("SELECT key FROM interactions ORDER BY key")]
    assert keys == ["ref:cal\0uid-1", "ref:ics\0uid-1"]


def test_text_sqlite_cannot_take_is_stored_replaced_not_cut_short(store: Store) -> None:
    jan = Party(Identity(IdentityKind.EMAIL, "jan@example.nl"), "Jan")
    odd = [
        Interaction("mail", "INBOX/1", AT, Channel.EMAIL, jan, title="sub\0ject",
                    message_id="a\0one", counterparts=(jan,)),
        Interaction("mail", "INBOX/\udcff2", AT, Channel.EMAIL, jan, title="caf\udce9",
                    message_id="a\0two", counterparts=(jan,)),
    ]  # fmt: skip
    store.write_batch("mail", [], odd, {})
    rows = store.db.execute("SELECT key, title FROM interactions ORDER BY key").fetchall()
    assert rows == [("mid:a\ufffdone", "sub\ufffdject"), ("mid:a\ufffdtwo", "caf?")]
    assert store.known_refs("mail") == {"INBOX/1", "INBOX/?2"}  # readable on the next pass too


def test_a_pass_that_stored_something_is_resolved_again(store: Store) -> None:
    store.set_meta("resolved", "yes")
    store.write_batch("mail", [], [], {"n": 1})
    assert store.meta("resolved") == "yes"  # only the cursor moved
    store.write_batch("mail", [], [mail("mail", "a", "m1@x")], {"n": 2})
    assert store.meta("resolved") == "no"


def test_a_lone_surrogate_after_an_escaped_backslash_is_still_found(store: Store) -> None:
    jan = Party(Identity(IdentityKind.EMAIL, "jan@example.nl"), "Jan")
    odd = Interaction("mail", "INBOX/9", AT, Channel.EMAIL, jan, title="\\ud83d\udc80",
                      message_id="m9@x", counterparts=(jan,))  # fmt: skip
    store.write_batch("mail", [], [odd], {})
    assert store.db.execute("SELECT title FROM interactions").fetchall() == [("\\ud83d?",)]
