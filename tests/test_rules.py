from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.config import Rules
from syncd.identity import normalise
from syncd.model import Channel, Direction, Identity, IdentityKind, Interaction, Party
from syncd.rules import Judge, classify, is_relationship

AT = datetime(2024, 5, 14, 9, 30, tzinfo=UTC)


def address(raw: str) -> Identity:
    """An address as the engine hands it to the rules: normalised."""
    found = normalise(Identity(IdentityKind.EMAIL, raw), "NL")
    assert found is not None
    return found


def party(raw: str, name: str = "", partstat: str = "", cutype: str = "") -> Party:
    return Party(address(raw), name, partstat, cutype)


ME = party("sanne@example.nl", "Sanne Bakker")
ME_PRIVATE = party("Sanne.Private@Example.com")
JAN = party("jan@vries.nl", "Jan de Vries")
PIET = party("piet@bakker.nl", "Piet Bakker")
JUDGE = Judge(
    me=frozenset([address("sanne@example.nl"), address("sanne.private@example.com")]),
    automated_senders=tuple(Rules().automated_senders),
    ignore=("@notifications.example.com", "boss@acme.com"),
)


def mail(sender: Party | None, *to: Party, **signals: str) -> Interaction:
    headers = {name.replace("_", "-"): value for name, value in signals.items()}
    return Interaction("mail", "<1@example.nl>", AT, Channel.EMAIL, sender=sender,
                       recipients=to, title="Offerte", signals=headers)  # fmt: skip


def meeting(organizer: Party | None, *attendees: Party, status: str = "CONFIRMED") -> Interaction:
    return Interaction("calendar", "ev-1", AT, Channel.MEETING, sender=organizer,
                       recipients=attendees, title="Koffie",
                       signals={"status": status})  # fmt: skip


def counterparts(ix: Interaction) -> set[Identity]:
    return {p.identity for p in ix.counterparts}


# --- mail ----------------------------------------------------------------------------------------


def test_mail_i_send_is_contact_out_with_every_recipient_but_me() -> None:
    found = classify(mail(ME, JAN, PIET, ME_PRIVATE), JUDGE)
    assert found.counts
    assert found.direction is Direction.OUT
    assert counterparts(found) == {JAN.identity, PIET.identity}


def test_mail_from_another_of_my_addresses_in_other_case_is_mine() -> None:
    me_shouting = party("SANNE.PRIVATE@EXAMPLE.COM")
    found = classify(mail(me_shouting, JAN), JUDGE)
    assert found.direction is Direction.OUT
    assert counterparts(found) == {JAN.identity}


def test_mail_a_person_sends_me_is_contact_in_with_them() -> None:
    found = classify(mail(JAN, ME, PIET), JUDGE)
    assert found.counts
    assert found.direction is Direction.IN
    assert counterparts(found) == {JAN.identity}


def test_mail_to_myself_only_is_not_contact() -> None:
    found = classify(mail(ME, ME_PRIVATE, ME), JUDGE)
    assert not found.counts
    assert found.rule
    assert not found.counterparts


def test_mail_without_a_sender_is_not_contact() -> None:
    found = classify(mail(None, ME), JUDGE)
    assert not found.counts
    assert found.rule


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("list-id", "Freelancers NL <freelancers.lists.example.org>"),
        ("list-unsubscribe", "<mailto:leave@news.example.com>, <https://news.example.com/u/1>"),
        ("list-post", "<mailto:freelancers@lists.example.org>"),
        ("precedence", "bulk"),
        ("precedence", "list"),
        ("precedence", "junk"),
        ("precedence", " Bulk "),
        ("auto-submitted", "auto-replied"),
        ("auto-submitted", "auto-generated"),
        ("auto-submitted", "auto-notified"),
        ("x-autoreply", "yes"),
        ("x-autorespond", "Out of office"),
        ("return-path", "<>"),
        ("return-path", ""),
    ],
)
def test_bulk_and_automated_mail_never_counts(header: str, value: str) -> None:
    found = classify(mail(JAN, ME, **{header: value}), JUDGE)
    assert not found.counts
    assert found.rule


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("auto-submitted", "no"),
        ("auto-submitted", "No"),
        ("precedence", "first-class"),
        ("return-path", "<jan@vries.nl>"),
        ("in-reply-to", "<0@example.nl>"),
    ],
)
def test_ordinary_headers_do_not_stop_mail_counting(header: str, value: str) -> None:
    assert classify(mail(JAN, ME, **{header: value}), JUDGE).counts


def test_my_own_mail_through_a_list_is_not_contact_with_its_readers() -> None:
    found = classify(mail(ME, JAN, PIET, list_id="<news.sanne.example.nl>"), JUDGE)
    assert not found.counts


@pytest.mark.parametrize(
    "sender",
    [
        "noreply@github.com",
        "no-reply@accounts.google.com",
        "MAILER-DAEMON@mx.example.nl",
        "postmaster@example.org",
        "donotreply@bank.nl",
        "do-not-reply@tickets.example.com",
        "bounces+12345@mail.example.com",
        "notifications@github.com",
        "noreply.invoices@shop.example",
    ],
)
def test_mail_from_automated_senders_never_counts(sender: str) -> None:
    found = classify(mail(party(sender), ME), JUDGE)
    assert not found.counts
    assert found.rule


@pytest.mark.parametrize(
    "sender", ["noreen@vries.nl", "noreplyfan@example.nl", "bouncer@club.nl", "info@acme.com"]
)
def test_people_whose_address_merely_resembles_a_robot_count(sender: str) -> None:
    assert classify(mail(party(sender), ME), JUDGE).counts


def test_mail_from_ignored_senders_and_domains_never_counts() -> None:
    assert not classify(mail(party("boss@acme.com"), ME), JUDGE).counts
    assert not classify(mail(party("digest@notifications.example.com"), ME), JUDGE).counts
    assert classify(mail(party("colleague@acme.com"), ME), JUDGE).counts


def test_a_user_ignored_address_is_dropped_from_my_recipients() -> None:
    judge = replace(JUDGE, ignored=frozenset([PIET.identity]))
    found = classify(mail(ME, JAN, PIET), judge)
    assert found.counts
    assert counterparts(found) == {JAN.identity}
    assert not classify(mail(ME, PIET), judge).counts


# --- meetings ------------------------------------------------------------------------------------


def test_a_meeting_with_someone_counts_for_them() -> None:
    found = classify(meeting(JAN, ME._replace(partstat="ACCEPTED"), JAN), JUDGE)
    assert found.counts
    assert found.direction is Direction.IN
    assert counterparts(found) == {JAN.identity}


def test_a_meeting_i_organise_is_contact_out() -> None:
    found = classify(meeting(ME, JAN._replace(partstat="ACCEPTED")), JUDGE)
    assert found.counts
    assert found.direction is Direction.OUT


@pytest.mark.parametrize("partstat", ["ACCEPTED", "TENTATIVE", "NEEDS-ACTION", ""])
def test_invited_but_not_declined_counts(partstat: str) -> None:
    assert classify(meeting(ME, JAN._replace(partstat=partstat)), JUDGE).counts


def test_a_cancelled_meeting_does_not_count() -> None:
    found = classify(meeting(ME, JAN, status="CANCELLED"), JUDGE)
    assert not found.counts
    assert "cancel" in (found.rule or "")


def test_someone_who_declined_is_dropped_and_the_others_still_count() -> None:
    found = classify(
        meeting(ME, JAN._replace(partstat="DECLINED"), PIET._replace(partstat="ACCEPTED")), JUDGE
    )
    assert found.counts
    assert counterparts(found) == {PIET.identity}


def test_a_meeting_everyone_else_declined_is_no_contact() -> None:
    found = classify(meeting(ME, JAN._replace(partstat="DECLINED")), JUDGE)
    assert not found.counts
    assert not found.counterparts


def test_an_organizer_who_declined_as_attendee_does_not_count() -> None:
    found = classify(
        meeting(JAN, ME._replace(partstat="ACCEPTED"), JAN._replace(partstat="DECLINED"),
                PIET._replace(partstat="ACCEPTED")),
        JUDGE,
    )  # fmt: skip
    assert counterparts(found) == {PIET.identity}


def people(count: int) -> list[Party]:
    return [party(f"guest{n}@example.org", partstat="ACCEPTED") for n in range(count)]


def test_a_meeting_of_max_attendees_counts_and_one_more_does_not() -> None:
    judge = replace(JUDGE, max_attendees=10)
    assert classify(meeting(ME, *people(9)), judge).counts  # me and nine others
    too_big = classify(meeting(ME, *people(10)), judge)
    assert not too_big.counts
    assert "max_attendees" in (too_big.rule or "")


def test_rooms_and_resources_are_not_people_and_do_not_count_toward_the_size() -> None:
    room = party("room-4@resource.calendar.google.com", "Vergaderzaal 4", "ACCEPTED", "ROOM")
    beamer = party("beamer@acme.com", "Beamer", "ACCEPTED", "RESOURCE")
    found = classify(meeting(ME, *people(9), room, beamer), replace(JUDGE, max_attendees=10))
    assert found.counts
    assert room.identity not in counterparts(found)
    assert beamer.identity not in counterparts(found)
    assert len(found.counterparts) == 9


def test_a_meeting_with_only_a_room_is_no_contact() -> None:
    room = party("room-4@resource.calendar.google.com", "Vergaderzaal 4", "ACCEPTED", "ROOM")
    assert not classify(meeting(ME, room), JUDGE).counts


def test_a_meeting_i_am_not_part_of_does_not_count() -> None:
    found = classify(meeting(JAN, PIET._replace(partstat="ACCEPTED")), JUDGE)
    assert not found.counts
    assert found.rule


def test_a_meeting_i_declined_does_not_count() -> None:
    found = classify(meeting(JAN, ME._replace(partstat="DECLINED"), PIET), JUDGE)
    assert not found.counts
    assert "declined" in (found.rule or "")


def test_a_meeting_i_declined_from_one_address_but_attend_from_another_counts() -> None:
    found = classify(
        meeting(JAN, ME._replace(partstat="DECLINED"), ME_PRIVATE._replace(partstat="ACCEPTED")),
        JUDGE,
    )
    assert found.counts


# --- messages and relationships ------------------------------------------------------------------


def chat(sender: Party, *to: Party, channel: Channel = Channel.WHATSAPP) -> Interaction:
    return Interaction("chat", "chat.txt:12", AT, channel, sender=sender, recipients=to)


def test_a_chat_message_counts_in_either_direction() -> None:
    incoming = classify(chat(JAN, ME), JUDGE)
    outgoing = classify(chat(ME, JAN), JUDGE)
    assert incoming.counts
    assert outgoing.counts
    assert (incoming.direction, outgoing.direction) == (Direction.IN, Direction.OUT)
    assert counterparts(incoming) == counterparts(outgoing) == {JAN.identity}


@pytest.mark.parametrize(
    ("channel", "direction", "listed"),
    [
        (Channel.EMAIL, Direction.OUT, True),
        (Channel.EMAIL, Direction.IN, False),
        (Channel.LINKEDIN, Direction.IN, False),
        (Channel.WHATSAPP, Direction.IN, False),
        (Channel.WHATSAPP, Direction.OUT, True),
        (Channel.MEETING, Direction.IN, True),
        (Channel.FOLLOWUP, Direction.OUT, True),
        (Channel.MANUAL, None, True),
    ],
)
def test_someone_who_only_wrote_to_me_is_not_a_relationship(
    channel: Channel, direction: Direction | None, listed: bool
) -> None:
    assert is_relationship(channel, direction) is listed


# --- properties ----------------------------------------------------------------------------------

PARTIES = st.builds(
    Party,
    st.sampled_from([ME.identity, ME_PRIVATE.identity, JAN.identity, PIET.identity,
                     address("noreply@x.org"), address("a@notifications.example.com"),
                     Identity(IdentityKind.PHONE, "+31612345678")]),
    st.text(max_size=5),
    st.sampled_from(["", "ACCEPTED", "DECLINED", "TENTATIVE", "declined"]),
    st.sampled_from(["", "INDIVIDUAL", "ROOM", "RESOURCE", "GROUP", "UNKNOWN"]),
)  # fmt: skip
SIGNALS = st.dictionaries(
    st.sampled_from(["list-id", "precedence", "auto-submitted", "x-autoreply", "return-path",
                     "status", "list-post", "subject"]),
    st.text(max_size=12),
)  # fmt: skip


@settings(max_examples=400)
@given(st.sampled_from(list(Channel)), st.none() | PARTIES, st.lists(PARTIES, max_size=14),
       SIGNALS, st.integers(2, 12))  # fmt: skip
def test_classify_never_raises_and_what_counts_has_someone_else_and_no_rule(
    channel: Channel, sender: Party | None, to: list[Party], signals: dict[str, str], size: int
) -> None:
    ix = Interaction("s", "r", AT, channel, sender=sender, recipients=tuple(to), signals=signals)
    found = classify(ix, replace(JUDGE, max_attendees=size))
    assert found.direction in (Direction.IN, Direction.OUT) or found.rule
    assert not any(JUDGE.is_me(p) for p in found.counterparts)
    if found.counts:
        assert found.rule is None
        assert found.counterparts
    else:
        assert found.rule
