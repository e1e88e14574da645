"""Which identities are one person: normalisation, then resolution by cards, names, corrections.

Pure functions: the engine hands in what the store holds and writes back what comes out.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote

import phonenumbers

from syncd.model import Identity, IdentityKind

_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_LINKEDIN = re.compile(r"linkedin\.com/in/([^/?#\s]+)", re.IGNORECASE)
_NAME_TOKEN = re.compile(r"[^\W\d_]+")
# Letters NFKD does not take apart, so "Søren Østergaard" and "Soren Ostergaard" are one name.
_FOLD = str.maketrans({"ø": "o", "æ": "ae", "ß": "ss", "ł": "l", "đ": "d", "þ": "th", "œ": "oe"})


def normalise_email(raw: str) -> str | None:
    address = raw.strip().strip("<>").lower().removeprefix("mailto:")
    if not _EMAIL.match(address):
        return None
    local, domain = address.rsplit("@", 1)
    if domain == "googlemail.com":
        domain = "gmail.com"
    return f"{local}@{domain}"


def normalise_phone(raw: str, region: str | None) -> str | None:
    text = raw.strip().removeprefix("tel:")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_linkedin(raw: str) -> str | None:
    match = _LINKEDIN.search(raw)
    if not match:
        return None
    slug = unquote(match[1]).strip().lower().rstrip("/")
    return f"https://www.linkedin.com/in/{slug}" if slug else None


def name_key(name: str) -> str | None:
    """A full name in a form two spellings share, or None when it is not a full name.

    "Vries, Jan de", "Jan de Vries" and "JAN DE VRIES" share one key; "Anne-Marie van 't Hof" and
    "Anne Marie van t Hof" too. A single word (a first name alone) is never a key.
    """
    tokens = _name_tokens(name)
    return " ".join(tokens) if len(tokens) >= 2 else None


def _name_tokens(name: str) -> list[str]:
    text = name.strip().strip("\"'")
    if not text or "@" in text:
        return []
    if text.count(",") == 1:
        last, first = text.split(",")
        text = f"{first} {last}"
    folded = unicodedata.normalize("NFKD", text.lower().translate(_FOLD)).lower()
    plain = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return _NAME_TOKEN.findall(plain)


def normalise(identity: Identity, region: str | None) -> Identity | None:
    """The canonical form of an identity as a source found it; None when it is not usable."""
    value: str | None
    match identity.kind:
        case IdentityKind.EMAIL:
            value = normalise_email(identity.value)
        case IdentityKind.PHONE:
            value = normalise_phone(identity.value, region)
        case IdentityKind.LINKEDIN:
            value = normalise_linkedin(identity.value)
        case IdentityKind.NAME:
            # A chat partner saved as "Mama" is someone too; only joining needs a full name.
            value = " ".join(_name_tokens(identity.value)) or None
    return Identity(identity.kind, value) if value else None


def person_id_for(identity: Identity, taken: set[str]) -> str:
    """A new person's id: derived from an identity, so a rebuilt database gives the same ids."""
    seed = str(identity)
    for attempt in range(1000):
        digest = hashlib.sha256(f"{seed}#{attempt}".encode()).hexdigest()[:12]
        if f"p{digest}" not in taken:
            return f"p{digest}"
    raise RuntimeError("no free person id")  # pragma: no cover - 1000 collisions of 48 bits


@dataclass(frozen=True)
class Record:
    """Identities seen together, under a name: an address-book card, or one party of a message.

    `card` records join all their identities and decide whether a name is ambiguous; `side` is the
    source the name was seen in.
    """

    identities: frozenset[Identity]
    name: str
    side: str
    card: bool
    evidence: str = ""


@dataclass(frozen=True)
class Corrections:
    # (a, b): a's person and b's person are one; a's person keeps its id.
    merges: tuple[tuple[Identity, Identity], ...] = ()
    splits: frozenset[Identity] = frozenset()
    ignored: frozenset[Identity] = frozenset()


@dataclass
class Resolution:
    person_of: dict[Identity, str] = field(default_factory=dict)
    why: dict[Identity, str] = field(default_factory=dict)  # which rule joined the identity
    names: dict[str, str] = field(default_factory=dict)  # person id -> display name


class _Components:
    """Union-find over identities, remembering why each identity joined."""

    def __init__(self, nodes: Iterable[Identity]) -> None:
        self.parent = {node: node for node in nodes}
        self.why: dict[Identity, str] = {}

    def find(self, node: Identity) -> Identity:
        root = node
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[node] != root:
            self.parent[node], node = root, self.parent[node]
        return root

    def union(self, a: Identity, b: Identity, why: str) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self.parent[max(root_a, root_b)] = min(root_a, root_b)
            self.why.setdefault(a, why)
            self.why.setdefault(b, why)

    def groups(self) -> dict[Identity, list[Identity]]:
        members: dict[Identity, list[Identity]] = defaultdict(list)
        for node in self.parent:
            members[self.find(node)].append(node)
        return members


def shared_identities(records: list[Record]) -> set[Identity]:
    """Identities on address-book entries of differently named people: a family's one address."""
    names: dict[Identity, set[str]] = defaultdict(set)
    for record in records:
        if record.card:
            for identity in record.identities:
                names[identity].add(name_key(record.name) or record.name.strip().lower())
    return {identity for identity, found in names.items() if len(found) > 1}


def _join_cards(parts: _Components, records: list[Record], alone: set[Identity]) -> None:
    for record in records:
        if not record.card:
            continue
        joined = sorted(i for i in record.identities if i not in alone and i in parts.parent)
        for other in joined[1:]:
            parts.union(joined[0], other, f"same card ({record.evidence or record.side})")


def _join_names(parts: _Components, records: list[Record], alone: set[Identity]) -> None:
    """Join persons that carry one full name, when no source has two people with that name.

    An address seen under two different names (a shared family or office address) joins nobody.
    """
    by_source: dict[str, dict[str, set[Identity]]] = defaultdict(lambda: defaultdict(set))
    elsewhere: dict[str, set[Identity]] = defaultdict(set)
    names_of: dict[Identity, set[str]] = defaultdict(set)
    for record in records:
        key = name_key(record.name)
        members = [i for i in record.identities if i not in alone and i in parts.parent]
        if key is None or not members:
            continue
        root = parts.find(members[0])
        if record.card:
            by_source[key][record.side].add(root)
        else:
            elsewhere[key].add(root)
            names_of[root].add(key)
    shared = {root for root, keys in names_of.items() if len(keys) > 1}
    for key in set(by_source) | set(elsewhere):
        sides = by_source.get(key, {})
        if any(len(roots) > 1 for roots in sides.values()):
            continue  # two address-book entries with this name: two people
        carded = set().union(*sides.values()) if sides else set()
        loose = elsewhere.get(key, set()) - carded - shared
        if len(loose) > 1:
            continue  # two unknown addresses with this name: cannot tell them apart
        everyone = sorted(carded | loose)
        for other in everyone[1:]:
            parts.union(everyone[0], other, "same full name")


def _assign_ids(
    groups: dict[Identity, list[Identity]],
    previous: dict[Identity, str],
    keep: frozenset[Identity] = frozenset(),
    splits: frozenset[Identity] = frozenset(),
) -> dict[Identity, str]:
    """Keep each group's earlier id (the one most of its identities had); new groups get new ids.

    The id of an identity in `keep` wins over votes: `syncd merge A B` keeps A's id. An identity
    split off chooses last, so the person it leaves keeps the id.
    """
    person_of: dict[Identity, str] = {}
    taken: set[str] = set()
    order = sorted(groups.values(), key=lambda m: (set(m) <= splits, -len(m), min(m)))
    for members in order:
        votes = Counter(previous[i] for i in members if i in previous)
        kept = {previous[i] for i in members if i in keep and i in previous}
        ranked = sorted(votes, key=lambda pid: (pid not in kept, -votes[pid], pid))
        person = next((pid for pid in ranked if pid not in taken), None)
        if person is None:
            person = person_id_for(min(members), taken | set(previous.values()))
        taken.add(person)
        for identity in members:
            person_of[identity] = person
    return person_of


def _names(records: list[Record], person_of: dict[Identity, str]) -> dict[str, str]:
    """A person's name: from an address-book card, else the name they are most often seen under."""
    carded: dict[str, str] = {}
    seen: dict[str, Counter[str]] = defaultdict(Counter)
    for record in records:
        name = record.name.strip().strip("\"'")
        for identity in record.identities:
            person = person_of.get(identity)
            if person is None or not name:
                continue
            if record.card:
                carded.setdefault(person, name)
            elif "@" not in name:
                seen[person][name] += 1
    # The most frequent name; ties go to the alphabetically first, so runs agree.
    names = {person: min(counts, key=lambda n: (-counts[n], n)) for person, counts in seen.items()}
    names.update(carded)
    for identity, person in person_of.items():
        names.setdefault(person, identity.value)
    return names


def resolve(
    records: list[Record], corrections: Corrections, previous: dict[Identity, str]
) -> Resolution:
    """Group identities into persons: same card, then unique full name, then the user's merges."""
    nodes = {i for r in records for i in r.identities} - corrections.ignored
    parts = _Components(sorted(nodes))
    shared = shared_identities(records)
    _join_cards(parts, records, shared | corrections.splits)
    _join_names(parts, records, shared | corrections.splits)
    for a, b in corrections.merges:
        if a in parts.parent and b in parts.parent and not {a, b} & corrections.splits:
            parts.union(a, b, "merged by you (syncd merge)")
    for identity in shared & nodes:
        parts.why.setdefault(identity, "shared by differently named address-book entries")
    for identity in corrections.splits & nodes:
        parts.why[identity] = "split off by you (syncd split)"
    first = frozenset(a for a, _ in corrections.merges)
    person_of = _assign_ids(parts.groups(), previous, first, corrections.splits)
    why = {i: parts.why.get(i, "seen on its own") for i in person_of}
    return Resolution(person_of, why, _names(records, person_of))
