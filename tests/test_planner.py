from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.planner import (
    HORIZON,
    Candidate,
    Settings,
    Wording,
    description_text,
    plan,
    settings_from,
    summary_text,
    uid_for,
)

MONDAY = date(2024, 6, 3)
WEEKDAYS = frozenset(range(5))


def overdue(person: str, days: int, cadence: int, today: date = MONDAY) -> Candidate:
    return Candidate(person, "20240101", today - timedelta(days=days), cadence)


def first_import(today: date = MONDAY) -> list[Candidate]:
    """300 people, all overdue, their due dates spread over the last 30 days."""
    cadences = [14, 30, 45, 90]
    return [overdue(f"p{n:03}", n % 30, cadences[n % 4], today) for n in range(300)]


def per_day(slots: dict[str, date]) -> Counter[date]:
    return Counter(slots.values())


# --- the first import: 300 people overdue --------------------------------------------------------


def test_a_first_import_fills_the_coming_week_a_few_a_day() -> None:
    result = plan(first_import(), {}, MONDAY, Settings(WEEKDAYS, per_day=3))
    counts = per_day(result.slots)
    # Monday to Friday: the horizon is the coming week, today and the six days after.
    assert sorted(counts) == [MONDAY + timedelta(days=d) for d in (0, 1, 2, 3, 4)]
    assert set(counts.values()) == {3}
    assert result.later == 300 - 15


def test_no_follow_up_on_a_weekend_or_a_day_off() -> None:
    days = frozenset({0, 2, 4})  # Monday, Wednesday, Friday
    result = plan(first_import(), {}, MONDAY, Settings(days, per_day=5))
    assert {day.weekday() for day in result.slots.values()} <= days
    assert all(day >= MONDAY for day in result.slots.values())


def test_nothing_lands_beyond_the_horizon() -> None:
    result = plan(first_import(), {}, MONDAY, Settings(frozenset(range(7)), per_day=10))
    assert max(result.slots.values()) <= MONDAY + HORIZON
    assert len(result.slots) + result.later == 300


def test_on_a_saturday_the_first_follow_ups_are_for_monday() -> None:
    saturday = MONDAY - timedelta(days=2)
    result = plan([overdue("jan", 5, 30, saturday)], {}, saturday, Settings(WEEKDAYS, per_day=3))
    assert result.slots == {"jan": MONDAY}


# --- order ---------------------------------------------------------------------------------------


def test_the_most_overdue_relative_to_their_cadence_go_first() -> None:
    candidates = [
        overdue("monthly-30-days-late", 30, 30),  # 1.0 cadence late
        overdue("weekly-10-days-late", 10, 7),  # 1.4 cadences late
        overdue("quarterly-30-days-late", 30, 90),  # 0.3 cadences late
    ]
    result = plan(candidates, {}, MONDAY, Settings(WEEKDAYS, per_day=1))
    assert result.slots == {
        "weekly-10-days-late": MONDAY,
        "monthly-30-days-late": MONDAY + timedelta(days=1),
        "quarterly-30-days-late": MONDAY + timedelta(days=2),
    }


def test_equally_overdue_the_closer_relationship_goes_first() -> None:
    candidates = [overdue("monthly", 30, 30), overdue("fortnightly", 14, 14)]
    result = plan(candidates, {}, MONDAY, Settings(WEEKDAYS, per_day=1))
    assert result.slots == {"fortnightly": MONDAY, "monthly": MONDAY + timedelta(days=1)}


def test_the_plan_does_not_depend_on_the_order_of_candidates() -> None:
    candidates = first_import()
    forward = plan(candidates, {}, MONDAY, Settings(WEEKDAYS, per_day=3))
    backward = plan(list(reversed(candidates)), {}, MONDAY, Settings(WEEKDAYS, per_day=3))
    assert forward == backward


# --- what was written before ---------------------------------------------------------------------


def test_kept_follow_ups_keep_their_day_and_count_toward_the_cap() -> None:
    kept = {"jan": MONDAY, "piet": MONDAY + timedelta(days=1)}
    candidates = [overdue("jan", 3, 30), overdue("eva", 40, 30), overdue("mark", 20, 30)]
    result = plan(candidates, kept, MONDAY, Settings(WEEKDAYS, per_day=1))
    assert result.slots["jan"] == MONDAY
    assert result.slots["piet"] == MONDAY + timedelta(days=1)
    assert result.slots["eva"] == MONDAY + timedelta(days=2)
    assert result.slots["mark"] == MONDAY + timedelta(days=3)


def test_a_follow_up_the_user_moved_to_a_weekend_stays_there() -> None:
    sunday = MONDAY + timedelta(days=6)
    result = plan([overdue("jan", 3, 30)], {"jan": sunday}, MONDAY, Settings(WEEKDAYS))
    assert result.slots == {"jan": sunday}


def test_someone_not_yet_due_is_not_planned() -> None:
    soon = Candidate("jan", "20240501", MONDAY + timedelta(days=2), 30)
    result = plan([soon], {}, MONDAY, Settings(WEEKDAYS))
    assert result.slots == {}
    assert result.later == 0


def test_lead_writes_a_follow_up_early_for_the_day_it_is_due() -> None:
    soon = Candidate("jan", "20240501", MONDAY + timedelta(days=2), 30)
    too_far = Candidate("eva", "20240501", MONDAY + timedelta(days=5), 30)
    result = plan([soon, too_far], {}, MONDAY, Settings(WEEKDAYS, lead=timedelta(days=3)))
    assert result.slots == {"jan": MONDAY + timedelta(days=2)}
    assert result.later == 0


# --- settings, uids, wording ---------------------------------------------------------------------


def test_weekday_names_from_the_config_become_days() -> None:
    chosen = settings_from(["mon", "wed", "sat"], 2, timedelta(days=1))
    assert chosen == Settings(frozenset({0, 2, 5}), 2, timedelta(days=1))


def test_a_follow_up_uid_is_stable_per_person_and_cycle() -> None:
    assert uid_for("p1a2b3c4d5e6f", "20240501") == uid_for("p1a2b3c4d5e6f", "20240501")
    assert uid_for("p1a2b3c4d5e6f", "20240501") != uid_for("p1a2b3c4d5e6f", "20240612")
    assert uid_for("p1a2b3c4d5e6f", "20240501") != uid_for("p999999999999", "20240501")


JAN = Wording(
    name="Jan de Vries",
    last_when=date(2024, 3, 1),
    last_channel="email",
    last_title="Offerte website",
    cadence_days=45,
    cadence_why="group 'clients' in [cadence.groups]",
    links=("mailto:jan@vries.nl", "tel:+31612345678", "https://www.linkedin.com/in/jan-de-vries"),
)


def test_summary_in_english_and_dutch() -> None:
    assert summary_text(JAN, "en") == "Catch up with Jan de Vries"
    assert summary_text(JAN, "nl") == "Bijpraten met Jan de Vries"


def test_description_in_english_says_last_contact_rhythm_and_how_to_reach() -> None:
    lines = description_text(JAN, "en").splitlines()
    assert lines[0] == "Last contact: 2024-03-01 (email): Offerte website"
    assert lines[1] == "Usual rhythm: every 45 days (group 'clients' in [cadence.groups])."
    assert lines[2] == "Reach Jan de Vries:"
    assert [line.strip() for line in lines[3:]] == list(JAN.links)


def test_description_in_dutch() -> None:
    text = description_text(JAN, "nl")
    assert "Laatste contact: 2024-03-01 (e-mail): Offerte website" in text
    assert "Gebruikelijk ritme: elke 45 dagen" in text
    assert "Jan de Vries bereiken:" in text
    assert "  tel:+31612345678" in text.splitlines()


@pytest.mark.parametrize(
    ("language", "channel", "said"),
    [
        ("en", "meeting", "(meeting)"),
        ("nl", "meeting", "(afspraak)"),
        ("nl", "manual", "(afgevinkt)"),
        ("en", "whatsapp", "(WhatsApp)"),
        ("en", "linkedin", "(LinkedIn)"),
    ],
)
def test_the_last_channel_is_named_in_the_users_language(
    language: str, channel: str, said: str
) -> None:
    wording = Wording("Eva", date(2024, 3, 1), channel, "", 30, "[cadence] default", ())
    first = description_text(wording, language).splitlines()[0]
    assert first.endswith(said)


def test_without_contact_or_links_the_description_says_so() -> None:
    wording = Wording("Eva Smit", None, None, "", 90, "[cadence] default", ())
    assert description_text(wording, "en").splitlines() == [
        "No contact recorded yet.",
        "Usual rhythm: every 90 days ([cadence] default).",
    ]
    assert description_text(wording, "nl").splitlines()[0] == "Nog geen contact vastgelegd."


# --- properties ----------------------------------------------------------------------------------


@st.composite
def situations(draw: st.DrawFn) -> tuple[list[Candidate], dict[str, date], date, Settings]:
    today = draw(st.dates(date(2024, 1, 1), date(2026, 1, 1)))
    people = draw(st.lists(st.text("abcdefgh", min_size=1, max_size=3), unique=True, max_size=40))
    candidates = [
        Candidate(p, "c", today + timedelta(days=draw(st.integers(-400, 30))),
                  draw(st.integers(1, 365)))
        for p in people
    ]  # fmt: skip
    kept_people = draw(st.lists(st.sampled_from(people), unique=True)) if people else []
    kept = {p: today + timedelta(days=draw(st.integers(-5, 10))) for p in kept_people}
    days = draw(st.frozensets(st.integers(0, 6), min_size=1))
    chosen = Settings(days, draw(st.integers(1, 5)), timedelta(days=draw(st.integers(0, 14))))
    return candidates, kept, today, chosen


@settings(max_examples=300)
@given(situations())
def test_the_planner_keeps_its_promises(
    situation: tuple[list[Candidate], dict[str, date], date, Settings],
) -> None:
    candidates, kept, today, chosen = situation
    result = plan(candidates, kept, today, chosen)
    new = {p: day for p, day in result.slots.items() if p not in kept}
    assert {p: result.slots[p] for p in kept} == kept  # kept follow-ups keep their day
    for day, count in per_day(new).items():
        assert count + list(kept.values()).count(day) <= max(chosen.per_day, 1)
    for person, day in new.items():
        assert day >= today  # never before today
        assert day.weekday() in chosen.days  # only working days
        assert day <= today + HORIZON  # only the coming week is written
        due = next(c.due for c in candidates if c.person_id == person)
        assert day >= due  # never before the day they are due
    waiting = [c for c in candidates if c.person_id not in kept and c.due - chosen.lead <= today]
    assert len(new) + result.later == len(waiting)  # everyone due is planned or counted
    assert set(new) <= {c.person_id for c in waiting}
