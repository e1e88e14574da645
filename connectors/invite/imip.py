"""The iMIP messages (RFC 6047) the `invite` sink sends: the calendars and the mail around them.

A follow-up becomes a METHOD:REQUEST calendar (`invitation`), a withdrawal a METHOD:CANCEL one
(`cancellation`); `mail` wraps either in the MIME message, and `Mailbox` is an address as the
config gives it.

The message is laid out as the CalConnect iMIP guide recommends after interoperability tests:
multipart/mixed holding multipart/alternative (text/plain, text/calendar with the method) and the
same calendar as an application/ics attachment, for clients that only look at attachments.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
from datetime import UTC, datetime, time
from email.message import EmailMessage
from email.policy import compat32
from email.utils import parseaddr
from typing import TYPE_CHECKING, NamedTuple
from zoneinfo import ZoneInfo

import icalendar

from connectors.base import Context
from connectors.ical import FOOTER, HEADER, render
from syncd.model import Reminder

if TYPE_CHECKING:  # the options live with the sink, which imports this module
    from connectors.invite import InviteOptions

FOLLOW_UP_TIME = time(9, 0)  # when a follow-up planned as a task (no time of day) starts
CANCELLED_SUBJECT = "Cancelled: follow-up no longer needed"
CANCELLED_TEXT = "syncd withdrew this follow-up: it is no longer needed."

_MAILBOX = re.compile(r"[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+")
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


class Mailbox(NamedTuple):
    """An address as the config gives it: `syncd@example.org` or `syncd <syncd@example.org>`."""

    name: str
    address: str

    @classmethod
    def parse(cls, value: str) -> Mailbox:
        if _CONTROLS.search(value):
            raise ValueError("an address cannot hold line breaks or control characters")
        name, address = parseaddr(value)
        if not _MAILBOX.fullmatch(address):
            raise ValueError(f"{value!r} is not a mail address (like syncd@example.org)")
        return cls(name, address)

    def __str__(self) -> str:
        return f"{self.name} <{self.address}>" if self.name else self.address


# -- the iCalendar side ---------------------------------------------------------------------------


def _party(mailbox: Mailbox, **params: str) -> icalendar.vCalAddress:
    party = icalendar.vCalAddress(f"mailto:{mailbox.address}")
    if mailbox.name:
        party.params["CN"] = mailbox.name
    party.params.update(params)
    return party


def _people(options: InviteOptions) -> icalendar.Event:
    """The ORGANIZER and ATTENDEE lines every message carries."""
    people = icalendar.Event()
    people.add("organizer", _party(options.organizer))
    invited = {"ROLE": "REQ-PARTICIPANT", "PARTSTAT": "NEEDS-ACTION", "RSVP": "TRUE"}
    people.add("attendee", _party(options.attendee, **invited))
    return people


def _properties(item: icalendar.Event) -> str:
    """An item's property lines, without its BEGIN and END."""
    lines = item.to_ical().decode("utf-8").split("\r\n")
    return "\r\n".join(lines[1:-2]) + "\r\n"


def _calendar(method: str, block: str) -> str:
    return HEADER + f"METHOD:{method}\r\n" + block + FOOTER


def invitation(reminder: Reminder, options: InviteOptions, context: Context) -> str:
    """The METHOD:REQUEST calendar for a follow-up (`reminder.sequence` is its SEQUENCE).

    An invitation is an event: a follow-up planned as a task starts at 09:00 on its day.
    """
    start = reminder.start or datetime.combine(reminder.due, FOLLOW_UP_TIME, context.timezone)
    event = dataclasses.replace(reminder, component="VEVENT", start=start)
    block = render(event, context.timezone)
    # DTEND rather than DURATION: more of the programs an invitation reaches understand it.
    extra = _people(options)
    extra.add("dtend", (start + event.duration).astimezone(UTC))
    lines = [line for line in block.split("\r\n") if not line.startswith("DURATION:")]
    block = "\r\n".join(lines).replace("END:VEVENT\r\n", _properties(extra) + "END:VEVENT\r\n")
    return _calendar("REQUEST", block)


def cancellation(uid: str, sequence: int, options: InviteOptions, now: datetime) -> str:
    """The METHOD:CANCEL calendar that withdraws the invitation with `uid`."""
    # A UID the invitation could not have carried is refused the same way (render raises).
    render(Reminder(uid, "", "", now.date(), "", ""), ZoneInfo("UTC"))
    event = _people(options)
    event.add("uid", uid)
    event.add("dtstamp", now.astimezone(UTC))
    event.add("sequence", sequence)
    event.add("status", "CANCELLED")
    event.add("summary", CANCELLED_SUBJECT)
    return _calendar("CANCEL", event.to_ical().decode("utf-8"))


# -- the mail side --------------------------------------------------------------------------------


def message_id(uid: str, sequence: int) -> str:
    """`<syncd-PERSON-CYCLE.SEQUENCE@syncd>`: unique per send, and it names the follow-up."""
    left = uid.removesuffix("@syncd")
    if not _ATOM.fullmatch(left):  # not usable in a Message-ID as it is
        left = "syncd-" + hashlib.sha256(uid.encode("utf-8", "surrogatepass")).hexdigest()[:24]
    return f"<{left}.{sequence}@syncd>"


def _one_line(text: str) -> str:
    return " ".join(_CONTROLS.sub(" ", text).split())


def _calendar_part(calendar: str, method: str) -> EmailMessage:
    """The text/calendar part, its Content-Type exactly as in RFC 6047's examples."""
    part = EmailMessage(policy=compat32)  # keeps a header as written; the default quotes REQUEST
    part["Content-Type"] = f"text/calendar; method={method}; charset=UTF-8"
    if calendar.isascii():
        part["Content-Transfer-Encoding"] = "7bit"
        part.set_payload(calendar)
    else:
        part["Content-Transfer-Encoding"] = "base64"
        part.set_payload(base64.encodebytes(calendar.encode("utf-8", "surrogatepass")).decode())
    return part


def mail(
    calendar: str, method: str, subject: str, text: str, headers: dict[str, str]
) -> EmailMessage:
    """The iMIP message: the text and the calendar as alternatives, the calendar attached too."""
    message = EmailMessage()
    for name, value in headers.items():
        message[name] = value
    message["Subject"] = _one_line(subject) or "Follow-up"
    message["Auto-Submitted"] = "auto-generated"  # no auto-replies; never counted as contact
    message.set_content(text, cte="quoted-printable")
    message.make_alternative()
    message.attach(_calendar_part(calendar, method))
    message.make_mixed()
    attached = calendar.encode("utf-8", "surrogatepass")
    message.add_attachment(
        attached, "application", "ics", filename="invite.ics", params={"name": "invite.ics"}
    )
    return message


def _text_of(calendar: str) -> tuple[str, str]:
    """(summary, the text part) as the calendar says them, so both always agree."""
    item = icalendar.Calendar.from_ical(calendar).walk("VEVENT")[0]
    summary = str(item.get("SUMMARY", ""))
    description = str(item.get("DESCRIPTION", ""))
    return summary, f"{summary}\n\n{description}".strip() + "\n"
