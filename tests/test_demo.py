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
    ("Pieter van der Berg", "clients", "2025-03-06T10:11:38Z", "email", "in", 6, "2025-04-20"),
    ("José Martínez", "freelancers", "2026-08-14T08:08:31Z", "email", "in", 5, "2026-10-13"),
    ("Ruud Kuipers", None, "2026-07-22T12:36:50Z", "email", "in", 4, "2026-10-20"),
    ("Sophie Mulder", "freelancers", "2026-09-10T13:58:37Z", "email", "out", 6, "2026-11-09"),
    ("Mark Jansen", "clients", "2026-09-28T09:19:40Z", "email", "in", 7, "2026-11-12"),
    ("Anne-Marie van 't Hof", "clients", "2026-10-02T08:00:00Z", "meeting", "in", 6, "2026-11-16"),
    ("Fleur van Dijk", "friends", "2026-10-16T22:00:00Z", "meeting", "in", 4, "2026-11-16"),
    ("Lotte de Boer", "friends", "2026-10-20T07:12:20Z", "email", "out", 4, "2026-11-19"),
    ("Thijs Bakker", "family", "2026-11-09T23:40:26Z", "email", "in", 2, "2026-11-24"),
    ("James Whitfield", "friends", "2026-11-03T06:58:14Z", "email", "out", 4, "2026-12-03"),
    ("Ingrid Bakker", "family", "2026-11-21T09:15:31Z", "email", "out", 5, "2026-12-05"),
    ("Noor El Amrani", "friends", "2026-11-16T20:03:52Z", "email", "in", 6, "2026-12-16"),
    ("Jan de Vries", "clients", "2026-11-11T13:00:00Z", "meeting", "in", 10, "2026-12-26"),
    ("Mark Jansen", None, "2026-10-03T08:31:09Z", "email", "out", 2, "2027-01-01"),
    ("Priya Raman", "clients", "2026-11-18T21:56:09Z", "email", "in", 9, "2027-01-02"),
    ("Daan Visser", "freelancers", "2026-11-20T08:30:00Z", "meeting", "out", 49, "2027-01-19"),
    ("Bas Meijer", None, "2026-11-03T13:00:00Z", "meeting", "out", 2, "2027-02-01"),
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
    assert "19 relationships; 9 due; 9 follow-ups written" in output
    assert f"Follow-ups written to {folder / 'followups.ics'}" in output
    for name in ("Hélène Bakker", "Pieter van der Berg", "Lotte de Boer"):
        assert name in output
    assert "Thijs Bakker" not in output  # due tomorrow, not today: the time-zone trap


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


def test_demo_follow_ups_are_spread_over_working_days(demo: tuple[Path, str]) -> None:
    folder, _ = demo
    text = (folder / "followups.ics").read_text()
    assert text.count("BEGIN:VTODO") == 9
    for day in ("20261123", "20261124", "20261125"):
        assert text.count(f"DUE;VALUE=DATE:{day}") == 3
    assert "SUMMARY:Catch up with Hélène Bakker" in text
    assert "nieuwsbrief" not in text
