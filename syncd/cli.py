"""The command line: the only part that knows click, rich and where the config file lives."""

from __future__ import annotations

import json
import logging
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from connectors.base import SinkError, SourceError
from syncd import config as configuration
from syncd import corrections, daemon, engine, notify, secrets, service
from syncd.config import Config, ConfigError
from syncd.lock import FileLock, LockError, lock_path
from syncd.people import Relationship, UnknownPerson, find_person, relationships
from syncd.report import Summary
from syncd.store import Store, StoreError
from syncd.views import contacts_table, person_json, show_person, status_tables

USER_ERRORS = (
    ConfigError, StoreError, UnknownPerson, SourceError, SinkError, click.BadParameter, LockError,
    service.ServiceError,
)  # fmt: skip
# How long `syncd sync` waits, by default, for a pass that is already running.
LOCK_WAIT = 60
log = logging.getLogger("syncd")


@dataclass
class App:
    """What every command shares: where the config is, the clock, how much to say."""

    config_path: Path
    now_text: str | None
    verbose: int
    console: Console = field(default_factory=lambda: Console(highlight=False))
    _config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = configuration.load(self.config_path)
        return self._config

    @property
    def now(self) -> datetime:
        if self.now_text:
            return parse_moment(self.now_text, self.config)
        return daemon.wall_clock()

    @contextmanager
    def store(self, *, must_exist: bool = True) -> Iterator[Store]:
        path = self.config.state.database
        if must_exist and not path.exists():
            raise StoreError(f"nothing synced yet ({path} does not exist); run `syncd sync` first")
        store = Store.open(path)
        try:
            yield store
        finally:
            store.close()


def parse_moment(text: str, config: Config) -> datetime:
    """ISO 8601; without a zone it is the user's local time (`me.timezone`)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"expected ISO 8601 like 2026-11-23T09:00, got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=config.me.zone)
    return moment.astimezone(UTC)


class SyncdGroup(click.Group):
    """Prints errors a user can act on without a traceback (with -v, the traceback too)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except USER_ERRORS as error:
            if ctx.obj is not None and ctx.obj.verbose:
                log.exception("details")
            fail(error)


def fail(error: BaseException) -> NoReturn:
    if isinstance(error, ConfigError) and error.problems:
        where = f" in {error.path}" if error.path else ""
        click.echo(f"syncd: the config has problems{where}:", err=True)
        for problem in error.problems:
            click.echo(f"  • {problem}", err=True)
    else:
        message = error.format_message() if isinstance(error, click.ClickException) else error
        click.echo(f"syncd: {message}", err=True)
    sys.exit(1)


def setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else logging.DEBUG if verbose > 1 else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(notify.log_formatter(sys.stderr))  # `<N>` prefixes under journald
    logging.basicConfig(level=level, handlers=[handler])


pass_app = click.make_pass_decorator(App)


@click.group(cls=SyncdGroup)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Config file (else $SYNCD_CONFIG, else ~/.config/syncd/config.toml).",
)
@click.option(
    "--now",
    "now_text",
    metavar="ISO8601",
    default=None,
    help="Fix the clock for this command (replays, tests, demos).",
)
@click.option("-v", "--verbose", count=True, help="Say more; with errors, show the traceback.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.version_option(package_name="syncd")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None, now_text: str | None, verbose: int,
         quiet: bool) -> None:  # fmt: skip
    """Keep in touch: last contact from mail, calendars and address books; follow-ups in your
    own calendar."""
    setup_logging(verbose, quiet)
    ctx.obj = App(config_path or configuration.default_path(), now_text, verbose)


# -- set-up -----------------------------------------------------------------------------------


@main.command()
@click.option("--force", is_flag=True, help="Overwrite an existing config file.")
@pass_app
def init(app: App, force: bool) -> None:
    """Write a commented starter config."""
    path = app.config_path
    if path.exists() and not force:
        raise click.BadParameter(f"{path} exists; use --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(configuration.starter_text(), encoding="utf-8")
    click.echo(f"Wrote {path}. Edit [me], [sources.*] and [sinks.*], then run `syncd check`.")


@main.command()
@pass_app
def check(app: App) -> None:
    """Validate the config and see that every source and sink can be reached."""
    config = app.config
    problems = []
    for key, found in engine.check_connectors(config, app.now).items():
        if not found:
            click.echo(f"  ✓ {key}")
        problems += [f"{key}: {problem}" for problem in found]
    if problems:
        fail(ConfigError(app.config_path, problems))
    click.echo(f"{app.config_path}: OK — {len(config.sources)} sources, {len(config.sinks)} sinks")


@main.command()
@click.option(
    "--into",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder to run the demo in (default: a new temporary folder).",
)
@pass_app
def demo(app: App, into: Path | None) -> None:
    """Run the whole pipeline on bundled sample data and show who is due."""
    from syncd import demo as sample

    folder, config_path = sample.prepare(into)
    app.config_path, app._config = config_path, None
    if app.now_text is None:
        app.now_text = sample.NOW
    app.console.print(f"[bold]syncd demo[/] in {folder} (clock set to {app.now_text})")
    summary = _sync(app, only=None, dry_run=False, wait=LOCK_WAIT)
    with app.store() as store:
        people = relationships(store, app.config)
    today = app.now.astimezone(app.config.me.zone).date()
    due = [p for p in people if p.listed and p.due is not None and p.due <= today]
    app.console.print(
        contacts_table(
            sorted(due, key=_due_order), today, "Due for a follow-up", app.config.me.zone
        )
    )
    app.console.print(summary.line())
    sample.explain(app.console, folder, config_path)


# -- the pass ---------------------------------------------------------------------------------


def _progress_for(console: Console) -> tuple[Progress | None, engine.Progress | None]:
    if not console.is_terminal:
        return None, lambda name, count: log.info("source %s: %d items", name, count)
    bars = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}"),
                    TimeElapsedColumn(), console=console, transient=True)  # fmt: skip
    tasks: dict[str, Any] = {}

    def advance(name: str, count: int) -> None:
        if name not in tasks:
            tasks[name] = bars.add_task(name, total=None)
        bars.update(tasks[name], completed=count)

    return bars, advance


def _sync(app: App, only: str | None, dry_run: bool, wait: float) -> Summary:
    config = app.config
    if only and only not in config.sources:
        raise click.BadParameter(f"no source named {only!r}; the config has: "
                                 + ", ".join(config.sources))  # fmt: skip
    bars, progress = _progress_for(app.console)
    # One pass at a time (the timer, the daemon and a manual run): the second waits, then gives up.
    pass_lock = FileLock(lock_path(config.state.database)).acquire(wait)
    with pass_lock, app.store(must_exist=False) as store:
        try:
            with bars or nullcontext():
                summary = engine.sync(config, store, app.now, only=only, dry_run=dry_run,
                                      progress=progress)  # fmt: skip
            daemon.remember(store, summary, app.now, planned=not dry_run)
        except sqlite3.Error as error:
            raise StoreError(daemon.state_problem(config.state.database, error)) from error
    for report in summary.sources:
        if report.error:
            app.console.print(f"[red]source {report.name} failed:[/] {report.error}")
    for problem in summary.sink_errors:
        app.console.print(f"[red]sink {problem}[/]")
    return summary


@main.command()
@click.option("--source", "only", metavar="NAME", default=None, help="Read only this source.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Read sources into syncd's database, but write no follow-up anywhere.",
)
@click.option(
    "--wait",
    metavar="SECONDS",
    type=click.FloatRange(min=0),
    default=LOCK_WAIT,
    show_default=True,
    help="How long to wait for a pass that is already running.",
)
@pass_app
def sync(app: App, only: str | None, dry_run: bool, wait: float) -> None:
    """One pass: import, work out who is due, write and read back follow-ups."""
    summary = _sync(app, only, dry_run, wait)
    if dry_run:
        for name, sink in summary.written:
            click.echo(f"would write a follow-up for {name} to {sink}")
    click.echo(summary.line())
    if summary.failed:
        sys.exit(1)


# -- looking -----------------------------------------------------------------------------------


def _due_order(person: Relationship) -> tuple[date, str]:
    return (person.due or date.max, person.name.lower())


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.option("--due", "only_due", is_flag=True, help="Only people due by today.")
@click.option("--group", metavar="G", default=None, help="Only people in group G.")
@pass_app
def contacts(app: App, as_json: bool, only_due: bool, group: str | None) -> None:
    """The relationships: last contact, cadence and when each is due."""
    today = app.now.astimezone(app.config.me.zone).date()
    with app.store() as store:
        people = [p for p in relationships(store, app.config) if p.listed]
    if only_due:
        people = [p for p in people if p.due is not None and p.due <= today]
    if group:
        people = [p for p in people if group.lower() in p.groups]
    people.sort(key=_due_order)
    if as_json:
        click.echo(json.dumps([p.to_json() for p in people], indent=2, ensure_ascii=False))
    else:
        title = f"{len(people)} relationships"
        app.console.print(contacts_table(people, today, title, app.config.me.zone))


@main.command()
@click.argument("who")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def show(app: App, who: str, as_json: bool) -> None:
    """One person: identities and why they are joined, cadence, recent contact with evidence."""
    with app.store() as store:
        person_id = find_person(store, who, app.config)
        person = next(p for p in relationships(store, app.config) if p.id == person_id)
        if as_json:
            click.echo(json.dumps(person_json(store, person), indent=2, ensure_ascii=False))
        else:
            zone = app.config.me.zone
            show_person(app.console, store, person, zone, app.now.astimezone(zone).date())


# -- corrections -------------------------------------------------------------------------------


def _correct(app: App, action: Callable[[Store], str]) -> None:
    with app.store() as store:
        click.echo(action(store))


@main.command()
@click.argument("who")
@click.option("--at", "at_text", metavar="WHEN", default=None, help="When (default: now).")
@pass_app
def done(app: App, who: str, at_text: str | None) -> None:
    """Record that you were in touch with WHO (now, or --at WHEN)."""
    at = parse_moment(at_text, app.config) if at_text else app.now
    _correct(app, lambda store: corrections.done(store, app.config, who, at, app.now))


@main.command()
@click.argument("who")
@click.argument("duration")
@pass_app
def snooze(app: App, who: str, duration: str) -> None:
    """Put off WHO's follow-up for DURATION (e.g. 2w, 10d)."""
    try:
        length = configuration.parse_duration(duration)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    _correct(app, lambda store: corrections.snooze(store, app.config, who, length, app.now))


@main.command()
@click.argument("who")
@pass_app
def ignore(app: App, who: str) -> None:
    """Never plan follow-ups for WHO; or, given an address, never count it."""
    _correct(app, lambda store: corrections.ignore(store, app.config, who, app.now))


@main.command()
@click.argument("first")
@click.argument("second")
@pass_app
def merge(app: App, first: str, second: str) -> None:
    """FIRST and SECOND are one person."""
    _correct(app, lambda store: corrections.merge(store, app.config, first, second, app.now))


@main.command()
@click.argument("who")
@click.argument("identity")
@pass_app
def split(app: App, who: str, identity: str) -> None:
    """IDENTITY (an address, number or profile of WHO) is somebody else."""
    _correct(app, lambda store: corrections.split(store, app.config, who, identity, app.now))


# -- operations --------------------------------------------------------------------------------


@main.command()
@pass_app
def run(app: App) -> None:
    """The daemon: read sources on [schedule] sync, write follow-ups daily at [schedule] plan,
    until SIGTERM; SIGHUP reloads the config."""
    daemon.run(app.config_path, app.config)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def status(app: App, as_json: bool) -> None:
    """Per source the last successful sync, the last error and the next run; per sink the
    follow-ups pending, written and completed."""
    with app.store() as store:
        found = daemon.status(app.config, store, app.now)
    if as_json:
        click.echo(json.dumps(found, indent=2, ensure_ascii=False))
        return
    for table in status_tables(found, app.config.me.zone):
        app.console.print(table)


@main.group()
def secret() -> None:
    """Secrets for sources and sinks that log in."""


@secret.command("set")
@click.argument("name")
@pass_app
def secret_set(app: App, name: str) -> None:
    """Store the password for NAME (a source or sink, or the keyring name it uses) in the system
    keyring; it is read from the terminal, or from standard input's first line."""
    connectors = {**app.config.sources, **app.config.sinks}
    logins = secrets.keyring_logins(connectors, name)
    if not logins:
        raise click.BadParameter(
            f"no source or sink reads its password from the keyring as {name!r}; write "
            f'password = {{ keyring = "{name}" }} in its table first'
        )
    if sys.stdin.isatty():
        value = click.prompt(f"Password for {name}", hide_input=True, confirmation_prompt=True)
    else:
        value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise click.BadParameter("no password given; nothing was stored")
    for service_name, user in logins:
        secrets.store_in_keyring(service_name, user, value)
        click.echo(f"Stored in the keyring: service {service_name!r}, user {user!r}.")


@main.command("install-service")
@click.option("--timer", is_flag=True, help="A timer and a one-shot sync instead of the daemon.")
@click.option("--force", is_flag=True, help="Replace unit files that differ.")
@pass_app
def install_service(app: App, timer: bool, force: bool) -> None:
    """Write the systemd user unit that runs `syncd run` (or, with --timer, `syncd sync`)."""
    installed = service.install(app.config_path, app.config, timer=timer, force=force)
    for line in service.instructions(installed):
        click.echo(line)
