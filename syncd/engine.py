"""One pass: sources -> store -> resolve -> infer -> plan -> sinks, with read-back of follow-ups.

The engine knows connectors only through `connectors.base`; the CLI and the daemon call `sync`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from functools import lru_cache
from threading import Lock
from typing import NamedTuple

from connectors.base import Context, Cursor, SinkError, Source, SourceError, source_class
from syncd import followups, secrets
from syncd import identity as ids
from syncd.batch import Judged, encode_batch
from syncd.config import Config
from syncd.identity import Corrections, Record
from syncd.model import Card, Channel, Direction, Identity, IdentityKind, Interaction, Party
from syncd.people import relationships
from syncd.report import SourceReport, Summary
from syncd.rules import Judge, verdict
from syncd.store import Store, parse_identity
from syncd.writer import writer

log = logging.getLogger("syncd")
# Items per transaction: a crash loses at most the few batches not stored yet, to be read again
# on the next pass.
BATCH = 5000
# Called after each batch: source name, items so far.
Progress = Callable[[str, int], None]


def my_identities(config: Config) -> frozenset[Identity]:
    region = config.me.phone_region
    mine = [Identity(IdentityKind.EMAIL, e) for e in config.me.emails]
    mine += [Identity(IdentityKind.PHONE, p) for p in config.me.phones]
    if config.me.linkedin:
        mine.append(Identity(IdentityKind.LINKEDIN, config.me.linkedin))
    return frozenset(n for i in mine if (n := ids.normalise(i, region)) is not None)


def _ignored(store: Store) -> frozenset[Identity]:
    """The identities `syncd ignore ADDRESS` named."""
    return frozenset(parse_identity(i) for _, i, _, _ in store.corrections("ignore") if i)


def build_judge(config: Config, store: Store) -> Judge:
    me = my_identities(config)
    ignored = _ignored(store)
    # Mail with syncd's own sending addresses (replies to its invitations) is nobody's contact.
    own = [a for options in config.sinks.values() for a in options.own_addresses()]
    return Judge(
        me=me,
        max_attendees=config.rules.max_attendees,
        ignore=tuple(i.lower() for i in [*config.rules.ignore, *own]),
        automated_senders=tuple(config.rules.automated_senders),
        ignored=ignored,
        whatsapp_groups=config.rules.whatsapp_groups,
    )


def _fingerprint(judge: Judge) -> str:
    """The rules as they judge what is read, but for whom they ignore (see `_ignoring`)."""
    parts = [sorted(map(str, judge.me)), judge.max_attendees, sorted(judge.automated_senders),
             judge.whatsapp_groups]  # fmt: skip
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _ignoring(judge: Judge) -> dict[str, list[str]]:
    return {"identities": sorted(map(str, judge.ignored)), "entries": sorted(judge.ignore)}


def judge_again(config: Config, store: Store) -> Judge:
    """The rules for this pass, and what is stored brought in line with them.

    When [me] or [rules] changed, every source is read again and everything re-judged. When the
    only change is that more people are ignored (`syncd ignore ADDRESS`, an address or domain
    added to [rules] ignore), they are taken out of what is stored instead, without reading
    anything again: on a large mail account that is the difference between a second and a
    re-read of all of it.
    """
    judge = build_judge(config, store)
    fingerprint, ignoring = _fingerprint(judge), _ignoring(judge)
    before = json.loads(store.meta("ignoring") or "null")
    if store.meta("judge") != fingerprint or not _more_of(before, ignoring):
        # Who is no longer ignored gets back what was taken out, also from mail gone from its
        # source since; reading everything again brings back what was read while ignored.
        store.restore_ignored(lambda identity: judge.is_ignored(Party(identity)))
        with store.transaction():
            store.forget_cursors()
            store.set_meta("judge", fingerprint)
            store.set_meta("ignoring", json.dumps(ignoring))
            store.set_meta("resolved", "no")
    elif before != ignoring:
        entries = sorted(set(ignoring["entries"]) - set(before["entries"]))
        store.drop_ignored(
            [
                parse_identity(i)
                for i in sorted(set(ignoring["identities"]) - set(before["identities"]))
            ],
            [entry for entry in entries if not entry.startswith("@")],
            [entry for entry in entries if entry.startswith("@")],
        )
        with store.transaction():
            store.set_meta("ignoring", json.dumps(ignoring))
    return judge


def _more_of(before: object, now: dict[str, list[str]]) -> bool:
    """Whether `now` ignores everything `before` did (and perhaps more)."""
    return isinstance(before, dict) and all(
        isinstance(before.get(key), list) and set(before[key]) <= set(values)
        for key, values in now.items()
    )


@lru_cache(maxsize=8192)
def _party(party: Party, region: str | None) -> Party | None:
    """A party with its identity normalised; cached, as the same people appear again and again."""
    identity = ids.normalise(party.identity, region)
    if identity is None:
        return None
    return Party(identity, party.name, party.partstat, party.cutype)


class _Facts(NamedTuple):
    channel: Channel
    sender: Party | None
    recipients: tuple[Party, ...]
    signals: dict[str, str]
    direction: Direction | None
    rule: str | None


@lru_cache(maxsize=16384)
def _parties(parties: tuple[Party, ...], region: str | None) -> tuple[Party, ...]:
    """Normalised, the unreadable ones left out; cached, as recipient lists recur too."""
    return tuple(p for r in parties if (p := _party(r, region)) is not None)


def judge_found(ix: Interaction, judge: Judge, region: str | None) -> Judged:
    """An interaction as a source found it, with the verdict on its normalised parties."""
    sender = _party(ix.sender, region) if ix.sender else None
    recipients = _parties(ix.recipients, region) if ix.recipients else ()
    facts = _Facts(ix.channel, sender, recipients, ix.signals, ix.direction, ix.rule)
    return ix, verdict(facts, judge)


def prepare_card(card: Card, judge: Judge, region: str | None) -> Card:
    """Normalise a card's identities. A card with one of the user's own is the user's own card:
    none of its identities belong to anyone else."""
    found = [n for i in card.identities if (n := ids.normalise(i, region)) is not None]
    if any(i in judge.me for i in found):
        found = []
    return replace(card, identities=tuple(dict.fromkeys(found)))


def _batches(items: Iterator[Card | Interaction]) -> Iterator[list[Card | Interaction]]:
    batch: list[Card | Interaction] = []
    for item in items:
        batch.append(item)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    yield batch


def _known_refs(store: Store, name: str, lock: Lock) -> Callable[[str], bool]:
    """`cursor.known`, loading the source's refs on the first question only: a pass in which the
    source finds nothing new (most passes) never loads them."""
    known: set[str] | None = None

    def ask(ref: str) -> bool:
        nonlocal known
        if known is None:
            with lock:  # the writer thread may be storing an earlier batch
                known = store.known_refs(name)
        return ref in known

    return ask


def import_source(
    name: str, source: Source, store: Store, judge: Judge, region: str | None,
    progress: Progress | None = None,
) -> int:  # fmt: skip
    """Scan one source into the store, a batch per transaction with the cursor it reached.

    Batches are stored on a writer thread while the source reads on (`syncd.writer`)."""
    cursor = Cursor(state=store.cursor_state(name))
    count = 0
    with writer(store, name) as storing:
        cursor.known = _known_refs(store, name, storing.lock)
        for batch in _batches(source.scan(cursor)):
            cards = [prepare_card(i, judge, region) for i in batch if isinstance(i, Card)]
            found = [judge_found(i, judge, region) for i in batch if isinstance(i, Interaction)]
            storing.put(encode_batch(name, cards, found, cursor.state))
            count += len(batch)
            if progress:
                progress(name, count)
    return count


def _records(store: Store) -> list[Record]:
    records = [Record(frozenset(c.identities), c.name, c.source, True, c.evidence)
               for c in store.cards()]  # fmt: skip
    for identity, name, source in store.seen_names():
        records.append(Record(frozenset([identity]), name, source, False))
    return records


def _corrections(store: Store) -> Corrections:
    merges = tuple(
        (parse_identity(a), parse_identity(b))
        for _, left, right, _ in store.corrections("merge") if left and right
        for a in json.loads(left) for b in json.loads(right)
    )  # fmt: skip
    splits = frozenset(parse_identity(i) for _, i, _, _ in store.corrections("split") if i)
    return Corrections(merges, splits, _ignored(store))


def resolve(store: Store, now: datetime) -> None:
    """Recompute which identities are one person; ids stay as they were where groups persist."""
    result = ids.resolve(_records(store), _corrections(store), store.identities())
    store.save_persons(result.person_of, result.why, result.names, now)
    with store.transaction():
        store.set_meta("resolved", "yes")


def context_for(name: str, config: Config, now: datetime) -> Context:
    """What a connector is told: time zone, clock, the user's identities, and secrets."""
    me = tuple(sorted(my_identities(config)))
    return Context(name, config.me.zone, now, me, lambda options: secrets.resolve(options, name))


def open_source(name: str, config: Config, now: datetime) -> tuple[Source, Context]:
    options = config.sources[name]
    context = context_for(name, config, now)
    return source_class(options.type)(options, context), context  # type: ignore[call-arg]


def import_all(
    config: Config, store: Store, now: datetime, summary: Summary,
    only: str | None = None, progress: Progress | None = None,
) -> None:  # fmt: skip
    region = config.me.phone_region
    judge = judge_again(config, store)
    for name in config.sources:
        if only and name != only:
            continue
        report = SourceReport(name)
        summary.sources.append(report)
        try:
            source, context = open_source(name, config, now)
            report.items = import_source(name, source, store, judge, region, progress)
            report.warnings = context.warnings
        except SourceError as error:
            report.error = str(error)
            log.error("source %s: %s", name, error)
    if store.meta("resolved") != "yes":
        resolve(store, now)


def sync(
    config: Config, store: Store, now: datetime, *, only: str | None = None,
    dry_run: bool = False, progress: Progress | None = None,
) -> Summary:  # fmt: skip
    """One pass. With `dry_run`, sources are read into syncd's own database; no sink is written."""
    summary = Summary()
    import_all(config, store, now, summary, only, progress)
    return plan_and_write(config, store, now, summary, dry_run=dry_run)


def plan_and_write(
    config: Config, store: Store, now: datetime, summary: Summary | None = None, *,
    dry_run: bool = False,
) -> Summary:  # fmt: skip
    """The second half of a pass, without reading sources: read back what the user did with the
    follow-ups, work out who is due, write follow-ups. The daemon runs it once a day."""
    summary = Summary() if summary is None else summary
    if not dry_run and store.meta("resolved") != "yes":
        resolve(store, now)
    sinks = {} if dry_run else followups.open_sinks(config, now, context_for)
    followups.read_back(store, sinks, now, summary)
    people = relationships(store, config)
    summary.relationships = sum(1 for p in people if p.listed)
    today = now.astimezone(config.me.zone).date()
    summary.due = sum(1 for p in people if p.listed and p.due and p.due <= today)
    followups.write(config, store, sinks, people, now, summary, dry_run=dry_run)
    return summary


def check_connectors(config: Config, now: datetime) -> dict[str, list[str]]:
    """For each configured source and sink ("sources.NAME"), what keeps it from working."""
    found: dict[str, list[str]] = {}
    for name in config.sources:
        source, _ = open_source(name, config, now)
        found[f"sources.{name}"] = _checked(source.check)
    for name, sink in followups.open_sinks(config, now, context_for).items():
        found[f"sinks.{name}"] = _checked(sink.check)
    return found


def _checked(check: Callable[[], list[str]]) -> list[str]:
    try:
        return check()
    except (SourceError, SinkError) as error:
        return [str(error)]
