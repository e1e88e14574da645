from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from syncd.cadence import choose, due_date, learn

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
GROUPS = {
    "clients": timedelta(days=45),
    "friends": timedelta(days=30),
    "family": timedelta(days=14),
}


def every(days: int, times: int, start: date = date(2024, 1, 1)) -> list[date]:
    return [start + timedelta(days=days * n) for n in range(times)]


# --- which cadence -------------------------------------------------------------------------------


def test_a_persons_own_cadence_wins_even_over_a_shorter_group() -> None:
    chosen = choose(person=timedelta(weeks=3), groups=["family"], group_cadences=GROUPS,
                    learned=10, default=timedelta(days=90))  # fmt: skip
    assert (chosen.days, chosen.source) == (21, "person")


def test_in_several_groups_the_shortest_cadence_wins() -> None:
    chosen = choose(person=None, groups=["clients", "family", "friends"], group_cadences=GROUPS,
                    learned=10, default=timedelta(days=90))  # fmt: skip
    assert (chosen.days, chosen.source) == (14, "group")
    assert "family" in chosen.why


def test_a_group_without_a_cadence_falls_through_to_the_learned_rhythm() -> None:
    chosen = choose(person=None, groups=["colleagues"], group_cadences=GROUPS, learned=40,
                    default=timedelta(days=90))  # fmt: skip
    assert (chosen.days, chosen.source) == (40, "learned")


def test_without_anything_else_the_default_applies() -> None:
    chosen = choose(person=None, groups=[], group_cadences=GROUPS, learned=None,
                    default=timedelta(days=90))  # fmt: skip
    assert (chosen.days, chosen.source) == (90, "default")


def test_a_group_wins_over_the_learned_rhythm() -> None:
    chosen = choose(person=None, groups=["clients"], group_cadences=GROUPS, learned=10,
                    default=timedelta(days=90))  # fmt: skip
    assert (chosen.days, chosen.source) == (45, "group")


# --- learned rhythm ------------------------------------------------------------------------------


def test_four_days_of_contact_teach_nothing_and_five_do() -> None:
    assert learn(every(30, 4)) is None
    assert learn(every(30, 5)) is not None


def test_many_contacts_on_few_days_teach_nothing() -> None:
    days = every(30, 4) * 10  # ten mails a day, on four days
    assert learn(days) is None


def test_the_learned_rhythm_is_a_little_longer_than_the_usual_gap() -> None:
    assert learn(every(30, 8)) == 45


def test_the_learned_rhythm_follows_the_recent_gaps() -> None:
    old_habit = every(90, 10, date(2018, 1, 1))
    new_habit = every(14, 30, date(2022, 1, 1))
    assert learn(old_habit + new_habit) == 21


def test_the_learned_rhythm_stays_within_a_week_and_a_year() -> None:
    assert learn(every(1, 30)) == 7
    assert learn(every(400, 6)) == 365


@given(st.lists(st.dates(date(2000, 1, 1), date(2030, 1, 1)), max_size=40), st.randoms())
def test_learning_depends_on_the_days_only(days: list[date], rng: object) -> None:
    learned = learn(days)
    shuffled = days * 2
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    assert learn(shuffled) == learned
    assert (learned is None) == (len(set(days)) < 5)
    if learned is not None:
        assert 7 <= learned <= 365


# --- due date ------------------------------------------------------------------------------------


def test_due_is_last_contact_plus_cadence() -> None:
    last = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
    assert due_date(last, 30, AMSTERDAM, None) == date(2024, 3, 31)


def test_due_counts_from_the_day_in_the_users_time_zone() -> None:
    late_evening = datetime(2024, 3, 1, 23, 30, tzinfo=UTC)  # 00:30 on 2 March in Amsterdam
    assert due_date(late_evening, 30, AMSTERDAM, None) == date(2024, 4, 1)
    assert due_date(late_evening, 30, ZoneInfo("UTC"), None) == date(2024, 3, 31)
    assert due_date(late_evening, 30, ZoneInfo("America/New_York"), None) == date(2024, 3, 31)


def test_due_across_a_clock_change_stays_on_the_right_day() -> None:
    last = datetime(2024, 3, 30, 23, 30, tzinfo=UTC)  # 00:30 CET, the night summer time starts
    assert due_date(last, 1, AMSTERDAM, None) == date(2024, 4, 1)


def test_no_contact_means_no_due_date() -> None:
    assert due_date(None, 30, AMSTERDAM, date(2024, 6, 1)) is None


def test_a_snooze_pushes_the_due_date_later() -> None:
    last = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
    assert due_date(last, 30, AMSTERDAM, date(2024, 4, 14)) == date(2024, 4, 14)


def test_a_snooze_never_brings_the_due_date_forward() -> None:
    last = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
    assert due_date(last, 30, AMSTERDAM, date(2024, 3, 10)) == date(2024, 3, 31)


@given(
    st.datetimes(datetime(2000, 1, 1), datetime(2040, 1, 1), timezones=st.just(UTC)),
    st.integers(0, 400),
    st.none() | st.dates(date(2000, 1, 1), date(2041, 1, 1)),
    st.sampled_from(["Europe/Amsterdam", "UTC", "Pacific/Kiritimati", "America/Los_Angeles"]),
)
def test_a_snooze_only_ever_moves_the_day_later(
    last: datetime, cadence: int, snoozed: date | None, zone_name: str
) -> None:
    zone = ZoneInfo(zone_name)
    plain = due_date(last, cadence, zone, None)
    assert plain == last.astimezone(zone).date() + timedelta(days=cadence)
    due = due_date(last, cadence, zone, snoozed)
    assert due is not None
    assert plain is not None
    assert due == max(plain, snoozed or plain)
