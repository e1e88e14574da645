from __future__ import annotations

import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors import mailpool
from connectors.base import Context, Cursor, SourceError
from connectors.maildir import MaildirOptions, MaildirSource, split_info
from syncd.model import Interaction

STAMP = 1709025302  # 2024-02-27 09:15:02 UTC, as a deliverer writes it into the unique name
HOUR_AGO = time.time() - 3600


class Store:
    """What the engine keeps between scans: the refs it holds and the cursor state."""

    def __init__(self) -> None:
        self.refs: set[str] = set()
        self.state: dict[str, object] = {}

    def scan(self, root: Path, **options: object) -> list[Interaction]:
        cursor = Cursor(state=self.state, known=self.refs.__contains__)
        found = list(source(root, **options).scan(cursor))
        self.refs.update(item.ref for item in found)
        self.state = cursor.state
        return found


def source(root: Path, **options: object) -> MaildirSource:
    context = Context("mail", ZoneInfo("Europe/Amsterdam"), datetime(2024, 6, 1, tzinfo=UTC))
    return MaildirSource(MaildirOptions(type="maildir", path=root, **options), context)


def scan(root: Path, **options: object) -> list[Interaction]:
    return list(source(root, **options).scan(Cursor()))


def make_folder(path: Path) -> Path:
    for part in ("cur", "new", "tmp"):
        (path / part).mkdir(parents=True, exist_ok=True)
    return path


def message(sender: str = "jan@devries.nl", subject: str = "Offerte", **fields: str) -> bytes:
    lines = [
        f"Return-Path: <{sender}>",
        "Received: from mx1.devries.nl by mail.example.nl (Postfix)\n\tfor <sanne@example.nl>",
        f"From: Jan de Vries <{sender}>",
        "To: Sanne Bakker <sanne@example.nl>",
        f"Subject: {subject}",
        "Date: Tue, 27 Feb 2024 10:14:58 +0100",
        f"Message-ID: <{subject.replace(' ', '.')}@devries.nl>",
    ]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in fields.items()]
    return ("\n".join(lines) + "\n\nHallo Sanne,\n\nZie bijlage.\n").encode()


def deliver(
    folder: Path, number: int, flags: str | None = "S", content: bytes | None = None
) -> Path:
    """Write a message as Dovecot names it: new/ without flags, cur/ with ":2,<flags>"."""
    unique = f"{STAMP + number}.M{number}P4242Q1.mail.example.nl"
    path = folder / ("new" if flags is None else "cur") / unique
    if flags is not None:
        path = path.with_name(f"{unique}:2,{flags}")
    path.write_bytes(content if content is not None else message(subject=f"mail {number}"))
    return path


def age(root: Path) -> None:
    """Make every folder look changed an hour ago, as folders are between two syncs."""
    for directory, _, _ in os.walk(root):
        os.utime(directory, (HOUR_AGO, HOUR_AGO))


@pytest.fixture
def dovecot(tmp_path: Path) -> Path:
    """A Maildir++ as Dovecot keeps it: the inbox at the root, folders as dot-directories."""
    root = make_folder(tmp_path / "Maildir")
    deliver(root, 1)
    deliver(root, 2, flags="RS")
    deliver(root, 3, flags=None)
    deliver(make_folder(root / ".Sent"), 4)
    deliver(make_folder(root / ".Archive.2023"), 5, flags="FS")
    for trash in (".Trash", ".INBOX.Trash", ".Junk", ".Drafts", ".Deleted Messages"):
        deliver(make_folder(root / trash), 6)
    (root / "dovecot-uidlist").write_text("3 V1 N4\n")
    (root / "subscriptions").write_text("Sent\nArchive.2023\n")
    return root


@pytest.fixture
def mbsync(tmp_path: Path) -> Path:
    """Nested maildirs, as mbsync writes them with `SubFolders Verbatim`."""
    root = tmp_path / "Mail"
    deliver(make_folder(root / "INBOX"), 1)
    deliver(make_folder(root / "Sent"), 2)
    deliver(make_folder(root / "Archive"), 3)
    deliver(make_folder(root / "Archive" / "2023"), 4)
    deliver(make_folder(root / "Trash"), 5)
    deliver(make_folder(root / "Deleted Items"), 6)
    (root / "INBOX" / ".mbsyncstate").write_text("FarUidValidity 1\n")
    return root


def refs(found: list[Interaction]) -> set[str]:
    return {item.ref for item in found}


def unique(number: int) -> str:
    return f"{STAMP + number}.M{number}P4242Q1.mail.example.nl"


# --- layouts and folders ----------------------------------------------------------------------


def test_maildir_plus_plus_folders_are_read_and_trash_junk_drafts_are_not(dovecot: Path) -> None:
    assert refs(scan(dovecot)) == {
        f"INBOX/{unique(1)}",
        f"INBOX/{unique(2)}",
        f"INBOX/{unique(3)}",
        f"Sent/{unique(4)}",
        f"Archive/2023/{unique(5)}",
    }


def test_nested_folders_as_mbsync_writes_them(mbsync: Path) -> None:
    assert refs(scan(mbsync)) == {
        f"INBOX/{unique(1)}",
        f"Sent/{unique(2)}",
        f"Archive/{unique(3)}",
        f"Archive/2023/{unique(4)}",
    }


def test_only_the_chosen_folders_in_any_case(mbsync: Path) -> None:
    assert refs(scan(mbsync, folders=["sent", "Archive/2023"])) == {
        f"Sent/{unique(2)}",
        f"Archive/2023/{unique(4)}",
    }


def test_the_skip_list_can_be_changed(dovecot: Path) -> None:
    found = refs(scan(dovecot, skip=["Sent"]))
    assert f"Trash/{unique(6)}" in found
    assert f"INBOX/Trash/{unique(6)}" in found
    assert not any(ref.startswith("Sent/") for ref in found)


def test_a_chosen_folder_that_is_not_there_is_reported(
    mbsync: Path, caplog: pytest.LogCaptureFixture
) -> None:
    problems = source(mbsync, folders=["INBOX", "Archief"]).check()
    assert len(problems) == 1
    assert "'Archief'" in problems[0]
    assert "Archive/2023" in problems[0]
    with caplog.at_level(logging.WARNING):
        found = scan(mbsync, folders=["INBOX", "Archief"])
    assert refs(found) == {f"INBOX/{unique(1)}"}
    assert "Archief" in caplog.text


def test_folder_names_stored_in_modified_utf7_are_shown_and_skipped_as_named(
    tmp_path: Path,
) -> None:
    root = make_folder(tmp_path / "Maildir")
    deliver(make_folder(root / ".Entw&APw-rfe"), 1)  # Entwürfe: German drafts
    deliver(make_folder(root / ".Kunden.M&APw-ller & Co"), 2)
    assert refs(scan(root, skip=["Entwürfe"])) == {f"Kunden/Müller & Co/{unique(2)}"}


def test_drafts_and_trashed_messages_are_skipped_by_flag(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "Maildir")
    deliver(root, 1, flags="S")
    deliver(root, 2, flags="DS")  # a draft
    deliver(root, 3, flags="ST")  # trashed, not yet expunged
    deliver(root, 4, flags="Sa")  # a Dovecot keyword letter is not a flag
    assert refs(scan(root)) == {f"INBOX/{unique(1)}", f"INBOX/{unique(4)}"}


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("1709025302.M1P2Q3.host:2,RS", ("1709025302.M1P2Q3.host", "RS")),
        ("1709025302.M1P2Q3.host,S=1234,W=1260:2,", ("1709025302.M1P2Q3.host,S=1234,W=1260", "")),
        ("1709025302.M1P2Q3.host", ("1709025302.M1P2Q3.host", "")),
        ("1709025302.M1P2Q3.host!2,DS", ("1709025302.M1P2Q3.host", "DS")),
        ("1709025302.M1P2Q3.host;2,T", ("1709025302.M1P2Q3.host", "T")),
    ],
)
def test_file_names_split_into_unique_name_and_flags(name: str, parts: tuple[str, str]) -> None:
    assert split_info(name) == parts


@given(st.text(max_size=60), st.text(alphabet="DFPRST", max_size=6))
def test_a_flag_change_never_changes_the_unique_name(name: str, flags: str) -> None:
    base, _ = split_info(name)
    if ":2," not in base and "!2," not in base and ";2," not in base:
        assert split_info(f"{base}:2,{flags}")[0] == base


# --- what each message becomes ----------------------------------------------------------------


def test_a_message_becomes_an_interaction_with_its_message_id_as_evidence(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "Maildir")
    deliver(root, 1)
    (found,) = scan(root)
    assert found.source == "mail"
    assert found.ref == f"INBOX/{unique(1)}"
    assert found.evidence == "<mail.1@devries.nl>"
    assert found.message_id == "mail.1@devries.nl"
    assert found.sender is not None
    assert found.sender.identity.value == "jan@devries.nl"
    assert found.at == datetime(2024, 2, 27, 9, 14, 58, tzinfo=UTC)
    assert found.signals == {"return-path": "<jan@devries.nl>"}


def test_without_a_date_the_delivery_time_in_the_file_name_is_used(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "Maildir")
    deliver(root, 1, content=b"From: jan@devries.nl\nTo: sanne@example.nl\n\nhi\n")
    (found,) = scan(root)
    assert found.at == datetime.fromtimestamp(STAMP + 1, UTC)
    assert found.evidence == str(root / "cur" / f"{unique(1)}:2,S")  # no Message-ID: the file


def test_without_a_date_or_a_time_in_the_name_the_file_time_is_used(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "Maildir")
    path = root / "cur" / "imported-by-hand:2,S"
    path.write_bytes(b"From: jan@devries.nl\n\nhi\n")
    os.utime(path, (STAMP, STAMP))
    (found,) = scan(root)
    assert found.at == datetime.fromtimestamp(STAMP, UTC)


def test_a_message_without_sender_is_a_warning_and_the_rest_is_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = make_folder(tmp_path / "Maildir")
    deliver(root, 1, content=b"Subject: who sent this?\n\nbody\n")
    deliver(root, 2)
    with caplog.at_level(logging.WARNING):
        found = scan(root)
    assert refs(found) == {f"INBOX/{unique(2)}"}
    assert f"{unique(1)}:2,S:1: no From address" in caplog.text


def test_an_unreadable_message_is_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = make_folder(tmp_path / "Maildir")
    (root / "cur" / f"{unique(1)}:2,S").mkdir()  # cannot be read as a file, even by root
    deliver(root, 2)
    with caplog.at_level(logging.WARNING):
        found = scan(root)
    assert refs(found) == {f"INBOX/{unique(2)}"}
    assert "cannot read this message" in caplog.text


def test_a_message_moved_away_during_the_scan_is_skipped_quietly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    root = make_folder(tmp_path / "Maildir")
    deliver(root, 1)
    listdir = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path: [*listdir(path), f"{unique(9)}:2,S"])
    with caplog.at_level(logging.WARNING):
        found = scan(root)
    assert refs(found) == {f"INBOX/{unique(1)}"}
    assert caplog.text == ""


# --- only headers are read --------------------------------------------------------------------


def test_the_body_is_never_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_folder(tmp_path / "Maildir")
    fake = b"From: someone-else@example.com\nMessage-ID: <fake@x>\n\n"
    body = fake + bytes(range(256)) * 40_000  # 10 MB with a header block and invalid bytes
    deliver(root, 1, content=message() + body)
    read = []
    real_read = os.read

    def counting_read(fd: int, size: int) -> bytes:
        data = real_read(fd, size)
        read.append(len(data))
        return data

    monkeypatch.setattr(os, "read", counting_read)
    (found,) = scan(root)
    assert sum(read) <= 8192
    assert found.sender is not None
    assert found.sender.identity.value == "jan@devries.nl"
    assert found.message_id == "Offerte@devries.nl"


def test_a_long_header_block_is_read_to_its_end(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "Maildir")
    trace = "".join(
        f"Received: from relay{i}.example.net by relay{i + 1}.example.net\n" for i in range(300)
    )
    deliver(root, 1, content=trace.encode() + message(subject="late"))
    (found,) = scan(root)
    assert found.title == "late"


# --- incremental ------------------------------------------------------------------------------


def test_a_second_scan_yields_nothing_and_lists_no_unchanged_folder(
    dovecot: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    age(dovecot)
    store = Store()
    assert len(store.scan(dovecot)) == 5
    listed = []
    listdir = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path: listed.append(path) or listdir(path))
    assert store.scan(dovecot) == []
    assert listed == []
    assert store.state["dirs"] == {
        f"{folder}/{part}": os.stat(path / part).st_mtime_ns
        for folder, path in [
            ("INBOX", dovecot),
            ("Sent", dovecot / ".Sent"),
            ("Archive/2023", dovecot / ".Archive.2023"),
        ]
        for part in ("new", "cur")
    }


def test_new_mail_yields_only_the_new_message(dovecot: Path) -> None:
    age(dovecot)
    store = Store()
    store.scan(dovecot)
    deliver(dovecot / ".Sent", 7)
    assert refs(store.scan(dovecot)) == {f"Sent/{unique(7)}"}


def test_a_flag_change_or_a_move_to_cur_does_not_yield_again(dovecot: Path) -> None:
    age(dovecot)
    store = Store()
    store.scan(dovecot)
    cur = dovecot / "cur"
    os.rename(cur / f"{unique(1)}:2,S", cur / f"{unique(1)}:2,RS")  # replied
    os.rename(dovecot / "new" / unique(3), cur / f"{unique(3)}:2,S")  # seen
    assert store.scan(dovecot) == []


def test_a_folder_that_just_changed_is_listed_again_next_time(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "Maildir")
    deliver(root, 1)
    store = Store()
    store.scan(root)
    # mail arriving within the same timestamp tick could be missed by comparing times alone
    assert "INBOX/cur" not in store.state["dirs"]
    assert store.scan(root) == []


def test_the_cursor_moves_only_past_what_was_yielded(dovecot: Path) -> None:
    age(dovecot)
    cursor = Cursor()
    scanning = source(dovecot).scan(cursor)
    next(scanning)
    assert cursor.state["dirs"] == {}  # INBOX/new is recorded only once all of it was yielded
    for _ in scanning:
        pass
    assert len(cursor.state["dirs"]) == 6


def test_a_removed_folder_leaves_the_state(mbsync: Path) -> None:
    age(mbsync)
    store = Store()
    store.scan(mbsync)
    for part in ("cur", "new", "tmp"):
        for name in os.listdir(mbsync / "Sent" / part):
            os.remove(mbsync / "Sent" / part / name)
        os.rmdir(mbsync / "Sent" / part)
    os.rmdir(mbsync / "Sent")
    store.scan(mbsync)
    assert not any(key.startswith("Sent/") for key in store.state["dirs"])  # type: ignore[attr-defined]


def test_a_damaged_state_starts_over(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "Maildir")
    deliver(root, 1)
    cursor = Cursor(state={"dirs": ["not", "a", "mapping"]})
    assert len(list(source(root).scan(cursor))) == 1


# --- a Maildir that cannot be read --------------------------------------------------------------


def test_a_missing_maildir_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        scan(tmp_path / "nowhere")
    assert "does not exist" in source(tmp_path / "nowhere").check()[0]


def test_a_folder_without_maildirs_is_a_source_error(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    with pytest.raises(SourceError, match="no Maildir folders"):
        scan(tmp_path)


def test_check_is_quiet_for_a_good_maildir(dovecot: Path) -> None:
    assert source(dovecot).check() == []


# --- a large Maildir: headers read in a helper process --------------------------------------


def test_a_large_maildir_is_read_through_a_helper_with_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    root = make_folder(tmp_path / "Maildir")
    for number in range(1, 31):
        deliver(root, number, flags=None if number % 3 else "S")
    for number in range(31, 41):
        deliver(make_folder(root / ".Sent"), number)
    (root / "cur" / f"{unique(50)}:2,S").mkdir()  # cannot be read
    age(root)
    alone = Store()
    expected = alone.scan(root)
    monkeypatch.setattr(mailpool, "LEAST", 5)
    monkeypatch.setattr(mailpool, "CHUNK", 4)
    helped = Store()
    with caplog.at_level(logging.WARNING):
        found = helped.scan(root)
    assert found == expected
    assert len(found) == 40
    assert helped.state == alone.state
    assert len(helped.state["dirs"]) == 4
    assert "cannot read this message" in caplog.text
    deliver(root, 60)
    assert [item.ref for item in helped.scan(root)] == [f"INBOX/{unique(60)}"]


def test_a_file_name_that_is_not_utf8_gets_a_ref_that_is_found_again(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "Maildir")
    odd = os.fsdecode(b"1709025302.M1P1.h\xe9:2,S")
    (root / "cur" / odd).write_bytes(message())
    store = Store()
    (found,) = store.scan(root)
    assert found.ref == "INBOX/1709025302.M1P1.h\\xe9"
    found.ref.encode("utf-8")
    os.utime(root / "cur", (HOUR_AGO - 60, HOUR_AGO - 60))  # listed again: known, not read
    store.state["dirs"] = {}
    assert store.scan(root) == []
