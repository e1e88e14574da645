from __future__ import annotations

import contextlib
import logging
import os
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import Context, Cursor, SourceError
from connectors.linkedin import LinkedInOptions, LinkedInSource
from syncd.model import Card, Channel, Direction, Identity, IdentityKind, Interaction, Party

DATA = Path(__file__).parent / "data" / "linkedin"
ME = Identity(IdentityKind.LINKEDIN, "https://www.linkedin.com/in/sannevisser")
JAN = "https://www.linkedin.com/in/jan-de-vries-4b2a1"
PRIYA = "https://www.linkedin.com/in/priyaraman"
ANDRE_AS_CONNECTION = "https://www.linkedin.com/in/andr%C3%A9-lef%C3%A8vre-8a1b2c"
ANDRE_IN_MESSAGES = "https://www.linkedin.com/in/andré-lefèvre-8a1b2c"
CONTENT_WORDS = (
    "offerte", "tarief", "<p>", "cijfers", "moodboards", "brief", "Premium free", "opdracht van",
    "plaisir", "rencontrée", "koffie", "portfolio!", "brief.pdf",
)  # fmt: skip


def source(path: Path, me: tuple[Identity, ...] = (ME,)) -> LinkedInSource:
    context = Context(
        "linkedin", ZoneInfo("Europe/Amsterdam"), datetime(2024, 6, 1, tzinfo=UTC), me
    )
    return LinkedInSource(LinkedInOptions(type="linkedin", path=path), context)


def scan(path: Path, me: tuple[Identity, ...] = (ME,)) -> list[Card | Interaction]:
    return list(source(path, me).scan(Cursor()))


def cards(items: list[Card | Interaction]) -> dict[str, Card]:
    return {item.name: item for item in items if isinstance(item, Card)}


def interactions(items: list[Card | Interaction]) -> list[Interaction]:
    return [item for item in items if isinstance(item, Interaction)]


def messages(items: list[Card | Interaction]) -> list[Interaction]:
    return [i for i in interactions(items) if not i.ref.startswith("connected:")]


def linkedin(url: str, name: str = "") -> Party:
    return Party(Identity(IdentityKind.LINKEDIN, url), name)


def export_zip(folder: Path, target: Path, *, subfolder: str = "") -> Path:
    """The export as LinkedIn sends it: the CSVs at the root of a deflated zip."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.iterdir()):
            archive.write(file, subfolder + file.name)
    return target


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


class Store:
    """What the engine keeps between scans: the refs it holds and the cursor state."""

    def __init__(self) -> None:
        self.refs: set[str] = set()
        self.state: dict[str, object] = {}

    def scan(self, path: Path) -> list[Card | Interaction]:
        cursor = Cursor(state=self.state, known=self.refs.__contains__)
        found = list(source(path).scan(cursor))
        self.refs.update(item.ref for item in interactions(found))
        self.state = cursor.state
        return found


# --- Connections.csv -------------------------------------------------------------------------


def test_2024_export_connections_are_cards_and_count_once(tmp_path: Path) -> None:
    export = export_zip(DATA / "2024", tmp_path / "Complete_LinkedInDataExport_01-15-2024.zip")
    found = scan(export)

    people = cards(found)
    jan = people["Jan de Vries"]
    assert jan.ref == JAN
    assert jan.identities == (
        Identity(IdentityKind.LINKEDIN, JAN),
        Identity(IdentityKind.EMAIL, "jan@devries-advies.nl"),
    )
    assert jan.organisation == "De Vries Advies"
    # Line 5 is Priya, under the Notes: paragraph, a blank line and the header.
    assert people["Priya Raman"].evidence == f"{export}!Connections.csv:5"
    assert people["André Lefèvre"].ref == "https://www.linkedin.com/in/andré-lefèvre-8a1b2c"
    assert people["André Lefèvre"].identities == (Identity(IdentityKind.LINKEDIN,
                                                           ANDRE_AS_CONNECTION),)  # fmt: skip
    assert people["Tom Bakker"].organisation == "Bakker Werving"

    [connected] = [i for i in interactions(found) if i.ref == f"connected:{JAN}"]
    # 09 Sep 2022, midnight in Amsterdam (summer time).
    assert connected.at == datetime(2022, 9, 8, 22, 0, tzinfo=UTC)
    assert connected.channel is Channel.LINKEDIN
    assert connected.direction is Direction.OUT
    assert connected.sender is None
    assert connected.recipients == (linkedin(JAN, "Jan de Vries"),)
    assert connected.title == "Connected on LinkedIn"
    assert connected.evidence == f"{export}!Connections.csv:7"
    assert len([i for i in interactions(found) if i.ref.startswith("connected:")]) == 4


def test_2018_connections_without_notes_or_urls(tmp_path: Path) -> None:
    found = scan(DATA / "2018")

    people = cards(found)
    assert people["Jan de Vries"].identities == (
        Identity(IdentityKind.EMAIL, "jan@devries-advies.nl"),
    )
    # No URL and no address: the name is what joins her to her 2018 messages.
    assert people["Mieke Jansen"].identities == (Identity(IdentityKind.NAME, "Mieke Jansen"),)
    assert people["Mieke Jansen"].ref == "name:Mieke Jansen"
    connected = {i.ref: i.at for i in interactions(found) if i.ref.startswith("connected:")}
    assert connected == {
        "connected:name:Jan de Vries": datetime(2018, 1, 8, 17, 14, tzinfo=UTC),
        "connected:name:Mieke Jansen": datetime(2017, 12, 23, 8, 2, tzinfo=UTC),
    }


def test_connections_saved_by_a_spreadsheet(caplog: pytest.LogCaptureFixture) -> None:
    """Windows-1252, semicolons, CRLF, `9-Sep-22`, #N/A cells and empty rows."""
    file = DATA / "spreadsheet" / "Connections.csv"
    found = scan(file)

    people = cards(found)
    assert set(people) == {"Søren Østergaard", "Chloé Dubois"}
    assert people["Søren Østergaard"].identities == (
        Identity(IdentityKind.LINKEDIN, "https://www.linkedin.com/in/s%C3%B8ren-%C3%B8stergaard"),
    )
    assert people["Søren Østergaard"].organisation == "Københavns Tegnestue"
    connected = {i.recipients[0].name: i.at for i in interactions(found)}
    assert connected == {
        "Søren Østergaard": datetime(2022, 9, 8, 22, 0, tzinfo=UTC),
        "Chloé Dubois": datetime(2023, 3, 13, 23, 0, tzinfo=UTC),
    }
    assert warnings(caplog) == [
        f"linkedin: {file}:5: not UTF-8; read as Windows-1252",
        f"linkedin: {file}:5: spreadsheet error in Email Address; taken as empty",
        f"linkedin: {file}:6: empty row; skipped",
        f"linkedin: {file}:8: spreadsheet error in First Name, Last Name, Url, Email Address, "
        "Company, Position, Connected On; taken as empty",
        f"linkedin: {file}:8: empty row; skipped",
    ]


def test_connection_without_a_date_keeps_its_card(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    file = tmp_path / "Connections.csv"
    file.write_text(
        "First Name,Last Name,URL,Email Address,Company,Position,Connected On\n"
        "Jan,de Vries,https://www.linkedin.com/in/jan-de-vries-4b2a1,,,,gisteren\n"
        ",,,,,,01 Feb 2024\n"
        "Piet,Bakker,https://www.example.com/piet,,,,01 Feb 2024\n"
    )
    found = scan(file)

    assert [(c.name, c.identities) for c in cards(found).values()] == [
        ("Jan de Vries", (Identity(IdentityKind.LINKEDIN, JAN),)),
        ("Piet Bakker", (Identity(IdentityKind.NAME, "Piet Bakker"),)),
    ]
    assert [i.ref for i in interactions(found)] == ["connected:name:Piet Bakker"]
    assert warnings(caplog) == [
        f"linkedin: {file}:2: Connected On 'gisteren' is not a date; not counted",
        f"linkedin: {file}:3: connection has no name and no profile URL; skipped",
        f"linkedin: {file}:4: URL 'https://www.example.com/piet' is not a LinkedIn profile; "
        "ignored",
    ]


@pytest.mark.parametrize(
    ("written", "connected"),
    [
        ("09 Sep 2022", datetime(2022, 9, 8, 22, 0, tzinfo=UTC)),
        ("9-Sep-22", datetime(2022, 9, 8, 22, 0, tzinfo=UTC)),
        ('"1/8/18, 6:14 PM"', datetime(2018, 1, 8, 17, 14, tzinfo=UTC)),
        ('"1/8/18, 6:14\u202fPM"', datetime(2018, 1, 8, 17, 14, tzinfo=UTC)),
        ("2022-09-09", datetime(2022, 9, 8, 22, 0, tzinfo=UTC)),
    ],
)
def test_connected_on_forms(tmp_path: Path, written: str, connected: datetime) -> None:
    file = tmp_path / "Connections.csv"
    file.write_text(
        "First Name,Last Name,URL,Email Address,Company,Position,Connected On\n"
        f"Jan,de Vries,{JAN},,,,{written}\n"
    )
    assert [i.at for i in interactions(scan(file))] == [connected]


# --- messages.csv ----------------------------------------------------------------------------


def test_2024_messages_directions_drafts_sponsored_and_groups(tmp_path: Path) -> None:
    export = export_zip(DATA / "2024", tmp_path / "Basic_LinkedInDataExport_01-15-2024.zip")
    found = messages(scan(export))

    # The draft (line 2) and the sponsored message are not contact.
    assert [(m.at.date().isoformat(), m.direction, m.sender and m.sender.name) for m in found] == [
        ("2024-01-10", Direction.IN, "Jan de Vries"),
        ("2024-01-09", Direction.OUT, "Sanne Visser"),
        ("2024-01-05", Direction.OUT, "Sanne Visser"),
        ("2024-01-05", Direction.IN, "André Lefèvre"),
        ("2023-11-20", Direction.IN, "Tom Bakker"),
    ]
    reply, asked, group_out, group_in, recruiter = found
    assert reply.at == datetime(2024, 1, 10, 9, 15, 2, tzinfo=UTC)
    assert reply.sender == linkedin(JAN, "Jan de Vries")
    assert reply.evidence == f"{export}!messages.csv:3"
    assert asked.recipients == (linkedin(JAN, "Jan de Vries"),)
    assert asked.evidence == f"{export}!messages.csv:5"
    assert {m.channel for m in found} == {Channel.LINKEDIN}
    # Everyone else in a group conversation is a recipient; the core applies max_attendees.
    assert group_out.recipients == (
        linkedin(ANDRE_IN_MESSAGES, "André Lefèvre"),
        linkedin(PRIYA, "Priya Raman"),
    )
    assert group_in.recipients == (linkedin(PRIYA, "Priya Raman"),)
    assert group_in.title == "Rebranding Atelier Lefèvre"
    assert recruiter.title == "Freelance opdracht UX-onderzoek"
    assert reply.title == "LinkedIn message"
    assert len({m.ref for m in found}) == len(found)


def test_group_recipients_separated_by_semicolons(tmp_path: Path) -> None:
    file = tmp_path / "messages.csv"
    file.write_text(
        "CONVERSATION ID,CONVERSATION TITLE,FROM,SENDER PROFILE URL,TO,RECIPIENT PROFILE URLS,"
        "DATE,SUBJECT,CONTENT,FOLDER,IS MESSAGE DRAFT,IS CONVERSATION DRAFT\n"
        f"c1,Project,Sanne Visser,{ME.value},Jan de Vries; Priya Raman,{JAN};{PRIYA},"
        "2024-03-01 12:00:00 UTC,,hallo,INBOX,No,No\n"
        f'c1,Project,Priya Raman,{PRIYA},"Vries, Jan de, Visser, Sanne",{JAN};{ME.value},'
        "2024-03-01 12:05:00 UTC,,hoi,INBOX,No,No\n"
    )
    sent, received = messages(scan(file))

    assert sent.recipients == (linkedin(JAN, "Jan de Vries"), linkedin(PRIYA, "Priya Raman"))
    # Names with commas in them cannot be told apart: the profiles are what counts.
    assert received.recipients == (linkedin(JAN),)
    assert received.sender == linkedin(PRIYA, "Priya Raman")


def test_message_text_is_never_kept(tmp_path: Path) -> None:
    for layout in ("2024", "2023", "2022", "2018"):
        for item in scan(DATA / layout):
            for word in CONTENT_WORDS:
                assert word not in repr(item), (layout, item)


def test_2023_layout_profile_url_spellings_are_one_profile() -> None:
    """Me as `https://nl.linkedin.com/in/SanneVisser/`, André percent-encoded over http."""
    found = messages(scan(DATA / "2023"))

    assert [m.direction for m in found] == [Direction.IN, Direction.OUT, Direction.IN]
    assert found[1].recipients == (
        linkedin("http://www.linkedin.com/in/andr%C3%A9-lef%C3%A8vre-8a1b2c", "André Lefèvre"),
    )
    assert found[0].recipients == ()  # only me besides André
    assert found[0].ref.endswith("/2023-06-11T15:33:58Z/andré-lefèvre-8a1b2c")


def test_2022_layout_without_me_takes_the_most_frequent_sender(
    caplog: pytest.LogCaptureFixture,
) -> None:
    found = messages(scan(DATA / "2022", me=()))

    assert [(m.direction, m.title) for m in found] == [
        (Direction.OUT, "LinkedIn message"),
        (Direction.IN, "LinkedIn message"),
        (Direction.OUT, "LinkedIn message"),
        (Direction.OUT, "Samenwerking"),
    ]
    # No recipient URLs in this layout: the name, which the core joins to the connection.
    assert found[3].recipients == (
        Party(Identity(IdentityKind.NAME, "Priya Raman"), "Priya Raman"),
    )
    assert found[1].sender == linkedin(JAN, "Jan de Vries")
    assert warnings(caplog) == []


def test_me_missing_from_the_file_is_said_and_the_most_frequent_sender_taken(
    caplog: pytest.LogCaptureFixture,
) -> None:
    other_me = Identity(IdentityKind.LINKEDIN, "https://www.linkedin.com/in/someone-else")
    found = messages(scan(DATA / "2022", me=(other_me,)))

    assert [m.direction for m in found] == [
        Direction.OUT,
        Direction.IN,
        Direction.OUT,
        Direction.OUT,
    ]
    assert warnings(caplog) == [
        f"linkedin: {DATA / '2022' / 'messages.csv'}: [me] linkedin is not in this file; taking "
        "its most frequent sender, https://www.linkedin.com/in/sannevisser"
    ]


def test_2018_messages_with_direction_and_local_times() -> None:
    found = messages(scan(DATA / "2018", me=()))

    incoming, outgoing = found
    assert incoming.direction is Direction.IN
    assert incoming.sender == Party(Identity(IdentityKind.NAME, "Mieke Jansen"), "Mieke Jansen")
    assert incoming.at == datetime(2018, 1, 9, 9, 31, tzinfo=UTC)
    assert incoming.title == "Portfolio"
    assert outgoing.direction is Direction.OUT
    assert outgoing.recipients == (
        Party(Identity(IdentityKind.NAME, "Mieke Jansen"), "Mieke Jansen"),
    )
    assert outgoing.title == "RE: Portfolio"


def test_unpacked_folder_and_nested_zip_read_like_the_zip(tmp_path: Path) -> None:
    flat = export_zip(DATA / "2024", tmp_path / "flat.zip")
    nested = export_zip(DATA / "2024", tmp_path / "nested.zip", subfolder="export/")
    folder = tmp_path / "unpacked"
    shutil.copytree(DATA / "2024", folder / "Complete_LinkedInDataExport_01-15-2024")

    def without_evidence(path: Path) -> list[object]:
        return [(i.ref, getattr(i, "at", None), getattr(i, "direction", None)) for i in scan(path)]

    assert without_evidence(flat) == without_evidence(nested) == without_evidence(folder)
    assert cards(scan(folder))["Jan de Vries"].evidence == (
        f"{folder / 'Complete_LinkedInDataExport_01-15-2024' / 'Connections.csv'}:7"
    )


# --- which export, and reading only what is new ----------------------------------------------


def test_glob_picks_the_export_with_the_newest_date_in_its_name(tmp_path: Path) -> None:
    export_zip(DATA / "2022", tmp_path / "Complete_LinkedInDataExport_12-30-2022.zip")
    new = export_zip(DATA / "2024", tmp_path / "Complete_LinkedInDataExport_01-15-2024.zip")
    os.utime(new, (1_600_000_000, 1_600_000_000))  # older file, newer export

    found = scan(tmp_path / "*LinkedInDataExport*.zip")

    assert {i.evidence.split("!")[0] for i in found} == {str(new)}


def test_glob_without_dates_picks_the_newest_file(tmp_path: Path) -> None:
    first = export_zip(DATA / "2024", tmp_path / "linkedin-a.zip")
    second = export_zip(DATA / "2022", tmp_path / "linkedin-b.zip")
    os.utime(second, (1_600_000_000, 1_600_000_000))

    found = scan(tmp_path / "linkedin-*.zip")

    assert {i.evidence.split("!")[0] for i in found} == {str(first)}


def test_a_newer_export_adds_only_what_is_new(tmp_path: Path) -> None:
    store = Store()
    downloads = tmp_path / "Downloads"
    export_zip(DATA / "2022", downloads / "Basic_LinkedInDataExport_12-30-2022.zip")
    first = store.scan(downloads / "*.zip")
    assert len(messages(first)) == 4
    assert store.scan(downloads / "*.zip") == []  # the same export again: nothing

    later = tmp_path / "later"
    shutil.copytree(DATA / "2022", later)
    with (later / "messages.csv").open("a") as file:
        file.write(
            "2-OWQ4ZTdmNmEtNWI0Yy00ZDNlLTJmMWEtMGI5YzhkN2U2ZjVhXzAxMA==,,Jan de Vries,"
            "https://www.linkedin.com/in/jan-de-vries-4b2a1,Sanne Visser,"
            '2023-01-09 09:00:00 UTC,,"Gelukkig nieuwjaar!",INBOX\n'
        )
    export_zip(later, downloads / "Basic_LinkedInDataExport_01-10-2023.zip")
    second = store.scan(downloads / "*.zip")

    assert [(m.at, m.direction) for m in interactions(second)] == [
        (datetime(2023, 1, 9, 9, 0, tzinfo=UTC), Direction.IN)
    ]


def test_an_interrupted_scan_leaves_the_cursor_where_it_was(tmp_path: Path) -> None:
    cursor = Cursor()
    scanning = source(DATA / "2024").scan(cursor)
    next(scanning)  # and then the pass is interrupted
    assert cursor.state == {}
    assert len(list(source(DATA / "2024").scan(cursor))) == 13
    assert cursor.state != {}


# --- bad input -------------------------------------------------------------------------------


def test_truncated_zip_yields_what_arrived(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    whole = export_zip(DATA / "2024", tmp_path / "whole.zip")
    raw = whole.read_bytes()
    with zipfile.ZipFile(whole) as archive:
        messages_at = archive.getinfo("messages.csv").header_offset
    cut = tmp_path / "Complete_LinkedInDataExport_01-15-2024.zip"
    cut.write_bytes(raw[: messages_at + 700])  # inside messages.csv's compressed data

    found = scan(cut)

    assert set(cards(found)) == {"Priya Raman", "André Lefèvre", "Jan de Vries", "Tom Bakker"}
    assert 1 <= len(messages(found)) < 5
    said = warnings(caplog)
    assert said[0].startswith(f"linkedin: {cut}: damaged or incomplete zip (")
    assert said[1].startswith(f"linkedin: {cut}!messages.csv:")
    assert said[1].endswith(": the file is cut off at this line; the rest was not read")


def test_zip_cut_before_any_file_is_a_source_error(tmp_path: Path) -> None:
    whole = export_zip(DATA / "2024", tmp_path / "whole.zip")
    cut = tmp_path / "export.zip"
    cut.write_bytes(whole.read_bytes()[:20])

    with pytest.raises(SourceError, match=r"damaged or incomplete .*download the export again"):
        scan(cut)
    assert source(cut).check()[0].startswith(f"{cut} is damaged or incomplete")


def test_member_that_fails_to_unpack_is_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    export = export_zip(DATA / "2024", tmp_path / "export.zip")
    raw = bytearray(export.read_bytes())
    with zipfile.ZipFile(export) as archive:
        info = archive.getinfo("messages.csv")
    data_at = info.header_offset + 30 + len(info.filename)
    raw[data_at + 40 : data_at + 80] = bytes(40)  # damage inside the deflated data
    export.write_bytes(bytes(raw))

    found = scan(export)

    assert len(cards(found)) == 4
    assert messages(found) == []
    [said] = warnings(caplog)
    assert said.startswith(f"linkedin: {export}!messages.csv: cannot be unpacked (")


def test_broken_quote_costs_one_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    file = tmp_path / "Connections.csv"
    file.write_text(
        "First Name,Last Name,URL,Email Address,Company,Position,Connected On\n"
        f"Jan,de Vries,{JAN},,De Vries Advies,,09 Sep 2022\n"
        'Piet,"Bakker,https://www.linkedin.com/in/pietbakker,,Bakker BV,,10 Sep 2022\n'
        "Priya,Raman,https://www.linkedin.com/in/priyaraman,,Raman & Co,,02 Jan 2024\n"
        "Tom,Bakker,https://www.linkedin.com/in/tombakker-recruiter,,,,30 Nov 2021\n"
    )
    found = scan(file)

    assert set(cards(found)) == {"Jan de Vries", "Priya Raman", "Tom Bakker"}
    assert warnings(caplog) == [
        f"linkedin: {file}:3: a quote opened on this line is not closed; line skipped"
    ]


def test_not_an_export_is_a_source_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "Invitations.csv").write_text("From,To,Sent At,Message,Direction\n")
    for path in (tmp_path, tmp_path / "notes.txt", tmp_path / "nothing-*.zip", tmp_path / "gone"):
        with pytest.raises(SourceError, match="Get a copy of your data"):
            scan(path)
        assert len(source(path).check()) == 1
    assert source(DATA / "2024").check() == []


def test_a_file_without_a_header_row_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "messages.csv").write_text("hello,world\n")
    (tmp_path / "Connections.csv").write_text(
        "First Name,Last Name,URL,Email Address,Company,Position,Connected On\n"
    )
    assert scan(tmp_path) == []
    where = tmp_path / "messages.csv"
    assert warnings(caplog) == [
        f"linkedin: {where}: no header row with the columns DATE, FROM; not read"
    ]


# --- nothing crashes -------------------------------------------------------------------------

fuzz = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
FILES = [DATA / layout / name for layout in ("2024", "2023", "2022", "2018", "spreadsheet")
         for name in sorted(os.listdir(DATA / layout))]  # fmt: skip


def scan_bytes(tmp_path: Path, name: str, raw: bytes) -> None:
    folder = tmp_path / "fuzz"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    (folder / name).write_bytes(raw)
    with contextlib.suppress(SourceError):
        for item in source(folder).scan(Cursor()):
            assert item.at.tzinfo is UTC if isinstance(item, Interaction) else item.ref


@fuzz
@given(name=st.sampled_from(["Connections.csv", "messages.csv"]), raw=st.binary(max_size=2000))
def test_random_bytes_never_crash(tmp_path: Path, name: str, raw: bytes) -> None:
    scan_bytes(tmp_path, name, raw)


@fuzz
@given(file=st.sampled_from(FILES), data=st.data())
def test_mutated_exports_never_crash(tmp_path: Path, file: Path, data: st.DataObject) -> None:
    raw = bytearray(file.read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(raw)))
        piece = data.draw(st.sampled_from([b'"', b",", b"\n", b"\r", b";", b"\xe9", b"#N/A", b""]))
        cut = data.draw(st.integers(0, 30))
        raw[at : at + cut] = piece
    scan_bytes(tmp_path, file.name, bytes(raw))


@fuzz
@given(cut=st.integers(0, 4000), flips=st.lists(st.integers(0, 4000), max_size=4))
def test_damaged_zips_never_crash(tmp_path: Path, cut: int, flips: list[int]) -> None:
    whole = export_zip(DATA / "2024", tmp_path / "whole.zip")
    raw = bytearray(whole.read_bytes()[:cut])
    for at in flips:
        if at < len(raw):
            raw[at] ^= 0xFF
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(bytes(raw))
    with contextlib.suppress(SourceError):
        list(source(damaged).scan(Cursor()))


def test_a_connection_gone_from_a_newer_export_is_withdrawn(tmp_path: Path) -> None:
    store = Store()
    downloads = tmp_path / "Downloads"
    export_zip(DATA / "2024", downloads / "Basic_LinkedInDataExport_01-05-2024.zip")
    first = cards(store.scan(downloads / "*.zip"))
    assert {"Jan de Vries", "Priya Raman"} <= first.keys()

    later = tmp_path / "later"
    shutil.copytree(DATA / "2024", later)
    sheet = later / "Connections.csv"
    sheet.write_text("".join(line for line in sheet.read_text().splitlines(keepends=True)
                             if "jan-de-vries" not in line))  # fmt: skip
    export_zip(later, downloads / "Basic_LinkedInDataExport_02-05-2024.zip")
    second = store.scan(downloads / "*.zip")

    withdrawn = [card for card in second if isinstance(card, Card) and not card.identities]
    assert [card.ref for card in withdrawn] == [JAN]
    assert cards(second)["Priya Raman"].identities
    assert interactions(second) == []  # connecting with Jan happened; nothing is taken back
    assert store.scan(downloads / "*.zip") == []
