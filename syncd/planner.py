"""Which follow-ups to write, for which day, and what they say.

Pure: the engine hands in who is due and what was written before; the planner answers with days.
Most overdue (relative to their cadence) goes first, then the closer relationship; at most `per_day`
follow-ups land on one working day, and only the coming week is written, so a first import that
finds 300 people overdue fills the calendar a few a day instead of flooding it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

# Only the coming week (today and the six days after) is written; follow-ups planned further ahead
# are planned again on a later pass, so someone who becomes due meanwhile can still go first.
HORIZON = timedelta(days=6)
WEEKDAY_NUMBERS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}


@dataclass(frozen=True)
class Candidate:
    """Someone who is (or soon will be) due."""

    person_id: str
    cycle: str  # the day the clock started: a new contact starts a new cycle
    due: date
    cadence_days: int


@dataclass(frozen=True)
class Settings:
    days: frozenset[int] = frozenset({0, 1, 2, 3, 4})  # Monday = 0
    per_day: int = 3
    lead: timedelta = timedelta(0)


@dataclass
class Plan:
    slots: dict[str, date] = field(default_factory=dict)  # person id -> day to write for
    later: int = 0  # due, but planned beyond the horizon; written on a later pass


def working_days(start: date, days: frozenset[int]) -> Iterator[date]:
    if not days:
        raise ValueError("no working days to plan follow-ups on")
    day = start
    while True:
        if day.weekday() in days:
            yield day
        day += timedelta(days=1)


def priority(candidate: Candidate, today: date) -> tuple[float, int, str]:
    """Most overdue relative to the cadence first, then the closer one (shorter cadence)."""
    overdue = (today - candidate.due).days / max(candidate.cadence_days, 1)
    return (-overdue, candidate.cadence_days, candidate.person_id)


def plan(
    candidates: Iterable[Candidate],
    kept: dict[str, date],
    today: date,
    settings: Settings,
) -> Plan:
    """Give every candidate due by `today + lead` a working day, at most `per_day` on one day.

    `kept` holds the days of follow-ups already written (person id -> day); they keep their day and
    take their place in the daily cap.
    """
    taken = Counter(kept.values())
    result = Plan(slots=dict(kept))
    waiting = [c for c in candidates if c.person_id not in kept and c.due - settings.lead <= today]
    horizon = today + HORIZON
    for candidate in sorted(waiting, key=lambda c: priority(c, today)):
        for day in working_days(max(candidate.due, today), settings.days):
            if taken[day] < settings.per_day:
                break
        if day > horizon:
            result.later += 1
            continue
        taken[day] += 1
        result.slots[candidate.person_id] = day
    return result


def settings_from(days: Sequence[str], per_day: int, lead: timedelta) -> Settings:
    return Settings(frozenset(WEEKDAY_NUMBERS[d] for d in days), per_day, lead)


def uid_for(person_id: str, cycle: str) -> str:
    """Stable per person and cycle: rewriting the same follow-up keeps its UID."""
    return f"syncd-{person_id}-{cycle}@syncd"


TEXTS = {
    "en": {
        "summary": "Catch up with {name}",
        "last": "Last contact: {when} ({channel}){title}",
        "never": "No contact recorded yet.",
        "rhythm": "Usual rhythm: every {days} days ({why}).",
        "reach": "Reach {name}:",
    },
    "nl": {
        "summary": "Bijpraten met {name}",
        "last": "Laatste contact: {when} ({channel}){title}",
        "never": "Nog geen contact vastgelegd.",
        "rhythm": "Gebruikelijk ritme: elke {days} dagen ({why}).",
        "reach": "{name} bereiken:",
    },
}
CHANNEL_NAMES = {
    "en": {"email": "email", "meeting": "meeting", "linkedin": "LinkedIn", "whatsapp": "WhatsApp",
           "followup": "follow-up", "manual": "marked done"},
    "nl": {"email": "e-mail", "meeting": "afspraak", "linkedin": "LinkedIn", "whatsapp": "WhatsApp",
           "followup": "follow-up", "manual": "afgevinkt"},
}  # fmt: skip


@dataclass(frozen=True)
class Wording:
    name: str
    last_when: date | None
    last_channel: str | None
    last_title: str
    cadence_days: int
    cadence_why: str
    links: tuple[str, ...]


def summary_text(wording: Wording, language: str) -> str:
    return TEXTS[language]["summary"].format(name=wording.name)


def description_text(wording: Wording, language: str) -> str:
    """Last contact, usual rhythm and ways to reach the person, one per line."""
    text = TEXTS[language]
    lines = []
    if wording.last_when is None:
        lines.append(text["never"])
    else:
        channel = CHANNEL_NAMES[language].get(
            wording.last_channel or "", wording.last_channel or ""
        )
        title = f": {wording.last_title}" if wording.last_title else ""
        lines.append(text["last"].format(when=wording.last_when.isoformat(), channel=channel,
                                         title=title))  # fmt: skip
    lines.append(text["rhythm"].format(days=wording.cadence_days, why=wording.cadence_why))
    if wording.links:
        lines.append(text["reach"].format(name=wording.name))
        lines.extend(f"  {link}" for link in wording.links)
    return "\n".join(lines)
