"""`syncd demo`: the bundled sample data gives the story syncd/demo/EXPECTED.md tells."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from syncd.cli import main
from syncd.demo import NOW

# name, first group, last contact (UTC), channel, direction, counted interactions, due
EXPECTED = [
    ("Hélène Bakker", "family", "2025-01-02T09:45:33Z", "email", "out", 2, "2025-01-16"),
    ("Rick Hendriks", None, "2026-05-19T09:05:47Z", "linkedin", "out", 3, "2026-08-17"),
    ("José Martínez", "freelancers", "2026-08-14T08:08:31Z", "email", "in", 8, "2026-10-13"),
    ("Ruud Kuipers", None, "2026-07-22T12:36:50Z", "email", "in", 5, "2026-10-20"),
    ("Sophie Mulder", "freelancers", "2026-09-10T13:58:37Z", "email", "out", 8, "2026-11-09"),
    ("Mark Jansen", "clients", "2026-09-28T09:19:40Z", "email", "in", 9, "2026-11-12"),
    ("Anne-Marie van 't Hof", "clients", "2026-10-02T08:00:00Z", "meeting", "in", 7, "2026-11-16"),
    ("Fleur van Dijk", "friends", "2026-10-16T22:00:00Z", "meeting", "in", 11, "2026-11-16"),
    ("Thijs Bakker", "family", "2026-11-09T23:40:26Z", "email", "in", 3, "2026-11-24"),
    ("James Whitfield", "friends", "2026-11-03T06:58:14Z", "email", "out", 5, "2026-12-03"),
    ("Ingrid Bakker", "family", "2026-11-22T18:40:27Z", "whatsapp", "out", 14, "2026-12-06"),
    ("Noor El Amrani", "friends", "2026-11-16T20:03:52Z", "email", "in", 7, "2026-12-16"),
    ("Lotte de Boer", "friends", "2026-11-20T21:17:00Z", "whatsapp", "in", 20, "2026-12-20"),
    ("Jan de Vries", "clients", "2026-11-11T13:00:00Z", "meeting", "in", 11, "2026-12-26"),
    ("Pieter van der Berg", "clients", "2026-11-16T08:47:12Z", "linkedin", "out", 11, "2026-12-31"),
    ("Mark Jansen", None, "2026-10-03T08:31:09Z", "email", "out", 2, "2027-01-01"),
    ("Priya Raman", "clients", "2026-11-18T21:56:09Z", "email", "in", 12, "2027-01-02"),
    ("Chloé Martin", None, "2026-10-12T07:48:19Z", "linkedin", "out", 3, "2027-01-10"),
    ("Daan Visser", "freelancers", "2026-11-20T08:30:00Z", "meeting", "out", 52, "2027-01-19"),
    ("Bas Meijer", None, "2026-11-03T23:00:00Z", "linkedin", None, 3, "2027-02-02"),
    ("Esther de Wit", None, "2026-11-10T13:05:29Z", "linkedin", "out", 3, "2027-02-08"),
    ("Femke Dijkstra", "freelancers", None, None, None, 0, None),
]  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("demo")
    result = CliRunner(env={"COLUMNS": "200"}).invoke(main, ["demo", "--into", str(folder)])
    assert result.exit_code == 0, result.output
    return folder, result.output


def test_demo_prints_who_is_due_and_where_follow_ups_went(demo: tuple[Path, str]) -> None:
    folder, output = demo
    assert "22 relationships; 8 due; 8 follow-ups written" in output
    assert f"Follow-ups written to {folder / 'followups.ics'}" in output
    for name in ("Hélène Bakker", "Rick Hendriks", "Fleur van Dijk"):
        assert name in output
    assert "Thijs Bakker" not in output  # due tomorrow, not today: the time-zone trap
    assert "Lotte de Boer" not in output  # a WhatsApp chat from Chile last week
    assert "Pieter van der Berg" not in output  # wrote on LinkedIn after 20 months


def test_demo_relationships_match_the_story(demo: tuple[Path, str]) -> None:
    folder, _ = demo
    result = CliRunner().invoke(
        main, ["--config", str(folder / "config.toml"), "--now", NOW, "contacts", "--json"]
    )
    people = json.loads(result.output)
    found = [
        (p["name"], (p["groups"] or [None])[0], p["last_contact"], p["last_channel"],
         p["last_direction"], p["interactions"], p["due"])
        for p in people
    ]  # fmt: skip
    assert found == EXPECTED


def test_demo_knows_lotte_from_mail_linkedin_and_whatsapp_as_one_person(
    demo: tuple[Path, str],
) -> None:
    folder, _ = demo
    result = CliRunner().invoke(
        main, ["--config", str(folder / "config.toml"), "--now", NOW, "contacts", "--json"]
    )
    [lotte] = [p for p in json.loads(result.output) if "Lotte" in p["name"]]
    # Her card (contacts), her mail, her LinkedIn connection (joined by the e-mail address it
    # shares with the card) and the chat named after her (joined by her full name).
    assert {"contacts", "mail", "linkedin", "whatsapp"} <= set(lotte["sources"])
    assert lotte["emails"] == ["lotte.deboer@gmail.com"]
    assert lotte["phones"] == ["+31611935508"]
    assert lotte["linkedin"] == "https://www.linkedin.com/in/lottedeboer"


def test_demo_follow_ups_are_spread_over_working_days(demo: tuple[Path, str]) -> None:
    folder, _ = demo
    text = (folder / "followups.ics").read_text()
    assert text.count("BEGIN:VTODO") == 8
    for day, count in (("20261123", 3), ("20261124", 3), ("20261125", 2)):
        assert text.count(f"DUE;VALUE=DATE:{day}") == count
    assert "SUMMARY:Catch up with Hélène Bakker" in text
    assert "nieuwsbrief" not in text
