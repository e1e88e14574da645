"""The carddav source against a real Radicale: cards read as the vcard source reads them."""

from __future__ import annotations

import dataclasses
from email.message import Message
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors import dav
from connectors.base import Context, Cursor, SourceError, source_class
from connectors.carddav import CardDavSource
from connectors.vcard import VCardOptions, VCardSource
from syncd.model import Card, Identity, IdentityKind
from tests.connectors.test_icsfile import BERLIN, mangled, new_context
from tests.servers import radicale as servers
from tests.servers.radicale import DavAccount

radicale = servers.radicale
dav_account = servers.dav_account

DATA = Path(__file__).parent / "data" / "carddav"
ADA = "2D3A1F5C-8B7E-4A6D-9C0B-ada"
JAN = "3b6a1c2e0f9d8e7a"


def source_for(account: DavAccount, password: str | None = None, **options: Any) -> CardDavSource:
    values = {
        "type": "carddav",
        "url": account.url(),
        "username": account.username,
        "password": {"keyring": "syncd-test"},
        **options,
    }
    secret = account.password if password is None else password
    context = Context("contacts", BERLIN, new_context().now, secret=lambda options: secret)
    return CardDavSource(CardDavSource.Options.model_validate(values), context)


@pytest.fixture
def contacts(dav_account: DavAccount) -> str:
    """An address book with Ada (as Apple Contacts writes her) and Jan (as Google does)."""
    path = dav_account.make_addressbook("Contacts")
    for name in ("ada", "jan"):
        dav_account.put(f"{path}{name}.vcf", (DATA / f"{name}.vcf").read_bytes(), "text/vcard")
    return path


def cards(source: CardDavSource, cursor: Cursor) -> dict[str, Card]:
    found = list(source.scan(cursor))
    return {card.ref: card for card in found}


def test_cards_as_the_address_book_has_them(dav_account: DavAccount, contacts: str) -> None:
    found = cards(source_for(dav_account), Cursor())
    assert sorted(found) == [ADA, JAN]
    ada = found[ADA]
    assert (ada.name, ada.organisation, ada.birthday, ada.groups) == (
        "Ada Lovelace",
        "Analytical Engines Ltd.",
        "--12-10",
        ("clients",),
    )
    assert ada.identities == (
        Identity(IdentityKind.EMAIL, "ada@example.org"),
        Identity(IdentityKind.PHONE, "+49 30 1234567"),
        Identity(IdentityKind.LINKEDIN, "https://www.linkedin.com/in/adalovelace"),
    )
    assert ada.evidence == f"{dav_account.url(contacts)}ada.vcf:1"
    assert found[JAN].groups == ("friends",)  # Google's system group left out
    assert found[JAN].source == "contacts"


def test_a_card_reads_the_same_from_the_server_as_from_a_file(
    dav_account: DavAccount, contacts: str
) -> None:
    from_server = cards(source_for(dav_account), Cursor())
    options = VCardOptions(type="vcard", path=DATA)
    from_files = {card.ref: card for card in VCardSource(options, new_context()).scan(Cursor())}
    for ref, card in from_server.items():
        assert dataclasses.replace(card, source="", evidence="") == dataclasses.replace(
            from_files[ref], source="", evidence=""
        )


def test_only_changed_and_new_cards_are_read_again(dav_account: DavAccount, contacts: str) -> None:
    source = source_for(dav_account)
    cursor = Cursor()
    assert len(cards(source, cursor)) == 2
    assert cards(source, cursor) == {}
    jan = (DATA / "jan.vcf").read_text().replace("jan@devries.nl", "jan@vries.example")
    dav_account.put(f"{contacts}jan.vcf", jan, "text/vcard")
    grace = "\r\n".join(
        ["BEGIN:VCARD", "VERSION:3.0", "UID:grace", "FN:Grace Hopper", "EMAIL:grace@hopper.dev",
         "END:VCARD", ""]
    )  # fmt: skip
    dav_account.put(f"{contacts}grace.vcf", grace, "text/vcard")
    dav_account.delete(f"{contacts}ada.vcf")
    changed = cards(source, cursor)
    assert sorted(changed) == sorted([JAN, "grace", ADA])
    assert changed[ADA].identities == ()  # deleted on the server: withdrawn
    assert Identity(IdentityKind.EMAIL, "jan@vries.example") in changed[JAN].identities
    (state,) = cursor.state["addressbooks"].values()
    assert sorted(state["etags"]) == ["grace.vcf", "jan.vcf"]
    assert cards(source, cursor) == {}


def test_without_sync_tokens_the_ctag_tells_what_changed(
    dav_account: DavAccount, contacts: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connectors import carddav

    found = carddav.collections
    monkeypatch.setattr(
        carddav, "collections",
        lambda client, kind: [dataclasses.replace(c, sync_token=None) for c in found(client, kind)],
    )  # fmt: skip
    source = source_for(dav_account)
    cursor = Cursor()
    assert len(cards(source, cursor)) == 2
    assert set(next(iter(cursor.state["addressbooks"].values()))) == {"ctag", "etags", "refs"}
    assert cards(source, cursor) == {}
    ada = (DATA / "ada.vcf").read_text().replace("Ada", "Ad")
    dav_account.put(f"{contacts}ada.vcf", ada, "text/vcard")
    assert sorted(cards(source, cursor)) == [ADA]


def test_a_bad_line_costs_only_itself(
    dav_account: DavAccount, contacts: str, caplog: pytest.LogCaptureFixture
) -> None:
    odd = (DATA / "jan.vcf").read_text().replace("jan@devries.nl", "jan at devries")
    dav_account.put(f"{contacts}jan.vcf", odd, "text/vcard")
    source = source_for(dav_account)
    found = cards(source, Cursor())
    assert found[JAN].identities == (Identity(IdentityKind.PHONE, "06 12345678"),)
    assert source.context.warnings == 1
    assert f"{dav_account.url(contacts)}jan.vcf:5: EMAIL 'jan at devries' is not an address" in (
        caplog.text
    )


def test_address_books_by_name(dav_account: DavAccount, contacts: str) -> None:
    dav_account.make_addressbook("Family")
    assert len(cards(source_for(dav_account, addressbooks=["Contacts"]), Cursor())) == 2
    assert cards(source_for(dav_account, addressbooks=["Family"]), Cursor()) == {}
    with pytest.raises(SourceError, match="there is no address book 'Work'"):
        list(source_for(dav_account, addressbooks=["Work"]).scan(Cursor()))


def test_check(dav_account: DavAccount, radicale: servers.Radicale) -> None:
    assert source_for(dav_account).check() == [
        f"{dav_account.server.split('/')[2]} holds no address books for this user"
    ]
    dav_account.make_addressbook("Contacts")
    assert source_for(dav_account).check() == []
    (problem,) = source_for(dav_account, password="wrong").check()
    assert problem.endswith("(HTTP 401); check username and password")
    assert source_class("carddav") is CardDavSource


# --- any answer a server might give -----------------------------------------------------------

BOOK = "http://127.0.0.1:9/ada/contacts/"
LISTING = (
    '<?xml version="1.0"?><multistatus xmlns="DAV:" xmlns:R="urn:ietf:params:xml:ns:carddav">'
    "<response><href>/ada/contacts/</href><propstat><prop><resourcetype><collection/>"
    "<R:addressbook/></resourcetype><getctag xmlns='http://calendarserver.org/ns/'>1</getctag>"
    "</prop><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>"
)


def answer(items: dict[str, bytes]) -> bytes:
    """A PROPFIND listing or an addressbook-multiget answer (with address-data) for `items`."""
    responses = "".join(
        f'<response><href>/ada/contacts/{name}</href><propstat><prop><getetag>"{name}"'
        f"</getetag><R:address-data>{escape(text.decode('utf-8', 'replace'))}</R:address-data>"
        "</prop><status>HTTP/1.1 200 OK</status></propstat></response>"
        for name, text in items.items()
    )
    return (
        '<?xml version="1.0"?><multistatus xmlns="DAV:" '
        f'xmlns:R="urn:ietf:params:xml:ns:carddav">{responses}</multistatus>'
    ).encode()


def answering(report: bytes) -> Any:
    """A stand-in for the network: the address book itself, and `report` for its items (both the
    member listing, as the book has no sync token, and the multiget)."""

    def send(client: dav.Client, method: str, url: str, body: str | None, headers: Any) -> Any:
        if method == "PROPFIND" and headers.get("Depth") == "0":
            return dav.Response(207, Message(), LISTING.encode())
        return dav.Response(207, Message(), report)

    return send


FILES = {name: (DATA / name).read_bytes() for name in ("ada.vcf", "jan.vcf")}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    report=st.one_of(
        mangled(answer(FILES)),
        st.sampled_from(sorted(FILES)).flatmap(
            lambda name: mangled(FILES[name]).map(lambda broken: answer({**FILES, name: broken}))
        ),
    )
)
def test_any_answer_is_cards_warnings_or_a_source_error(report: bytes) -> None:
    options = CardDavSource.Options.model_validate({"type": "carddav", "url": BOOK})
    source = CardDavSource(options, new_context())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dav.Client, "_send", answering(report))
        try:
            found = list(source.scan(Cursor()))
        except SourceError:
            return
    assert all(isinstance(card, Card) for card in found)


def test_the_unbroken_answer_reads_both_cards(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dav.Client, "_send", answering(answer(FILES)))
    options = CardDavSource.Options.model_validate({"type": "carddav", "url": BOOK})
    source = CardDavSource(options, new_context())
    assert sorted(card.ref for card in source.scan(Cursor())) == [ADA, JAN]
    assert source.context.warnings == 0
