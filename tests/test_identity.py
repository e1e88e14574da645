from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.identity import (
    Corrections,
    Record,
    Resolution,
    name_key,
    normalise,
    normalise_email,
    normalise_linkedin,
    normalise_phone,
    resolve,
)
from syncd.model import Identity, IdentityKind


def email(value: str) -> Identity:
    return Identity(IdentityKind.EMAIL, value)


def phone(value: str) -> Identity:
    return Identity(IdentityKind.PHONE, value)


def linkedin(value: str) -> Identity:
    return Identity(IdentityKind.LINKEDIN, value)


def card(name: str, *identities: Identity, book: str = "contacts") -> Record:
    return Record(frozenset(identities), name, book, True, f"{book}/{name}.vcf")


def seen(name: str, identity: Identity, source: str = "mail") -> Record:
    """A party of a message: one identity under the display name it was written with."""
    return Record(frozenset([identity]), name, source, False)


def persons(result: Resolution) -> set[frozenset[Identity]]:
    """The grouping alone, without ids: which identities are one person."""
    groups: dict[str, set[Identity]] = {}
    for identity, person in result.person_of.items():
        groups.setdefault(person, set()).add(identity)
    return {frozenset(group) for group in groups.values()}


def same_person(result: Resolution, a: Identity, b: Identity) -> bool:
    return result.person_of[a] == result.person_of[b]


# --- normalisation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    ["Jan@Example.NL", "jan@example.nl", " <JAN@example.nl> ", "mailto:Jan@example.nl"],
)
def test_email_addresses_compare_case_insensitively(raw: str) -> None:
    assert normalise_email(raw) == "jan@example.nl"


def test_googlemail_is_gmail() -> None:
    assert normalise_email("Jan.de.Vries@googlemail.com") == "jan.de.vries@gmail.com"
    assert normalise(email("jan.de.vries@GoogleMail.com"), None) == email("jan.de.vries@gmail.com")


def test_mailto_prefix_in_any_case_is_dropped() -> None:
    assert normalise_email("Mailto:jan@example.nl") == "jan@example.nl"


@pytest.mark.parametrize("raw", ["", "jan", "jan@", "@example.nl", "jan@localhost", "a b@x.nl"])
def test_text_that_is_not_an_address_is_no_email_identity(raw: str) -> None:
    assert normalise(email(raw), "NL") is None


@pytest.mark.parametrize(
    "raw", ["+31 6 1234 5678", "06-12345678", "0031612345678", "tel:+31612345678"]
)
def test_dutch_numbers_in_every_local_spelling_are_one_e164_number(raw: str) -> None:
    assert normalise_phone(raw, "NL") == "+31612345678"


def test_a_uk_number_with_country_code_stays_british_whatever_the_region() -> None:
    assert normalise_phone("+44 20 7946 0958", "NL") == "+442079460958"
    assert normalise_phone("+44 (0)20 7946 0958", "NL") == "+442079460958"


def test_a_local_number_takes_the_users_region() -> None:
    assert normalise_phone("020 7946 0958", "GB") == "+442079460958"
    assert normalise_phone("020 794 6095", "NL") == "+31207946095"


def test_a_local_number_without_any_region_is_not_guessed() -> None:
    assert normalise_phone("06-12345678", None) is None


@pytest.mark.parametrize("raw", ["", "12", "call me", "+31"])
def test_text_that_is_not_a_phone_number_is_no_phone_identity(raw: str) -> None:
    assert normalise(phone(raw), "NL") is None


@pytest.mark.parametrize(
    "raw",
    [
        "http://nl.linkedin.com/in/Jan-de-Vries/",
        "https://www.linkedin.com/in/jan-de-vries",
        "www.linkedin.com/in/jan-de-vries?trk=public_profile",
        "linkedin.com/in/JAN-DE-VRIES#about",
    ],
)
def test_linkedin_profile_urls_compare_by_their_slug(raw: str) -> None:
    assert normalise_linkedin(raw) == "https://www.linkedin.com/in/jan-de-vries"


def test_a_percent_encoded_linkedin_slug_equals_the_plain_one() -> None:
    encoded = normalise_linkedin("https://www.linkedin.com/in/andr%C3%A9-x/")
    assert encoded == normalise_linkedin("https://nl.linkedin.com/in/Andr\u00e9-x")
    assert encoded == "https://www.linkedin.com/in/andr\u00e9-x"


@pytest.mark.parametrize("raw", ["https://www.linkedin.com/company/acme", "jan-de-vries", ""])
def test_a_url_that_is_not_a_linkedin_profile_is_no_linkedin_identity(raw: str) -> None:
    assert normalise(linkedin(raw), "NL") is None


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Vries, Jan de", "Jan de Vries"),
        ("JAN DE VRIES", "jan de vries"),
        ("Jan de Vri\u00e9s", "Jan de Vries"),
        ('"de Vries, Jan"', "Jan de Vries"),
        ("Anne-Marie van 't Hof", "Anne Marie van t Hof"),
        ("Hof, Anne-Marie van 't", "Anne-Marie van 't Hof"),
        ("S\u00f8ren \u00d8stergaard", "Soren Ostergaard"),
        ("Jos\u00e9 Garc\u00eda", "Jose\u0301 Garci\u0301a"),  # composed and decomposed accents
    ],
)
def test_spellings_of_one_full_name_share_a_key(one: str, other: str) -> None:
    assert name_key(one) is not None
    assert name_key(one) == name_key(other)


@pytest.mark.parametrize("name", ["Jan", "  jan  ", "", "jan@example.nl", "Jan 2", "'Jan'"])
def test_a_first_name_alone_or_an_address_is_no_name_key(name: str) -> None:
    assert name_key(name) is None


def test_different_people_do_not_share_a_key() -> None:
    assert name_key("Jan de Vries") != name_key("Anna de Vries")
    assert name_key("Jan de Vries") != name_key("Jan Vries")


@given(st.text())
def test_name_key_never_raises_and_is_a_fixed_point(text: str) -> None:
    key = name_key(text)
    if key is not None:
        assert name_key(key) == key
        assert key == key.strip().lower()


@given(st.sampled_from(list(IdentityKind)), st.text(), st.sampled_from([None, "NL", "GB", "US"]))
def test_normalise_never_raises_and_is_idempotent(
    kind: IdentityKind, text: str, region: str | None
) -> None:
    found = normalise(Identity(kind, text), region)
    if found is not None:
        assert found.kind is kind
        assert normalise(found, region) == found


@given(st.from_regex(r"\A[+0(]?[0-9 ()\-.+]{0,25}\Z"), st.sampled_from([None, "NL", "GB", "DE"]))
def test_phone_like_text_never_raises(text: str, region: str | None) -> None:
    number = normalise_phone(text, region)
    assert number is None or number.startswith("+")


@given(st.emails())
def test_every_valid_address_normalises_to_a_lower_case_address(address: str) -> None:
    found = normalise_email(address.upper())
    if found is not None:  # addresses with unusual characters in the local part may be refused
        assert found == found.lower()
        assert found == normalise_email(address)


# --- resolution: cards and names -----------------------------------------------------------------


def test_identities_on_one_card_are_one_person() -> None:
    jan = card("Jan de Vries", email("jan@vries.nl"), phone("+31612345678"),
               linkedin("https://www.linkedin.com/in/jan-de-vries"))  # fmt: skip
    result = resolve([jan], Corrections(), {})
    assert persons(result) == {jan.identities}
    assert result.names[result.person_of[email("jan@vries.nl")]] == "Jan de Vries"


def test_two_cards_with_one_name_in_one_book_stay_two_people() -> None:
    one = card("Mark Jansen", email("mark@jansen.nl"))
    other = card("Mark Jansen", email("mark.jansen@acme.com"))
    mail = seen("Mark Jansen", email("m.jansen@gmail.com"))
    result = resolve([one, other, mail], Corrections(), {})
    assert len(persons(result)) == 3


def test_a_mail_display_name_joins_the_only_card_with_that_name() -> None:
    jan = card("Jan de Vries", email("jan@vries.nl"))
    mail = seen("Vries, Jan de", email("j.devries@acme.com"))
    result = resolve([jan, mail], Corrections(), {})
    assert same_person(result, email("jan@vries.nl"), email("j.devries@acme.com"))
    assert "name" in result.why[email("j.devries@acme.com")]


@pytest.mark.parametrize("written", ["JAN DE VRI\u00c9S", "de Vries, Jan", "Jan  de  Vries"])
def test_display_names_join_whatever_their_case_accents_and_order(written: str) -> None:
    result = resolve(
        [card("Jan de Vries", email("jan@vries.nl")), seen(written, email("jdv@acme.com"))],
        Corrections(), {},
    )  # fmt: skip
    assert same_person(result, email("jan@vries.nl"), email("jdv@acme.com"))


def test_van_t_forms_join() -> None:
    result = resolve(
        [card("Hof, Anne-Marie van 't", email("am@hof.nl")),
         seen("Anne Marie van t Hof", email("annemarie@acme.com"))],
        Corrections(), {},
    )  # fmt: skip
    assert same_person(result, email("am@hof.nl"), email("annemarie@acme.com"))


def test_a_first_name_alone_never_joins() -> None:
    result = resolve(
        [card("Jan de Vries", email("jan@vries.nl")), seen("Jan", email("jan@other.nl"))],
        Corrections(), {},
    )  # fmt: skip
    assert not same_person(result, email("jan@vries.nl"), email("jan@other.nl"))


def test_two_unknown_addresses_with_one_display_name_stay_apart() -> None:
    result = resolve(
        [seen("Piet Bakker", email("piet@bakker.nl")),
         seen("Piet Bakker", email("piet.bakker@acme.com"), source="old-mail")],
        Corrections(), {},
    )  # fmt: skip
    assert len(persons(result)) == 2


def test_a_display_name_of_an_ambiguous_card_name_joins_nobody() -> None:
    result = resolve(
        [card("Mark Jansen", email("mark@jansen.nl")),
         card("Mark Jansen", phone("+31612345678")),
         seen("Mark Jansen", email("mark@acme.com"))],
        Corrections(), {},
    )  # fmt: skip
    assert not same_person(result, email("mark@acme.com"), email("mark@jansen.nl"))
    assert not same_person(result, email("mark@acme.com"), phone("+31612345678"))


def test_one_address_seen_under_one_name_in_two_sources_joins_the_card() -> None:
    result = resolve(
        [card("Jan de Vries", email("jan@vries.nl")),
         seen("Jan de Vries", email("jdv@acme.com"), source="mail"),
         seen("Jan de Vries", email("jdv@acme.com"), source="old-mail")],
        Corrections(), {},
    )  # fmt: skip
    assert same_person(result, email("jan@vries.nl"), email("jdv@acme.com"))


def test_one_person_in_two_address_books_is_joined_by_name() -> None:
    result = resolve(
        [card("Jan de Vries", email("jan@vries.nl"), book="google"),
         card("Vries, Jan de", phone("+31612345678"), book="icloud")],
        Corrections(), {},
    )  # fmt: skip
    assert same_person(result, email("jan@vries.nl"), phone("+31612345678"))


def test_a_shared_address_does_not_glue_two_cards_together() -> None:
    result = resolve(
        [card("Jan de Vries", email("jan@vries.nl")),
         card("Anna de Vries", email("anna@vries.nl")),
         seen("Jan de Vries", email("thuis@vries.nl")),
         seen("Anna de Vries", email("thuis@vries.nl"))],
        Corrections(), {},
    )  # fmt: skip
    assert not same_person(result, email("jan@vries.nl"), email("anna@vries.nl"))


def test_a_person_without_a_card_is_named_as_most_often_seen() -> None:
    address = email("piet@bakker.nl")
    result = resolve(
        [seen("Piet Bakker", address), seen("P. Bakker", address, "old-mail"),
         seen("Piet Bakker", address, "calendar"), seen("piet@bakker.nl", address, "chat")],
        Corrections(), {},
    )  # fmt: skip
    assert result.names[result.person_of[address]] == "Piet Bakker"


def test_a_tie_between_display_names_is_settled_the_same_way_in_any_order() -> None:
    address = email("piet@bakker.nl")
    one, other = seen("Piet Bakker", address), seen("P. Bakker", address, "old-mail")
    first = resolve([one, other], Corrections(), {})
    again = resolve([other, one], Corrections(), {})
    assert first.names == again.names


def test_a_card_name_wins_over_display_names() -> None:
    result = resolve(
        [seen("Jantje", email("jan@vries.nl")), card("Jan de Vries", email("jan@vries.nl"))],
        Corrections(), {},
    )  # fmt: skip
    assert result.names[result.person_of[email("jan@vries.nl")]] == "Jan de Vries"


# --- corrections ---------------------------------------------------------------------------------


def test_a_merge_joins_two_cards_that_share_a_name() -> None:
    one = card("Mark Jansen", email("mark@jansen.nl"))
    other = card("Mark Jansen", email("mark.jansen@acme.com"))
    merged = Corrections(merges=((email("mark@jansen.nl"), email("mark.jansen@acme.com")),))
    result = resolve([one, other], merged, {})
    assert same_person(result, email("mark@jansen.nl"), email("mark.jansen@acme.com"))
    assert "merge" in result.why[email("mark.jansen@acme.com")]


@pytest.mark.parametrize("first", [0, 1])
def test_a_merge_keeps_the_id_of_the_person_named_first(first: int) -> None:
    marks = [email("mark@jansen.nl"), email("mark.jansen@acme.com")]
    records = [card("Mark Jansen", marks[0]), card("Mark Jansen", marks[1])]
    before = resolve(records, Corrections(), {})
    merge = Corrections(merges=((marks[first], marks[1 - first]),))
    after = resolve(records, merge, before.person_of)
    assert after.person_of[marks[0]] == after.person_of[marks[1]] == before.person_of[marks[first]]


def test_a_split_off_identity_is_not_merged_back() -> None:
    jan = card("Jan de Vries", email("jan@vries.nl"), email("jan@oldjob.nl"))
    fixes = Corrections(
        merges=((email("jan@vries.nl"), email("jan@oldjob.nl")),),
        splits=frozenset([email("jan@oldjob.nl")]),
    )
    result = resolve([jan], fixes, {})
    assert not same_person(result, email("jan@vries.nl"), email("jan@oldjob.nl"))


def test_a_split_wins_over_the_card() -> None:
    jan = card("Jan de Vries", email("jan@vries.nl"), email("jan@oldjob.nl"), phone("+31612345678"))
    result = resolve([jan], Corrections(splits=frozenset([email("jan@oldjob.nl")])), {})
    assert not same_person(result, email("jan@oldjob.nl"), email("jan@vries.nl"))
    assert same_person(result, email("jan@vries.nl"), phone("+31612345678"))
    assert "split" in result.why[email("jan@oldjob.nl")]


def test_a_split_wins_over_the_name() -> None:
    records = [card("Jan de Vries", email("jan@vries.nl")), seen("Jan de Vries", email("jdv@x.nl"))]
    result = resolve(records, Corrections(splits=frozenset([email("jdv@x.nl")])), {})
    assert not same_person(result, email("jan@vries.nl"), email("jdv@x.nl"))


def test_an_ignored_identity_belongs_to_nobody_and_joins_nothing() -> None:
    shared = email("info@acme.com")
    records = [card("Jan de Vries", email("jan@vries.nl"), shared),
               card("Piet Bakker", email("piet@bakker.nl"), shared)]  # fmt: skip
    result = resolve(records, Corrections(ignored=frozenset([shared])), {})
    assert shared not in result.person_of
    assert not same_person(result, email("jan@vries.nl"), email("piet@bakker.nl"))


# --- stable ids ----------------------------------------------------------------------------------

BOOK = [
    card("Jan de Vries", email("jan@vries.nl"), phone("+31612345678")),
    card("Mark Jansen", email("mark@jansen.nl")),
    card("Mark Jansen", email("mark.jansen@acme.com")),
    seen("Vries, Jan de", email("jdv@acme.com")),
    seen("Piet Bakker", email("piet@bakker.nl")),
]


def test_ids_do_not_depend_on_the_order_of_records() -> None:
    first = resolve(BOOK, Corrections(), {})
    again = resolve(list(reversed(BOOK)), Corrections(), {})
    assert again.person_of == first.person_of
    assert again.names == first.names


def test_ids_survive_new_records_and_a_rebuild() -> None:
    first = resolve(BOOK, Corrections(), {})
    newcomer = card("Eva Smit", email("eva@smit.nl"))
    assert (
        resolve([*BOOK, newcomer], Corrections(), {}).person_of.items() >= first.person_of.items()
    )
    assert resolve([newcomer, *BOOK], Corrections(), first.person_of).person_of.items() >= (
        first.person_of.items()
    )


def test_passing_the_previous_assignment_back_changes_nothing() -> None:
    first = resolve(BOOK, Corrections(), {})
    assert resolve(BOOK, Corrections(), first.person_of).person_of == first.person_of


def test_a_new_identity_of_a_known_person_keeps_their_id() -> None:
    first = resolve(BOOK, Corrections(), {})
    jan = first.person_of[email("jan@vries.nl")]
    # An address that sorts before all of Jan's, so an id derived afresh would differ.
    grown = [*BOOK, card("Jan de Vries", email("a.jan@vries.nl"), email("jan@vries.nl"), book="x")]
    result = resolve(grown, Corrections(), first.person_of)
    assert result.person_of[email("a.jan@vries.nl")] == jan
    assert result.person_of[phone("+31612345678")] == jan


def test_a_split_off_identity_gets_a_new_id_and_the_rest_keep_theirs() -> None:
    jan = card("Jan de Vries", email("jan@vries.nl"), email("jan@oldjob.nl"), phone("+31612345678"))
    first = resolve([jan], Corrections(), {})
    old = first.person_of[email("jan@vries.nl")]
    result = resolve(
        [jan], Corrections(splits=frozenset([email("jan@oldjob.nl")])), first.person_of
    )
    assert result.person_of[email("jan@vries.nl")] == old
    assert result.person_of[phone("+31612345678")] == old
    assert result.person_of[email("jan@oldjob.nl")] != old


def test_splitting_one_of_two_identities_keeps_the_id_on_the_one_left() -> None:
    jan = card("Jan de Vries", email("jan@oldjob.nl"), phone("+31612345678"))
    first = resolve([jan], Corrections(), {})
    old = first.person_of[phone("+31612345678")]
    result = resolve(
        [jan], Corrections(splits=frozenset([email("jan@oldjob.nl")])), first.person_of
    )
    assert result.person_of[phone("+31612345678")] == old
    assert result.person_of[email("jan@oldjob.nl")] != old


def test_an_id_of_someone_gone_is_not_handed_to_someone_new() -> None:
    first = resolve([card("Jan de Vries", email("jan@vries.nl"))], Corrections(), {})
    later = resolve([card("Eva Smit", email("eva@smit.nl"))], Corrections(), first.person_of)
    assert later.person_of[email("eva@smit.nl")] not in first.person_of.values()


# --- properties ----------------------------------------------------------------------------------

POOL = [email(f"{n}@example.nl") for n in "abcdef"] + [phone("+3161234567" + str(d)) for d in "12"]
NAMES = ["Jan de Vries", "Vries, Jan de", "Mark Jansen", "Eva Smit", "Jan", ""]


@st.composite
def records(draw: st.DrawFn) -> Record:
    identities = draw(st.frozensets(st.sampled_from(POOL), min_size=1, max_size=3))
    is_card = draw(st.booleans())
    if not is_card:
        identities = frozenset([min(identities)])
    return Record(identities, draw(st.sampled_from(NAMES)), draw(st.sampled_from(["a", "b"])),
                  is_card)  # fmt: skip


@st.composite
def corrections(draw: st.DrawFn) -> Corrections:
    merges = draw(st.lists(st.tuples(st.sampled_from(POOL), st.sampled_from(POOL)), max_size=2))
    splits = draw(st.frozensets(st.sampled_from(POOL), max_size=2))
    ignored = draw(st.frozensets(st.sampled_from(POOL), max_size=1))
    return Corrections(tuple(merges), splits, ignored)


@settings(max_examples=300)
@given(st.lists(records(), max_size=8), corrections(), st.randoms(use_true_random=False))
def test_resolve_groups_and_ids_do_not_depend_on_record_order(
    found: list[Record], fixes: Corrections, rng: object
) -> None:
    shuffled = list(found)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    assert resolve(shuffled, fixes, {}).person_of == resolve(found, fixes, {}).person_of


@settings(max_examples=300)
@given(st.lists(records(), max_size=8), st.lists(records(), max_size=4), corrections())
def test_a_person_whose_identities_all_stay_together_keeps_their_id(
    before: list[Record], added: list[Record], fixes: Corrections
) -> None:
    first = resolve(before, fixes, {})
    after = resolve(before + added, fixes, first.person_of)
    for group in persons(first):
        old = first.person_of[min(group)]
        now = {after.person_of[i] for i in group if i in after.person_of}
        together = {i for i, p in after.person_of.items() if p in now}
        if len(now) == 1 and not {first.person_of.get(i, old) for i in together} - {old}:
            # Still one person, joined only by identities that were nobody's before: same id.
            assert now == {old}


@settings(max_examples=300)
@given(st.lists(records(), max_size=8), corrections())
def test_every_identity_not_ignored_gets_exactly_one_person(
    found: list[Record], fixes: Corrections
) -> None:
    result = resolve(found, fixes, {})
    everyone = {i for r in found for i in r.identities}
    assert set(result.person_of) == everyone - fixes.ignored
    assert set(result.names) == set(result.person_of.values())
    for one, two in fixes.merges:
        if {one, two} <= set(result.person_of) and not {one, two} & fixes.splits:
            assert same_person(result, one, two)
    for split in fixes.splits & set(result.person_of):
        alone = [i for i, p in result.person_of.items() if p == result.person_of[split]]
        assert alone == [split]  # split off by the user: a person of its own, whatever else
