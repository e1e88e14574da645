"""The user's corrections: stored, and applied on every later pass, so they survive every sync."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from syncd import engine
from syncd.config import Config
from syncd.identity import normalise
from syncd.model import Channel, Direction, Identity, IdentityKind, Interaction
from syncd.people import UnknownPerson, find_person
from syncd.store import Store


def _as_identity(text: str, config: Config) -> Identity | None:
    """An address, phone number or LinkedIn URL as typed; None when it is none of those."""
    kinds = [IdentityKind.EMAIL] if "@" in text else [IdentityKind.LINKEDIN, IdentityKind.PHONE]
    if "linkedin.com" not in text and not any(ch.isdigit() for ch in text) and "@" not in text:
        return None
    for kind in kinds:
        identity = normalise(Identity(kind, text), config.me.phone_region)
        if identity is not None:
            return identity
    return None


def done(store: Store, config: Config, who: str, at: datetime, now: datetime) -> str:
    person = find_person(store, who, config)
    contact = Interaction(
        source="manual", ref=f"done:{person}:{at.isoformat()}", at=at, channel=Channel.MANUAL,
        title="marked done", evidence="syncd done", direction=Direction.OUT,
    )  # fmt: skip
    store.add_contact(person, contact)
    return f"Recorded contact with {store.persons()[person]} at {at:%Y-%m-%d %H:%M} UTC."


def snooze(store: Store, config: Config, who: str, length: timedelta, now: datetime) -> str:
    person = find_person(store, who, config)
    until = (now.astimezone(config.me.zone) + length).date()
    store.add_correction("snooze", person_id=person, until=until.isoformat(), now=now)
    return f"Snoozed {store.persons()[person]} until {until.isoformat()}."


def ignore(store: Store, config: Config, who: str, now: datetime) -> str:
    identity = _as_identity(who, config)
    if identity is not None:
        store.add_correction("ignore", identity=str(identity), now=now)
        engine.judge_again(config, store)  # taken out of what is stored, at once
        engine.resolve(store, now)
        return f"Ignoring {identity.value}: it no longer counts as anyone's contact."
    person = find_person(store, who, config)
    store.add_correction("ignore", person_id=person, now=now)
    return f"Ignoring {store.persons()[person]}: no follow-ups will be planned."


def merge(store: Store, config: Config, first: str, second: str, now: datetime) -> str:
    a, b = find_person(store, first, config), find_person(store, second, config)
    if a == b:
        return "They are already one person."
    names = store.persons()
    person_of = store.identities()
    # Every identity of both, so the merge holds even when one of them is split off later.
    left = json.dumps(sorted(str(i) for i, p in person_of.items() if p == a))
    right = json.dumps(sorted(str(i) for i, p in person_of.items() if p == b))
    store.add_correction("merge", identity=left, other=right, now=now)
    engine.resolve(store, now)
    return f"Merged {names[b]} into {names[a]}."


def split(store: Store, config: Config, who: str, text: str, now: datetime) -> str:
    person = find_person(store, who, config)
    identity = _as_identity(text, config)
    if identity is None or store.identities().get(identity) != person:
        raise UnknownPerson(f"{text!r} is not one of {store.persons()[person]}'s identities; "
                            f"`syncd show {who}` lists them")  # fmt: skip
    store.add_correction("split", identity=str(identity), now=now)
    engine.resolve(store, now)
    return f"{identity.value} is now a person of its own."
