"""An import's batch on its way to the store: each table's rows as one JSON array, and the SQL
that stores them.

A batch is encoded on the thread that reads the source and stored on the writer thread
(`syncd.writer`): one statement per table over the whole batch lets SQLite do the work without
holding Python's global lock, where binding row by row would keep the two threads waiting on it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from syncd.model import Card, Interaction
from syncd.rules import Verdict


def seconds(moment: datetime) -> int:
    """A moment as the database keeps it: seconds since the epoch."""
    return int(moment.timestamp())


@dataclass(frozen=True)
class Batch:
    """A batch for `Store.write`, each table's rows as one JSON array: made by `encode_batch` on
    the thread that reads the source, stored on another."""

    source: str
    cursor: str = "{}"
    cards: str = "[]"
    interactions: str = "[]"  # [message id, source, ref, at, channel, ..., person id]
    parties: str = "[]"  # [message id, source, ref, kind, value, name]: the interaction's key
    refs: str = "[]"  # [message id, source, ref]


def _json(rows: object) -> str:
    """Rows as JSON for SQLite. SQLite's JSON functions end a string at NUL, and text with lone
    surrogates (a file name that is not UTF-8) cannot be stored: both are replaced (U+FFFD, "?")
    rather than let one odd header cut a key short or stop every later pass."""
    text = json.dumps(rows, separators=(",", ":"))  # ASCII: cheap to hand to SQLite
    # A surrogate escape is how JSON writes an emoji too: only then are the strings looked at.
    if "\\u0000" in text or ("\\ud" in text and not _encodable(rows)):
        text = json.dumps(_cleaned(rows), separators=(",", ":"))
    return text


def _encodable(rows: object) -> bool:
    try:
        json.dumps(rows, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _cleaned(value: object) -> object:
    if isinstance(value, str):
        return value.replace("\0", "\ufffd").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, list | tuple):
        return [_cleaned(item) for item in value]
    return value


# An interaction as a source found it, with the verdict of the rules on it.
Judged = tuple[Interaction, Verdict]


def judged(ix: Interaction) -> Judged:
    """An interaction whose verdict is already in it (a contact syncd records itself)."""
    return ix, Verdict(ix.direction, ix.counterparts, ix.counts, ix.rule)


def encode_interactions(
    found: Iterable[Judged], person_id: str | None = None, source: str = ""
) -> Batch:
    """Interactions as a batch (no cards, no cursor); `person_id` for a contact syncd records."""
    latest: dict[str, Judged] = {}  # a key twice in one batch: the last wins
    refs = []
    for item in found:
        ix = item[0]
        mid = ix.message_id or None
        latest[f"mid:{mid}" if mid else f"ref:{ix.source}\0{ix.ref}"] = item
        refs.append((mid, ix.source, ix.ref))
    rows, parties = [], []
    for ix, (direction, counterparts, counts, rule) in latest.values():
        mid, at = ix.message_id or None, seconds(ix.at)
        rows.append((mid, ix.source, ix.ref, at, ix.channel, direction, ix.title, ix.evidence,
                     int(counts), rule, person_id))  # fmt: skip
        for p in counterparts:
            parties.append((mid, ix.source, ix.ref, p.identity.kind, p.identity.value, p.name))
    return Batch(source, interactions=_json(rows), parties=_json(parties), refs=_json(refs))


def encode_batch(
    source: str, cards: list[Card], interactions: Iterable[Judged], cursor: dict[str, Any]
) -> Batch:  # fmt: skip
    """A batch from one source, with the cursor it reached, ready for `Store.write`."""
    encoded = encode_interactions(interactions, source=source)
    rows = [
        (card.source, card.ref, card.name, _json([str(i) for i in card.identities]),
         _json(list(card.groups)), card.birthday, card.organisation, card.evidence)
        for card in cards
    ]  # fmt: skip
    return replace(encoded, cursor=_json(cursor), cards=_json(rows))


def _field(number: int) -> str:
    return f"json_extract(value, '$[{number}]')"


# An interaction's key, from a JSON row that starts with message id, source and ref: what
# `interactions.key` holds (the message id, so one mail from two sources is stored once).
_KEY = (
    f"CASE WHEN {_field(0)} IS NULL THEN 'ref:' || {_field(1)} || char(0) || {_field(2)}"
    f" ELSE 'mid:' || {_field(0)} END"
)
_ID = f"(SELECT id FROM interactions WHERE key = {_KEY})"
PUT_CARDS = f"""INSERT OR REPLACE INTO cards
    SELECT {", ".join(_field(n) for n in range(8))} FROM json_each(?1)"""
PUT_INTERACTIONS = f"""INSERT INTO interactions
        (key, source, ref, at, channel, direction, title, evidence, counts, rule, person_id)
    SELECT {_KEY}, {", ".join(_field(n) for n in range(1, 11))} FROM json_each(?1) WHERE true
    ON CONFLICT (key) DO UPDATE SET at = excluded.at, direction = excluded.direction,
        title = excluded.title, counts = excluded.counts, rule = excluded.rule"""
PUT_PARTIES = f"""INSERT OR IGNORE INTO parties
    SELECT {_ID}, {_field(3)}, {_field(4)}, {_field(5)} FROM json_each(?1)"""
PUT_REFS = f"""INSERT OR REPLACE INTO refs
    SELECT {_field(1)}, {_field(2)}, {_ID} FROM json_each(?1)"""
