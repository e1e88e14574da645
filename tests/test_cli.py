"""The commands a user types, end to end on real files: vCard, ICS, Maildir in; an .ics file out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from syncd.cli import main

NOW = "2026-11-23T09:00:00+01:00"  # a Monday

CARDS = """\
BEGIN:VCARD
VERSION:3.0
UID:jan-1
FN:Jan de Vries
N:Vries;Jan;de;;
EMAIL;TYPE=WORK:jan@vrieszonen.nl
EMAIL;TYPE=HOME:jan.devries@gmail.com
TEL;TYPE=CELL:06-12345678
CATEGORIES:Clients
END:VCARD
BEGIN:VCARD
VERSION:3.0
UID:mark-client
FN:Mark Jansen
EMAIL:mark@jansenbouw.nl
CATEGORIES:Clients
END:VCARD
BEGIN:VCARD
VERSION:3.0
UID:mark-neighbour
FN:Mark Jansen
EMAIL:mark.jansen@ziggo.nl
CATEGORIES:Friends
END:VCARD
BEGIN:VCARD
VERSION:3.0
UID:eva-1
FN:Eva Smit
EMAIL:eva@smit.design
CATEGORIES:Freelancers
END:VCARD
"""

CALENDAR = """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//test//EN
BEGIN:VEVENT
UID:coffee-eva@test
DTSTAMP:20261001T080000Z
DTSTART:20261110T090000Z
DTEND:20261110T100000Z
SUMMARY:Coffee with Eva
ORGANIZER;CN=Sanne Bakker:mailto:sanne@bakkerontwerp.nl
ATTENDEE;CN=Eva Smit;PARTSTAT=ACCEPTED:mailto:eva@smit.design
ATTENDEE;CN=Sanne Bakker;PARTSTAT=ACCEPTED:mailto:sanne@bakkerontwerp.nl
END:VEVENT
END:VCALENDAR
"""


def message(sender: str, to: str, date: str, subject: str, mid: str, extra: str = "") -> str:
    return (
        f"Return-Path: <{sender.split('<')[-1].strip('>')}>\nFrom: {sender}\nTo: {to}\n"
        f"Date: {date}\nMessage-ID: <{mid}>\nSubject: {subject}\n{extra}"
        "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\nThe body is never read.\n"
    )


MAIL = {
    "Sent/cur/1759300000.M1P1.laptop:2,S": message(
        "Sanne Bakker <sanne@bakkerontwerp.nl>", "Jan de Vries <jan@vrieszonen.nl>",
        "Wed, 01 Oct 2026 08:26:40 +0200", "Offerte huisstijl", "offerte-1@bakkerontwerp.nl"),
    "INBOX/cur/1763000000.M2P1.laptop:2,S": message(
        "Recruiter <jobs@talentbureau.nl>", "sanne@bakkerontwerp.nl",
        "Thu, 13 Nov 2026 03:13:20 +0100", "Een mooie kans", "kans-1@talentbureau.nl"),
    "INBOX/cur/1763100000.M3P1.laptop:2,S": message(
        "Design Weekly <news@designweekly.com>", "sanne@bakkerontwerp.nl",
        "Fri, 14 Nov 2026 07:00:00 +0100", "This week in design", "dw-88@designweekly.com",
        "List-Unsubscribe: <https://designweekly.com/unsubscribe>\n"),
    "INBOX/cur/1763200000.M4P1.laptop:2,S": message(
        "Mark Jansen <mark@jansenbouw.nl>", "sanne@bakkerontwerp.nl",
        "Sat, 15 Nov 2026 10:46:40 +0100", "Schets", "schets-1@jansenbouw.nl"),
    "Sent/cur/1763210000.M5P1.laptop:2,S": message(
        "Sanne Bakker <sanne@bakkerontwerp.nl>", "Mark Jansen <mark@jansenbouw.nl>",
        "Sat, 15 Nov 2026 13:33:20 +0100", "Re: Schets", "re-schets-1@bakkerontwerp.nl"),
}  # fmt: skip

CONFIG = """\
[me]
name = "Sanne Bakker"
emails = ["sanne@bakkerontwerp.nl"]
timezone = "Europe/Amsterdam"

[state]
database = "state/syncd.sqlite"

[sources.contacts]
type = "vcard"
path = "contacts.vcf"

[sources.calendar]
type = "ics"
path = "calendar.ics"

[sources.mail]
type = "maildir"
path = "Mail"

[sinks.todo]
type = "ics"
path = "followups.ics"

[cadence]
default = "90d"
learn = false

[cadence.groups]
clients = "45d"
freelancers = "60d"
friends = "30d"
"""


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "contacts.vcf").write_text(CARDS.replace("\n", "\r\n"), encoding="utf-8")
    (tmp_path / "calendar.ics").write_text(CALENDAR.replace("\n", "\r\n"), encoding="utf-8")
    for name, text in MAIL.items():
        path = tmp_path / "Mail" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (tmp_path / "config.toml").write_text(CONFIG, encoding="utf-8")
    return tmp_path


def syncd(home: Path, *args: str, now: str = NOW) -> Result:
    runner = CliRunner(env={"COLUMNS": "200"})
    return runner.invoke(main, ["--config", str(home / "config.toml"), "--now", now, *args])


def contacts(home: Path, *args: str, now: str = NOW) -> dict[str, dict[str, Any]]:
    result = syncd(home, "contacts", "--json", *args, now=now)
    assert result.exit_code == 0, result.output
    people = json.loads(result.output)
    return {f"{p['name']}/{p['groups'][0] if p['groups'] else ''}": p for p in people}


def test_sync_lists_relationships_and_writes_follow_ups(home: Path) -> None:
    result = syncd(home, "sync")
    assert result.exit_code == 0, result.output
    assert "follow-ups written" in result.output
    people = contacts(home)
    assert set(people) == {"Jan de Vries/clients", "Mark Jansen/clients", "Mark Jansen/friends",
                           "Eva Smit/freelancers"}  # fmt: skip
    jan = people["Jan de Vries/clients"]
    assert jan["emails"] == ["jan.devries@gmail.com", "jan@vrieszonen.nl"]
    assert jan["phones"] == ["+31612345678"]
    assert jan["last_contact"] == "2026-10-01T06:26:40Z"
    assert (jan["last_channel"], jan["last_direction"]) == ("email", "out")
    assert (jan["cadence_days"], jan["cadence_source"]) == (45, "group")
    assert jan["due"] == "2026-11-15"
    assert people["Mark Jansen/friends"]["last_contact"] is None  # the neighbour: not the client
    assert people["Mark Jansen/clients"]["interactions"] == 2
    assert people["Eva Smit/freelancers"]["last_channel"] == "meeting"
    expected = {"id", "name", "emails", "phones", "linkedin", "groups", "sources", "last_contact",
                "last_channel", "last_direction", "interactions", "cadence_days",
                "cadence_source", "due", "snoozed_until", "birthday"}  # fmt: skip
    assert expected <= set(jan)
    written = (home / "followups.ics").read_text()
    assert "SUMMARY:Catch up with Jan de Vries" in written
    assert "DUE;VALUE=DATE:20261123" in written
    assert "Offerte huisstijl" in written
    assert "Mark" not in written
    assert "Eva" not in written


def test_a_sender_who_only_wrote_to_me_and_newsletters_are_not_listed(home: Path) -> None:
    syncd(home, "sync")
    names = {p["name"] for p in contacts(home).values()}
    assert "Recruiter" not in names
    assert "Design Weekly" not in names


def test_a_second_sync_with_nothing_new_changes_no_byte(home: Path) -> None:
    syncd(home, "sync")
    target = home / "followups.ics"
    before = (target.read_bytes(), target.stat().st_mtime_ns)
    result = syncd(home, "sync", now="2026-11-23T15:00:00+01:00")
    assert result.exit_code == 0, result.output
    assert "0 follow-ups written" in result.output
    assert (target.read_bytes(), target.stat().st_mtime_ns) == before


def test_completing_the_follow_up_counts_as_contact(home: Path) -> None:
    syncd(home, "sync")
    target = home / "followups.ics"
    text = target.read_text().replace(
        "STATUS:NEEDS-ACTION", "STATUS:COMPLETED\r\nCOMPLETED:20261124T101500Z"
    )
    target.write_text(text)
    result = syncd(home, "sync", now="2026-11-24T12:00:00+01:00")
    assert "1 completed" in result.output
    jan = contacts(home, now="2026-11-24T12:00:00+01:00")["Jan de Vries/clients"]
    assert (jan["last_channel"], jan["last_contact"]) == ("followup", "2026-11-24T10:15:00Z")
    assert jan["due"] == "2027-01-08"


def test_show_gives_identities_with_reasons_and_evidence(home: Path) -> None:
    syncd(home, "sync")
    result = syncd(home, "show", "jan@vrieszonen.nl", "--json")
    assert result.exit_code == 0, result.output
    jan = json.loads(result.output)
    reasons = {i["value"]: i["why"] for i in jan["identities"]}
    assert reasons["+31612345678"].startswith("same card")
    assert jan["recent"][0]["evidence"] == "<offerte-1@bakkerontwerp.nl>"
    assert jan["cadence_why"] == "group 'clients' in [cadence.groups]"
    table = syncd(home, "show", "Jan")
    assert "Offerte huisstijl" in table.output


def test_ambiguous_who_names_the_candidates(home: Path) -> None:
    syncd(home, "sync")
    result = syncd(home, "show", "Mark Jansen")
    assert result.exit_code == 1
    assert "matches more than one person" in result.output


def test_corrections_survive_later_syncs(home: Path) -> None:
    syncd(home, "sync")
    assert syncd(home, "snooze", "Jan de Vries", "2w").exit_code == 0
    result = syncd(home, "sync")
    assert "1 withdrawn" in result.output
    assert "Jan de Vries" not in (home / "followups.ics").read_text()
    assert contacts(home)["Jan de Vries/clients"]["snoozed_until"] == "2026-12-07"
    assert syncd(home, "done", "eva@smit.design", "--at", "2026-11-20T16:00").exit_code == 0
    assert syncd(home, "ignore", "mark.jansen@ziggo.nl").exit_code == 0
    assert syncd(home, "sync").exit_code == 0
    people = contacts(home)
    assert people["Eva Smit/freelancers"]["last_channel"] == "manual"
    assert "Mark Jansen/friends" not in people
    assert people["Jan de Vries/clients"]["snoozed_until"] == "2026-12-07"


def test_merge_and_split_are_kept(home: Path) -> None:
    syncd(home, "sync")
    eva = contacts(home)["Eva Smit/freelancers"]["id"]
    jan = contacts(home)["Jan de Vries/clients"]["id"]
    assert syncd(home, "merge", eva, jan).exit_code == 0
    syncd(home, "sync")
    merged = contacts(home)
    assert merged["Eva Smit/freelancers"]["emails"] == [
        "eva@smit.design", "jan.devries@gmail.com", "jan@vrieszonen.nl"]  # fmt: skip
    assert syncd(home, "split", eva, "jan.devries@gmail.com").exit_code == 0
    syncd(home, "sync")
    after = contacts(home)
    assert after["Eva Smit/freelancers"]["id"] == eva
    assert "jan.devries@gmail.com" not in after["Eva Smit/freelancers"]["emails"]


def test_dry_run_writes_no_follow_up(home: Path) -> None:
    result = syncd(home, "sync", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would write a follow-up for Jan de Vries to todo" in result.output
    assert not (home / "followups.ics").exists()


def test_check_lists_every_problem_with_its_key(home: Path) -> None:
    (home / "config.toml").write_text(
        CONFIG.replace('default = "90d"', 'default = "3 weeks"')
        .replace('path = "Mail"', 'path = "Mail"\ncolour = "blue"')
        .replace('type = "ics"\npath = "followups.ics"', 'type = "caldav-ish"')
    )
    result = syncd(home, "check")
    assert result.exit_code == 1
    lines = [line.strip() for line in result.output.splitlines() if "•" in line]
    assert any(line.startswith("• cadence.default: expected a duration") for line in lines)
    assert any(line.startswith("• sources.mail.colour: unknown key") for line in lines)
    assert any(line.startswith("• sinks.todo.type: unknown sink type") for line in lines)


def test_check_reaches_every_source(home: Path) -> None:
    assert syncd(home, "check").exit_code == 0
    (home / "calendar.ics").unlink()
    result = syncd(home, "check")
    assert result.exit_code == 1
    assert "sources.calendar:" in result.output


def test_init_writes_the_example_and_does_not_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "syncd" / "config.toml"
    runner = CliRunner()
    assert runner.invoke(main, ["--config", str(target), "init"]).exit_code == 0
    assert "[reminders]" in target.read_text()
    again = runner.invoke(main, ["--config", str(target), "init"])
    assert again.exit_code == 1
    assert "--force" in again.output


def test_commands_before_any_sync_say_what_to_do(home: Path) -> None:
    result = syncd(home, "contacts")
    assert result.exit_code == 1
    assert "run `syncd sync` first" in result.output


def test_a_contact_deleted_from_the_address_book_leaves_the_list(home: Path) -> None:
    syncd(home, "sync")
    assert "Mark Jansen/friends" in contacts(home)
    neighbour = CARDS.split("BEGIN:VCARD")[3]
    (home / "contacts.vcf").write_text(CARDS.replace("BEGIN:VCARD" + neighbour, ""))
    assert syncd(home, "sync").exit_code == 0
    people = contacts(home)
    assert "Mark Jansen/friends" not in people
    assert "Mark Jansen/clients" in people


def test_a_follow_up_comes_back_when_the_snooze_ends(home: Path) -> None:
    syncd(home, "sync")
    syncd(home, "snooze", "Jan de Vries", "1w")
    assert "1 withdrawn" in syncd(home, "sync").output
    later = "2026-12-01T09:00:00+01:00"  # a Tuesday, after the snooze
    result = syncd(home, "sync", now=later)
    assert "1 follow-ups written" in result.output
    assert "SUMMARY:Catch up with Jan de Vries" in (home / "followups.ics").read_text()


def test_people_tables_set_cadence_and_ignore_by_name_or_address(home: Path) -> None:
    with (home / "config.toml").open("a") as config:
        config.write('\n[people."Jan de Vries"]\ncadence = "3w"\n'
                     '\n[people."mark.jansen@ziggo.nl"]\nignore = true\n')  # fmt: skip
    syncd(home, "sync")
    people = contacts(home)
    jan = people["Jan de Vries/clients"]
    assert (jan["cadence_days"], jan["cadence_source"]) == (21, "person")
    assert "Mark Jansen/friends" not in people
    assert "Mark Jansen/clients" in people
