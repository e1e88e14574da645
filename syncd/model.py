"""The values that pass between syncd's parts: frozen dataclasses and named tuples.

Connectors produce `Card` and `Interaction` values with identities as they found them (raw); the
core normalises identities (`syncd.identity`), decides what counts (`syncd.rules`) and plans
`Reminder` values that sinks write. Sinks report back with `ReminderState`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import NamedTuple


class IdentityKind(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    LINKEDIN = "linkedin"
    # Someone known only by a name: a WhatsApp chat partner as the user saved them, a LinkedIn
    # connection in an export without profile URLs.
    NAME = "name"


class Channel(StrEnum):
    EMAIL = "email"
    MEETING = "meeting"
    LINKEDIN = "linkedin"
    WHATSAPP = "whatsapp"
    FOLLOWUP = "followup"
    MANUAL = "manual"


class Direction(StrEnum):
    IN = "in"
    OUT = "out"


class Identity(NamedTuple):
    """One way to reach a person: an email address, a phone number, a LinkedIn profile.

    Connectors fill `value` as found; `syncd.identity.normalise` turns it into the canonical form
    (lower-cased address, E.164 number, https://www.linkedin.com/in/<slug>). Identities and
    parties are named tuples rather than dataclasses: they are hashed millions of times in a large
    import, and a tuple's hash costs a tenth of a dataclass's.
    """

    kind: IdentityKind
    value: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


class Party(NamedTuple):
    """Someone named in an interaction: a mail header address, an attendee, a chat partner."""

    identity: Identity
    name: str = ""
    # Meetings: the attendee's PARTSTAT and CUTYPE as written (upper case), "" when absent.
    partstat: str = ""
    cutype: str = ""


@dataclass(frozen=True)
class Card:
    """What an address book (or a connections list) says about one person.

    A card with no identities withdraws the card the source gave earlier under that ref (the
    contact was deleted from the address book).
    """

    source: str
    ref: str  # unique within the source: the card's UID, or file + position when it has none
    name: str
    identities: tuple[Identity, ...]
    groups: tuple[str, ...] = ()  # lower-cased CATEGORIES
    birthday: str | None = None  # "YYYY-MM-DD", or "--MM-DD" when the year is unknown
    organisation: str | None = None
    evidence: str = ""  # file and line, or href


@dataclass(frozen=True)
class Interaction:
    """One contact event as a source saw it.

    `sender` and `recipients` are as found (From / To+Cc+Bcc, organizer / attendees, chat author /
    partner). `signals` carries the facts the counting rules look at, keyed by lower-case name:
    mail headers such as "list-id", "precedence", "auto-submitted", "x-autoreply", "return-path";
    "status" for meetings. `syncd.rules.classify` fills direction, counterparts, counts and rule.
    """

    source: str
    ref: str  # unique within the source: Message-ID, event UID + recurrence id, file + line
    at: datetime  # UTC, timezone-aware
    channel: Channel
    sender: Party | None = None
    recipients: tuple[Party, ...] = ()
    title: str = ""
    evidence: str = ""  # what a user can look up: Message-ID, event UID, file and line
    message_id: str | None = None  # the same mail seen by two sources is stored once
    signals: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    direction: Direction | None = None
    counterparts: tuple[Party, ...] = ()
    counts: bool = True
    rule: str | None = None  # why it does not count


class FollowUpStatus(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"
    DELETED = "deleted"
    DECLINED = "declined"


@dataclass(frozen=True)
class Reminder:
    """A follow-up as a sink writes it: a VTODO (or VEVENT) in the user's calendar."""

    uid: str
    person_id: str
    person_name: str
    due: date
    summary: str
    description: str
    component: str = "VTODO"  # or "VEVENT"
    start: datetime | None = None  # VEVENT: when it begins (aware); VTODO: unused
    duration: timedelta = timedelta(minutes=15)
    links: tuple[str, ...] = ()  # mailto:, tel:, https: ways to reach the person
    categories: tuple[str, ...] = ("syncd",)
    sequence: int = 0  # raised each time a written follow-up changes (iTIP SEQUENCE)
    # When the reminder was first planned; written as DTSTAMP/CREATED so re-writes are byte-stable.
    stamp: datetime | None = None
    # The etag the sink returned when syncd last wrote it (None: never written). A server sink
    # updates with If-Match on it and raises PreconditionFailed when the user changed the item.
    etag: str | None = None


@dataclass(frozen=True)
class ReminderState:
    """What a sink found when it read back a follow-up it wrote."""

    uid: str
    status: FollowUpStatus
    completed_at: datetime | None = None  # UTC
    due: date | None = None  # the day it stands on now (the user may have moved it)
    etag: str | None = None
