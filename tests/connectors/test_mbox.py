from __future__ import annotations

import io
import logging
import mailbox
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import connectors.mbox as mbox
from connectors.base import Context, Cursor, SourceError
from connectors.mbox import MboxOptions, MboxSource, separator_date, split_mbox
from syncd.model import Interaction

DATA = Path(__file__).parent / "data" / "mail"


class Store:
    """What the engine keeps between scans: the refs it holds and the cursor state."""

    def __init__(self) -> None:
        self.refs: set[str] = set()
        self.state: dict[str, object] = {}

    def scan(self, path: Path) -> list[Interaction]:
        cursor = Cursor(state=self.state, known=self.refs.__contains__)
        found = list(source(path).scan(cursor))
        self.refs.update(item.ref for item in found)
        self.state = cursor.state
        return found


def source(path: Path) -> MboxSource:
    context = Context("archive", ZoneInfo("Europe/Amsterdam"), datetime(2024, 6, 1, tzinfo=UTC))
    return MboxSource(MboxOptions(type="mbox", path=path), context)


def scan(path: Path) -> list[Interaction]:
    return list(source(path).scan(Cursor()))


def copy(name: str, tmp_path: Path) -> Path:
    target = tmp_path / Path(name).name
    if (DATA / name).is_dir():
        shutil.copytree(DATA / name, target)
    else:
        shutil.copy(DATA / name, target)
    return target


def line_of(path: Path, text: str) -> int:
    lines = path.read_bytes().split(b"\n")
    return next(number for number, line in enumerate(lines, 1) if line.startswith(text.encode()))


def mail(number: int, *, body: str = "Tot ziens.\n") -> str:
    return (
        f"From sanne@example.nl Sat Mar  9 10:{number:02d}:00 2024\n"
        f"From: Sanne Bakker <sanne@example.nl>\n"
        f"To: client{number}@example.com\n"
        f"Subject: mail {number}\n"
        f"Date: Sat, 9 Mar 2024 11:{number:02d}:00 +0100\n"
        f"Message-ID: <mail-{number}@example.nl>\n"
        f"\n{body}\n"
    )


def ids(found: list[Interaction]) -> list[str | None]:
    return [item.message_id for item in found]


# --- what real mail programs write ------------------------------------------------------------


def test_a_mutt_mbox_with_escaped_and_unescaped_from_lines_in_bodies() -> None:
    path = DATA / "mutt.mbox"
    found = scan(path)
    assert ids(found) == [
        "20240227091458.GA1234@devries.nl",
        "Zd7hVz@example.nl",
        None,  # the bounce
        None,
    ]
    first, reply, bounce, last = found
    assert first.sender is not None
    assert first.sender.name == "Vries, Jan de"
    assert first.evidence == f"{path}:1"
    assert first.ref == "20240227091458.GA1234@devries.nl"
    assert first.at == datetime(2024, 2, 27, 9, 14, 58, tzinfo=UTC)
    assert [party.name for party in reply.recipients] == ["Vries, Jan de", "José García"]
    assert reply.evidence == f"{path}:{line_of(path, 'From sanne@example.nl')}"
    assert bounce.signals == {"auto-submitted": "auto-replied", "return-path": "<>"}
    assert last.recipients == ()
    assert last.title == "no Message-ID, no Date"


def test_without_a_message_id_the_ref_is_the_byte_offset(tmp_path: Path) -> None:
    path = DATA / "mutt.mbox"
    last = scan(path)[-1]
    offset = path.read_bytes().index(b"From pieter@example.com ")
    assert last.ref == f"mutt.mbox:offset:{offset}"


def test_without_a_date_the_from_line_date_is_used() -> None:
    last = scan(DATA / "mutt.mbox")[-1]
    assert last.at == datetime(2024, 3, 1, 16, 30, tzinfo=UTC)


def test_a_thunderbird_profile_folder_reads_every_mbox_and_no_index_file() -> None:
    found = scan(DATA / "thunderbird")
    assert sorted(ids(found)) == [
        "a1b2c3@post.pl",
        "contract-1@example.com",
        "news-2024-03@shop.example",
    ]
    news = next(item for item in found if item.message_id == "news-2024-03@shop.example")
    assert news.title == "Onze aanbiedingen"
    assert news.signals["list-id"] == "Shop nieuws <nieuws.shop.example>"
    contract = next(item for item in found if item.message_id == "contract-1@example.com")
    assert contract.evidence == f"{DATA / 'thunderbird' / 'Inbox.sbd' / 'Clients'}:1"


def test_a_google_takeout_mbox_with_crlf_and_8bit_headers() -> None:
    (found,) = scan(DATA / "takeout.mbox")
    assert found.title == "Grüße aus Amsterdam"
    assert [party.name for party in found.recipients] == ["Jürgen Müller"]
    assert found.at == datetime(2021, 2, 17, 18, 49, 58, tzinfo=UTC)


@pytest.mark.parametrize(
    ("line", "utc"),
    [
        (b"From jan@x.nl Tue Feb 27 10:15:02 2024\n", datetime(2024, 2, 27, 10, 15, 2)),
        (b"From - Mon Mar 04 09:12:44 2024\n", datetime(2024, 3, 4, 9, 12, 44)),
        (b"From MAILER-DAEMON Fri Mar  1 16:30:00 2024\n", datetime(2024, 3, 1, 16, 30)),
        (b"From 17912@xxx Wed Feb 17 18:50:00 +0100 2021\r\n", datetime(2021, 2, 17, 17, 50)),
        (b"From jan@x.nl  Tue Feb 27 10:15 2024\n", datetime(2024, 2, 27, 10, 15)),
    ],
)
def test_from_line_dates(line: bytes, utc: datetime) -> None:
    assert separator_date(line) == utc.replace(tzinfo=UTC)


def test_a_python_mailbox_written_mbox_is_split_as_written(tmp_path: Path) -> None:
    path = tmp_path / "python.mbox"
    box = mailbox.mbox(path)
    for number in range(5):
        box.add(mail(number, body="From the top\n>From quoted\n").split("\n", 1)[1])
    box.flush()
    box.close()
    assert ids(scan(path)) == [f"mail-{number}@example.nl" for number in range(5)]


# --- folders and files that are not mbox ------------------------------------------------------


def test_a_file_that_is_not_an_mbox_is_a_source_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("Meeting notes\n")
    with pytest.raises(SourceError, match="not an mbox file"):
        scan(path)
    assert "not an mbox file" in source(path).check()[0]


def test_a_folder_without_mbox_files_is_a_source_error(tmp_path: Path) -> None:
    (tmp_path / "Inbox.msf").write_text('// <!-- <mdb:mork:z v="1.4"/> -->\n')
    with pytest.raises(SourceError, match="no mbox files"):
        scan(tmp_path)


def test_a_missing_path_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        scan(tmp_path / "nowhere.mbox")


def test_an_empty_mbox_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "empty.mbox"
    path.write_bytes(b"")
    assert scan(path) == []
    assert source(path).check() == []


def test_a_message_without_sender_is_a_warning_with_its_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "inbox"
    path.write_text(
        mail(1) + "From x Sat Mar  9 10:00:00 2024\nSubject: who?\n\nbody\n\n" + mail(2)
    )
    with caplog.at_level(logging.WARNING):
        found = scan(path)
    assert ids(found) == ["mail-1@example.nl", "mail-2@example.nl"]
    assert f"{path}:{line_of(path, 'From x ')}: no From address" in caplog.text


def test_messages_without_body_or_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "inbox"
    first = mail(1).split("\n\n")[0] + "\n"  # no blank line, no body: the next From_ follows
    path.write_text(first + mail(2) + mail(3).rstrip("\n"))
    assert ids(scan(path)) == ["mail-1@example.nl", "mail-2@example.nl", "mail-3@example.nl"]


# --- only headers are parsed ------------------------------------------------------------------


def test_bodies_are_never_parsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "inbox"
    fake = "From: someone-else@example.com\nMessage-ID: <fake@x>\n\n"
    body = fake + "x" * 1000 + "\n"
    with path.open("wb") as file:
        file.write(mail(1, body=body * 10_000).encode())  # 10 MB
        file.write(b"\xff\xfe invalid bytes \x00\n\n")
        file.write(mail(2).encode())
    parsed = []
    parse = mbox.parse_headers
    monkeypatch.setattr(mbox, "parse_headers", lambda raw: parsed.append(raw) or parse(raw))
    assert ids(scan(path)) == ["mail-1@example.nl", "mail-2@example.nl"]
    assert all(len(raw) < 300 for raw in parsed)
    assert not any(b"someone-else" in raw for raw in parsed)


# --- incremental ------------------------------------------------------------------------------


def test_a_second_scan_of_an_unchanged_file_reads_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = copy("mutt.mbox", tmp_path)
    store = Store()
    assert len(store.scan(path)) == 4
    monkeypatch.setattr(mbox, "split_mbox", lambda *args: pytest.fail("the file was read again"))
    assert store.scan(path) == []
    state = store.state["files"]["mutt.mbox"]  # type: ignore[index]
    size = path.stat().st_size
    assert state["offset"] == size
    assert state["size"] == size
    assert state["mtime_ns"] == path.stat().st_mtime_ns
    assert len(state["head"]) == 32


def test_a_grown_file_is_read_from_where_the_last_scan_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "inbox"
    path.write_text(mail(1) + mail(2))
    store = Store()
    store.scan(path)
    with path.open("a") as file:
        file.write(mail(3))
    starts = []
    split = mbox.split_mbox
    monkeypatch.setattr(mbox, "split_mbox", lambda f, o, n: starts.append(o) or split(f, o, n))
    found = store.scan(path)
    assert ids(found) == ["mail-3@example.nl"]
    assert starts == [len((mail(1) + mail(2)).encode())]
    assert found[0].evidence == f"{path}:{line_of(path, 'From sanne@example.nl Sat Mar  9 10:03')}"


def test_an_expunged_message_makes_the_file_read_again_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / "inbox"
    path.write_text(mail(1) + mail(2) + mail(3))
    store = Store()
    store.scan(path)
    path.write_text(mail(2) + mail(3) + mail(4))  # mutt rewrote it: 1 deleted, 4 arrived
    assert ids(store.scan(path)) == ["mail-4@example.nl"]
    assert ids(scan(path)) == ["mail-2@example.nl", "mail-3@example.nl", "mail-4@example.nl"]


def test_a_changed_start_with_the_same_size_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "inbox"
    path.write_text(mail(1) + mail(2))
    store = Store()
    store.scan(path)
    path.write_text(mail(1).replace("mail-1@", "mail-7@") + mail(2) + mail(3))
    assert ids(store.scan(path)) == ["mail-7@example.nl", "mail-3@example.nl"]


def test_a_rewrite_that_moves_the_old_end_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "inbox"
    long = mail(1, body="Tot ziens.\n" * 500)  # the first 4 KB stay the same
    path.write_text(long + mail(2) + mail(3))
    store = Store()
    store.scan(path)
    # a Status: line added to mail 2 shifts everything after it
    path.write_text(long + mail(2).replace("\n\n", "\nStatus: RO\n\n", 1) + mail(3) + mail(4))
    starts = []
    split = mbox.split_mbox
    monkeypatch.setattr(mbox, "split_mbox", lambda f, o, n: starts.append(o) or split(f, o, n))
    assert ids(store.scan(path)) == ["mail-4@example.nl"]
    assert starts == [0]


def test_the_cursor_moves_only_past_what_was_yielded(tmp_path: Path) -> None:
    path = tmp_path / "inbox"
    path.write_text(mail(1) + mail(2))
    cursor = Cursor()
    scanning = source(path).scan(cursor)
    next(scanning)
    assert cursor.state["files"]["inbox"]["offset"] == len(mail(1).encode())
    assert cursor.state["files"]["inbox"]["line"] == mail(1).count("\n") + 1
    for _ in scanning:
        pass
    assert cursor.state["files"]["inbox"]["offset"] == len((mail(1) + mail(2)).encode())


def test_a_removed_file_leaves_the_state(tmp_path: Path) -> None:
    folder = tmp_path / "Mail"
    folder.mkdir()
    (folder / "inbox").write_text(mail(1))
    (folder / "sent").write_text(mail(2))
    store = Store()
    store.scan(folder)
    (folder / "sent").unlink()
    store.scan(folder)
    assert list(store.state["files"]) == ["inbox"]  # type: ignore[call-overload]


@pytest.mark.parametrize(
    "saved",
    [
        {"offset": "x"},
        {"offset": "x", "line": 1, "size": 1, "mtime_ns": 1, "head": "h"},
        {"offset": 5, "line": 1, "size": 5, "mtime_ns": 1, "head": None},
        ["not", "a", "mapping"],
    ],
)
def test_a_damaged_state_starts_over(tmp_path: Path, saved: object) -> None:
    path = tmp_path / "inbox"
    path.write_text(mail(1))
    cursor = Cursor(state={"files": {"inbox": saved}})
    assert ids(list(source(path).scan(cursor))) == ["mail-1@example.nl"]


# --- splitting never goes wrong -----------------------------------------------------------------


def split_all(data: bytes, chunk: int | None = None) -> list[tuple[int, int, bytes, bytes]]:
    if chunk is not None:
        mbox._CHUNK = chunk
    try:
        return [(m.offset, m.line, m.separator, m.header) for m in split_mbox(io.BytesIO(data))]
    finally:
        mbox._CHUNK = 1 << 20


body_lines = st.lists(
    st.sampled_from(["From the top", "Hello", "", "From: fake@x", ">From x", "From x Sat Mar  9"])
    | st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=30),
    max_size=8,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(body_lines, min_size=1, max_size=6), st.integers(1, 64))
def test_any_bodies_written_as_mboxrd_split_into_the_messages(
    bodies: list[list[str]], chunk: int
) -> None:
    written = []
    for number, lines in enumerate(bodies):
        escaped = [f">{line}" if line.lstrip(">").startswith("From ") else line for line in lines]
        written.append(mail(number % 60, body="\n".join(escaped) + "\n"))
    data = "".join(written).encode()
    whole = split_all(data)
    assert len(whole) == len(bodies)
    assert split_all(data, chunk) == whole  # the chunk size never changes what is found
    for number, (offset, line, _, header) in enumerate(whole):
        assert data[offset:].startswith(written[number].encode())
        assert line == data[:offset].count(b"\n") + 1
        assert f"Message-ID: <mail-{number % 60}@".encode() in header


@st.composite
def mutated_mbox(draw: st.DrawFn) -> bytes:
    data = bytearray((DATA / "mutt.mbox").read_bytes())
    for _ in range(draw(st.integers(1, 12))):
        at = draw(st.integers(0, len(data)))
        piece = draw(
            st.sampled_from([b"\n", b"\nFrom ", b"From x Tue Feb 27 10:15:02 2024\n", b"\r\n"])
            | st.binary(min_size=1, max_size=6)
        )
        if draw(st.booleans()):
            data[at:at] = piece
        else:
            del data[at : at + len(piece)]
    return bytes(data)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_mbox(), st.integers(1, 64))
def test_a_mutated_mbox_never_raises_and_splits_the_same_in_any_chunk_size(
    data: bytes, chunk: int
) -> None:
    assert split_all(data, chunk) == split_all(data)


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutated_mbox())
def test_scanning_a_mutated_mbox_only_ever_warns(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "inbox"
    path.write_bytes(data)
    os.utime(path, (0, 0))
    try:
        found = scan(path)
    except SourceError:
        assert not data.startswith(b"From ")
        return
    for item in found:
        assert item.at.tzinfo is not None
