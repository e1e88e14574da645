"""The config file: TOML read with tomllib, validated by pydantic; every error names its key path.

Sources and sinks are validated by their connector's own `Options` model (its config schema), found
through the registry by `type`, so a connector's keys are documented and checked in one place.
"""

from __future__ import annotations

import os
import re
import tomllib
from contextlib import suppress
from datetime import time, timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import platformdirs
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from connectors.base import ConfigPath, ConnectorOptions, UnknownType, sink_class, source_class


class ConfigError(Exception):
    """The config cannot be used; `problems` has one line each: key path and what is expected."""

    def __init__(self, path: Path | None, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        where = f"{path}: " if path else ""
        super().__init__(where + "; ".join(problems))


_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(value: object) -> timedelta:
    """ "30d", "2w", "15m", "1h", "45s" -> timedelta. Raises ValueError with what is expected."""
    if isinstance(value, timedelta):
        return value
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f'expected a duration like "30d", "2w", "1h" or "15m", got {value!r}')
    try:
        return timedelta(**{_UNITS[match[2]]: int(match[1])})
    except OverflowError:
        message = f"expected a duration of at most a few thousand years, got {value!r}"
        raise ValueError(message) from None


def _parse_clock(value: object) -> time:
    if isinstance(value, time):
        return value
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f'expected a time of day like "09:00", got {value!r}') from None


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f'expected a time zone name like "Europe/Amsterdam", got {value!r}'
        ) from None
    return value


def _at_least_a_day(value: timedelta) -> timedelta:
    if value < timedelta(days=1):
        raise ValueError('expected a cadence of at least one day, like "30d" or "2w"')
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
CadenceLength = Annotated[
    timedelta, BeforeValidator(parse_duration), AfterValidator(_at_least_a_day)
]
ClockTime = Annotated[time, BeforeValidator(_parse_clock)]
TimeZoneName = Annotated[str, AfterValidator(_check_timezone)]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def local_timezone() -> str:
    """The machine's time zone name: $TZ, /etc/timezone or /etc/localtime; UTC when none is set."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    with suppress(OSError):
        candidates.append(Path("/etc/timezone").read_text().strip())
    with suppress(OSError, IndexError):
        candidates.append(str(Path("/etc/localtime").resolve()).split("zoneinfo/", 1)[1])
    for name in candidates:
        if name:
            try:
                ZoneInfo(name)
                return name
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return "UTC"


def region_of(timezone: str) -> str | None:
    """The country a time zone belongs to (Europe/Amsterdam -> NL), for phone numbers without +."""
    try:
        table = resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text()
    except (ModuleNotFoundError, OSError):
        return None
    for line in table.splitlines():
        fields = line.split("\t")
        if len(fields) >= 3 and not line.startswith("#") and fields[2] == timezone:
            return fields[0]
    return None


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Me(Section):
    name: str = ""
    emails: list[str] = Field(default_factory=list)
    phones: list[str] = Field(default_factory=list)
    linkedin: str | None = None
    timezone: TimeZoneName = Field(default_factory=local_timezone)
    region: str | None = None  # ISO country for phone numbers written without +; from timezone
    locale: Literal["en", "nl"] = "en"

    @field_validator("emails")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        for address in value:
            if "@" not in address:
                raise ValueError(f"expected email addresses, got {address!r}")
        return [address.strip().lower() for address in value]

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def phone_region(self) -> str | None:
        return (self.region or region_of(self.timezone) or "").upper() or None


def default_database() -> Path:
    return platformdirs.user_state_path("syncd") / "syncd.sqlite"


class State(Section):
    database: ConfigPath = Field(default_factory=default_database)


class Rules(Section):
    max_attendees: int = Field(default=10, ge=2)
    # WhatsApp group chats (more than two authors) count as contact with each member.
    whatsapp_groups: bool = False
    # Senders whose mail never counts, by address or by domain ("@example.com").
    ignore: list[str] = Field(default_factory=list)
    # Local parts of automated senders; mail from them never counts.
    automated_senders: list[str] = Field(
        default_factory=lambda: [
            "noreply", "no-reply", "donotreply", "do-not-reply", "mailer-daemon", "postmaster",
            "notifications", "notification", "bounce", "bounces",
        ]
    )  # fmt: skip


class Cadence(Section):
    default: CadenceLength = timedelta(days=90)
    groups: dict[str, CadenceLength] = Field(default_factory=dict)
    learn: bool = True

    @field_validator("groups")
    @classmethod
    def _lower_groups(cls, value: dict[str, timedelta]) -> dict[str, timedelta]:
        return {name.lower(): cadence for name, cadence in value.items()}


class PersonSettings(Section):
    cadence: CadenceLength | None = None
    group: str | None = None
    ignore: bool = False


class Reminders(Section):
    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS[:5]))
    time: ClockTime = time(9, 0)
    duration: Duration = timedelta(minutes=15)
    per_day: int = Field(default=3, ge=1)
    lead: Duration = timedelta(0)
    language: Literal["en", "nl"] = "en"
    component: Literal["VTODO", "VEVENT"] = "VTODO"

    @field_validator("days")
    @classmethod
    def _some_days(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError('expected at least one weekday, like ["mon", "wed"]')
        return value


def _at_least_a_second(value: timedelta) -> timedelta:
    if value < timedelta(seconds=1):
        raise ValueError('expected an interval of at least a second, like "30m" or "1h"')
    return value


Interval = Annotated[timedelta, BeforeValidator(parse_duration), AfterValidator(_at_least_a_second)]


class Schedule(Section):
    sync: Interval = timedelta(minutes=30)
    plan: ClockTime = time(7, 30)
    # Per source, how often `syncd run` reads it instead of `sync`: [schedule.sources] NAME = "10m".
    sources: dict[str, Interval] = Field(default_factory=dict)

    def interval(self, source: str) -> timedelta:
        return self.sources.get(source, self.sync)


class Config(Section):
    me: Me = Field(default_factory=Me)
    state: State = Field(default_factory=State)
    sources: dict[str, ConnectorOptions] = Field(default_factory=dict)
    sinks: dict[str, ConnectorOptions] = Field(default_factory=dict)
    rules: Rules = Field(default_factory=Rules)
    cadence: Cadence = Field(default_factory=Cadence)
    people: dict[str, PersonSettings] = Field(default_factory=dict)
    reminders: Reminders = Field(default_factory=Reminders)
    schedule: Schedule = Field(default_factory=Schedule)


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _describe(error: Any, prefix: tuple[str, ...] = ()) -> str:
    where = _location(prefix + tuple(error["loc"]))
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{where}: unknown key; remove it or check its spelling"
    if kind == "missing":
        return f"{where}: required key is missing"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}"


def _connectors(
    tables: Any, kind: str, lookup: Any, base_dir: Path, problems: list[str]
) -> dict[str, ConnectorOptions]:
    if not isinstance(tables, dict):
        problems.append(f"{kind}: expected tables like [{kind}.NAME]")
        return {}
    validated: dict[str, ConnectorOptions] = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            problems.append(f"{kind}.{name}: expected a table with a type key")
        elif "type" not in table:
            problems.append(f"{kind}.{name}.type: required key is missing")
        else:
            try:
                options_model = lookup(str(table["type"])).Options
                validated[name] = options_model.model_validate(
                    table, context={"base_dir": base_dir}
                )
            except UnknownType as error:
                problems.append(f"{kind}.{name}.type: {error}")
            except ValidationError as error:
                problems.extend(_describe(e, (kind, name)) for e in error.errors())
    return validated


def validate(raw: dict[str, Any], base_dir: Path, path: Path | None = None) -> Config:
    """A parsed TOML document -> Config, or ConfigError listing every problem."""
    problems: list[str] = []
    rest = dict(raw)
    sources = _connectors(rest.pop("sources", {}), "sources", source_class, base_dir, problems)
    sinks = _connectors(rest.pop("sinks", {}), "sinks", sink_class, base_dir, problems)
    config = None
    try:
        config = Config.model_validate(rest, context={"base_dir": base_dir})
    except ValidationError as error:
        problems.extend(_describe(e) for e in error.errors())
    if config is not None:
        problems += [f"schedule.sources.{name}: no source named {name!r} in [sources]"
                     for name in config.schedule.sources if name not in sources]  # fmt: skip
    if problems or config is None:
        raise ConfigError(path, problems)
    return config.model_copy(update={"sources": sources, "sinks": sinks})


def load(path: Path) -> Config:
    """Read and validate a config file; ConfigError names every problem with its key path."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            path, ["no config file here; `syncd init` writes a starter one"]
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(path, [f"cannot read the file: {error}"]) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(path, [f"not valid TOML: {error}"]) from None
    return validate(raw, path.parent.resolve(), path)


def default_path() -> Path:
    """$SYNCD_CONFIG, else $XDG_CONFIG_HOME/syncd/config.toml."""
    if env := os.environ.get("SYNCD_CONFIG"):
        return Path(env).expanduser()
    return platformdirs.user_config_path("syncd") / "config.toml"


def example_text() -> str:
    """The commented example config shipped with syncd (every key)."""
    return resources.files("syncd").joinpath("config.example.toml").read_text(encoding="utf-8")


# What `syncd init` leaves switched on: an address book, a calendar, a Maildir, an .ics file.
STARTER_TABLES = {
    "me", "state", "sources.contacts", "sources.calendar", "sources.mail", "sinks.followups",
    "rules", "cadence", "cadence.groups", "reminders", "schedule",
}  # fmt: skip
_TABLE = re.compile(r"^\[([^\]]+)\]\s*$")


def starter_text() -> str:
    """The example with every table but the starter ones commented out, ready to switch on."""
    lines, keep = [], True
    for line in example_text().splitlines():
        if table := _TABLE.match(line):
            keep = table[1] in STARTER_TABLES
        lines.append(line if keep or not line or line.startswith("#") else f"# {line}")
    return "\n".join(lines) + "\n"
