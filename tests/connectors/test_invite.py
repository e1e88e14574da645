"""The invite sink: follow-ups as calendar invitations, sent to a real SMTP server on 127.0.0.1.

Each test reads the mail back as the receiving program would: the MIME tree, then the iCalendar
inside it with icalendar. The shared `SinkContract` does not apply: it reads the calendar back,
and a mail sink can only send (see `test_read_back_knows_nothing_and_reports_open`).
"""

from __future__ import annotations

import socket
import tomllib
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import icalendar
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from connectors import invite
from connectors.base import Context, Sink, SinkError, sink_class
from connectors.invite import InviteOptions, InviteSink
from syncd import config as configuration
from syncd import engine, secrets
from syncd.model import FollowUpStatus, ReminderState
from syncd.store import Store
from tests import fakes
from tests.connectors.test_icsfile import BERLIN, STAMP, UID, follow_up
from tests.servers.smtp import SmtpServer, free_port, smtp_server
from tests.test_engine import ME, card, mail
from tests.test_engine import NOW as ENGINE_NOW

NOW = datetime(2024, 4, 2, 9, 0, tzinfo=BERLIN)
SYNCD = "syncd@example.org"
ADA = "ada@example.com"
PASSWORD = "correct horse battery staple"


def options(server: SmtpServer | None = None, **keys: Any) -> InviteOptions:
    """Options as the config file would give them (`from` is a key there)."""
    table: dict[str, Any] = {"type": "invite", "host": "127.0.0.1", "security": "none"}
    if server is not None:
        table |= {"port": server.port, "security": server.security}
        table |= {"ca_file": server.ca_file} if server.ca_file else {}
    table |= {"from": f"syncd <{SYNCD}>", "to": f"Ada Lovelace <{ADA}>"} | keys
    return InviteOptions.model_validate(table, context={"base_dir": Path("/config")})


def new_context() -> Context:
    return Context("invitations", BERLIN, NOW, secret=lambda o: secrets.resolve(o, "invitations"))


def sink_for(server: SmtpServer, **keys: Any) -> InviteSink:
    return InviteSink(options(server, **keys), new_context())


def calendar_of(message: EmailMessage) -> icalendar.Calendar:
    (part,) = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    return icalendar.Calendar.from_ical(part.get_content())


def event_of(message: EmailMessage) -> icalendar.Event:
    (event,) = calendar_of(message).walk("VEVENT")
    return event


@pytest.fixture(scope="module")
def plain() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def server(plain: SmtpServer) -> SmtpServer:
    plain.deliveries.clear()
    return plain


@pytest.fixture
def sink(server: SmtpServer) -> InviteSink:
    return sink_for(server)


# -- the invitation as a mail program sees it -----------------------------------------------------


def test_the_registry_names_the_sink() -> None:
    assert sink_class("invite") is InviteSink
    assert isinstance(InviteSink(options(), new_context()), Sink)


def test_the_message_is_laid_out_for_every_calendar(server: SmtpServer, sink: InviteSink) -> None:
    sink.put(follow_up())
    (delivery,) = server.deliveries
    assert (delivery.mail_from, delivery.rcpt_tos) == (SYNCD, (ADA,))
    message = delivery.message
    tree = [(part.get_content_type(), part.get_content_disposition()) for part in message.walk()]
    assert tree == [
        ("multipart/mixed", None),
        ("multipart/alternative", None),
        ("text/plain", None),
        ("text/calendar", None),
        ("application/ics", "attachment"),
    ]
    # The header as RFC 6047 writes it: Outlook and Gmail look for the method here.
    assert b"Content-Type: text/calendar; method=REQUEST; charset=UTF-8\r\n" in delivery.data
    inline = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
    attached = next(p for p in message.walk() if p.get_content_type() == "application/ics")
    assert attached.get_filename() == "invite.ics"
    assert attached.get_content() == inline.get_content().encode()


def test_the_headers_name_the_follow_up(server: SmtpServer, sink: InviteSink) -> None:
    sink.put(follow_up())
    message = server.messages[0]
    assert message["From"] == f"syncd <{SYNCD}>"
    assert message["To"] == f"Ada Lovelace <{ADA}>"
    assert message["Subject"] == "Get in touch with Ada Lovelace"
    assert message["Message-ID"] == "<syncd-3f2a9c-1.0@syncd>"
    assert message["Date"].datetime == NOW
    assert message["Auto-Submitted"] == "auto-generated"  # syncd's mail sources skip it
    assert "In-Reply-To" not in message


def test_a_task_becomes_an_event_at_nine_on_its_day(server: SmtpServer, sink: InviteSink) -> None:
    sink.put(follow_up())
    calendar = calendar_of(server.messages[0])
    assert (calendar["METHOD"], calendar["VERSION"]) == ("REQUEST", "2.0")
    event = event_of(server.messages[0])
    assert event["UID"] == UID
    assert event["SEQUENCE"] == 0
    assert event["SUMMARY"] == "Get in touch with Ada Lovelace"
    # 09:00 in Berlin on the due day (summer time): 07:00 UTC, for 15 minutes.
    assert event.decoded("DTSTART") == datetime(2024, 5, 3, 9, tzinfo=BERLIN)
    assert event.decoded("DTEND") == datetime(2024, 5, 3, 7, 15, tzinfo=UTC)
    assert "DURATION" not in event  # DTEND instead: more invitation readers understand it
    assert event["TRANSP"] == "TRANSPARENT"
    assert event.decoded("DTSTAMP") == STAMP
    assert event["X-SYNCD-PERSON"] == "3f2a9c"


def test_organizer_is_syncd_and_the_user_is_asked(server: SmtpServer, sink: InviteSink) -> None:
    sink.put(follow_up())
    event = event_of(server.messages[0])
    assert event["ORGANIZER"] == f"mailto:{SYNCD}"
    assert event["ORGANIZER"].params["CN"] == "syncd"
    attendee = event["ATTENDEE"]
    assert attendee == f"mailto:{ADA}"
    assert dict(attendee.params) == {
        "CN": "Ada Lovelace",
        "PARTSTAT": "NEEDS-ACTION",
        "RSVP": "TRUE",
        "ROLE": "REQ-PARTICIPANT",
    }


def test_an_event_keeps_its_own_time_and_length(server: SmtpServer, sink: InviteSink) -> None:
    start = datetime(2024, 5, 6, 14, 30, tzinfo=BERLIN)
    sink.put(follow_up(component="VEVENT", start=start, duration=timedelta(minutes=20)))
    event = event_of(server.messages[0])
    assert event.decoded("DTSTART") == start
    assert event.decoded("DTEND") == start + timedelta(minutes=20)


def test_the_text_part_says_what_the_calendar_says(server: SmtpServer, sink: InviteSink) -> None:
    sink.put(follow_up(description="Zuletzt: Kaffee in Köln ☕", summary="Bijpraten met Jörg"))
    message = server.messages[0]
    assert message["Subject"] == "Bijpraten met Jörg"
    text = message.get_body(("plain",))
    assert text is not None
    assert text.get_content().splitlines() == [
        "Bijpraten met Jörg",
        "",
        "Zuletzt: Kaffee in Köln ☕",
        "mailto:ada@example.org",
        "tel:+493012345678",
        "https://www.linkedin.com/in/ada",
    ]
    assert event_of(message)["DESCRIPTION"] == "\n".join(text.get_content().splitlines()[2:])


def test_a_summary_cannot_add_headers_or_recipients(server: SmtpServer, sink: InviteSink) -> None:
    sink.put(follow_up(summary="Ada\r\nBcc: eve@example.net\nX-Evil: 1"))
    (delivery,) = server.deliveries
    assert delivery.rcpt_tos == (ADA,)
    assert delivery.message["Subject"] == "Ada Bcc: eve@example.net X-Evil: 1"
    assert "Bcc" not in delivery.message
    assert "X-Evil" not in delivery.message


# -- changes and withdrawals ----------------------------------------------------------------------


def test_a_change_is_the_same_uid_with_a_higher_sequence(
    server: SmtpServer, sink: InviteSink
) -> None:
    first = sink.put(follow_up())
    second = sink.put(follow_up(due=date(2024, 5, 10), sequence=1, etag=first))
    assert second != first
    old, new = server.messages
    assert event_of(old)["UID"] == event_of(new)["UID"] == UID
    assert (event_of(old)["SEQUENCE"], event_of(new)["SEQUENCE"]) == (0, 1)
    assert event_of(new).decoded("DTSTART") == datetime(2024, 5, 10, 9, tzinfo=BERLIN)
    # A new message each time, threaded under the first invitation.
    assert new["Message-ID"] == "<syncd-3f2a9c-1.1@syncd>"
    assert new["In-Reply-To"] == new["References"] == old["Message-ID"]


def test_an_invitation_already_sent_is_not_sent_again(server: SmtpServer, sink: InviteSink) -> None:
    tag = sink.put(follow_up())
    assert sink.put(follow_up(etag=tag)) == tag
    assert len(server.deliveries) == 1


def test_a_withdrawal_cancels_the_invitation(server: SmtpServer, sink: InviteSink) -> None:
    sink.put(follow_up(sequence=7))
    sink.remove(UID)
    cancel = server.messages[1]
    assert b"Content-Type: text/calendar; method=CANCEL; charset=UTF-8\r\n" in (
        server.deliveries[1].data
    )
    assert calendar_of(cancel)["METHOD"] == "CANCEL"
    event = event_of(cancel)
    assert (event["UID"], event["STATUS"]) == (UID, "CANCELLED")
    # The sink knows only the uid: the clock gives a SEQUENCE above any the engine hands out.
    assert event["SEQUENCE"] == int(NOW.timestamp()) > 7
    assert event["ORGANIZER"] == f"mailto:{SYNCD}"
    assert event["ATTENDEE"] == f"mailto:{ADA}"
    assert event.decoded("DTSTAMP") == NOW
    assert cancel["References"] == "<syncd-3f2a9c-1.0@syncd>"
    assert cancel["Subject"].startswith("Cancelled:")


def test_a_uid_that_cannot_be_written_is_refused(server: SmtpServer, sink: InviteSink) -> None:
    for uid in ("a\x00b", "\ufeffsyncd-1"):
        with pytest.raises(SinkError, match="UID"):
            sink.put(follow_up(uid))
        with pytest.raises(SinkError, match="UID"):
            sink.remove(uid)
    assert server.deliveries == []


def test_read_back_knows_nothing_and_reports_open() -> None:
    # No server at all: a mail sink never looks; a decline comes back through the mail sources.
    sink = InviteSink(options(port=free_port()), new_context())
    assert list(sink.read_back([UID, "other@syncd"])) == [
        ReminderState(UID, FollowUpStatus.OPEN),
        ReminderState("other@syncd", FollowUpStatus.OPEN),
    ]


def test_a_sync_pass_invites_once_and_withdraws_when_contact_comes_first(
    tmp_path: Path, memory: None, server: SmtpServer
) -> None:
    raw = {
        "me": {"emails": [ME], "timezone": "Europe/Amsterdam"},
        "state": {"database": "state.sqlite"},
        "sources": {"mail": {"type": "memory", "feed": "mail"},
                    "book": {"type": "memory", "feed": "book"}},
        "sinks": {"invitations": {"type": "invite", "host": "127.0.0.1", "port": server.port,
                                  "security": "none", "from": SYNCD, "to": ME}},
        "cadence": {"default": "30d", "learn": False},
    }  # fmt: skip
    config = configuration.validate(raw, tmp_path)
    store = Store.open(config.state.database)
    fakes.FEEDS.update(book=[card("c1", "Jan de Vries", "jan@example.nl")])
    fakes.FEEDS.update(mail=[mail("m1", ME, ["jan@example.nl"], 45)])
    assert engine.sync(config, store, ENGINE_NOW).sink_errors == []
    (request,) = server.messages
    event = event_of(request)
    assert (request["To"], request["Subject"]) == (ME, "Catch up with Jan de Vries")
    assert event.decoded("DTSTART") == datetime(2026, 11, 23, 8, tzinfo=UTC)  # 09:00 Amsterdam
    engine.sync(config, store, ENGINE_NOW + timedelta(minutes=5))
    assert len(server.deliveries) == 1  # nothing changed: no second mail
    fakes.FEEDS["mail"].append(mail("m2", "jan@example.nl", [ME], 0))
    assert engine.sync(config, store, ENGINE_NOW + timedelta(hours=1)).withdrawn == 1
    cancel = server.messages[1]
    assert calendar_of(cancel)["METHOD"] == "CANCEL"
    assert event_of(cancel)["UID"] == event["UID"]


# -- TLS and login --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def starttls() -> Iterator[SmtpServer]:
    with smtp_server("starttls", users={"syncd": PASSWORD}) as server:
        yield server


@pytest.fixture(scope="module")
def implicit_tls() -> Iterator[SmtpServer]:
    with smtp_server("tls") as server:
        yield server


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "smtp-password"
    path.write_text(PASSWORD + "\n")
    return path


def test_starttls_verified_against_the_servers_authority(starttls: SmtpServer) -> None:
    starttls.deliveries.clear()
    sink_for(starttls).put(follow_up())
    assert len(starttls.deliveries) == 1


def test_starttls_refuses_a_certificate_it_cannot_trust(starttls: SmtpServer) -> None:
    starttls.deliveries.clear()
    sink = sink_for(starttls, ca_file=None)
    with pytest.raises(SinkError, match=r"cannot be trusted.*set ca_file"):
        sink.put(follow_up())
    assert starttls.deliveries == []
    assert "cannot be trusted" in sink.check()[0]


def test_implicit_tls(implicit_tls: SmtpServer) -> None:
    implicit_tls.deliveries.clear()
    sink_for(implicit_tls).put(follow_up())
    assert len(implicit_tls.deliveries) == 1
    with pytest.raises(SinkError, match="cannot be trusted"):
        sink_for(implicit_tls, ca_file=None).put(follow_up())
    assert len(implicit_tls.deliveries) == 1


def test_tls_against_a_plain_server_says_which_setting(server: SmtpServer) -> None:
    with pytest.raises(SinkError, match='does not offer STARTTLS; use security = "tls"'):
        InviteSink(options(port=server.port, security="starttls"), new_context()).put(follow_up())
    with pytest.raises(SinkError, match=r"TLS with 127.0.0.1.* failed.*check security"):
        InviteSink(options(port=server.port, security="tls"), new_context()).put(follow_up())
    assert server.deliveries == []


def test_login_with_a_password_file(starttls: SmtpServer, password_file: Path) -> None:
    starttls.deliveries.clear()
    sink_for(starttls, username="syncd", password_file=password_file).put(follow_up())
    (delivery,) = starttls.deliveries
    assert delivery.login == "syncd"


def test_a_wrong_password_is_a_clear_error(starttls: SmtpServer, tmp_path: Path) -> None:
    starttls.deliveries.clear()
    wrong = tmp_path / "wrong"
    wrong.write_text("hunter2\n")
    sink = sink_for(starttls, username="syncd", password_file=wrong)
    with pytest.raises(SinkError, match="refused the login for 'syncd': wrong user name or pass"):
        sink.put(follow_up())
    assert starttls.deliveries == []
    assert "refused the login" in sink.check()[0]


def test_a_missing_secret_is_named_before_connecting(tmp_path: Path) -> None:
    sink = InviteSink(
        options(username="syncd", password_file=tmp_path / "nope", port=free_port()),
        new_context(),
    )
    with pytest.raises(SinkError, match=r"password_file .*nope cannot be read"):
        sink.put(follow_up())


def test_a_server_that_does_not_offer_login(server: SmtpServer, password_file: Path) -> None:
    # The test server, like most, offers AUTH only over TLS.
    sink = sink_for(server, username="syncd", password_file=password_file)
    with pytest.raises(SinkError, match="offers no login"):
        sink.put(follow_up())


# -- check ----------------------------------------------------------------------------------------


def test_check_logs_in_and_sends_nothing(starttls: SmtpServer, password_file: Path) -> None:
    starttls.deliveries.clear()
    assert sink_for(starttls, username="syncd", password_file=password_file).check() == []
    assert starttls.deliveries == []


def test_check_names_what_to_fix_when_nothing_listens() -> None:
    sink = InviteSink(options(port=free_port()), new_context())
    (problem,) = sink.check()
    assert "refused the connection; check host and port" in problem


def test_a_server_that_never_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(invite, "TIMEOUT", 0.3)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # accepts the connection, never greets
        sink = InviteSink(options(port=silent.getsockname()[1]), new_context())
        with pytest.raises(SinkError, match="did not answer"):
            sink.put(follow_up())


# -- options --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("security", "port"), [("tls", 465), ("starttls", 587), ("none", 25)])
def test_the_port_follows_security(security: str, port: int) -> None:
    assert options(security=security).server_port == port
    assert options(security=security, port=2525).server_port == 2525


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"host": "smtp.example.org"}, 'security = "none" would send'),
        ({"to": SYNCD}, "from and to are the same address"),
        ({"to": "ada at example.com"}, "is not a mail address"),
        ({"from": "syncd@example.org\r\nBcc: eve@example.net"}, "line breaks"),
        ({"username": "syncd"}, "needs a secret"),
        ({"password_command": ["pass", "smtp"]}, "no username"),
        ({"password": "hunter2"}, "refused"),
        ({"sender": SYNCD}, "Extra inputs are not permitted"),
    ],
)
def test_options_that_are_refused(keys: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        options(**keys)


# The block config.example.toml shows for this sink.
EXAMPLE = """
[sinks.invitations]
# Follow-ups as calendar invitations by mail, for a calendar syncd cannot write to (Gmail, Outlook,
# iCloud): each arrives as a 15-minute invitation; a change comes as an update, a follow-up no
# longer needed as a cancellation.
type = "invite"
# The SMTP server that sends them.
host = "smtp.example.org"
# "tls" (port 465), "starttls" (port 587), or "none" (only for a server on this machine).
security = "tls"
# Only when the server uses another port than the usual one for `security`.
# port = 465
# The SMTP login; leave username out for a server that needs none. The password comes from the
# keyring, a command or a file, never from this file.
username = "syncd@example.org"
password_command = ["pass", "show", "smtp/syncd"]
# syncd's own address: the organizer, to which your calendar sends replies. Not your own address.
from = "syncd <syncd@example.org>"
# Where the invitations go: your address, the one your calendar belongs to.
to = "me@example.org"
# A certificate authority to trust instead of the system's (a server with its own certificate).
# ca_file = "~/.config/syncd/smtp-ca.pem"
"""


def test_the_documented_example_is_valid() -> None:
    table = tomllib.loads(EXAMPLE)["sinks"]["invitations"]
    found = InviteOptions.model_validate(table, context={"base_dir": Path("/config")})
    assert (found.server_port, found.organizer, found.attendee.address) == (
        465,
        ("syncd", "syncd@example.org"),
        "me@example.org",
    )


# -- any input ------------------------------------------------------------------------------------

TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(summary=TEXT, description=TEXT, uid=TEXT, person=TEXT)
def test_any_text_arrives_or_is_refused_clearly(
    plain: SmtpServer, summary: str, description: str, uid: str, person: str
) -> None:
    plain.deliveries.clear()
    sink = sink_for(plain)
    reminder = follow_up(uid or UID, summary=summary, description=description, person_id=person)
    try:
        sink.put(reminder)
        refused = ""
    except SinkError as error:  # a UID that would not be found again under the same name
        refused = str(error)
    if refused:
        assert "UID" in refused
        assert plain.deliveries == []
        return
    (delivery,) = plain.deliveries
    event = event_of(delivery.message)
    assert event["UID"] == (uid or UID)
    assert "\n" not in delivery.message["Subject"]
    assert delivery.rcpt_tos == (ADA,)


@settings(max_examples=200, deadline=None)
@given(table=st.dictionaries(st.sampled_from(["host", "from", "to", "port", "security"]), TEXT))
def test_any_config_is_taken_or_refused_with_a_message(table: dict[str, Any]) -> None:
    try:
        options(**table)
        problems = []
    except ValidationError as error:
        problems = error.errors()
    assert all(problem["msg"] for problem in problems)
