from __future__ import annotations

import base64
from datetime import UTC, datetime
from email.utils import format_datetime, getaddresses, parsedate_to_datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.mailheaders import (
    HEADER_FIELDS,
    MailHeaders,
    _simple_addresses,
    addresses,
    clean_text,
    decode_words,
    header_end,
    parse_date,
    parse_headers,
)
from syncd.model import Channel, Identity, IdentityKind, Party

FALLBACK = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)

# As Dovecot delivers it: trace fields first, then what the sender's client wrote.
DOVECOT = b"""Return-Path: <jan@devries.nl>
Delivered-To: sanne@example.nl
Received: from mx1.devries.nl (mx1.devries.nl [192.0.2.10])
\tby mail.example.nl (Postfix) with ESMTPS id 4Tq2mX0Zz9z9rxL
\tfor <sanne@example.nl>; Tue, 27 Feb 2024 10:15:02 +0100 (CET)
DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=devries.nl; s=2023;
\th=from:to:cc:subject:date:message-id; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;
\tb=dGhpcyBpcyBub3QgYSByZWFsIHNpZ25hdHVyZQ==
From: "Vries, Jan de" <jan@devries.nl>
To: Sanne Bakker <sanne@example.nl>,
 =?utf-8?q?Jos=C3=A9_Garc=C3=ADa?= <jose@correo.es>
Cc: pieter@example.com (Pieter Jansen)
Subject: =?utf-8?b?T2ZmZXJ0ZSB2b29yIGhldCBuaWV1d2Ugb250d2VycA==?=
 =?utf-8?b?IOKAkyB2ZXJzaWUgMg==?=
Date: Tue, 27 Feb 2024 10:14:58 +0100
Message-ID: <CAF=9x1+QkZ@mail.devries.nl>
MIME-Version: 1.0
Content-Type: text/plain; charset="UTF-8"
"""


def email(value: str, name: str = "") -> Party:
    return Party(Identity(IdentityKind.EMAIL, value), name)


def parse(*lines: str | bytes) -> MailHeaders:
    raw = b"".join(line if isinstance(line, bytes) else line.encode() for line in lines)
    return parse_headers(raw)


def interaction_of(headers: MailHeaders) -> object:
    return headers.interaction(source="mail", ref="r", evidence="e", fallback_at=FALLBACK)


# --- a real delivered message -----------------------------------------------------------------


def test_a_delivered_message_becomes_one_email_interaction() -> None:
    headers = parse_headers(DOVECOT)
    found = headers.interaction(
        source="mail", ref="INBOX/1709025302.M1P2.host", evidence="<x>", fallback_at=FALLBACK
    )

    assert found is not None
    assert found.channel is Channel.EMAIL
    assert found.sender == email("jan@devries.nl", "Vries, Jan de")
    assert found.recipients == (
        email("sanne@example.nl", "Sanne Bakker"),
        email("jose@correo.es", "José García"),
        email("pieter@example.com", "Pieter Jansen"),
    )
    assert found.title == "Offerte voor het nieuwe ontwerp \u2013 versie 2"
    assert found.at == datetime(2024, 2, 27, 9, 14, 58, tzinfo=UTC)
    assert found.message_id == "CAF=9x1+QkZ@mail.devries.nl"
    assert found.signals == {"return-path": "<jan@devries.nl>"}
    assert (found.source, found.ref, found.evidence) == (
        "mail",
        "INBOX/1709025302.M1P2.host",
        "<x>",
    )


def test_crlf_line_ends_read_the_same() -> None:
    assert parse_headers(DOVECOT.replace(b"\n", b"\r\n")) == parse_headers(DOVECOT)


def test_an_imap_header_fields_answer_parses_as_it_comes() -> None:
    # BODY.PEEK[HEADER.FIELDS (...)] returns the wanted lines and the blank line ending them.
    wanted = tuple(name.lower() for name in HEADER_FIELDS)
    lines = DOVECOT.decode().replace("\n ", " ").replace("\n\t", " ").splitlines()
    answer = "\r\n".join(line for line in lines if line.split(":")[0].lower() in wanted)
    assert parse_headers(answer.encode() + b"\r\n\r\n") == parse_headers(DOVECOT)


def test_header_fields_names_every_field_the_parser_reads() -> None:
    every = "".join(f"{name}: <v{i}@x.org>\n" for i, name in enumerate(HEADER_FIELDS))
    headers = parse(every, "X-Other: <other@x.org>\n", "Reply-To: reply@x.org\n")
    assert headers == parse(every)
    assert set(headers.signals) == {name.lower() for name in HEADER_FIELDS[7:]}


def test_header_end_finds_the_blank_line_in_either_line_ending() -> None:
    assert header_end(b"From: a@x\nTo: b@y\n\nbody") == 18
    assert header_end(b"From: a@x\r\nTo: b@y\r\n\r\nbody") == 20
    assert header_end(b"From: a@x\nTo: b") == -1


# --- encoded words and 8-bit headers ----------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("=?utf-8?q?Jos=C3=A9_M=C3=BCller?=", "José Müller"),
        ("=?UTF-8?B?Sm9zw6kgTcO8bGxlcg==?=", "José Müller"),
        ("=?iso-8859-1?q?Andr=E9_Gr=FCn?=", "André Grün"),
        ("=?ISO-8859-1?Q?Fran=E7ois?= Dupont", "François Dupont"),
        ("=?windows-1252?q?Preis_100_=80_=96_netto?=", "Preis 100 € \u2013 netto"),
        ("=?koi8-r?b?8NLJ18XU?=", "Привет"),  # KOI8-R as Russian mail clients send it
        ("=?utf-8?q?caf=C3=A9?= =?utf-8?q?_cr=C3=A8me?=", "café crème"),
        ("=?utf-8*en?q?hello?=", "hello"),  # RFC 2231 language tag
        ("Re: =?utf-8?q?Gr=C3=BC=C3=9Fe?= aus Berlin", "Re: Grüße aus Berlin"),
        ("=?x-unknown?q?caf=C3=A9?=", "café"),
        ("=?utf-8?b?not base64!?=", "=?utf-8?b?not base64!?="),  # left as written
        ("plain text, no encoding", "plain text, no encoding"),
    ],
)
def test_encoded_words_are_decoded(written: str, read: str) -> None:
    assert clean_text(written) == read


def test_a_character_split_across_two_encoded_words_survives() -> None:
    raw = "€uro".encode()
    first = base64.b64encode(raw[:2]).decode()
    second = base64.b64encode(raw[2:]).decode()
    assert decode_words(f"=?utf-8?b?{first}?=\n =?utf-8?b?{second}?=") == "€uro"


def test_raw_utf8_and_latin1_headers_are_read() -> None:
    headers = parse(
        "From: Jörg Müller <joerg@example.de>\n".encode(),
        "To: Zoë Øster <zoe@example.dk>\n".encode("latin-1"),
        b"Subject: Caf\xe9 \x80 5\n",  # Windows-1252: e-acute, euro sign
    )
    assert headers.sender == email("joerg@example.de", "Jörg Müller")
    assert headers.recipients == (email("zoe@example.dk", "Zoë Øster"),)
    assert headers.subject == "Café € 5"


def test_folded_fields_are_unfolded() -> None:
    headers = parse(
        "From: Jan <jan@x.nl>\n",
        "To: a@x.org,\n\tb@y.org,\n   c@z.org\n",
        "Subject: a long subject that the\n  sender's client\n\tfolded\n",
    )
    assert [party.identity.value for party in headers.recipients] == [
        "a@x.org",
        "b@y.org",
        "c@z.org",
    ]
    assert headers.subject == "a long subject that the sender's client folded"


# --- addresses ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "found"),
    [
        ('"Vries, Jan de" <jan@devries.nl>', [("Vries, Jan de", "jan@devries.nl")]),
        ("jan@devries.nl (Jan de Vries)", [("Jan de Vries", "jan@devries.nl")]),
        ("jan@devries.nl", [("", "jan@devries.nl")]),
        ("<jan@devries.nl>", [("", "jan@devries.nl")]),
        ("Jan   de Vries <jan@devries.nl>", [("Jan de Vries", "jan@devries.nl")]),
        ('"Jan \\"JJ\\" de Vries" <jan@devries.nl>', [('Jan "JJ" de Vries', "jan@devries.nl")]),
        ("undisclosed-recipients:;", []),
        ("Team: a@x.org, Bea <b@y.org>;", [("", "a@x.org"), ("Bea", "b@y.org")]),
        ("Team: a@x.org;, c@z.org", [("", "a@x.org"), ("", "c@z.org")]),
        ("=?utf-8?q?Vries=2C_Jan?= <jan@devries.nl>", [("Vries, Jan", "jan@devries.nl")]),
        ('"=?utf-8?q?Jos=C3=A9?=" <jose@correo.es>', [("José", "jose@correo.es")]),
        ("MAILER-DAEMON", []),
        ("", []),
    ],
)
def test_address_lists_in_the_forms_mailers_write(field: str, found: list[tuple[str, str]]) -> None:
    assert addresses(field) == found


def test_bcc_counts_as_a_recipient_and_repeated_to_fields_are_joined() -> None:
    headers = parse(
        "From: sanne@example.nl\n", "To: a@x.org\n", "To: b@y.org\n", "Bcc: Secret <s@z.org>\n"
    )
    assert headers.recipients == (email("a@x.org"), email("b@y.org"), email("s@z.org", "Secret"))


def test_field_names_in_any_case() -> None:
    headers = parse("FROM: a@x.org\n", "message-id: <m@x>\n", "LIST-ID: <l.x.org>\n", "cc: b@y\n")
    assert headers.sender == email("a@x.org")
    assert headers.message_id == "m@x"
    assert headers.signals == {"list-id": "<l.x.org>"}
    assert headers.recipients == (email("b@y"),)


# --- no sender ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "block", [b"To: a@x.org\nSubject: no from\n", b"From: undisclosed\n", b"", b"\x00\xff garbage"]
)
def test_a_header_without_a_sender_gives_no_interaction(block: bytes) -> None:
    assert interaction_of(parse_headers(block)) is None


# --- dates --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "utc"),
    [
        ("Tue, 27 Feb 2024 10:14:58 +0100", datetime(2024, 2, 27, 9, 14, 58)),
        ("27 Feb 2024 10:14:58 -0500 (EST)", datetime(2024, 2, 27, 15, 14, 58)),
        ("Tue, 27 Feb 2024 10:14 +0100", datetime(2024, 2, 27, 9, 14)),
        ("Tue, 27 Feb 2024 10:14:58 EST", datetime(2024, 2, 27, 15, 14, 58)),
        ("Tue, 27 Feb 2024 10:14:58 GMT", datetime(2024, 2, 27, 10, 14, 58)),
        ("Tue, 27 Feb 2024 10:14:58", datetime(2024, 2, 27, 10, 14, 58)),  # no zone: UTC
        ("Tue, 27 Feb 2024 10:14:58 -0000", datetime(2024, 2, 27, 10, 14, 58)),
        ("Tue, 27 Feb 2024 10:14:58 CEST", datetime(2024, 2, 27, 10, 14, 58)),  # unknown: UTC
        ("Tue,\n 27 Feb 2024\n 10:14:58 +0100", datetime(2024, 2, 27, 9, 14, 58)),
        ("Thu, 3 Jul 03 10:52:37 +0200", datetime(2003, 7, 3, 8, 52, 37)),
        ("Sat, 3 Jul 99 10:52:37 +0200", datetime(1999, 7, 3, 8, 52, 37)),
        ("3 Jul 2003 10:52:37 +1345", datetime(2003, 7, 2, 21, 7, 37)),
    ],
)
def test_dates_in_the_forms_found_in_old_and_odd_mail(written: str, utc: datetime) -> None:
    assert parse_date(written) == utc.replace(tzinfo=UTC)


@pytest.mark.parametrize(
    "written",
    ["", "yesterday", "31 Feb 2024 10:00:00 +0100", "1 Jan 2024 25:00:00 +0000", "0",
     "1 Jan 2024 10:00:60 +0000", "1 Jan 2024 10:00:00 +2400", "1 Jan 0001 00:30:00 +0100",
     "31 Dec 9999 23:30:00 -0100", "1 Jan 0000 10:00:00 +0000"],
)  # fmt: skip
def test_an_unreadable_date_falls_back_to_the_delivery_time(written: str) -> None:
    headers = parse("From: a@x.org\n", f"Date: {written}\n")
    assert headers.date is None
    assert interaction_of(headers).at == FALLBACK  # type: ignore[attr-defined]


def test_a_missing_date_falls_back_to_the_delivery_time() -> None:
    found = interaction_of(parse("From: a@x.org\n", "Subject: hi\n"))
    assert found.at == FALLBACK  # type: ignore[attr-defined]


# --- message ids and signals --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "kept"),
    [
        ("<abc@x.org>", "abc@x.org"),
        ("  <abc@x.org> (added by the list)", "abc@x.org"),
        ("abc@x.org", "abc@x.org"),
        ("<folded@x.org\n >", "folded@x.org"),
        ("<>", None),
        ("", None),
    ],
)
def test_message_ids_without_angle_brackets(written: str, kept: str | None) -> None:
    assert parse("From: a@x.org\n", f"Message-ID: {written}\n").message_id == kept


def test_list_and_automation_fields_are_passed_on_as_signals() -> None:
    headers = parse(
        "From: news@shop.example\n",
        "List-Id: Shop news <news.shop.example>\n",
        "List-Unsubscribe: <mailto:leave@shop.example>,\n <https://shop.example/u>\n",
        "List-Post: NO\n",
        "Precedence: bulk\n",
        "Auto-Submitted: auto-replied\n",
        "X-Autoreply: yes\n",
        "X-Autorespond: yes\n",
        "Return-Path: <>\n",
        "X-Mailer: something\n",
    )
    assert headers.signals == {
        "list-id": "Shop news <news.shop.example>",
        "list-unsubscribe": "<mailto:leave@shop.example>, <https://shop.example/u>",
        "list-post": "NO",
        "precedence": "bulk",
        "auto-submitted": "auto-replied",
        "x-autoreply": "yes",
        "x-autorespond": "yes",
        "return-path": "<>",
    }


def test_a_personal_mail_has_no_signals() -> None:
    assert parse("From: a@x.org\n", "To: b@y.org\n").signals == {}


# --- never crashes; the fast paths read as email.utils does -------------------------------------


@settings(max_examples=300)
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(raw: bytes) -> None:
    interaction_of(parse_headers(raw))


@st.composite
def mutated_headers(draw: st.DrawFn) -> bytes:
    raw = bytearray(DOVECOT)
    for _ in range(draw(st.integers(1, 20))):
        at = draw(st.integers(0, len(raw)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(
            st.sampled_from([b"=?", b"?=", b"<", b">", b'"', b",", b":", b";", b"(", b"\n", b"\n "])
            | st.sampled_from([b"=?utf-16?b?", b"=?idna?q?=FF", b"=?koi8-r?q?", b"\x00", b"\xff"])
            | st.binary(min_size=1, max_size=8)
        )
        if action == "insert":
            raw[at:at] = piece
        elif action == "delete":
            del raw[at : at + len(piece)]
        else:
            raw[at : at + len(piece)] = piece
    return bytes(raw)


@settings(max_examples=400)
@given(mutated_headers())
def test_mutated_real_headers_never_raise(raw: bytes) -> None:
    found = interaction_of(parse_headers(raw))
    if found is not None:
        assert found.at.tzinfo is not None  # type: ignore[attr-defined]


name_text = st.text(
    st.characters(codec="utf-8", exclude_characters='"\\<>(),:;@[]\r\n'), max_size=20
).filter(lambda text: "=?" not in text)
quoted_text = st.text(
    st.characters(codec="utf-8", exclude_characters='"\\\r\n'), max_size=20
).filter(lambda text: "=?" not in text)
local_part = st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,15}", fullmatch=True)
domain = st.from_regex(r"[a-z0-9]{1,10}(\.[a-z]{2,6}){1,2}", fullmatch=True)


@st.composite
def simple_address(draw: st.DrawFn) -> str:
    address = f"{draw(local_part)}@{draw(domain)}"
    form = draw(st.sampled_from(["bare", "bracket", "name", "quoted"]))
    if form == "bare":
        return address
    if form == "bracket":
        return f"<{address}>"
    if form == "name" and (name := draw(name_text).strip()):
        return f"{name} <{address}>"
    return f'"{draw(quoted_text)}" <{address}>'


@settings(max_examples=400)
@given(st.lists(simple_address(), min_size=1, max_size=4), st.sampled_from([",", ", ", ",\n "]))
def test_fast_address_reading_agrees_with_email_utils(items: list[str], separator: str) -> None:
    field = separator.join(items)
    assert _simple_addresses(field) is not None  # the fast path took it
    expected = [(clean_text(n), a) for n, a in getaddresses([field]) if "@" in a]
    assert addresses(field) == expected


@settings(max_examples=300)
@given(
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2099, 12, 30)),
    st.integers(-12 * 60, 14 * 60).map(lambda minutes: minutes - minutes % 15),
)
def test_fast_date_reading_agrees_with_email_utils(local: datetime, offset: int) -> None:
    from datetime import timedelta, timezone

    written = format_datetime(
        local.replace(microsecond=0, tzinfo=timezone(timedelta(minutes=offset)))
    )
    assert parse_date(written) == parsedate_to_datetime(written).astimezone(UTC)


@settings(max_examples=300)
# From year 100: email.utils reads "0099" as 1999, though four digits are the year as written.
@given(st.datetimes(min_value=datetime(100, 1, 1)), st.integers(-23 * 60 - 59, 23 * 60 + 59))
def test_dates_over_the_whole_range_read_as_a_datetime_reads_them(
    local: datetime, offset: int
) -> None:
    from datetime import timedelta, timezone

    written = format_datetime(
        local.replace(microsecond=0, tzinfo=timezone(timedelta(minutes=offset)))
    )
    try:
        expected: datetime | None = parsedate_to_datetime(written).astimezone(UTC)
    except (ValueError, OverflowError):  # beyond what a datetime holds, once in UTC
        expected = None
    assert parse_date(written) == expected
