"""The relationships as a user sees them: who, how to reach them, last contact, cadence, due date.

Built from what the store holds after a pass; `syncd contacts` and `syncd show` print these, and the
planner takes its candidates from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from connectors.base import is_address_book
from syncd import cadence as cadence_rules
from syncd.config import Config, PersonSettings
from syncd.identity import name_key, normalise
from syncd.model import Card, Identity, IdentityKind
from syncd.store import ContactSummary, Store


class UnknownPerson(LookupError):
    """WHO matches nobody, or more than one person."""


@dataclass(frozen=True)
class Relationship:
    id: str
    name: str
    identities: tuple[Identity, ...]
    groups: tuple[str, ...]
    sources: tuple[str, ...]
    last_contact: datetime | None
    last_channel: str | None
    last_direction: str | None
    last_title: str
    interactions: int
    cadence: cadence_rules.Cadence
    due: date | None
    snoozed_until: date | None
    birthday: str | None
    organisation: str | None
    listed: bool  # a relationship, not ignored: shown by `contacts` and planned for

    def of_kind(self, kind: IdentityKind) -> list[str]:
        return [i.value for i in self.identities if i.kind is kind]

    @property
    def links(self) -> tuple[str, ...]:
        mails = [f"mailto:{v}" for v in self.of_kind(IdentityKind.EMAIL)]
        numbers = self.of_kind(IdentityKind.PHONE)
        phones = [f"tel:{v}" for v in numbers]
        chats = [f"https://wa.me/{v.lstrip('+')}" for v in numbers]
        return tuple(mails + phones + chats + self.of_kind(IdentityKind.LINKEDIN))

    def to_json(self) -> dict[str, Any]:
        linkedin = self.of_kind(IdentityKind.LINKEDIN)
        return {
            "id": self.id,
            "name": self.name,
            "emails": self.of_kind(IdentityKind.EMAIL),
            "phones": self.of_kind(IdentityKind.PHONE),
            "linkedin": linkedin[0] if linkedin else None,
            "groups": list(self.groups),
            "sources": list(self.sources),
            "last_contact": _iso(self.last_contact),
            "last_channel": self.last_channel,
            "last_direction": self.last_direction,
            "interactions": self.interactions,
            "cadence_days": self.cadence.days,
            "cadence_source": self.cadence.source,
            "due": self.due.isoformat() if self.due else None,
            "snoozed_until": self.snoozed_until.isoformat() if self.snoozed_until else None,
            "birthday": self.birthday,
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def _snoozes(store: Store) -> dict[str, date]:
    until: dict[str, date] = {}
    for person, _, _, day in store.corrections("snooze"):
        if person and day:
            until[person] = date.fromisoformat(day)
    return until


def match_people(store: Store, who: str, config: Config) -> set[str]:
    """Person ids WHO names: a person id, an email/phone/LinkedIn URL, or a full or partial name."""
    return _match(store.persons(), store.identities(), who, config.me.phone_region)


def _match(
    persons: dict[str, str], person_of: dict[Identity, str], who: str, region: str | None
) -> set[str]:
    if who in persons:
        return {who}
    for kind in (IdentityKind.EMAIL, IdentityKind.LINKEDIN, IdentityKind.PHONE):
        identity = normalise(Identity(kind, who), region)
        if identity is not None and identity in person_of:
            return {person_of[identity]}
    return _by_name(persons, who)


def _by_name(persons: dict[str, str], who: str) -> set[str]:
    """The whole name, else every word of WHO as a word of the name, else part of the name."""
    wanted = name_key(who) or who.strip().lower()
    if not wanted:
        return set()
    keys = {pid: name_key(name) or name.strip().lower() for pid, name in persons.items()}
    words = set(wanted.split())
    for matches in (
        lambda key: key == wanted,
        lambda key: words <= set(key.split()),
        lambda key: wanted in key,
    ):
        found = {pid for pid, key in keys.items() if matches(key)}
        if found:
            return found
    return set()


def find_person(store: Store, who: str, config: Config) -> str:
    """The one person WHO names, or UnknownPerson saying who matched."""
    found = match_people(store, who, config)
    if len(found) == 1:
        return found.pop()
    if not found:
        raise UnknownPerson(f"nobody matches {who!r}; `syncd contacts` lists everyone")
    names = store.persons()
    listed = ", ".join(f"{names[p]} ({p})" for p in sorted(found))
    raise UnknownPerson(f"{who!r} matches more than one person: {listed}; use the id")


def _settings_by_person(
    persons: dict[str, str], person_of: dict[Identity, str], config: Config
) -> dict[str, PersonSettings]:
    """[people."WHO"] tables by the person each names."""
    chosen: dict[str, PersonSettings] = {}
    for who, settings in config.people.items():
        for person in _match(persons, person_of, who, config.me.phone_region):
            chosen[person] = settings
    return chosen


def _cards_by_person(cards: list[Card], person_of: dict[Identity, str]) -> dict[str, list[Card]]:
    by_person: dict[str, list[Card]] = {}
    for card in cards:
        people = {person_of[i] for i in card.identities if i in person_of}
        for person in people:
            by_person.setdefault(person, []).append(card)
    return by_person


@dataclass(frozen=True)
class _Known:
    """Everything the store and config say, gathered once for building every Relationship."""

    identities: dict[str, list[Identity]]
    cards: dict[str, list[Card]]
    summaries: dict[str, ContactSummary]
    days: dict[str, list[date]]
    sources: dict[str, set[str]]
    snoozed: dict[str, date]
    ignored: set[str]
    settings: dict[str, PersonSettings]
    address_books: set[str]  # names of the sources that are address books


def _gather(store: Store, config: Config) -> _Known:
    persons, person_of = store.persons(), store.identities()
    identities: dict[str, list[Identity]] = {}
    for identity, person in sorted(person_of.items()):
        identities.setdefault(person, []).append(identity)
    settings = _settings_by_person(persons, person_of, config)
    ignored = {person for person, _, _, _ in store.corrections("ignore") if person}
    ignored |= {person for person, own in settings.items() if own.ignore}
    books = {name for name, options in config.sources.items() if is_address_book(options.type)}
    return _Known(
        identities=identities,
        cards=_cards_by_person(store.cards(), person_of),
        summaries=store.contact_summaries(),
        days=store.contact_days() if config.cadence.learn else {},
        sources=store.person_sources(),
        snoozed=_snoozes(store),
        ignored=ignored,
        settings=settings,
        address_books=books,
    )


def _groups(own: list[Card], personal: PersonSettings | None) -> list[str]:
    groups = list(dict.fromkeys(g for card in own for g in card.groups))
    if personal is not None and personal.group and personal.group.lower() not in groups:
        groups.insert(0, personal.group.lower())
    return groups


def _relationship(person: str, name: str, known: _Known, config: Config) -> Relationship:
    own = known.cards.get(person, [])
    summary = known.summaries.get(person)
    personal = known.settings.get(person)
    groups = _groups(own, personal)
    chosen = cadence_rules.choose(
        person=personal.cadence if personal else None,
        groups=groups,
        group_cadences=config.cadence.groups,
        learned=cadence_rules.learn(known.days.get(person, [])),
        default=config.cadence.default,
    )
    last = summary.last_at if summary else None
    snoozed = known.snoozed.get(person)
    in_book = any(card.source in known.address_books for card in own)
    return Relationship(
        id=person, name=name, identities=tuple(known.identities.get(person, [])),
        groups=tuple(groups),
        sources=tuple(sorted(known.sources.get(person, set()) | {c.source for c in own})),
        last_contact=last,
        last_channel=summary.channel if summary else None,
        last_direction=summary.direction if summary else None,
        last_title=summary.title if summary else "",
        interactions=summary.interactions if summary else 0,
        cadence=chosen,
        due=cadence_rules.due_date(last, chosen.days, config.me.zone, snoozed),
        snoozed_until=snoozed,
        birthday=next((c.birthday for c in own if c.birthday), None),
        organisation=next((c.organisation for c in own if c.organisation), None),
        listed=person not in known.ignored and (in_book or bool(summary and summary.relationship)),
    )  # fmt: skip


def relationships(store: Store, config: Config) -> list[Relationship]:
    """Everyone known, with last contact, cadence and due date; `listed` marks relationships."""
    known = _gather(store, config)
    people = sorted(store.persons().items(), key=lambda item: item[1].lower())
    return [_relationship(person, name, known, config) for person, name in people]
