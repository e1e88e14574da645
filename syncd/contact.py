"""The `contact` table: a per-person summary of counted contact, rebuilt after imports.

Writes to the store mark the table stale (`Store._stale`); the first read afterwards aggregates
every interaction with each person once and stores the last contact, how many there were, on which
days and from which sources, so that reading it again is cheap. A person's recent interactions,
found through the same identities, are read here too. The functions are reached through the
`Store` methods of the same names.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from syncd.model import Channel, Direction
from syncd.rules import is_relationship

if TYPE_CHECKING:
    from syncd.store import Store


@dataclass(frozen=True)
class ContactSummary:
    """A person's counted contact, as the store aggregates it."""

    person_id: str
    last_at: datetime
    channel: str
    direction: str | None
    title: str
    evidence: str
    interactions: int
    relationship: bool


def _summary_json(summary: ContactSummary | None) -> str | None:
    if summary is None:
        return None
    return json.dumps([summary.last_at.isoformat(), summary.channel, summary.direction,
                       summary.title, summary.evidence, summary.interactions,
                       summary.relationship])  # fmt: skip


@dataclass
class _Contact:
    ids: set[int] = field(default_factory=set)
    days: set[int] = field(default_factory=set)
    sources: set[str] = field(default_factory=set)
    latest: tuple[Any, ...] = (-1, -1)
    mutual: bool = False

    def summary(self, person: str) -> ContactSummary | None:
        if not self.ids:
            return None
        at, _, channel, direction, title, evidence = self.latest
        return ContactSummary(person, datetime.fromtimestamp(at, UTC), channel, direction, title,
                              evidence, len(self.ids), self.mutual)  # fmt: skip


# Every interaction with a person, through the identities it names or directly: the titles
# and evidence are looked up for each person's latest only.
_CONTACT = """
    SELECT idn.person_id, i.id, i.at, i.channel, i.direction, i.source, i.counts
      FROM parties p
      JOIN identities idn ON idn.kind = p.kind AND idn.value = p.value
      JOIN interactions i ON i.id = p.interaction_id
    UNION ALL
    SELECT person_id, id, at, channel, direction, source, counts
      FROM interactions WHERE person_id IS NOT NULL"""


def _aggregate(db: sqlite3.Connection) -> dict[str, _Contact]:
    """One pass over every interaction with a person: last counted contact, how many, on which
    days, from which sources, and whether any of it makes a relationship."""
    found: dict[str, _Contact] = {}
    mutual = {(channel, direction) for channel in Channel for direction in (*Direction, None)
              if is_relationship(channel, direction)}  # fmt: skip
    for person, row_id, at, channel, direction, source, counts in db.execute(_CONTACT):
        contact = found.get(person)
        if contact is None:
            contact = found[person] = _Contact()
        contact.sources.add(source)
        if not counts or row_id in contact.ids:
            continue
        contact.ids.add(row_id)
        contact.days.add(at // 86400)
        if (at, row_id) > contact.latest[:2]:
            contact.latest = (at, row_id, channel, direction)
        if not contact.mutual and (channel, direction) in mutual:
            contact.mutual = True
    latest = [contact.latest[1] for contact in found.values() if contact.ids]
    texts: dict[int, tuple[str, str]] = {}
    for start in range(0, len(latest), 500):
        chunk = latest[start : start + 500]
        marks = ",".join("?" * len(chunk))
        query = f"SELECT id, title, evidence FROM interactions WHERE id IN ({marks})"
        texts.update((row, (title, evidence)) for row, title, evidence in db.execute(query, chunk))
    for contact in found.values():
        if contact.ids:
            contact.latest = contact.latest[:4] + texts[contact.latest[1]]
    return found


def _refresh(store: Store) -> None:
    """Rebuild the per-person contact table after imports; reading it is then cheap."""
    if store.meta("contact") == "fresh":
        return
    found = _aggregate(store.db)
    with store.transaction():
        store.db.execute("DELETE FROM contact")
        store.db.executemany(
            "INSERT INTO contact VALUES (?, ?, ?, ?)",
            [
                (person, _summary_json(contact.summary(person)),
                 json.dumps(sorted(contact.days)), json.dumps(sorted(contact.sources)))
                for person, contact in found.items()
            ],
        )  # fmt: skip
        store.set_meta("contact", "fresh")


def contact_summaries(store: Store) -> dict[str, ContactSummary]:
    """Per person: the latest counted contact, how many there were, whether it is mutual."""
    _refresh(store)
    rows = store.db.execute("SELECT person_id, summary FROM contact WHERE summary IS NOT NULL")
    summaries = {}
    for person, text in rows:
        at, channel, direction, title, evidence, total, mutual = json.loads(text)
        summaries[person] = ContactSummary(
            person, datetime.fromisoformat(at), channel, direction, title, evidence, total,
            mutual,
        )  # fmt: skip
    return summaries


def contact_days(store: Store) -> dict[str, list[date]]:
    """Distinct UTC days of counted contact per person, for learning their rhythm."""
    _refresh(store)
    rows = store.db.execute("SELECT person_id, days FROM contact")
    return {p: [date.fromordinal(719163 + d) for d in json.loads(days)] for p, days in rows}


def person_sources(store: Store) -> dict[str, set[str]]:
    _refresh(store)
    rows = store.db.execute("SELECT person_id, sources FROM contact")
    return {person: set(json.loads(sources)) for person, sources in rows}


def recent_interactions(
    db: sqlite3.Connection, person_id: str, limit: int = 10
) -> list[sqlite3.Row]:
    db.row_factory = sqlite3.Row
    try:
        return db.execute(
            """SELECT DISTINCT i.* FROM interactions i
                WHERE i.person_id = ?1 OR i.id IN (
                    SELECT p.interaction_id FROM parties p JOIN identities idn
                        ON idn.kind = p.kind AND idn.value = p.value
                     WHERE idn.person_id = ?1)
                ORDER BY i.at DESC LIMIT ?2""",
            (person_id, limit),
        ).fetchall()
    finally:
        db.row_factory = None
