"""Joining people across address book, LinkedIn and WhatsApp, on real export files, with traps."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from syncd.cli import main

NOW = "2026-11-23T09:00:00+01:00"

CARDS = """\
BEGIN:VCARD
VERSION:3.0
FN:Jan de Vries
EMAIL:jan@vrieszonen.nl
X-SOCIALPROFILE;type=linkedin:http://nl.linkedin.com/in/Jan-de-Vries-4b2a1/
END:VCARD
BEGIN:VCARD
VERSION:3.0
FN:André Lefèvre
TEL:+33 6 12 34 56 78
END:VCARD
BEGIN:VCARD
VERSION:3.0
FN:Mark Jansen
EMAIL:mark@jansenbouw.nl
END:VCARD
BEGIN:VCARD
VERSION:3.0
FN:Mark Jansen
EMAIL:mark.jansen@ziggo.nl
END:VCARD
BEGIN:VCARD
VERSION:3.0
FN:Eva Smit
TEL:06-12345678
END:VCARD
"""

CONNECTIONS = """\
Notes:
"When exporting your connection data, you may notice that some of the email addresses are missing."

First Name,Last Name,URL,Email Address,Company,Position,Connected On
Jan,de Vries,https://www.linkedin.com/in/jan-de-vries-4b2a1,,Vries & Zonen,Eigenaar,09 Sep 2026
Andre,Lefevre,https://www.linkedin.com/in/andr%C3%A9-lef%C3%A8vre,,Atelier,Architecte,14 Mar 2026
Mark,Jansen,https://www.linkedin.com/in/markjansen,,Jansen Bouw,Directeur,01 Oct 2026
Tom,Bakker,https://www.linkedin.com/in/tombakker,tom@werving.nl,Werving,Recruiter,30 Nov 2025
"""

MESSAGES = """\
CONVERSATION ID,CONVERSATION TITLE,FROM,SENDER PROFILE URL,TO,RECIPIENT PROFILE URLS,DATE,SUBJECT,\
CONTENT,FOLDER,ATTACHMENTS,IS MESSAGE DRAFT
c-1,,Sanne Bakker,https://www.linkedin.com/in/sannebakker,André Lefèvre,\
https://www.linkedin.com/in/andré-lefèvre,2026-11-02 10:00:00 UTC,,"Bonjour!",INBOX,,No
"""

CHATS = {
    "WhatsApp-chat met Eva.txt": (
        "14-11-2026 20:15 - Eva: Hoi!\n14-11-2026 20:16 - Sanne: Hoi Eva\n"
    ),
    "WhatsApp Chat with +31 6 1234 5678.txt": (
        "11/15/26, 9:00\u202fAM - +31 6 1234 5678: Are you coming?\n"
        "11/15/26, 9:05\u202fAM - Sanne Bakker: Yes!\n"
    ),
    "WhatsApp Chat with Andre Lefevre.txt": (
        "16/11/2026, 10:00 - Andre Lefevre: Merci pour hier\n"
        "16/11/2026, 10:01 - Sanne Bakker: Avec plaisir\n"
    ),
}

CONFIG = """\
[me]
emails = ["sanne@bakkerontwerp.nl"]
phones = ["+31 6 2345 6789"]
linkedin = "https://www.linkedin.com/in/sannebakker"
timezone = "Europe/Amsterdam"

[state]
database = "syncd.sqlite"

[sources.contacts]
type = "vcard"
path = "contacts.vcf"

[sources.linkedin]
type = "linkedin"
path = "LinkedIn"

[sources.whatsapp]
type = "whatsapp"
path = "WhatsApp"
"""


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    home = tmp_path_factory.mktemp("sources")
    (home / "contacts.vcf").write_text(CARDS)
    (home / "LinkedIn").mkdir()
    (home / "LinkedIn" / "Connections.csv").write_text(CONNECTIONS)
    (home / "LinkedIn" / "messages.csv").write_text(MESSAGES)
    (home / "WhatsApp").mkdir()
    for name, text in CHATS.items():
        (home / "WhatsApp" / name).write_text(text)
    (home / "config.toml").write_text(CONFIG)
    runner = CliRunner()
    base = ["--config", str(home / "config.toml"), "--now", NOW]
    assert runner.invoke(main, [*base, "sync"]).exit_code == 0
    listing = json.loads(runner.invoke(main, [*base, "contacts", "--json"]).output)
    by_name: dict[str, list[dict[str, Any]]] = {}
    for person in listing:
        by_name.setdefault(person["name"], []).append(person)
    return by_name


def test_a_linkedin_url_in_a_card_joins_the_connection(people: dict[str, Any]) -> None:
    (jan,) = people["Jan de Vries"]
    assert jan["linkedin"] == "https://www.linkedin.com/in/jan-de-vries-4b2a1"
    assert jan["sources"] == ["contacts", "linkedin"]
    assert jan["last_channel"] == "linkedin"


def test_accents_and_url_spellings_join_one_person_across_three_sources(
    people: dict[str, Any],
) -> None:
    (andre,) = people["André Lefèvre"]
    assert andre["sources"] == ["contacts", "linkedin", "whatsapp"]
    assert andre["phones"] == ["+33612345678"]
    assert andre["last_channel"] == "whatsapp"


def test_a_name_two_cards_carry_joins_nothing(people: dict[str, Any]) -> None:
    marks = people["Mark Jansen"]
    assert len(marks) == 2  # the client and the neighbour; the connection joins neither
    assert sorted(m["linkedin"] or "" for m in marks) == ["", ""]


def test_a_first_name_alone_never_joins(people: dict[str, Any]) -> None:
    (eva,) = people["Eva Smit"]
    assert eva["sources"] == ["contacts", "whatsapp"]  # joined by the chat's phone number
    assert eva["last_channel"] == "whatsapp"
    (chat,) = people["Eva"]  # "WhatsApp-chat met Eva": not joined to Eva Smit by a first name
    assert chat["sources"] == ["whatsapp"]


def test_a_connection_alone_is_not_a_relationship(people: dict[str, Any]) -> None:
    assert "Tom Bakker" not in people  # connected, never a word exchanged


def test_connecting_counts_as_contact_once_in_touch(people: dict[str, Any]) -> None:
    (andre,) = people["André Lefèvre"]
    assert andre["interactions"] == 4  # connected, one LinkedIn message, two chat messages
