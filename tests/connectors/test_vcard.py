from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from unittest.mock import ANY
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import Context, Cursor, SourceError
from connectors.vcard import VCardOptions, VCardSource
from syncd.model import Card, Identity, IdentityKind

DATA = Path(__file__).parent / "data" / "vcard"


def source(path: Path) -> VCardSource:
    context = Context("book", ZoneInfo("Europe/Amsterdam"), datetime(2024, 6, 1, tzinfo=UTC))
    return VCardSource(VCardOptions(type="vcard", path=path), context)


def scan(path: Path, cursor: Cursor | None = None) -> list[Card]:
    return list(source(path).scan(cursor or Cursor()))


def by_name(cards: list[Card]) -> dict[str, Card]:
    return {card.name: card for card in cards}


def email(value: str) -> Identity:
    return Identity(IdentityKind.EMAIL, value)


def phone(value: str) -> Identity:
    return Identity(IdentityKind.PHONE, value)


def linkedin(value: str) -> Identity:
    return Identity(IdentityKind.LINKEDIN, value)


def write_card(folder: Path, *lines: str, name: str = "card.vcf") -> Path:
    path = folder / name
    body = ["BEGIN:VCARD", "VERSION:3.0", *lines, "END:VCARD", ""]
    path.write_text("\r\n".join(body), encoding="utf-8", newline="")
    return path


# --- the formats real exporters write ----------------------------------------------------------


def test_android_21_quoted_printable_and_bare_types(caplog: pytest.LogCaptureFixture) -> None:
    cards = by_name(scan(DATA / "android-2.1.vcf"))

    soren = cards["Søren Østergaard"]
    assert soren.identities == (
        phone("+45 20 12 34 56"),
        phone("+45-33-12-34-56"),
        email("soren@oestergaard.dk"),
    )
    # The ORG value continues over a soft line break, in the middle of a UTF-8 sequence.
    assert soren.organisation == (
        "Københavns Tegnestue for Landskabsarkitektur og Bæredygtigt Byggeri"
    )
    assert soren.birthday == "1979-02-28"
    assert cards["Chloé Dubois"].identities[1] == email("chloe.dubois@atelier-fleur.fr")
    assert set(cards) == {"Søren Østergaard", "Piet Bakker", "Chloé Dubois"}
    assert caplog.messages == []


def test_outlook_21_file_in_windows_1252() -> None:
    [card] = scan(DATA / "outlook-2.1.vcf")

    assert card.name == "Anne-Marie van 't Hof"
    assert card.organisation == "Hof & Zoon Café"
    assert card.birthday == "1980-04-12"
    assert card.identities == (
        phone("+31 (0)20 123 4567"),
        phone("+31 6 2345 6789"),
        email("am@hofenzoon.nl"),
    )


def test_google_export_with_bom_folds_and_labelled_items(caplog: pytest.LogCaptureFixture) -> None:
    jan, helene, nameless = scan(DATA / "google-3.0.vcf")

    assert jan.name == "Jan de Vries"
    assert jan.identities == (
        email("jan.devries@devries-advies.nl"),
        email("Jan.deVries@gmail.com"),
        phone("06-12345678"),
        email("jan@vrieszonen.nl"),
        linkedin("https://www.linkedin.com/in/jan-de-vries-4b2a1"),
    )
    assert jan.groups == ("clients",)  # Google's own "myContacts" is not a group of yours
    assert jan.organisation == "De Vries Advies"
    # Folded at 75 octets, one fold inside "è": still one UTF-8 name.
    assert helene.name == (
        "Hélène Marie-Anne-Lefèvre-Dubois de la Tour d'Auvergne Saint-Rémy-lès-Chevreuse"
    )
    assert helene.groups[-2:] == ("old colleagues from rotterdam", "clients")
    assert nameless.name == ""
    assert nameless.identities == (email("info@drukkerij-zwart.nl"),)
    assert caplog.messages == []


def test_apple_export_social_profiles_and_year_less_birthday() -> None:
    chloe, soren = scan(DATA / "apple-3.0.vcf")

    assert chloe.birthday == "--04-12"
    assert chloe.organisation == "Atelier Fleur"
    assert chloe.identities[2:] == (
        linkedin("https://www.linkedin.com/in/chloedubois"),
        linkedin("http://www.linkedin.com/in/chloedubois"),
    )
    # x-user= carries the profile when the value is Apple's own x-apple: handle.
    assert soren.identities == (
        email("soren@oestergaard.dk"),
        linkedin("https://www.linkedin.com/in/soren-ostergaard"),
    )
    assert soren.birthday == "1979-02-28"


def test_vcard4_tel_uris_impp_and_categories() -> None:
    [card] = scan(DATA / "nextcloud-4.0.vcf")

    assert card.identities == (
        phone("+31-6-1234-5678"),
        phone("+31-20-123-4567"),
        email("annemarie@hofenzoon.nl"),
        linkedin("https://www.linkedin.com/in/amvanthof"),
    )
    assert card.birthday == "--04-12"
    assert card.groups == ("clients", "family")


def test_names_assembled_from_n_keep_dutch_prefixes() -> None:
    names = [card.name for card in scan(DATA / "names-3.0.vcf")]

    assert names == [
        "Jan de Vries",  # N:Vries;Jan;;de;
        "Jan de Vries",  # N:de Vries;Jan;;;
        "Anne-Marie van 't Hof",  # N:Hof;Anne-Marie;van 't;;
        "Pieter Berg",  # N:Berg;Pieter;;Dr.; -- a title is not part of the name
        "John Philip Paul Stevenson",
        "Bakkerij Visser",  # only ORG
    ]


def test_utf16_file_with_bom(tmp_path: Path) -> None:
    text = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Søren Østergaard\r\nEND:VCARD\r\n"
    (tmp_path / "windows.vcf").write_bytes(text.encode("utf-16"))

    assert [card.name for card in scan(tmp_path)] == ["Søren Østergaard"]


def test_concatenated_exports_with_a_bom_each(tmp_path: Path) -> None:
    google = (DATA / "google-3.0.vcf").read_bytes()
    (tmp_path / "all.vcf").write_bytes(google + google)

    assert [card.name for card in scan(tmp_path)][3:] == ["Jan de Vries", ANY, ""]


# --- fields ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "birthday"),
    [
        ("BDAY:19800412", "1980-04-12"),
        ("BDAY;VALUE=date:1980-04-12", "1980-04-12"),
        ("BDAY:1980-04-12T00:00:00Z", "1980-04-12"),
        ("BDAY:--0412", "--04-12"),
        ("BDAY:--04-12", "--04-12"),
        ("BDAY;X-APPLE-OMIT-YEAR=1604:1604-04-12", "--04-12"),
        ("BDAY:1604-04-12", "--04-12"),
        ("BDAY;X-APPLE-OMIT-YEAR=1900:1900-01-05", "--01-05"),
        ("BDAY:--0229", "--02-29"),
        ("BDAY:", None),
    ],
)
def test_birthday_forms(tmp_path: Path, line: str, birthday: str | None) -> None:
    [card] = scan(write_card(tmp_path, "FN:Jan de Vries", line))

    assert card.birthday == birthday


@pytest.mark.parametrize(
    "line", ["BDAY:1980-02-30", "BDAY;VALUE=text:circa 1800", "BDAY:12/04/1980"]
)
def test_unreadable_birthday_is_ignored_with_warning(
    tmp_path: Path, line: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_card(tmp_path, "FN:Jan de Vries", "EMAIL:jan@example.nl", line)

    [card] = scan(path)

    assert card.birthday is None
    assert card.identities == (email("jan@example.nl"),)
    value = line.split(":", 1)[1]
    assert caplog.messages == [f"book: {path}:5: BDAY {value!r} is not a date; birthday ignored"]


def test_ref_is_uid_else_file_and_position(tmp_path: Path) -> None:
    write_card(tmp_path, "UID:urn:uuid:1234", "FN:With Uid", name="a.vcf")
    sub = tmp_path / "family"
    sub.mkdir()
    two = "BEGIN:VCARD\nFN:First\nEND:VCARD\nBEGIN:VCARD\nFN:Second\nEND:VCARD\n"
    (sub / "b.vcf").write_text(two, encoding="utf-8")

    cards = scan(tmp_path)

    assert [(card.ref, card.evidence) for card in cards] == [
        ("urn:uuid:1234", f"{tmp_path / 'a.vcf'}:1"),
        ("family/b.vcf#1", f"{sub / 'b.vcf'}:1"),
        ("family/b.vcf#2", f"{sub / 'b.vcf'}:4"),
    ]
    assert {card.source for card in cards} == {"book"}
    # Pointing at the file itself: the ref names the file.
    assert scan(sub / "b.vcf")[0].ref == "b.vcf#1"


def test_junk_identities_are_dropped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_card(
        tmp_path,
        "FN:Jan de Vries",
        "EMAIL: <jan@example.nl> ",
        "EMAIL:not an address",
        "EMAIL:",
        "TEL:  --  ",
        "TEL;TYPE=cell: 06 1234 5678 ",
        "URL:https://example.org/jan",
        "URL:https://nl.linkedin.com/in/jandevries/",
    )

    [card] = scan(path)

    assert card.identities == (
        email("jan@example.nl"),
        phone("06 1234 5678"),
        linkedin("https://nl.linkedin.com/in/jandevries/"),
    )
    assert [message.split(": ", 2)[1] for message in caplog.messages] == [
        f"{path}:5",
        f"{path}:7",
    ]


# --- broken input ------------------------------------------------------------------------------


def test_broken_cards_are_reported_by_line_and_the_rest_imports(
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = DATA / "broken-3.0.vcf"
    cards = scan(path)

    assert [card.name for card in cards] == ["Good One", "Lower Case", "Bad Encoding"]
    assert [message.split(": ", 2)[1:] for message in caplog.messages] == [
        [f"{path}:6", "card has no END:VCARD before the next BEGIN:VCARD; skipped"],
        [f"{path}:13", "1 line(s) in this card are not vCard properties; ignored"],
        [f"{path}:15", "BDAY 'next spring' is not a date; birthday ignored"],
        [f"{path}:17", "text outside BEGIN:VCARD..END:VCARD; ignored"],
        [f"{path}:21", "FN value cannot be decoded; ignored"],
        [f"{path}:24", "card has no END:VCARD; skipped"],
    ]


def test_soft_break_at_the_end_of_a_card_does_not_swallow_end(tmp_path: Path) -> None:
    text = (
        "BEGIN:VCARD\r\nVERSION:2.1\r\nFN:Piet Bakker\r\n"
        "NOTE;ENCODING=QUOTED-PRINTABLE:Bel na de zomer=\r\nEND:VCARD\r\n"
        "BEGIN:VCARD\r\nVERSION:2.1\r\nFN:Jan de Vries\r\nEND:VCARD\r\n"
    )
    (tmp_path / "a.vcf").write_text(text, encoding="ascii", newline="")

    assert [card.name for card in scan(tmp_path)] == ["Piet Bakker", "Jan de Vries"]


def test_unreadable_file_in_a_folder_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    write_card(tmp_path, "FN:Readable", name="a.vcf")
    locked = write_card(tmp_path, "FN:Locked", name="b.vcf")
    read_bytes = Path.read_bytes

    def refuse_locked(path: Path) -> bytes:
        if path == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", refuse_locked)
    cursor = Cursor()

    assert [card.name for card in scan(tmp_path, cursor)] == ["Readable"]
    assert caplog.messages == [
        f"book: {locked}: cannot read this file: Permission denied; its cards were not imported"
    ]
    # Not marked as read: once readable, the next scan imports it.
    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    assert [card.name for card in scan(tmp_path, cursor)] == ["Locked"]


def test_unreadable_single_file_is_a_source_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_card(tmp_path, "FN:Locked")

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)

    with pytest.raises(SourceError, match=r"cannot read .*card\.vcf: Permission denied"):
        scan(path)


def test_missing_path_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        scan(tmp_path / "contacts")


def test_check_says_what_is_wrong(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert source(DATA).check() == []
    assert source(DATA / "google-3.0.vcf").check() == []
    [missing] = source(tmp_path / "nope").check()
    assert "nope does not exist" in missing
    assert source(tmp_path).check() == [f"{tmp_path} holds no .vcf files"]
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    assert source(DATA).check() == [f"cannot read {DATA}: permission denied"]


# --- incremental scans -------------------------------------------------------------------------


@pytest.fixture
def book(tmp_path: Path) -> Path:
    """A vdir as vdirsyncer keeps it: one folder per address book, a hidden status folder."""
    for folder, fixture in [("default", "google-3.0.vcf"), ("work", "apple-3.0.vcf")]:
        (tmp_path / folder).mkdir()
        shutil.copy(DATA / fixture, tmp_path / folder / fixture)
    (tmp_path / ".status").mkdir()
    shutil.copy(DATA / "outlook-2.1.vcf", tmp_path / ".status" / "stale.vcf")
    return tmp_path


def test_vdir_reads_every_address_book(book: Path) -> None:
    names = [card.name for card in scan(book)]

    assert names == ["Jan de Vries", names[1], "", "Chloé Dubois", "Søren Østergaard"]


def test_second_scan_yields_nothing(book: Path) -> None:
    cursor = Cursor()
    assert len(scan(book, cursor)) == 5
    # The engine stores the state as JSON.
    cursor.state = json.loads(json.dumps(cursor.state))

    assert scan(book, cursor) == []


def test_state_records_mtime_and_size_per_file(book: Path) -> None:
    cursor = Cursor()
    scan(book, cursor)

    file = book / "work" / "apple-3.0.vcf"
    stat = file.stat()
    entry = cursor.state["files"][str(file)]
    assert entry[:2] == [stat.st_mtime_ns, stat.st_size]
    assert len(entry[2]) == 2  # the refs of the two cards in the file
    assert len(cursor.state["files"]) == 2


def test_touched_file_is_read_again_alone(book: Path) -> None:
    cursor = Cursor()
    scan(book, cursor)
    file = book / "work" / "apple-3.0.vcf"
    later = file.stat().st_mtime_ns + 2_000_000_000
    os.utime(file, ns=(later, later))

    assert [card.name for card in scan(book, cursor)] == ["Chloé Dubois", "Søren Østergaard"]


def test_changed_file_is_read_again(book: Path) -> None:
    cursor = Cursor()
    scan(book, cursor)
    file = book / "default" / "google-3.0.vcf"
    stat = file.stat()
    file.write_bytes(file.read_bytes().replace(b"Jan de Vries", b"Jan de Vries-Bakker"))
    os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime, other size

    names = [card.name for card in scan(book, cursor)]

    assert names[0] == "Jan de Vries-Bakker"
    assert len(names) == 3  # that file's cards, not the other address book's


def test_state_covers_only_what_was_yielded(tmp_path: Path) -> None:
    (tmp_path / "two.vcf").write_text(
        "BEGIN:VCARD\nFN:First\nEND:VCARD\nBEGIN:VCARD\nFN:Second\nEND:VCARD\n", encoding="utf-8"
    )
    cursor = Cursor()
    cards = source(tmp_path).scan(cursor)

    next(cards)
    assert cursor.state["files"] == {}
    next(cards)
    assert list(cursor.state["files"]) == [str(tmp_path / "two.vcf")]


def test_file_without_cards_is_marked_read_and_deleted_file_forgotten(tmp_path: Path) -> None:
    empty = tmp_path / "empty.vcf"
    empty.write_text("not a vcard\n", encoding="utf-8")
    write_card(tmp_path, "FN:Kept", name="kept.vcf")
    cursor = Cursor()
    scan(tmp_path, cursor)
    assert str(empty) in cursor.state["files"]

    empty.unlink()
    scan(tmp_path, cursor)

    assert list(cursor.state["files"]) == [str(tmp_path / "kept.vcf")]


# --- nothing but warnings, whatever the input --------------------------------------------------

FIXTURES = sorted(DATA.glob("*.vcf"))
hypothesis_settings = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def scan_bytes(folder: Path, raw: bytes) -> Iterator[Card]:
    path = folder / "fuzz.vcf"
    path.write_bytes(raw)
    for card in source(path).scan(Cursor()):
        assert isinstance(card, Card)
        assert card.ref
        assert card.evidence.startswith(f"{path}:")
        yield card


vcard_lines = st.sampled_from(
    [
        "BEGIN:VCARD",
        "END:VCARD",
        "VERSION:2.1",
        "FN:Jan de Vries",
        "N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=C3=98st=",
        "EMAIL;TYPE=INTERNET:jan@example.nl",
        "TEL;VALUE=uri:tel:+31-6-1234-5678",
        'X-SOCIALPROFILE;type=linkedin;x-user="a:b":x-apple:a',
        "BDAY;X-APPLE-OMIT-YEAR=1604:1604-02-30",
        "FN;ENCODING=b:@@@",
        "CATEGORIES:a\\,b,,c\\",
        " folded",
    ]
)


@hypothesis_settings
@given(raw=st.binary(max_size=2000))
def test_random_bytes_never_raise(tmp_path: Path, raw: bytes) -> None:
    list(scan_bytes(tmp_path, raw))


@hypothesis_settings
@given(lines=st.lists(st.one_of(vcard_lines, st.text(max_size=80)), max_size=40))
def test_random_vcard_like_text_never_raises(tmp_path: Path, lines: list[str]) -> None:
    list(scan_bytes(tmp_path, "\r\n".join(lines).encode("utf-8", errors="surrogatepass")))


@hypothesis_settings
@given(fixture=st.sampled_from(FIXTURES), data=st.data())
def test_mutated_fixtures_never_raise(tmp_path: Path, fixture: Path, data: st.DataObject) -> None:
    lines = fixture.read_bytes().split(b"\n")
    for _ in range(data.draw(st.integers(1, 5))):
        at = data.draw(st.integers(0, len(lines) - 1))
        action = data.draw(st.sampled_from(["drop", "duplicate", "garble"]))
        if action == "drop" and len(lines) > 1:
            del lines[at]
        elif action == "duplicate":
            lines.insert(at, lines[at])
        else:
            lines[at] = data.draw(st.binary(max_size=80))
    list(scan_bytes(tmp_path, b"\n".join(lines)))


@hypothesis_settings
@given(data=st.data())
def test_garbling_one_card_keeps_the_others(tmp_path: Path, data: st.DataObject) -> None:
    lines = (DATA / "android-2.1.vcf").read_bytes().split(b"\r\n")
    # The middle card is lines 13 (BEGIN) to 22 (END); indexes 13..20 are the lines inside it.
    at = data.draw(st.integers(13, 20))
    lines[at] = data.draw(st.binary(max_size=80) | st.text(max_size=80).map(str.encode))

    names = {card.name for card in scan_bytes(tmp_path, b"\r\n".join(lines))}

    assert {"Søren Østergaard", "Chloé Dubois"} <= names


def _card(uid: str, name: str) -> str:
    return f"BEGIN:VCARD\nVERSION:3.0\nUID:{uid}\nFN:{name}\nEMAIL:{uid}@example.nl\nEND:VCARD\n"


def test_a_deleted_card_is_withdrawn(tmp_path: Path) -> None:
    book = tmp_path / "book.vcf"
    book.write_text(_card("jan", "Jan de Vries") + _card("eva", "Eva Smit"))
    cursor = Cursor()
    assert [c.ref for c in scan(book, cursor)] == ["jan", "eva"]
    book.write_text(_card("jan", "Jan de Vries") + "\n")  # Eva deleted, the size changes
    found = scan(book, cursor)
    assert [(c.ref, c.identities) for c in found] == [("jan", (email("jan@example.nl"),)),
                                                      ("eva", ())]  # fmt: skip
    assert scan(book, cursor) == []  # withdrawn once


def test_a_card_that_moves_to_another_file_is_not_withdrawn(tmp_path: Path) -> None:
    (tmp_path / "a.vcf").write_text(_card("jan", "Jan de Vries"))
    (tmp_path / "b.vcf").write_text(_card("eva", "Eva Smit"))
    cursor = Cursor()
    scan(tmp_path, cursor)
    (tmp_path / "a.vcf").unlink()
    (tmp_path / "b.vcf").write_text(_card("eva", "Eva Smit") + _card("jan", "Jan de Vries"))
    found = scan(tmp_path, cursor)
    assert all(card.identities for card in found)
    (tmp_path / "b.vcf").unlink()
    assert sorted(c.ref for c in scan(tmp_path, cursor) if not c.identities) == ["eva", "jan"]
