"""How relationships look on a terminal (rich) and in JSON."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from syncd.people import Relationship
from syncd.store import Store


def _last(person: Relationship, zone: ZoneInfo) -> str:
    if person.last_contact is None:
        return "—"
    return f"{person.last_contact.astimezone(zone):%Y-%m-%d} {person.last_channel}"


def _due(person: Relationship, today: date) -> str:
    if person.due is None:
        return "—"
    late = (today - person.due).days
    if late > 0:
        return f"[red]{person.due.isoformat()}[/] ({late}d overdue)"
    if late == 0:
        return f"[yellow]{person.due.isoformat()}[/] (today)"
    return person.due.isoformat()


def contacts_table(people: list[Relationship], today: date, title: str, zone: ZoneInfo) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("Name", "Groups", "Last contact", "Every", "Due"):
        table.add_column(column)
    for person in people:
        table.add_row(
            escape(person.name), escape(", ".join(person.groups)), _last(person, zone),
            f"{person.cadence.days}d ({person.cadence.source})", _due(person, today),
        )  # fmt: skip
    return table


def _interaction(row: Any) -> dict[str, Any]:
    return {
        "at": datetime.fromtimestamp(row["at"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "channel": row["channel"],
        "direction": row["direction"],
        "title": row["title"],
        "source": row["source"],
        "evidence": row["evidence"],
        "counts": bool(row["counts"]),
        "rule": row["rule"],
    }


def person_json(store: Store, person: Relationship) -> dict[str, Any]:
    data = person.to_json()
    data["organisation"] = person.organisation
    data["cadence_why"] = person.cadence.why
    data["identities"] = [
        {"kind": str(identity.kind), "value": identity.value, "why": why}
        for identity, why in store.identity_rules(person.id)
    ]
    data["recent"] = [_interaction(row) for row in store.recent_interactions(person.id)]
    return data


def show_person(console: Console, store: Store, person: Relationship, zone: ZoneInfo,
                today: date) -> None:  # fmt: skip
    data = person_json(store, person)
    console.print(f"[bold]{escape(person.name)}[/]  ({person.id})"
                  + (f" — {person.organisation}" if person.organisation else ""))  # fmt: skip
    if person.groups:
        console.print(f"groups: {escape(', '.join(person.groups))}")
    console.print(f"sources: {escape(', '.join(person.sources)) or '—'}")
    for identity in data["identities"]:
        value, why = escape(identity["value"]), escape(identity["why"])
        console.print(f"  {identity['kind']:<8} {value}  [dim]({why})[/]")
    console.print(f"cadence: every {person.cadence.days} days — {escape(person.cadence.why)}")
    console.print(f"last contact: {_last(person, zone)}; due: {_due(person, today)}")
    if person.snoozed_until:
        console.print(f"snoozed until {person.snoozed_until.isoformat()}")
    if person.birthday:
        console.print(f"birthday: {escape(person.birthday)}")
    table = Table(title="recent interactions", title_justify="left")
    for column in ("When", "Channel", "Dir", "Title", "Counts", "Evidence"):
        table.add_column(column)
    for row in data["recent"]:
        counts = "yes" if row["counts"] else f"no: {row['rule']}"
        table.add_row(row["at"], row["channel"], row["direction"] or "", escape(row["title"]),
                      escape(counts), escape(f"{row['source']}: {row['evidence']}"))  # fmt: skip
    console.print(table)


def _when(text: str | None, zone: ZoneInfo) -> str:
    if text is None:
        return "—"
    return datetime.fromisoformat(text).astimezone(zone).strftime("%Y-%m-%d %H:%M")


def status_tables(found: dict[str, Any], zone: ZoneInfo) -> list[Table | str]:
    """`syncd status`: whether the daemon runs, each source's runs, each sink's follow-ups."""
    running = found["daemon"]
    pid = f" (pid {running['pid']})" if running["pid"] else ""
    line = f"syncd run: {'running' + pid if running['running'] else 'not running'}"
    sources = Table("source", "last success", "next run", "last error", box=None)
    for row in [*found["sources"], {"name": "(planning)", **found["planning"]}]:
        sources.add_row(escape(row["name"]), _when(row["last_success"], zone),
                        _when(row["next_run"], zone), escape(row["last_error"] or ""))  # fmt: skip
    sinks = Table("sink", "pending", "written", "completed", box=None)
    for row in found["sinks"]:
        sinks.add_row(escape(row["name"]), str(row["pending"]), str(row["written"]),
                      str(row["completed"]))  # fmt: skip
    return [line, sources, sinks]
