"""The imap source against a real Dovecot (tests/servers/dovecot.py), and a scripted Gmail."""

from __future__ import annotations

import base64
import itertools
import logging
import socketserver
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from imapclient import IMAPClient
from pydantic import ValidationError

from connectors import mailheaders, mailpool
from connectors.base import Context, Cursor, SourceError
from connectors.imap import ImapOptions, ImapSource
from connectors.imap import source as imap_source
from connectors.imap.folders import Listed, default_folders
from connectors.imap.wire import Fetched, Wire, fetched, internal_date, searched, windows
from connectors.maildir import MaildirOptions, MaildirSource
from syncd import engine, secrets
from syncd.model import Identity, IdentityKind, Interaction
from syncd.rules import Judge
from syncd.store import Store
from tests.connectors.conftest import Relay
from tests.servers.dovecot import HOST, Account, Dovecot, Mail, free_port

NOW = datetime(2024, 6, 1, 12, tzinfo=UTC)
ME = "Sam Example <sam@example.org>"
_users = itertools.count(1)


def mail(n: int, box: str = "in", *, sender: str = "Anna de Vries <anna@example.nl>",
         subject: str | None = None) -> bytes:  # fmt: skip
    at = datetime(2024, 1, 1, 9, tzinfo=UTC) + timedelta(hours=n)
    return (
        f"Return-Path: <bounce-{n}@example.nl>\r\n"
        "Received: from mx1.example.nl by mail.example.org (Postfix)\r\n\tfor <sam@example.org>\r\n"
        f"From: {sender}\r\nTo: {ME}\r\nSubject: {subject or f'Mail {n}'}\r\n"
        f"Date: {format_datetime(at)}\r\nMessage-ID: <{box}-{n}@example.nl>\r\n"
        "MIME-Version: 1.0\r\n\r\nHallo Sam,\r\n\r\nDit is de tekst; die leest syncd nooit.\r\n"
    ).encode()


def account(dovecot: Dovecot, folders: dict[str, list[Mail]]) -> Account:
    return dovecot.add_account(f"user{next(_users)}", folders)


def imap(account: Account, port: int, **keys: Any) -> ImapSource:
    options = ImapOptions.model_validate(
        {"type": "imap", "host": HOST, "port": port, "security": "none",
         "username": account.user, "password": {"keyring": "syncd-test"}, **keys}
    )  # fmt: skip
    context = Context("work", ZoneInfo("Europe/Amsterdam"), NOW, secret=lambda _: account.password)
    return ImapSource(options, context)


class Sync:
    """What the engine keeps between scans of one source: the refs it holds and the cursor."""

    def __init__(self, source: ImapSource) -> None:
        self.source = source
        self.refs: set[str] = set()
        self.cursor = Cursor(known=self.refs.__contains__)
        self.found: list[Interaction] = []

    def __call__(self) -> list[Interaction]:
        found = []
        try:
            for item in self.source.scan(self.cursor):
                found.append(item)
        finally:
            self.found += found
            self.refs.update(item.ref for item in found)
        return found


def ids(found: list[Interaction]) -> list[str]:
    return sorted(item.message_id or "" for item in found)


def flags(dovecot: Dovecot, account: Account) -> str:
    return dovecot.doveadm("fetch", "-u", account.user, "mailbox uid flags", "mailbox", "*", "all")


def append(dovecot: Dovecot, account: Account, folder: str, data: bytes, **keys: Any) -> None:
    with IMAPClient(HOST, dovecot.port, ssl=False) as client:
        client.login(account.user, account.password)
        client.append(folder, data, **keys)


STANDARD: dict[str, list[Mail]] = {
    "INBOX": [(mail(1), "S"), mail(2)],
    "Verzonden": [(mail(3, "sent", sender=ME), "S")],
    "Archief": [(mail(4, "archive"), "RS")],
    "Ongewenst": [mail(5, "junk")],
    "Prullenbak": [(mail(6, "trash"), "ST")],
    "Concepten": [(mail(7, "draft", sender=ME), "DS")],
    "Projecten": [(mail(8, "project"), "S")],
}


# --- first and incremental sync --------------------------------------------------------------


def test_a_first_sync_reads_inbox_sent_and_archive_found_by_their_attributes(
    dovecot: Dovecot,
) -> None:
    user = account(dovecot, STANDARD)
    sync = Sync(imap(user, dovecot.port))
    found = sync()
    assert ids(found) == ["archive-4@example.nl", "in-1@example.nl", "in-2@example.nl",
                          "sent-3@example.nl"]  # fmt: skip
    state = sync.cursor.state["folders"]
    assert set(state) == {"INBOX", "Verzonden", "Archief"}
    inbox = state["INBOX"]
    assert inbox == {"uidvalidity": inbox["uidvalidity"], "last_uid": 2, "uidnext": 3,
                     "messages": 2}  # fmt: skip
    first = next(item for item in found if item.message_id == "in-1@example.nl")
    assert first.ref == f"INBOX/{inbox['uidvalidity']}/1"
    assert first.source == "work"
    assert first.title == "Mail 1"
    assert first.at == datetime(2024, 1, 1, 10, tzinfo=UTC)
    assert first.sender is not None
    assert first.sender.identity.value == "anna@example.nl"
    assert first.sender.name == "Anna de Vries"
    assert [p.identity.value for p in first.recipients] == ["sam@example.org"]
    assert first.evidence == "<in-1@example.nl>"
    assert first.signals == {"return-path": "<bounce-1@example.nl>"}


def test_a_sync_without_new_mail_costs_one_status_per_folder_and_opens_none(
    dovecot: Dovecot, relay: Callable[..., Relay]
) -> None:
    user = account(dovecot, STANDARD)
    watched = relay()
    sync = Sync(imap(user, watched.port))
    sync()
    before = len(watched.commands())
    assert sync() == []
    again = watched.commands()[before:]
    assert again.count("STATUS") == 3
    assert not {"EXAMINE", "SELECT", "UID FETCH", "UID SEARCH"} & set(again)
    assert again[-1] == "LOGOUT"


def test_mail_arriving_between_syncs_is_read_and_nothing_twice(dovecot: Dovecot) -> None:
    user = account(dovecot, STANDARD)
    sync = Sync(imap(user, dovecot.port))
    sync()
    append(dovecot, user, "INBOX", mail(20))
    append(dovecot, user, "Verzonden", mail(21, "sent", sender=ME), flags=[b"\\Seen"])
    append(dovecot, user, "Prullenbak", mail(22, "trash"))
    found = sync()
    assert ids(found) == ["in-20@example.nl", "sent-21@example.nl"]
    inbox = sync.cursor.state["folders"]["INBOX"]
    assert {item.ref for item in found if item.message_id == "in-20@example.nl"} == {
        f"INBOX/{inbox['uidvalidity']}/3"
    }
    assert sync() == []
    assert len(sync.found) == len(set(sync.refs)) == 6


def test_since_reads_only_mail_the_server_received_from_that_day(dovecot: Dovecot) -> None:
    user = account(dovecot, {"INBOX": []})
    append(dovecot, user, "INBOX", mail(1), msg_time=datetime(2021, 3, 1, tzinfo=UTC))
    append(dovecot, user, "INBOX", mail(2), msg_time=datetime(2024, 3, 1, tzinfo=UTC))
    found = Sync(imap(user, dovecot.port, since="2023-01-01"))()
    assert ids(found) == ["in-2@example.nl"]


def test_a_new_uidvalidity_reads_the_folder_again_without_duplicates(
    dovecot: Dovecot, tmp_path: Path
) -> None:
    user = account(dovecot, STANDARD)
    source = imap(user, dovecot.port)
    store = Store.open(tmp_path / "state.db")
    assert import_into(store, "work", source) == 4
    old = store.cursor_state("work")["folders"]["INBOX"]["uidvalidity"]
    new = str(old + 1000)
    dovecot.doveadm("mailbox", "update", "-u", user.user, "--uid-validity", new, "INBOX")
    assert import_into(store, "work", source) == 2  # the two inbox messages, and only those
    inbox = store.cursor_state("work")["folders"]["INBOX"]
    assert inbox["uidvalidity"] == old + 1000
    assert inbox["last_uid"] == 2
    assert interactions(store) == 4
    assert import_into(store, "work", source) == 0


def test_the_same_mail_in_a_maildir_copy_and_on_the_server_counts_once(
    dovecot: Dovecot, tmp_path: Path
) -> None:
    user = account(dovecot, STANDARD)
    store = Store.open(tmp_path / "state.db")
    assert import_into(store, "work", imap(user, dovecot.port)) == 4
    context = Context("laptop", ZoneInfo("Europe/Amsterdam"), NOW)
    folders = ["INBOX", "Verzonden", "Archief", "Projecten"]
    options = MaildirOptions(type="maildir", path=user.home / "Maildir", folders=folders)
    assert import_into(store, "laptop", MaildirSource(options, context)) == 5
    assert interactions(store) == 5  # four on both, and Projecten only in the copy


def import_into(store: Store, name: str, source: Any) -> int:
    me = frozenset({Identity(IdentityKind.EMAIL, "sam@example.org")})
    return engine.import_source(name, source, store, Judge(me=me), None)


def interactions(store: Store) -> int:
    return int(store.db.execute("SELECT COUNT(*) FROM interactions").fetchone()[0])


# --- folders ---------------------------------------------------------------------------------


def test_without_special_use_sent_and_archive_are_found_by_name(dovecot: Dovecot) -> None:
    user = account(dovecot, {
        "INBOX": [mail(1)], "Sent Items": [mail(2, "sent", sender=ME)], "Archive": [mail(3, "a")],
        "Envoyés": [mail(4, "envoyes", sender=ME)], "Junk Email": [mail(5, "junk")],
        "Deleted Items": [mail(6, "deleted")], "Drafts": [mail(7, "draft")],
        "Projects": [mail(8, "project")],
    })  # fmt: skip
    sync = Sync(imap(user, dovecot.port))
    assert ids(sync()) == ["a-3@example.nl", "envoyes-4@example.nl", "in-1@example.nl",
                           "sent-2@example.nl"]  # fmt: skip
    assert set(sync.cursor.state["folders"]) == {"INBOX", "Sent Items", "Archive", "Envoyés"}


def test_where_the_server_has_all_mail_only_that_folder_is_read(dovecot: Dovecot) -> None:
    user = account(dovecot, {
        "INBOX": [mail(1)], "Verzonden": [mail(2, "sent", sender=ME)],
        "Alle berichten": [mail(1), mail(2, "sent", sender=ME), mail(3)],
    })  # fmt: skip
    sync = Sync(imap(user, dovecot.port))
    assert ids(sync()) == ["in-1@example.nl", "in-3@example.nl", "sent-2@example.nl"]
    assert set(sync.cursor.state["folders"]) == {"Alle berichten"}


def test_configured_folders_are_read_and_a_missing_one_is_reported(
    dovecot: Dovecot, caplog: pytest.LogCaptureFixture
) -> None:
    user = account(dovecot, STANDARD)
    source = imap(user, dovecot.port, folders=["projecten", "Klanten"])
    assert ids(Sync(source)()) == ["project-8@example.nl"]
    assert "folder 'Klanten' is not on 127.0.0.1 (it has: " in caplog.text
    assert source.context.warnings == 1
    [problem] = source.check()
    assert problem.startswith("folder 'Klanten' is not on 127.0.0.1")
    assert "Projecten" in problem


def test_default_folders_never_include_junk_trash_or_drafts_even_when_named_sent() -> None:
    listing = [
        Listed("INBOX", frozenset(), "/"),
        Listed("Sent", frozenset({"\\junk"}), "/"),  # a server's odd naming; the attribute wins
        Listed("Verzonden", frozenset({"\\sent"}), "/"),
        Listed("Archive", frozenset({"\\noselect"}), "/"),
    ]
    assert [folder.name for folder in default_folders(listing)] == ["INBOX", "Verzonden"]


# --- read-only -------------------------------------------------------------------------------


def test_a_sync_changes_no_flag_not_even_seen(dovecot: Dovecot) -> None:
    user = account(dovecot, STANDARD)
    before = flags(dovecot, user)
    assert Sync(imap(user, dovecot.port))()
    after = flags(dovecot, user)
    assert after == before
    unseen = after.split("mailbox: INBOX\nuid: 2\nflags: ", 1)[1].split("\n", 1)[0]
    assert "\\Seen" not in unseen


# --- faults ----------------------------------------------------------------------------------


@pytest.fixture
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imap_source, "RETRY_DELAYS", (0.0, 0.0, 0.0))


@pytest.fixture(params=["in this process", "in a helper"])
def headers_read(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Headers picked in this process (a small mailbox) or, as for a large one, in a helper."""
    if request.param == "in a helper":
        monkeypatch.setattr(mailpool, "LEAST", 100)
        monkeypatch.setattr(mailpool, "CHUNK", 50)


@pytest.mark.usefixtures("no_waiting", "headers_read")
def test_a_connection_cut_mid_fetch_is_resumed_with_nothing_lost_or_repeated(
    dovecot: Dovecot, relay: Callable[..., Relay], caplog: pytest.LogCaptureFixture
) -> None:
    user = account(dovecot, {"INBOX": [mail(n) for n in range(1, 1201)]})
    broken = relay(cut_after=150_000, cuts=2)
    sync = Sync(imap(user, broken.port))
    found = sync()
    assert ids(found) == sorted(f"in-{n}@example.nl" for n in range(1, 1201))
    assert len({item.ref for item in found}) == 1200
    assert broken.connections == 3
    assert caplog.text.count("broke while fetching headers") == 2
    assert sync.cursor.state["folders"]["INBOX"]["last_uid"] == 1200


@pytest.mark.usefixtures("no_waiting", "headers_read")
def test_a_connection_that_keeps_breaking_gives_up_and_the_next_sync_goes_on(
    dovecot: Dovecot, relay: Callable[..., Relay]
) -> None:
    user = account(dovecot, {"INBOX": [mail(n) for n in range(1, 1201)]})
    broken = relay(cut_after=100_000, cuts=100)
    sync = Sync(imap(user, broken.port))
    with pytest.raises(SourceError, match=r"^work: .* gave up after 4 attempts") as raised:
        sync()
    assert "\n" not in str(raised.value)
    read = len(sync.found)
    assert 0 < read < 1200
    assert sync.cursor.state["folders"]["INBOX"]["last_uid"] == read
    sync.source = imap(user, dovecot.port)
    sync()
    assert ids(sync.found) == sorted(f"in-{n}@example.nl" for n in range(1, 1201))


def test_a_folder_that_suddenly_reports_empty_is_a_warning_not_a_forgetting(
    dovecot: Dovecot, caplog: pytest.LogCaptureFixture
) -> None:
    user = account(dovecot, STANDARD)
    sync = Sync(imap(user, dovecot.port))
    sync()
    kept = dict(sync.cursor.state["folders"]["INBOX"])
    dovecot.doveadm("expunge", "-u", user.user, "mailbox", "INBOX", "all")
    assert sync() == []
    assert "the server now reports this folder empty; it had 2 messages" in caplog.text
    assert sync.cursor.state["folders"]["INBOX"] == kept
    append(dovecot, user, "INBOX", mail(30))
    assert ids(sync()) == ["in-30@example.nl"]


# --- errors a user can act on ----------------------------------------------------------------


def test_a_wrong_password_is_one_line_naming_the_source(own_dovecot: Dovecot) -> None:
    user = account(own_dovecot, {"INBOX": [mail(1)]})
    source = imap(Account(user.user, "not-it", user.home), own_dovecot.port)
    with pytest.raises(SourceError) as raised:
        list(source.scan(Cursor()))
    message = str(raised.value)
    assert message.startswith(f"work: 127.0.0.1 refused the login for '{user.user}'")
    assert "wrong user name or password" in message
    assert "\n" not in message


def test_a_missing_secret_is_reported_before_connecting(tmp_path: Path) -> None:
    options = ImapOptions(type="imap", host="mail.example.org", username="sam",
                          password_file=tmp_path / "nope")  # fmt: skip
    context = Context("work", ZoneInfo("UTC"), NOW, secret=lambda o: secrets.resolve(o, "work"))
    with pytest.raises(SourceError, match=r"^work: password_file .*nope cannot be read"):
        list(ImapSource(options, context).scan(Cursor()))
    bare = ImapOptions(type="imap", host="mail.example.org", username="sam")
    [problem] = ImapSource(bare, context).check()
    assert problem.startswith("work needs a secret: set password = ")


def test_an_unreachable_server_is_one_line_naming_the_source() -> None:
    port = free_port()  # nothing listens there
    source = imap(Account("sam", "x", Path()), port)
    [problem] = source.check()
    assert problem == f"work: 127.0.0.1:{port} refused the connection; check host and port"


@pytest.mark.parametrize(("security", "tls_port"), [("tls", True), ("starttls", False)])
def test_tls_is_verified_against_the_ca_file(
    dovecot: Dovecot, security: str, tls_port: bool
) -> None:
    user = account(dovecot, {"INBOX": [mail(1)]})
    port = dovecot.tls_port if tls_port else dovecot.port
    trusted = imap(user, port, security=security, ca_file=str(dovecot.ca_file))
    assert ids(Sync(trusted)()) == ["in-1@example.nl"]
    untrusted = imap(user, port, security=security)
    with pytest.raises(SourceError, match=r"^work: the certificate of 127.0.0.1 cannot be trusted"):
        list(untrusted.scan(Cursor()))


def test_plain_imap_is_refused_for_a_remote_host_and_ports_follow_security() -> None:
    keys = {"type": "imap", "username": "sam", "password": {"keyring": "mail"}}
    with pytest.raises(ValidationError, match="allowed only for a server on this machine"):
        ImapOptions.model_validate({**keys, "host": "mail.example.org", "security": "none"})
    assert ImapOptions.model_validate({**keys, "host": "localhost", "security": "none"})
    assert ImapOptions.model_validate({**keys, "host": "h"}).server_port == 993
    starttls = ImapOptions.model_validate({**keys, "host": "h", "security": "starttls"})
    assert starttls.server_port == 143
    with pytest.raises(ValidationError, match="oauth2_token_command"):
        ImapOptions.model_validate({**keys, "host": "h", "auth": "oauth2"})


def test_check_logs_the_folders_it_would_read_with_their_counts(
    dovecot: Dovecot, relay: Callable[..., Relay], caplog: pytest.LogCaptureFixture
) -> None:
    user = account(dovecot, STANDARD)
    watched = relay()
    caplog.set_level(logging.INFO)
    assert imap(user, watched.port).check() == []
    assert "would read INBOX (2 messages)" in caplog.text
    assert "would read Verzonden (1 messages)" in caplog.text
    assert "Ongewenst" not in caplog.text
    assert watched.commands()[-1] == "LOGOUT"
    assert "EXAMINE" not in watched.commands()


# --- what headers say ------------------------------------------------------------------------


def test_encoded_words_and_raw_8bit_headers_are_read_as_written(dovecot: Dovecot) -> None:
    encoded = mail(1, sender="=?utf-8?b?w4ltaWxlIE3DvGxsZXI=?= <emile@example.fr>",
                   subject="=?iso-8859-1?q?R=E9union_=E0_Z=FCrich?=")  # fmt: skip
    utf8 = mail(2, sender="Zoë Øster <zoe@example.dk>", subject="Møde på fredag")
    latin1 = mail(3, subject="Café").replace("Café".encode(), "Café".encode("latin-1"))
    user = account(dovecot, {"INBOX": [encoded, utf8, latin1]})
    found = {item.message_id: item for item in Sync(imap(user, dovecot.port))()}
    assert found["in-1@example.nl"].title == "Réunion à Zürich"
    assert found["in-1@example.nl"].sender.name == "Émile Müller"  # type: ignore[union-attr]
    assert found["in-2@example.nl"].title == "Møde på fredag"
    assert found["in-2@example.nl"].sender.name == "Zoë Øster"  # type: ignore[union-attr]
    assert found["in-3@example.nl"].title == "Café"


def test_a_message_without_sender_is_skipped_with_a_warning_naming_it(
    dovecot: Dovecot, caplog: pytest.LogCaptureFixture
) -> None:
    user = account(dovecot, {"INBOX": [mail(1).replace(b"From: ", b"X-Old-From: "), mail(2)]})
    sync = Sync(imap(user, dovecot.port))
    assert ids(sync()) == ["in-2@example.nl"]
    assert f"imap://{user.user}@127.0.0.1/INBOX;UIDVALIDITY=" in caplog.text
    assert "/;UID=1: no From address" in caplog.text
    assert sync.cursor.state["folders"]["INBOX"]["last_uid"] == 2


def test_mail_that_arrived_and_went_between_syncs_reads_nothing_and_moves_on(
    dovecot: Dovecot, relay: Callable[..., Relay]
) -> None:
    user = account(dovecot, {"INBOX": [mail(1), mail(2)]})
    watched = relay()
    sync = Sync(imap(user, watched.port))
    sync()
    append(dovecot, user, "INBOX", mail(3))
    dovecot.doveadm("expunge", "-u", user.user, "mailbox", "INBOX", "uid", "3")
    assert sync() == []  # `UID 3:*` answers UID 2, the last old one: not read again
    assert sync.cursor.state["folders"]["INBOX"]["uidnext"] == 4
    before = len(watched.commands())
    assert sync() == []
    assert "EXAMINE" not in watched.commands()[before:]


def test_a_cursor_state_that_makes_no_sense_is_read_afresh(dovecot: Dovecot) -> None:
    user = account(dovecot, {"INBOX": [mail(1)]})
    sync = Sync(imap(user, dovecot.port))
    sync.cursor.state = {"folders": {"INBOX": {"uidvalidity": "x", "last_uid": None}, "Oud": 3}}
    assert ids(sync()) == ["in-1@example.nl"]
    assert set(sync.cursor.state["folders"]) == {"INBOX"}


# --- Gmail, scripted: Dovecot has no X-GM-EXT-1 ----------------------------------------------

TOKEN = "ya29.test-token"
GMAIL_FOLDERS: dict[str, list[tuple[int, int, bytes]]] = {}  # label -> (uid, X-GM-MSGID, mail)


class ScriptedGmail(socketserver.StreamRequestHandler):
    """Enough of Gmail's IMAP for a sync: X-GM-EXT-1, OAUTHBEARER, labels, no ESEARCH."""

    def handle(self) -> None:
        self.say("* OK Gimap ready for requests")
        folder = "INBOX"
        while line := self.rfile.readline():
            tag, _, rest = line.decode().rstrip("\r\n").partition(" ")
            command, _, args = rest.partition(" ")
            verb = f"{command} {args.split(' ', 1)[0]}" if command == "UID" else command
            if verb == "AUTHENTICATE" and not self.authenticated():
                self.say(f"{tag} NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)")
                continue
            if verb == "EXAMINE":
                folder = args.strip('"')
            self.answer(verb, args, folder)
            self.say(f"{tag} OK Success")
            if verb == "LOGOUT":
                return

    def answer(self, verb: str, args: str, folder: str) -> None:
        mails = GMAIL_FOLDERS.get(args.split('"')[1] if verb == "STATUS" else folder, [])
        if verb == "CAPABILITY":
            self.say("* CAPABILITY IMAP4rev1 UNSELECT IDLE X-GM-EXT-1 AUTH=OAUTHBEARER")
        elif verb == "LIST":
            for name in GMAIL_FOLDERS:
                self.say(f'* LIST (\\HasNoChildren) "/" "{name}"')
        elif verb == "STATUS":
            self.say(f'* STATUS "x" (MESSAGES {len(mails)} UIDNEXT {len(mails) + 1} UIDVALIDITY 7)')
        elif verb == "EXAMINE":
            self.say(f"* {len(mails)} EXISTS\r\n* OK [UIDVALIDITY 7]")
            self.say(f"* OK [UIDNEXT {len(mails) + 1}]")
        elif verb == "UID SEARCH":
            self.say("* SEARCH " + " ".join(str(uid) for uid, _, _ in mails))
        elif verb == "UID FETCH":
            for uid, gmail_id, data in mails:
                label = f"X-GM-MSGID {gmail_id} " if "X-GM-MSGID" in args else ""
                self.wfile.write(
                    f'* {uid} FETCH ({label}UID {uid} INTERNALDATE "01-Mar-2024 10:00:00 +0000" '
                    f"BODY[HEADER.FIELDS (FROM TO)] {{{len(data)}}}\r\n".encode()
                    + data
                    + b")\r\n"
                )

    def authenticated(self) -> bool:
        self.say("+ ")
        return f"auth=Bearer {TOKEN}".encode() in base64.b64decode(self.rfile.readline())

    def say(self, text: str) -> None:
        self.wfile.write(text.encode() + b"\r\n")


@pytest.fixture
def gmail() -> Iterator[int]:
    GMAIL_FOLDERS.clear()
    server = socketserver.ThreadingTCPServer((HOST, 0), ScriptedGmail)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def oauth2(port: int, token: str = TOKEN, **keys: Any) -> ImapSource:
    command = [sys.executable, "-c", f"print({token!r})"]
    return imap(Account("sam@gmail.com", "", Path()), port, auth="oauth2",
                oauth2_token_command=command, **keys)  # fmt: skip


def test_on_gmail_one_message_under_several_labels_is_read_once(gmail: int) -> None:
    GMAIL_FOLDERS["INBOX"] = [(1, 1001, mail(1)), (2, 1002, mail(2))]
    GMAIL_FOLDERS["Klanten"] = [(1, 1002, mail(2)), (2, 1003, mail(3))]
    sync = Sync(oauth2(gmail, folders=["INBOX", "Klanten"]))
    found = sync()
    assert ids(found) == ["in-1@example.nl", "in-2@example.nl", "in-3@example.nl"]
    assert sorted(item.ref for item in found) == [f"X-GM-MSGID/{n}" for n in (1001, 1002, 1003)]
    GMAIL_FOLDERS["Later"] = [(1, 1001, mail(1)), (2, 1004, mail(4))]  # a label added since
    sync.source = oauth2(gmail, folders=["INBOX", "Klanten", "Later"])
    assert ids(sync()) == ["in-4@example.nl"]


def test_a_refused_oauth2_token_is_one_line_naming_the_source(gmail: int) -> None:
    refused = r"^work: 127.0.0.1 refused the login for 'sam@gmail.com': wrong user name or token"
    with pytest.raises(SourceError, match=refused + r" \(\[AUTHENTICATIONFAILED\]"):
        list(oauth2(gmail, token="expired").scan(Cursor()))
    failing = imap(Account("sam", "", Path()), gmail, auth="oauth2", oauth2_token_command=["false"])
    assert failing.check() == ["work: oauth2_token_command 'false' printed no token (exit code 1)"]


# --- the answer parser, on any bytes ---------------------------------------------------------


class Replay:
    """A socket that answers with `data`, cut into pieces of the given sizes, then closes."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self.data = data
        self.sizes = itertools.cycle(sizes or [len(data) or 1])

    def sendall(self, data: bytes) -> None:
        pass

    def recv(self, size: int) -> bytes:
        size = next(self.sizes)
        piece, self.data = self.data[:size], self.data[size:]
        return piece


def fetch_answer(*headers: bytes) -> bytes:
    answer = b"* 7 EXISTS\r\n* 1 FETCH (FLAGS (\\Seen))\r\n"
    for uid, header in enumerate(headers, start=1):
        answer += (b'* %d FETCH (UID %d INTERNALDATE " 1-Mar-2024 10:00:00 +0100" '
                   b"BODY[HEADER.FIELDS (FROM DATE)] {%d}\r\n%s)\r\n") % (
                       uid, uid, len(header), header)  # fmt: skip
    return answer + b"S1 OK Fetch completed.\r\n"


def test_fetch_answers_are_read_across_any_cut_of_the_stream() -> None:
    header = b"From: Anna <anna@example.nl>\r\nSubject: {5}\r\n\r\n"
    answer = fetch_answer(header, b"", b'From: "x)" <x@y.nl>\r\n\r\n')
    answer += b'* 9 FETCH (UID 9 BODY[HEADER.FIELDS (FROM)] "From: q@example.nl\\r\\n")\r\n'
    for size in (1, 2, 7, 64, len(answer)):
        found = list(fetched(Wire(Replay(answer, [size])).run(b"UID FETCH 1:* (UID)")))
        assert [item.uid for item in found] == [1, 2, 3]  # the S1 OK ends it; 9 is never read
        assert found[0] == Fetched(1, header, b" 1-Mar-2024 10:00:00 +0100")
        assert internal_date(found[0].internaldate) == datetime(2024, 3, 1, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    "written",
    [b"01-Jan-0001 00:00:00 +0100", b"31-Dec-9999 23:30:00 -0100", b"31-Jun-2024 10:00:00 +0000",
     b"1-Xyz-2024 10:00:00 +0000", b"1-Mar-2024 10:00:00 +2400", b"yesterday"],
)  # fmt: skip
def test_an_internaldate_no_datetime_can_hold_is_unreadable_not_a_crash(written: bytes) -> None:
    assert internal_date(written) is None


def test_a_header_sent_as_a_quoted_string_is_read() -> None:
    answer = b'* 1 FETCH (UID 4 BODY[HEADER.FIELDS (FROM)] "From: \\"Q\\" <q@example.nl>")\r\n'
    [found] = fetched(Wire(Replay(answer + b"S1 OK\r\n", [])).run(b"UID FETCH 4 (UID)"))
    assert found.header == b'From: "Q" <q@example.nl>'


def check_any_answer(answer: bytes, sizes: list[int]) -> None:
    try:
        for item in fetched(Wire(Replay(answer, sizes)).run(b"UID FETCH 1:* (UID)")):
            assert item.uid >= 0
            at = internal_date(item.internaldate) or NOW
            parse = mailheaders.parse_headers(item.header)
            parse.interaction(source="work", ref="x", evidence="x", fallback_at=at)
    except SourceError:
        pass  # a broken stream ends the scan with a message; nothing else may escape


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.lists(st.integers(1, 50), max_size=5))
def test_random_answer_bytes_give_messages_or_a_source_error(data: bytes, sizes: list[int]) -> None:
    check_any_answer(data, sizes)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 9999), st.binary(max_size=3), st.integers(0, 3)), max_size=8),
    st.lists(st.integers(1, 80), max_size=4),
)
def test_mutated_fetch_answers_give_messages_or_a_source_error(
    edits: list[tuple[int, bytes, int]], sizes: list[int]
) -> None:
    answer = bytearray(fetch_answer(mail(1), mail(2, sender="=?utf-8?q?Z=C3=B6e?= <z@x.nl>")))
    for position, inserted, removed in edits:
        at = position % (len(answer) + 1)
        answer[at : at + removed] = inserted
    check_any_answer(bytes(answer), sizes)


@given(
    st.lists(st.tuples(st.integers(1, 3000), st.integers(0, 40)), max_size=12),
    st.integers(0, 3000),
    st.integers(1, 50),
)
def test_windows_cover_every_uid_after_the_last_once_in_order(
    spans: list[tuple[int, int]], after: int, size: int
) -> None:
    uids = sorted({uid for low, length in spans for uid in range(low, low + length + 1)})
    answer = [(b"* SEARCH " + b" ".join(b"%d" % uid for uid in uids), None)]
    covered = []
    for window in windows(searched(answer), after, size):
        inside = [u for part in window.split(",") for u in expand(part)]
        assert 0 < len(inside) <= size
        covered += inside
    assert covered == [uid for uid in uids if uid > after]


def expand(part: str) -> list[int]:
    low, _, high = part.partition(":")
    return list(range(int(low), int(high or low) + 1))


def test_esearch_ranges_are_read() -> None:
    answer = [(b'* ESEARCH (TAG "S2") UID ALL 3:5,9,12:11', None), (b"* 3 EXISTS", None)]
    assert searched(answer) == [(3, 5), (9, 9), (11, 12)]
    assert searched([(b'* ESEARCH (TAG "S2") UID', None)]) == []
