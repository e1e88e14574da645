"""How often to be in touch with someone, and when they are next due."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import pairwise
from statistics import median
from zoneinfo import ZoneInfo

# A learned rhythm needs this many distinct days of contact; fewer say nothing about a habit.
MIN_CONTACT_DAYS = 5
# Only the recent gaps describe the relationship as it is now.
RECENT_GAPS = 20
# Due a little after the usual gap, not on the day the habit says.
SLACK = 1.5
LEARNED_BOUNDS = (7, 365)


@dataclass(frozen=True)
class Cadence:
    days: int
    source: str  # person | group | learned | default
    why: str


def learn(contact_days: Iterable[date]) -> int | None:
    """The usual number of days between contacts, with some slack; None without enough history."""
    days = sorted(set(contact_days))
    if len(days) < MIN_CONTACT_DAYS:
        return None
    gaps = [(later - earlier).days for earlier, later in pairwise(days)]
    usual = median(gaps[-RECENT_GAPS:]) * SLACK
    low, high = LEARNED_BOUNDS
    return int(min(max(round(usual), low), high))


def choose(
    *,
    person: timedelta | None,
    groups: Iterable[str],
    group_cadences: Mapping[str, timedelta],
    learned: int | None,
    default: timedelta,
) -> Cadence:
    """Own setting, else their closest group's, else the learned rhythm, else default."""
    if person is not None:
        return Cadence(person.days, "person", "set for this person in [people]")
    chosen = [(group_cadences[g].days, g) for g in groups if g in group_cadences]
    if chosen:
        days, group = min(chosen)
        return Cadence(days, "group", f"group {group!r} in [cadence.groups]")
    if learned is not None:
        return Cadence(learned, "learned", "learned from how often you have been in touch")
    return Cadence(default.days, "default", "[cadence] default")


def due_date(
    last_contact: datetime | None, cadence_days: int, zone: ZoneInfo, snoozed_until: date | None
) -> date | None:
    """The day, in the user's time zone, when last contact + cadence falls (later if snoozed)."""
    if last_contact is None:
        return None
    due = (last_contact.astimezone(zone) + timedelta(days=cadence_days)).date()
    if snoozed_until is not None and snoozed_until > due:
        return snoozed_until
    return due
