"""Follow-ups in the user's calendar: read back what the user did with them, then write what is due.

A follow-up the user completed is a contact; one they deleted is not written again for that cycle;
one they moved keeps its new day; one no longer needed (contact happened first) is withdrawn.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime

from connectors.base import Context, PreconditionFailed, Sink, SinkError, sink_class
from syncd import planner
from syncd.config import Config
from syncd.model import Channel, Direction, FollowUpStatus, Interaction, Reminder, ReminderState
from syncd.people import Relationship
from syncd.report import Summary
from syncd.store import FollowUp, Store

log = logging.getLogger("syncd")
ContextFactory = Callable[[str, Config, datetime], Context]

OPEN, COMPLETED, DISMISSED, WITHDRAWN = "open", "completed", "dismissed", "withdrawn"


def open_sinks(config: Config, now: datetime, context_for: ContextFactory) -> dict[str, Sink]:
    sinks: dict[str, Sink] = {}
    for name, options in config.sinks.items():
        context = context_for(name, config, now)
        sinks[name] = sink_class(options.type)(options, context)  # type: ignore[call-arg]
    return sinks


def cycle_of(person: Relationship, config: Config) -> str | None:
    """The day the person's clock started; a new contact starts a new cycle (and a new UID)."""
    if person.last_contact is None:
        return None
    return person.last_contact.astimezone(config.me.zone).strftime("%Y%m%d")


def _completed(store: Store, followup: FollowUp, state: ReminderState, now: datetime) -> None:
    at = state.completed_at or now
    contact = Interaction(
        source="followup", ref=followup.uid, at=at, channel=Channel.FOLLOWUP,
        title="follow-up completed", evidence=f"{followup.sink}: {followup.uid}",
        direction=Direction.OUT,
    )  # fmt: skip
    store.add_contact(followup.person_id, contact)
    store.save_followup(replace(followup, status=COMPLETED, completed_at=at))


def _apply(store: Store, followup: FollowUp, state: ReminderState, now: datetime) -> str | None:
    if state.status is FollowUpStatus.COMPLETED:
        _completed(store, followup, state, now)
        return "completed"
    if state.status in (FollowUpStatus.DELETED, FollowUpStatus.DECLINED):
        store.save_followup(replace(followup, status=DISMISSED))
        return "dismissed"
    if state.due is not None and state.due != followup.planned:
        store.save_followup(replace(followup, planned=state.due, etag=state.etag))
    return None


# How calendars title the reply when the user declines an invitation: "<prefix> <summary>".
DECLINED = (
    "declined:", "invitation declined:", "geweigerd:", "uitnodiging geweigerd:", "afgewezen:",
    "abgelehnt:", "einladung abgelehnt:", "refusé:", "rechazado:",
)  # fmt: skip


def _declined(store: Store, written: dict[str, FollowUp]) -> list[ReminderState]:
    """Follow-ups the user declined: a reply titled "Declined: Catch up with NAME" in the mail."""
    names = store.persons()
    replies = []
    for title in store.titles_since(min(f.stamp for f in written.values()), DECLINED):
        lowered = title.lower()
        prefix = next((p for p in DECLINED if lowered.startswith(p)), None)
        if prefix:
            replies.append(lowered[len(prefix) :].strip())
    found = []
    for uid, followup in written.items():
        name = names.get(followup.person_id, "")
        summaries = tuple(
            text["summary"].format(name=name).lower() for text in planner.TEXTS.values()
        )
        if any(reply.startswith(summaries) for reply in replies):
            found.append(ReminderState(uid, FollowUpStatus.DECLINED))
    return found


def read_back(store: Store, sinks: dict[str, Sink], now: datetime, summary: Summary) -> None:
    """Ask each sink what became of the open follow-ups syncd wrote there; a declined invitation
    (its reply in the mail) dismisses the follow-up too."""
    for name, sink in list(sinks.items()):
        # Only what surely reached the sink: one recorded but not yet written (no digest: its write
        # failed or was cut short) is written again, never mistaken for one the user deleted.
        written = {f.uid: f for f in store.followups(name) if f.status == OPEN and f.digest}
        if not written:
            continue
        try:
            states = _declined(store, written) + list(sink.read_back(list(written)))
            for state in states:
                followup = written.pop(state.uid, None)
                outcome = _apply(store, followup, state, now) if followup else None
                if outcome:
                    setattr(summary, outcome, getattr(summary, outcome) + 1)
        except SinkError as error:
            log.error("sink %s: %s", name, error)
            summary.sink_errors.append(f"{name}: {error}")
            del sinks[name]


def reminder_for(person: Relationship, cycle: str, day: date, config: Config,
                 stamp: datetime) -> Reminder:  # fmt: skip
    settings = config.reminders
    wording = planner.Wording(
        name=person.name,
        last_when=person.last_contact.astimezone(config.me.zone).date()
        if person.last_contact else None,
        last_channel=person.last_channel, last_title=person.last_title,
        cadence_days=person.cadence.days, cadence_why=person.cadence.why, links=person.links,
    )  # fmt: skip
    start = datetime.combine(day, settings.time, config.me.zone)
    return Reminder(
        uid=planner.uid_for(person.id, cycle), person_id=person.id, person_name=person.name,
        due=day,
        summary=planner.summary_text(wording, settings.language),
        description=planner.description_text(wording, settings.language),
        component=settings.component,
        start=start,
        duration=settings.duration, links=person.links, stamp=stamp,
    )  # fmt: skip


def digest(reminder: Reminder) -> str:
    return hashlib.sha256(repr(reminder).encode()).hexdigest()[:16]


def _candidates(
    people: list[Relationship], config: Config, today: date
) -> dict[str, planner.Candidate]:
    """Everyone a follow-up should stand for now: listed, due by today (+ lead), not snoozed."""
    found = {}
    for person in people:
        cycle = cycle_of(person, config)
        if (
            person.listed
            and person.due is not None
            and cycle is not None
            and person.due - config.reminders.lead <= today
        ):
            found[person.id] = planner.Candidate(person.id, cycle, person.due, person.cadence.days)
    return found


def _withdraw(store: Store, sink: Sink, followup: FollowUp, summary: Summary) -> None:
    sink.remove(followup.uid)
    store.save_followup(replace(followup, status=WITHDRAWN))
    summary.withdrawn += 1


def _put(store: Store, sink_name: str, sink: Sink | None, reminder: Reminder, cycle: str,
         before: FollowUp | None) -> bool:  # fmt: skip
    """Write a follow-up unless the sink already has exactly this one; True when written."""
    fingerprint = digest(reminder)
    if before is not None and before.status == OPEN and before.digest == fingerprint:
        return False
    if sink is None:
        return True
    sequence = before.sequence + 1 if before is not None else 0
    etag = before.etag if before is not None else None
    record = FollowUp(
        reminder.uid, sink_name, reminder.person_id, cycle, reminder.due, OPEN, etag, None, None,
        reminder.stamp or datetime.now(UTC), sequence,
    )  # fmt: skip
    # Recorded before it is written: a crash in between leaves a follow-up syncd knows of (and
    # writes again, or withdraws), never one in the calendar it has forgotten.
    store.save_followup(record)
    try:
        etag = sink.put(replace(reminder, sequence=sequence, etag=etag))
    except PreconditionFailed:
        # The user changed it in their calendar: theirs stands; read-back reports what it is now.
        log.info("follow-up for %s changed in %s; kept as it is", reminder.person_name, sink_name)
    store.save_followup(replace(record, etag=etag, digest=fingerprint))
    return True


def write_sink(config: Config, store: Store, name: str, sink: Sink | None,
               people: list[Relationship], now: datetime, summary: Summary) -> None:  # fmt: skip
    """Plan and write one sink's follow-ups; with no sink (a dry run) only plan and report."""
    today = now.astimezone(config.me.zone).date()
    candidates = _candidates(people, config, today)
    written = {f.uid: f for f in store.followups(name)}
    current = {planner.uid_for(c.person_id, c.cycle): c for c in candidates.values()}
    # Completed or dismissed by the user: not again this cycle. Withdrawn by syncd (a snooze, say):
    # written again when it is due again.
    done = {current[u].person_id for u, f in written.items()
            if u in current and f.status in (COMPLETED, DISMISSED)}  # fmt: skip
    kept = {current[u].person_id: f.planned for u, f in written.items()
            if u in current and f.status == OPEN}  # fmt: skip
    for uid, followup in written.items():
        if followup.status == OPEN and uid not in current and sink is not None:
            _withdraw(store, sink, followup, summary)
    settings = planner.settings_from(config.reminders.days, config.reminders.per_day,
                                     config.reminders.lead)  # fmt: skip
    waiting = [c for p, c in candidates.items() if p not in done]
    plan = planner.plan(waiting, kept, today, settings)
    summary.later = max(summary.later, plan.later)
    by_id = {p.id: p for p in people}
    for person_id, day in sorted(plan.slots.items(), key=lambda item: (item[1], item[0])):
        candidate = candidates[person_id]
        uid = planner.uid_for(person_id, candidate.cycle)
        before = written.get(uid)
        # Whole seconds: the store keeps seconds, and the stamp is part of what is compared.
        stamp = before.stamp if before else now.astimezone(UTC).replace(microsecond=0)
        reminder = reminder_for(by_id[person_id], candidate.cycle, day, config, stamp)
        if _put(store, name, sink, reminder, candidate.cycle, before):
            summary.written.append((by_id[person_id].name, name))


def write(config: Config, store: Store, sinks: dict[str, Sink], people: list[Relationship],
          now: datetime, summary: Summary, *, dry_run: bool = False) -> None:  # fmt: skip
    for name in config.sinks:
        sink = sinks.get(name)
        if sink is None and not dry_run:
            continue  # it failed on read-back; its follow-ups stay pending
        try:
            write_sink(config, store, name, sink, people, now, summary)
        except SinkError as error:
            log.error("sink %s: %s", name, error)
            summary.sink_errors.append(f"{name}: {error}")
