"""The state file: one SQLite database (WAL, mode 0600, `PRAGMA user_version` migrations).

Every write is a transaction; a source's cursor is written in the same transaction as the batch of
cards and interactions it covers, so a crash loses at most the batches not yet stored (a few).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from syncd import contact
from syncd.batch import (
    PUT_CARDS,
    PUT_INTERACTIONS,
    PUT_PARTIES,
    PUT_REFS,
    Batch,
    encode_batch,
    encode_interactions,
    judged,
    seconds,
)
from syncd.contact import ContactSummary as ContactSummary  # re-exported
from syncd.model import Card, Identity, IdentityKind, Interaction
from syncd.rules import IGNORED
from syncd.schema import MIGRATIONS


class StoreError(Exception):
    """The state database cannot be opened or written."""


def _dt(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _maybe_dt(seconds: int | None) -> datetime | None:
    return None if seconds is None else _dt(seconds)


def _maybe_seconds(moment: datetime | None) -> int | None:
    return None if moment is None else seconds(moment)


def parse_identity(text: str) -> Identity:
    kind, value = text.split(":", 1)
    return Identity(IdentityKind(kind), value)


def _statements(script: str) -> Iterator[str]:
    """The statements of a migration script (a trigger's body has semicolons of its own)."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                yield pending
            pending = ""
    if pending.strip(" \n;"):
        raise ValueError(f"an incomplete statement in a migration: {pending.strip()[:60]}")


@dataclass(frozen=True)
class Run:
    """One job of the daemon as last recorded: a source's import, or the daily planning."""

    job: str
    last_run: datetime | None = None
    last_success: datetime | None = None
    last_error: str | None = None
    failures: int = 0  # in a row, since the last success
    next_run: datetime | None = None


@dataclass(frozen=True)
class FollowUp:
    uid: str
    sink: str
    person_id: str
    cycle: str
    planned: date
    status: str
    etag: str | None
    digest: str | None
    completed_at: datetime | None
    stamp: datetime
    sequence: int = 0


class Store:
    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self.db = connection
        self.path = path

    @classmethod
    def open(cls, path: Path) -> Store:
        """Open (or create, mode 0600) the database and bring its schema up to date."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not path.exists():
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            os.chmod(path, 0o600)
            # One connection, used by one thread at a time: an import's writer thread stores
            # batches while the source is read (see `syncd.engine`).
            connection = sqlite3.connect(
                path, isolation_level=None, timeout=30, check_same_thread=False
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA foreign_keys=ON")
            # Up to 16 MB of pages (the default is 2): fewer index pages read again in an import.
            connection.execute("PRAGMA cache_size=-16384")
            connection.execute("SELECT json_extract('[1]', '$[0]')")  # needs SQLite's JSON
            store = cls(connection, path)
            store._migrate()
        except (OSError, sqlite3.Error) as error:
            raise StoreError(f"cannot open the state database {path}: {error}") from error
        return store

    def close(self) -> None:
        self.db.close()

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.transaction():
                for statement in _statements(script):
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {number}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- meta and cursors ---------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def cursor_state(self, source: str) -> dict[str, Any]:
        row = self.db.execute("SELECT state FROM cursors WHERE source = ?", (source,)).fetchone()
        return {} if row is None else dict(json.loads(row[0]))

    def known_refs(self, source: str) -> set[str]:
        rows = self.db.execute("SELECT ref FROM refs WHERE source = ?", (source,))
        return {ref for (ref,) in rows}

    # -- imports ------------------------------------------------------------------------------

    def write_batch(
        self,
        source: str,
        cards: list[Card],
        interactions: Iterable[Interaction],
        cursor: dict[str, Any],
    ) -> None:
        """Store a batch from one source and move its cursor, in one transaction."""
        self.write(encode_batch(source, cards, map(judged, interactions), cursor))

    def write(self, batch: Batch) -> None:
        """Store an encoded batch in one transaction.

        Each table gets one statement over the batch as JSON: SQLite then does the whole batch
        without holding Python's global lock, so a writer thread stores while the source is read.
        """
        with self.transaction():
            if batch.cards != "[]":
                self.db.execute(PUT_CARDS, (batch.cards,))
            if batch.interactions != "[]":
                self._put_interactions(batch)
                self._stale()
            if batch.cards != "[]" or batch.interactions != "[]":
                self.set_meta("resolved", "no")  # who is who, worked out again after the pass
            self.db.execute(
                "INSERT OR REPLACE INTO cursors (source, state) VALUES (?, ?)",
                (batch.source, batch.cursor),
            )

    def _put_interactions(self, batch: Batch) -> None:
        """Insert or update; the same message from two sources (one Message-ID) is stored once,
        and one that was stored before keeps its row and gets its parties anew (a trigger drops
        the old ones)."""
        self.db.execute(PUT_INTERACTIONS, (batch.interactions,))
        if batch.parties != "[]":
            self.db.execute(PUT_PARTIES, (batch.parties,))
        self.db.execute(PUT_REFS, (batch.refs,))

    def add_contact(self, person_id: str, ix: Interaction) -> None:
        """A contact that belongs to a person directly: `syncd done`, a completed follow-up."""
        with self.transaction():
            self._put_interactions(encode_interactions([judged(ix)], person_id))
            self._stale()

    def drop_ignored(
        self, identities: Iterable[Identity], addresses: Iterable[str], domains: Iterable[str]
    ) -> None:
        """Newly ignored people taken out of what is stored, as the rules would take them out on
        reading it again: they are no longer a party to anything, and what had only them on the
        other side no longer counts. They are kept aside, for `restore_ignored`."""
        matches: list[tuple[str, tuple[str, ...]]] = [
            ("kind = ? AND value = ?", (i.kind.value, i.value)) for i in identities
        ]
        matches += [("kind = 'email' AND value = ?", (address,)) for address in addresses]
        matches += [("kind = 'email' AND substr(value, -length(?1)) = ?1", (domain,))
                    for domain in domains]  # fmt: skip
        with self.transaction():
            self.db.execute("CREATE TEMP TABLE IF NOT EXISTS dropped (id INTEGER PRIMARY KEY)")
            self.db.execute("DELETE FROM temp.dropped")
            for where, values in matches:
                self.db.execute(
                    f"INSERT OR IGNORE INTO temp.dropped SELECT interaction_id FROM parties"
                    f" WHERE {where}",
                    values,
                )
                self.db.execute(
                    f"INSERT OR IGNORE INTO ignored_parties SELECT * FROM parties WHERE {where}",
                    values,
                )
                self.db.execute(f"DELETE FROM parties WHERE {where}", values)
            self.db.execute(
                """UPDATE interactions SET counts = 0, rule = ?
                    WHERE counts = 1 AND id IN (SELECT id FROM temp.dropped) AND NOT EXISTS
                          (SELECT 1 FROM parties WHERE interaction_id = interactions.id)""",
                (IGNORED,),
            )
            self._stale()
            self.set_meta("resolved", "no")

    def restore_ignored(self, still: Callable[[Identity], bool]) -> None:
        """Give back the parties `drop_ignored` took out that are not ignored any more (`still`
        says which are), and count again what they were the only other side of."""
        rows = self.db.execute("SELECT * FROM ignored_parties").fetchall()
        back = [row for row in rows if not still(Identity(IdentityKind(row[1]), row[2]))]
        if not back:
            return
        with self.transaction():
            # Before the parties go back: updating a row drops its parties (schema, migration 4).
            self.db.executemany(
                "UPDATE interactions SET counts = 1, rule = NULL WHERE id = ? AND rule = ?",
                [(row[0], IGNORED) for row in back],
            )
            self.db.executemany("INSERT OR IGNORE INTO parties VALUES (?, ?, ?, ?)", back)
            self.db.executemany(
                "DELETE FROM ignored_parties WHERE interaction_id = ? AND kind = ? AND value = ?",
                [row[:3] for row in back],
            )
            self._stale()
            self.set_meta("resolved", "no")

    def forget_cursors(self) -> None:
        """Make every source read everything again on its next scan (the rules changed)."""
        self.db.execute("DELETE FROM cursors")
        self.db.execute("DELETE FROM refs")

    def titles_since(self, moment: datetime, prefixes: Iterable[str]) -> list[str]:
        """Subjects and titles since `moment` that start with one of `prefixes` (syncd's own
        words, free of LIKE wildcards; ASCII letters in any case)."""
        patterns = [f"{prefix}%" for prefix in prefixes]
        if not patterns:
            return []
        match = " OR ".join("title LIKE ?" for _ in patterns)
        rows = self.db.execute(
            f"SELECT title FROM interactions WHERE at >= ? AND ({match})",
            [seconds(moment), *patterns],
        )
        return [title for (title,) in rows]

    # -- identity -----------------------------------------------------------------------------

    def cards(self) -> list[Card]:
        rows = self.db.execute("SELECT * FROM cards ORDER BY source, ref")
        return [
            Card(
                source=source, ref=ref, name=name,
                identities=tuple(parse_identity(i) for i in json.loads(identities)),
                groups=tuple(json.loads(groups)), birthday=birthday, organisation=organisation,
                evidence=evidence,
            )
            for source, ref, name, identities, groups, birthday, organisation, evidence in rows
        ]  # fmt: skip

    def seen_names(self) -> Iterator[tuple[Identity, str, str]]:
        """(identity, name it was seen under, source) for everyone named in an interaction."""
        rows = self.db.execute(
            """SELECT DISTINCT p.kind, p.value, p.name, i.source
               FROM parties p JOIN interactions i ON i.id = p.interaction_id"""
        )
        for kind, value, name, source in rows:
            yield Identity(IdentityKind(kind), value), name, source

    def identities(self) -> dict[Identity, str]:
        rows = self.db.execute("SELECT kind, value, person_id FROM identities")
        return {Identity(IdentityKind(kind), value): person for kind, value, person in rows}

    def identity_rules(self, person_id: str) -> list[tuple[Identity, str]]:
        rows = self.db.execute(
            "SELECT kind, value, why FROM identities WHERE person_id = ? ORDER BY kind, value",
            (person_id,),
        )
        return [(Identity(IdentityKind(kind), value), why) for kind, value, why in rows]

    def save_persons(
        self, person_of: dict[Identity, str], why: dict[Identity, str], names: dict[str, str],
        now: datetime,
    ) -> None:  # fmt: skip
        """Replace the identity -> person assignment with a new resolution."""
        with self.transaction():
            self.db.execute("DELETE FROM identities")
            self.db.executemany(
                "INSERT INTO identities VALUES (?, ?, ?, ?)",
                [(i.kind, i.value, p, why.get(i, "")) for i, p in person_of.items()],
            )
            self.db.executemany(
                """INSERT INTO persons (id, name, created) VALUES (?, ?, ?)
                   ON CONFLICT (id) DO UPDATE SET name = excluded.name""",
                [(person, name, seconds(now)) for person, name in names.items()],
            )
            self._stale()

    def persons(self) -> dict[str, str]:
        """Every person with at least one identity: id -> name."""
        rows = self.db.execute(
            "SELECT id, name FROM persons WHERE id IN (SELECT person_id FROM identities)"
        )
        return dict(rows.fetchall())

    # -- contact (a per-person summary: `syncd.contact`) ----------------------------------------

    def contact_summaries(self) -> dict[str, ContactSummary]:
        return contact.contact_summaries(self)

    def contact_days(self) -> dict[str, list[date]]:
        return contact.contact_days(self)

    def person_sources(self) -> dict[str, set[str]]:
        return contact.person_sources(self)

    def recent_interactions(self, person_id: str, limit: int = 10) -> list[sqlite3.Row]:
        return contact.recent_interactions(self.db, person_id, limit)

    def _stale(self) -> None:
        self.set_meta("contact", "stale")

    # -- corrections ----------------------------------------------------------------------------

    def add_correction(
        self, kind: str, *, person_id: str | None = None, identity: str | None = None,
        other: str | None = None, until: str | None = None, now: datetime,
    ) -> None:  # fmt: skip
        with self.transaction():
            self.db.execute(
                "INSERT INTO corrections (kind, person_id, identity, other, until, created)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (kind, person_id, identity, other, until, seconds(now)),
            )

    def corrections(self, kind: str) -> list[tuple[str | None, str | None, str | None, str | None]]:
        """(person_id, identity, other, until) of each stored correction of a kind, oldest first."""
        rows = self.db.execute(
            "SELECT person_id, identity, other, until FROM corrections WHERE kind = ? ORDER BY id",
            (kind,),
        )
        return list(rows.fetchall())

    # -- follow-ups -----------------------------------------------------------------------------

    def followups(self, sink: str | None = None) -> list[FollowUp]:
        query = "SELECT * FROM followups" + (" WHERE sink = ?" if sink else "") + " ORDER BY uid"
        rows = self.db.execute(query, (sink,) if sink else ())
        return [
            FollowUp(
                uid, sink_name, person, cycle, date.fromisoformat(planned), status, etag, digest,
                _dt(completed) if completed is not None else None, _dt(stamp), sequence,
            )
            for (uid, sink_name, person, cycle, planned, status, etag, digest, completed, stamp,
                 sequence) in rows
        ]  # fmt: skip

    def save_followup(self, followup: FollowUp) -> None:
        with self.transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO followups VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    followup.uid, followup.sink, followup.person_id, followup.cycle,
                    followup.planned.isoformat(), followup.status, followup.etag, followup.digest,
                    seconds(followup.completed_at) if followup.completed_at else None,
                    seconds(followup.stamp), followup.sequence,
                ),
            )  # fmt: skip

    def followup_counts(self) -> dict[str, dict[str, int]]:
        """Per sink, how many follow-ups are in each status (open, completed, ...); one recorded
        but whose write did not finish (no digest yet) is "unwritten", not open."""
        rows = self.db.execute(
            """SELECT sink, CASE WHEN status = 'open' AND digest IS NULL THEN 'unwritten'
                                 ELSE status END AS state, count(*)
                 FROM followups GROUP BY sink, state"""
        )
        counts: dict[str, dict[str, int]] = {}
        for sink, status, count in rows:
            counts.setdefault(sink, {})[status] = count
        return counts

    # -- the daemon's jobs ----------------------------------------------------------------------

    def runs(self) -> dict[str, Run]:
        rows = self.db.execute("SELECT * FROM runs")
        return {
            job: Run(job, _maybe_dt(last_run), _maybe_dt(success), error, failures,
                     _maybe_dt(next_run))
            for job, last_run, success, error, failures, next_run in rows
        }  # fmt: skip

    def save_run(self, run: Run) -> None:
        with self.transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?)",
                (
                    run.job, _maybe_seconds(run.last_run), _maybe_seconds(run.last_success),
                    run.last_error, run.failures, _maybe_seconds(run.next_run),
                ),
            )  # fmt: skip
