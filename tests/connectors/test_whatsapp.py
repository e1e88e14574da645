from __future__ import annotations

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
from connectors.whatsapp import WhatsAppOptions, WhatsAppSource, chat_title
from syncd.model import Channel, Direction, Identity, IdentityKind, Interaction, Party

DATA = Path(__file__).parent / "data" / "whatsapp"
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
MY_PHONE = Identity(IdentityKind.PHONE, "+31623456789")
NNBSP = "\u202f"
LRM = "\u200e"
# iOS writes unsaved numbers between left-to-right embedding marks.
LRE, PDF = "\u202a", "\u202c"


def source(path: Path, me: tuple[Identity, ...] = (MY_PHONE,)) -> WhatsAppSource:
    context = Context("whatsapp", ZoneInfo("Europe/Amsterdam"), NOW, me=me)
    return WhatsAppSource(WhatsAppOptions(type="whatsapp", path=path), context)


def scan(
    path: Path, cursor: Cursor | None = None, me: tuple[Identity, ...] = (MY_PHONE,)
) -> list[Interaction]:
    return list(source(path, me).scan(cursor or Cursor()))


def utc(
    month: int, day: int, hour: int, minute: int, second: int = 0, year: int = 2024
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def name(value: str) -> Party:
    return Party(Identity(IdentityKind.NAME, value), name=value)


def phone(value: str) -> Party:
    return Party(Identity(IdentityKind.PHONE, value), name=value)


def write_chat(folder: Path, file_name: str, *lines: str, encoding: str = "utf-8") -> Path:
    path = folder / file_name
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def write_zip(folder: Path, file_name: str, *lines: str) -> Path:
    path = folder / file_name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("_chat.txt", "\r\n".join(lines) + "\r\n")
    return path


def line_of(path: Path, text: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(number for number, line in enumerate(lines, start=1) if text in line)


def summary(messages: list[Interaction]) -> list[tuple[datetime, Direction | None]]:
    return [(ix.at, ix.direction) for ix in messages]


# --- the formats real exports are in ------------------------------------------------------------


def test_dutch_android_chat_one_interaction_per_message_in_utc() -> None:
    path = DATA / "WhatsApp-chat met Jan de Vries.txt"
    messages = scan(path)
    jan = name("Jan de Vries")
    out, into = Direction.OUT, Direction.IN
    # 7 messages: the encryption notice is none, the "Groet, / Sanne" lines continue a message,
    # and "<Media weggelaten>" and a deleted message are messages. Amsterdam is UTC+1 in winter.
    assert summary(messages) == [
        (utc(1, 3, 8, 12), into),
        (utc(1, 3, 8, 30), out),
        (utc(1, 3, 8, 30), out),
        (utc(1, 15, 13, 2), into),
        (utc(1, 15, 13, 2), into),
        (utc(1, 15, 13, 5), out),
        (utc(2, 28, 19, 47), into),
    ]
    first, mine = messages[0], messages[1]
    assert (first.sender, first.recipients) == (jan, ())
    assert (mine.sender, mine.recipients) == (None, (jan,))
    assert {ix.channel for ix in messages} == {Channel.WHATSAPP}
    assert {ix.source for ix in messages} == {"whatsapp"}
    assert {ix.signals.get("chat") for ix in messages} == {None}
    assert first.evidence == f"{path}:{line_of(path, 'offerte')}"
    assert messages[2].evidence == f"{path}:{line_of(path, '<Media weggelaten>')}"


def test_messages_in_the_same_minute_get_their_own_ref() -> None:
    refs = [ix.ref for ix in scan(DATA / "WhatsApp-chat met Jan de Vries.txt")]
    assert refs[:5] == [
        "Jan de Vries/2024-01-03T09:12:00/in/1",
        "Jan de Vries/2024-01-03T09:30:00/out/1",
        "Jan de Vries/2024-01-03T09:30:00/out/2",
        "Jan de Vries/2024-01-15T14:02:00/in/1",
        "Jan de Vries/2024-01-15T14:02:00/in/2",
    ]
    assert len(set(refs)) == len(refs)


def test_english_android_chat_with_comma_and_summer_time() -> None:
    messages = scan(DATA / "WhatsApp Chat with Emma Clarke.txt")
    # A line with no timestamp ("Emma Clarke: this line only looks ...") continues a message.
    assert summary(messages) == [
        (utc(3, 17, 9, 3), Direction.IN),
        (utc(3, 17, 9, 5), Direction.OUT),
        (utc(3, 17, 9, 6), Direction.IN),
        (utc(4, 2, 12, 0), Direction.IN),  # UTC+2 from 31 March
        (utc(4, 2, 12, 1), Direction.OUT),
    ]


def test_ios_zip_with_brackets_seconds_and_attachments() -> None:
    path = DATA / "WhatsApp Chat - Mark Jansen.zip"
    messages = scan(path)
    # The notice iOS writes under the partner's name is not a message; an attachment, "image
    # omitted" and a missed call are.
    assert summary(messages) == [
        (utc(1, 2, 9, 11, 12), Direction.IN),
        (utc(1, 2, 9, 11, 40), Direction.IN),
        (utc(1, 2, 9, 15, 3), Direction.OUT),
        (utc(1, 2, 9, 15, 30), Direction.OUT),
        (utc(1, 14, 17, 20), Direction.IN),
    ]
    assert messages[0].sender == name("Mark Jansen")
    assert messages[2].recipients == (name("Mark Jansen"),)
    assert messages[0].ref == "Mark Jansen/2024-01-02T10:11:12/in/1"
    assert messages[0].evidence == f"{path}/_chat.txt:2"


def test_us_chat_with_narrow_space_before_am_pm_is_month_first() -> None:
    messages = scan(DATA / "WhatsApp Chat with Mike Brown.txt")
    assert summary(messages) == [
        (utc(1, 5, 20, 41), Direction.IN),
        (utc(1, 5, 22, 58), Direction.OUT),
        (utc(1, 5, 23, 3), Direction.IN),  # 12:03 AM on 6 January
        (utc(1, 13, 11, 30), Direction.IN),  # 12:30 PM
    ]


def test_spanish_chat_with_p_m_and_two_digit_years() -> None:
    messages = scan(DATA / "Chat de WhatsApp con Lucía Fernández.txt")
    assert summary(messages) == [
        (utc(12, 24, 20, 41, year=2023), Direction.IN),
        (utc(12, 24, 21, 2, year=2023), Direction.OUT),
        (utc(1, 2, 7, 15), Direction.IN),
    ]
    assert messages[0].sender == name("Lucía Fernández")


@pytest.mark.parametrize(
    ("file_name", "title"),
    [
        ("WhatsApp Chat with Jan de Vries.txt", "Jan de Vries"),
        ("WhatsApp-chat met Jan de Vries.txt", "Jan de Vries"),
        ("WhatsApp Chat - Jan de Vries.zip", "Jan de Vries"),
        ("WhatsApp Chat with Jan de Vries (1).txt", "Jan de Vries"),
        ("WhatsApp Chat mit Jürgen Weiß.txt", "Jürgen Weiß"),
        ("Chat de WhatsApp con Lucía.txt", "Lucía"),
        ("WhatsApp Chat with +31 6 1234 5678.txt", "+31 6 1234 5678"),
        ("notes.txt", None),
        ("_chat.txt", None),
    ],
)
def test_the_chat_partner_comes_from_the_file_name(file_name: str, title: str | None) -> None:
    assert chat_title(file_name) == title


# --- who is who ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "file_name",
    [
        "WhatsApp Chat with +31 6 1234 5678.txt",
        "WhatsApp Chat with 06-12345678.txt",
        "WhatsApp Chat with 0031612345678.txt",
    ],
)
def test_a_chat_named_by_a_phone_number_is_with_that_number(
    tmp_path: Path, file_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    shutil.copy(DATA / "WhatsApp Chat with +31 6 1234 5678.txt", tmp_path / file_name)
    messages = scan(tmp_path)
    number = phone(chat_title(file_name) or "")
    # The author is written "+31 6 12345678", differently from the title: still the partner.
    assert [(ix.direction, ix.sender, ix.recipients) for ix in messages] == [
        (Direction.IN, number, ()),
        (Direction.OUT, None, (number,)),
    ]
    assert caplog.messages == []


def test_the_user_is_whoever_is_not_the_partner_whatever_the_export_calls_them(
    tmp_path: Path,
) -> None:
    write_chat(
        tmp_path,
        "WhatsApp Chat with Jan de Vries.txt",
        "12/02/2024, 10:00 - Jij: Hoi Jan",
        "12/02/2024, 10:01 - Jan de Vries: Hoi!",
    )
    assert [ix.direction for ix in scan(tmp_path)] == [Direction.OUT, Direction.IN]


def test_a_chat_only_the_user_wrote_in_is_all_outgoing(tmp_path: Path) -> None:
    write_chat(
        tmp_path,
        "WhatsApp Chat with Jan de Vries.txt",
        "12/02/2024, 10:00 - Sanne Bakker: Hoi Jan, nog iets gehoord?",
        "19/02/2024, 10:00 - Sanne Bakker: ?",
    )
    messages = scan(tmp_path)
    assert [ix.recipients for ix in messages] == [(name("Jan de Vries"),)] * 2
    assert {ix.direction for ix in messages} == {Direction.OUT}


def test_a_lone_author_named_almost_like_the_chat_is_the_partner(tmp_path: Path) -> None:
    write_chat(
        tmp_path,
        "WhatsApp Chat with Jan de Vries.txt",
        "12/02/2024, 10:00 - Jan de Vries (werk): Ben je er morgen?",
    )
    [message] = scan(tmp_path)
    assert (message.direction, message.sender) == (Direction.IN, name("Jan de Vries"))


def test_renamed_contact_the_users_own_number_decides(tmp_path: Path) -> None:
    write_zip(
        tmp_path,
        "WhatsApp Chat - Jan de Vries.zip",
        # How iOS writes numbers; neither is named like the chat.
        f"[12/02/2024, 10:00:00] {LRE}+31 6 23456789{PDF}: Hoi Jan",
        f"[12/02/2024, 10:01:00] {LRE}+31 6 98765432{PDF}: Hoi",
    )
    messages = scan(tmp_path)
    assert [ix.direction for ix in messages] == [Direction.OUT, Direction.IN]
    assert messages[1].sender == name("Jan de Vries")


def test_renamed_contact_without_my_number_takes_the_likest_name_and_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_chat(
        tmp_path,
        "WhatsApp Chat with Jan de Vries.txt",
        "12/02/2024, 10:00 - Sanne: Hoi",
        "12/02/2024, 10:01 - Jan de Vries (werk): Hoi Sanne",
    )
    messages = scan(tmp_path, me=())
    assert [ix.direction for ix in messages] == [Direction.OUT, Direction.IN]
    assert any(
        str(path) in message and "Jan de Vries (werk)" in message for message in caplog.messages
    )


def test_group_chat_names_every_member_and_learns_the_user_from_one_to_one_chats() -> None:
    path = DATA / "WhatsApp Chat with Studio Kerstborrel.txt"
    messages = [ix for ix in scan(DATA) if str(path) in ix.evidence]
    # System lines (created group, added, a subject holding ": ", icon, left) are not messages.
    assert [(ix.direction, ix.sender) for ix in messages] == [
        (Direction.IN, name("Emma Clarke")),
        (Direction.IN, name("Jan de Vries")),
        (Direction.OUT, None),
        (Direction.IN, phone("+31 6 11122233")),
    ]
    assert messages[2].recipients == (
        name("Emma Clarke"),
        name("Jan de Vries"),
        phone("+31 6 11122233"),
    )
    assert {ix.signals["chat"] for ix in messages} == {"group"}


def test_group_chat_alone_warns_that_the_user_is_unknown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shutil.copy(DATA / "WhatsApp Chat with Studio Kerstborrel.txt", tmp_path)
    messages = scan(tmp_path)
    assert {ix.direction for ix in messages} == {Direction.IN}
    assert len(messages) == 4
    assert any("cannot tell which author is you" in message for message in caplog.messages)


def test_ios_group_leaves_out_the_groups_own_lines() -> None:
    # Including a settings change no phrase list knows: iOS writes it under the group's name.
    messages = scan(
        DATA / "WhatsApp Chat - Familie Bakker.zip", Cursor(state={"my_names": ["sannebakker"]})
    )
    assert [(ix.direction, ix.sender) for ix in messages] == [
        (Direction.IN, name("Mama")),
        (Direction.OUT, None),
        (Direction.IN, name("Pieter Bakker")),
    ]
    assert messages[1].recipients == (name("Mama"), name("Pieter Bakker"))
    assert {ix.signals["chat"] for ix in messages} == {"group"}


def test_a_two_person_group_is_still_a_group(tmp_path: Path) -> None:
    write_chat(
        tmp_path,
        "WhatsApp Chat with Borrel.txt",
        '12/02/2024, 09:59 - You created group "Borrel"',
        "12/02/2024, 10:00 - Sanne Bakker: Hoi",
        "12/02/2024, 10:01 - Jan de Vries: Hoi!",
    )
    assert {ix.signals.get("chat") for ix in scan(tmp_path)} == {"group"}


def test_a_message_that_mentions_a_group_event_is_still_a_message(tmp_path: Path) -> None:
    write_chat(
        tmp_path,
        "WhatsApp Chat with Jan de Vries.txt",
        "12/02/2024, 10:00 - Jan de Vries: I left the keys: under the mat",
        "12/02/2024, 10:01 - Sanne Bakker: You added sugar? Messages and calls are end-to-end",
    )
    messages = scan(tmp_path)
    assert [ix.direction for ix in messages] == [Direction.IN, Direction.OUT]
    assert {ix.signals.get("chat") for ix in messages} == {None}


# --- date orders --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        # Nothing decides: US-style ("/" and AM/PM) reads month first ...
        (["1/5/24, 9:41 AM", "2/5/24, 9:41 AM"], [utc(1, 5, 8, 41), utc(2, 5, 8, 41)]),
        # ... anything else day first.
        (["01/05/2024, 09:41", "02/05/2024, 09:41"], [utc(5, 1, 7, 41), utc(5, 2, 7, 41)]),
        # Only day first keeps the dates in order, AM/PM or not.
        (["12/01/24, 9:00 AM", "01/02/24, 9:00 AM"], [utc(1, 12, 8, 0), utc(2, 1, 8, 0)]),
        # Year first, with dots; two-digit years.
        (["2024-03-02 13:00", "2024-03-12 13:00"], [utc(3, 2, 12, 0), utc(3, 12, 12, 0)]),
        (["02.03.24, 13:00", "12.03.24, 13:00"], [utc(3, 2, 12, 0), utc(3, 12, 12, 0)]),
    ],
)
def test_date_order_is_decided_from_the_files_own_dates(
    tmp_path: Path, lines: list[str], expected: list[datetime]
) -> None:
    write_chat(
        tmp_path,
        "WhatsApp Chat with Jan de Vries.txt",
        *(f"{x} - Jan de Vries: hoi" for x in lines),
    )
    assert [ix.at for ix in scan(tmp_path)] == expected


def test_ios_without_comma_and_with_am_pm(tmp_path: Path) -> None:
    write_zip(
        tmp_path,
        "WhatsApp Chat - Jan de Vries.zip",
        f"[2/13/24 12:00:05{NNBSP}AM] Jan de Vries: hi",
        f"[2/13/24 1:00:00{NNBSP}PM] Sanne Bakker: {LRM}sticker omitted",
    )
    assert summary(scan(tmp_path)) == [
        (utc(2, 12, 23, 0, 5), Direction.IN),
        (utc(2, 13, 12, 0), Direction.OUT),
    ]


# --- incremental --------------------------------------------------------------------------------


def test_an_unchanged_file_is_not_read_again(tmp_path: Path) -> None:
    shutil.copy(DATA / "WhatsApp Chat with Emma Clarke.txt", tmp_path)
    cursor = Cursor()
    assert len(scan(tmp_path, cursor)) == 5
    assert scan(tmp_path, cursor) == []
    assert list(cursor.state["files"]) == [str(tmp_path / "WhatsApp Chat with Emma Clarke.txt")]


def test_a_re_export_adds_only_the_new_messages(tmp_path: Path) -> None:
    original = DATA / "WhatsApp Chat with Emma Clarke.txt"
    shutil.copy(original, tmp_path)
    stored: set[str] = set()
    cursor = Cursor(known=stored.__contains__)
    stored.update(ix.ref for ix in scan(tmp_path, cursor))
    # The newer export lands beside the old one, as a browser or phone names it.
    newer = tmp_path / "WhatsApp Chat with Emma Clarke (1).txt"
    newer.write_text(
        original.read_text(encoding="utf-8")
        + "02/04/2024, 14:01 - Emma Clarke: <Media omitted>\n"
        + "20/05/2024, 09:00 - Sanne Bakker: Coffee next week?\n",
        encoding="utf-8",
    )
    os.utime(tmp_path / original.name, ns=(1, 1))  # touched, not changed: read again, nothing new
    fresh = scan(tmp_path, cursor)
    assert [ix.ref for ix in fresh] == [
        "Emma Clarke/2024-04-02T14:01:00/in/1",
        "Emma Clarke/2024-05-20T09:00:00/out/1",
    ]
    assert [ix.evidence for ix in fresh] == [f"{newer}:8", f"{newer}:9"]


def test_a_chat_exported_twice_into_one_folder_counts_once(tmp_path: Path) -> None:
    shutil.copy(DATA / "WhatsApp Chat with Emma Clarke.txt", tmp_path)
    shutil.copy(
        DATA / "WhatsApp Chat with Emma Clarke.txt",
        tmp_path / "WhatsApp Chat with Emma Clarke (1).txt",
    )
    assert len(scan(tmp_path)) == 5


def test_cursor_covers_a_file_only_once_its_messages_are_handed_over(tmp_path: Path) -> None:
    shutil.copy(DATA / "WhatsApp Chat with Emma Clarke.txt", tmp_path)
    cursor = Cursor()
    messages = source(tmp_path).scan(cursor)
    next(messages)
    assert cursor.state["files"] == {}
    list(messages)
    assert len(cursor.state["files"]) == 1


def test_a_file_that_is_gone_leaves_the_cursor(tmp_path: Path) -> None:
    path = shutil.copy(DATA / "WhatsApp Chat with Emma Clarke.txt", tmp_path)
    write_chat(
        tmp_path, "WhatsApp Chat with Jan de Vries.txt", "12/02/2024, 10:00 - Jan de Vries: hoi"
    )
    cursor = Cursor()
    scan(tmp_path, cursor)
    Path(path).unlink()
    scan(tmp_path, cursor)
    assert list(cursor.state["files"]) == [str(tmp_path / "WhatsApp Chat with Jan de Vries.txt")]


# --- bad input ----------------------------------------------------------------------------------


def test_utf16_ios_export_is_decoded(tmp_path: Path) -> None:
    with zipfile.ZipFile(DATA / "WhatsApp Chat - Mark Jansen.zip") as archive:
        text = archive.read("_chat.txt").decode("utf-8")
    folder = tmp_path / "WhatsApp Chat - Mark Jansen"
    folder.mkdir()
    (folder / "_chat.txt").write_bytes(text.encode("utf-16"))
    assert summary(scan(tmp_path)) == summary(scan(DATA / "WhatsApp Chat - Mark Jansen.zip"))


def test_utf16_without_byte_order_mark_is_decoded(tmp_path: Path) -> None:
    source_text = (DATA / "WhatsApp Chat with Emma Clarke.txt").read_text(encoding="utf-8")
    (tmp_path / "WhatsApp Chat with Emma Clarke.txt").write_bytes(source_text.encode("utf-16-le"))
    assert summary(scan(tmp_path)) == summary(scan(DATA / "WhatsApp Chat with Emma Clarke.txt"))


def test_cp1252_file_is_decoded(tmp_path: Path) -> None:
    write_chat(
        tmp_path,
        "WhatsApp Chat with Chloé Dubois.txt",
        "12/02/2024, 10:00 - Chloé Dubois: Ça va?",
        "12/02/2024, 10:05 - Sanne Bakker: Très bien",
        encoding="cp1252",
    )
    messages = scan(tmp_path)
    assert [ix.direction for ix in messages] == [Direction.IN, Direction.OUT]
    assert messages[0].sender == name("Chloé Dubois")


def test_truncated_zip_is_a_warning_naming_it_and_the_rest_is_imported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = (DATA / "WhatsApp Chat - Mark Jansen.zip").read_bytes()
    broken = tmp_path / "WhatsApp Chat - Mark Jansen.zip"
    broken.write_bytes(data[: len(data) // 2])
    shutil.copy(DATA / "WhatsApp Chat with Emma Clarke.txt", tmp_path)
    assert len(scan(tmp_path)) == 5
    assert [m for m in caplog.messages if str(broken) in m and "cannot be unpacked" in m]


def test_a_line_with_an_impossible_date_is_a_warning_with_its_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_chat(
        tmp_path,
        "WhatsApp Chat with Jan de Vries.txt",
        "Jan's chat, exported by hand",
        "12/02/2024, 10:00 - Jan de Vries: hoi",
        "31/02/2024, 10:01 - Sanne Bakker: hoi",
        "13/02/2024, 25:00 - Sanne Bakker: hoi",
        "13/02/2024, 10:00 - Sanne Bakker: hoi",
    )
    assert summary(scan(tmp_path)) == [
        (utc(2, 12, 9, 0), Direction.IN),
        (utc(2, 13, 9, 0), Direction.OUT),
    ]
    assert [m for m in caplog.messages if f"{path}:1:" in m]
    assert [m for m in caplog.messages if f"{path}:3:" in m and "date" in m]
    assert [m for m in caplog.messages if f"{path}:4:" in m and "time" in m]


def test_files_that_are_not_exports_are_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_chat(tmp_path, "notes.txt", "12/02/2024, 10:00 - Jan de Vries: hoi")
    write_chat(tmp_path, "WhatsApp Chat with Jan de Vries.txt", "Dear Jan,", "hoi")
    (tmp_path / "WhatsApp Chat - Piet.zip").write_bytes(b"")
    with zipfile.ZipFile(tmp_path / "WhatsApp Chat - Mark.zip", "w") as archive:
        archive.writestr("photo.jpg", b"\xff\xd8")
    assert scan(tmp_path) == []
    assert len([m for m in caplog.messages if str(tmp_path) in m]) == 4


def test_a_path_that_does_not_exist_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        scan(tmp_path / "missing")


def test_check_says_what_is_wrong(tmp_path: Path) -> None:
    assert "does not exist" in source(tmp_path / "missing").check()[0]
    assert "no WhatsApp export" in source(tmp_path).check()[0]
    shutil.copy(DATA / "WhatsApp Chat with Emma Clarke.txt", tmp_path)
    assert source(tmp_path).check() == []


def test_no_message_text_or_media_name_is_ever_kept() -> None:
    messages = scan(DATA)
    assert len(messages) == 33
    words = ("offerte", "moodboard", "PHOTO", "Invoice", "Feliz", "Media", "omitted", "toetje")
    for ix in messages:
        kept = repr((ix.ref, ix.title, ix.sender, ix.recipients, ix.signals, ix.evidence))
        assert ix.title == ""
        assert not [word for word in words if word in kept.replace(str(DATA), "")]


# --- random and damaged input -------------------------------------------------------------------

FIXTURES = sorted(path for path in DATA.iterdir() if path.suffix == ".txt")
hypothesis_settings = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
any_line = st.one_of(
    st.text(max_size=80),
    st.from_regex(
        r"\[?\d{1,4}[./-]\d{1,2}[./-]\d{1,4},? \d{1,2}[:.]\d{2}(:\d\d)?( ?[AaPp]\.? ?[Mm]\.?)?\]? "
        r"(- )?[^\n:]{0,12}(: .{0,20})?",
        fullmatch=True,
    ),
)


def scan_quietly(path: Path) -> list[Interaction]:
    try:
        return scan(path)
    except SourceError:
        return []


@hypothesis_settings
@given(lines=st.lists(any_line, max_size=30))
def test_random_chat_lines_never_crash(tmp_path: Path, lines: list[str]) -> None:
    path = tmp_path / "WhatsApp Chat with Jan de Vries.txt"
    path.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    for ix in scan_quietly(path):
        assert ix.at.tzinfo is UTC
        assert ix.title == ""


@hypothesis_settings
@given(fixture=st.sampled_from(FIXTURES), data=st.data())
def test_mutated_exports_never_crash(tmp_path: Path, fixture: Path, data: st.DataObject) -> None:
    raw = bytearray(fixture.read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(raw) - 1))
        raw[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    path = tmp_path / fixture.name
    path.write_bytes(bytes(raw[:cut]))
    scan_quietly(path)


@hypothesis_settings
@given(raw=st.binary(max_size=3000), keep=st.integers(0, 3000))
def test_random_and_cut_zips_never_crash(tmp_path: Path, raw: bytes, keep: int) -> None:
    real = (DATA / "WhatsApp Chat - Mark Jansen.zip").read_bytes()
    for data in (raw, real[:keep], real[:keep] + raw):
        path = tmp_path / "WhatsApp Chat - Mark Jansen.zip"
        path.write_bytes(data)
        scan_quietly(path)
