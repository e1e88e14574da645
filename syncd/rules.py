"""What counts as contact: direction, counterparts, and the rule that says why something does not.

`classify` takes an interaction whose parties are already normalised and returns it with
`direction`, `counterparts`, `counts` and `rule` filled in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import NamedTuple, Protocol

from syncd.model import Channel, Direction, Identity, IdentityKind, Interaction, Party

_NOT_PEOPLE = {"ROOM", "RESOURCE", "GROUP"}
# Why contact with nobody but ignored people does not count.
IGNORED = "ignored by you"


@dataclass(frozen=True, eq=False)
class Judge:
    """What the rules need to know: who I am, and the user's [rules] settings.

    Compared by identity (one is made per pass), so verdicts can be cached per judge cheaply.
    """

    me: frozenset[Identity]
    max_attendees: int = 10
    ignore: tuple[str, ...] = ()  # addresses, or "@domain"
    automated_senders: tuple[str, ...] = ()
    ignored: frozenset[Identity] = frozenset()  # `syncd ignore ADDRESS`
    whatsapp_groups: bool = False  # group chats count as contact with each member

    def is_me(self, party: Party) -> bool:
        return party.identity in self.me

    def is_ignored(self, party: Party) -> bool:
        if party.identity in self.ignored:
            return True
        if party.identity.kind is not IdentityKind.EMAIL:
            return False
        address = party.identity.value
        domain = "@" + address.rsplit("@", 1)[-1]
        return address in self.ignore or domain in self.ignore


def _bulk_reason(signals: dict[str, str]) -> str | None:
    if len(signals) == 1 and "return-path" in signals:  # most mail: answered quickly
        return _bounce(signals["return-path"])
    for header in ("list-id", "list-unsubscribe", "list-post"):
        if header in signals:
            return f"mailing list or newsletter ({header.title()} header)"
    precedence = signals.get("precedence", "").strip().lower()
    if precedence in {"bulk", "list", "junk"}:
        return f"bulk mail (Precedence: {precedence})"
    auto = signals.get("auto-submitted", "no").strip().lower()
    if auto and auto != "no":
        return f"automated mail (Auto-Submitted: {auto})"
    for header in ("x-autoreply", "x-autorespond"):
        if header in signals:
            return f"auto-reply ({header.title()} header)"
    return _bounce(signals["return-path"]) if "return-path" in signals else None


def _bounce(return_path: str) -> str | None:
    if return_path.strip() in {"", "<>"}:
        return "bounce or automated mail (empty Return-Path)"
    return None


@lru_cache(maxsize=64)
def _automated_pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(word) for word in words) or "(?!)"
    return re.compile(rf"(?:{alternatives})(?:[-+.][^@]*)?@")


def _automated_sender(party: Party, judge: Judge) -> str | None:
    if party.identity.kind is not IdentityKind.EMAIL:
        return None
    if _automated_pattern(judge.automated_senders).match(party.identity.value):
        return f"automated sender ({party.identity.value})"
    return None


def _unique_others(parties: Iterable[Party], judge: Judge) -> tuple[Party, ...]:
    """Everyone but me, once each; a person listed twice (organizer and attendee) keeps the
    entry that says how they answered."""
    seen: dict[Identity, Party] = {}
    for party in parties:
        if judge.is_me(party):
            continue
        before = seen.get(party.identity)
        if before is None or (party.partstat and not before.partstat):
            seen[party.identity] = party
    return tuple(seen.values())


class Facts(Protocol):
    """What the rules look at: an Interaction has these, and so has a lighter stand-in."""

    @property
    def channel(self) -> Channel: ...
    @property
    def sender(self) -> Party | None: ...
    @property
    def recipients(self) -> tuple[Party, ...]: ...
    @property
    def signals(self) -> dict[str, str]: ...
    @property
    def direction(self) -> Direction | None: ...
    @property
    def rule(self) -> str | None: ...


class Verdict(NamedTuple):
    direction: Direction | None
    counterparts: tuple[Party, ...]
    counts: bool
    rule: str | None


def _counted(judge: Judge, direction: Direction | None, others: tuple[Party, ...],
             rule: str | None) -> Verdict:  # fmt: skip
    kept = tuple(p for p in others if not judge.is_ignored(p))
    if rule is None and others and not kept:
        rule = IGNORED
    elif rule is None and not kept:
        rule = "nobody else took part"
    return Verdict(direction, kept, rule is None, rule)


def _mail(ix: Facts, judge: Judge) -> Verdict:
    if ix.sender is None:
        return Verdict(None, (), False, "no sender")
    rule = _bulk_reason(ix.signals)
    if judge.is_me(ix.sender):
        return _sent(ix.recipients, rule, judge)
    return _received(ix.sender, rule, judge)


# A mailbox is the same few thousand senders and recipient lists over and over.
@lru_cache(maxsize=16384)
def _sent(recipients: tuple[Party, ...], rule: str | None, judge: Judge) -> Verdict:
    return _counted(judge, Direction.OUT, _unique_others(recipients, judge), rule)


@lru_cache(maxsize=16384)
def _received(sender: Party, rule: str | None, judge: Judge) -> Verdict:
    return _counted(judge, Direction.IN, (sender,), rule or _automated_sender(sender, judge))


def _meeting(ix: Facts, judge: Judge) -> Verdict:
    everyone = [p for p in (ix.sender, *ix.recipients) if p is not None]
    people = [p for p in everyone if p.cutype not in _NOT_PEOPLE]
    mine = [p for p in people if judge.is_me(p)]
    organised = ix.sender is not None and judge.is_me(ix.sender)
    direction = Direction.OUT if organised else Direction.IN
    others = tuple(p for p in _unique_others(people, judge) if p.partstat != "DECLINED")
    size = len({p.identity for p in people})
    rule: str | None = None
    if ix.signals.get("status", "").upper() == "CANCELLED":
        rule = "cancelled"
    elif size > judge.max_attendees:
        rule = f"{size} participants, more than max_attendees ({judge.max_attendees})"
    elif people and not mine:
        rule = "you are not among the participants"
    elif mine and not organised and all(p.partstat == "DECLINED" for p in mine):
        rule = "you declined"
    return _counted(judge, direction, others, rule)


def _message(ix: Facts, judge: Judge) -> Verdict:
    """Chats, LinkedIn messages, follow-ups: contact either way.

    A source that knows which side is the user (a chat export names the user however it likes)
    sets `direction` itself; otherwise the author decides it.
    """
    direction = ix.direction
    if direction is None:
        mine = ix.sender is None or judge.is_me(ix.sender)
        direction = Direction.OUT if mine else Direction.IN
    if direction is Direction.IN:
        others = _unique_others([ix.sender] if ix.sender else [], judge)
    else:
        others = _unique_others(ix.recipients, judge)
    rule = ix.rule
    size = len(_unique_others([p for p in (ix.sender, *ix.recipients) if p], judge)) + 1
    if rule is None and ix.signals.get("chat") == "group" and not judge.whatsapp_groups:
        rule = "group chat ([rules] whatsapp_groups is off)"
    elif rule is None and size > judge.max_attendees:
        rule = f"{size} participants, more than max_attendees ({judge.max_attendees})"
    if ix.signals.get("event") == "connected":
        # Connecting: contact with no direction, so it does not make a relationship on its own.
        return _counted(judge, None, others, rule)
    return _counted(judge, direction, others, rule)


def verdict(ix: Facts, judge: Judge) -> Verdict:
    """Direction, counterparts and whether `ix` counts as contact (and if not, why)."""
    if ix.channel is Channel.EMAIL:
        return _mail(ix, judge)
    if ix.channel is Channel.MEETING:
        return _meeting(ix, judge)
    return _message(ix, judge)


def classify(ix: Interaction, judge: Judge) -> Interaction:
    """`ix` with its verdict filled in."""
    direction, counterparts, counts, rule = verdict(ix, judge)
    return replace(ix, direction=direction, counterparts=counterparts, counts=counts, rule=rule)


def is_relationship(channel: str, direction: str | None) -> bool:
    """Contact that makes someone a relationship: anything but what they only sent me."""
    return direction == Direction.OUT or channel in {
        Channel.MEETING, Channel.FOLLOWUP, Channel.MANUAL,
    }  # fmt: skip
