"""The command line: the only part that knows click, rich and where the config file lives.

This module holds the `syncd` group and the commands to set up, sync, look and correct; what every
command shares is in syncd/cli_app.py, the service commands (run, status, secret, install-service)
in syncd/cli_service.py."""

from __future__ import annotations

import json
import logging
import sqlite3
import sys
from collections.abc import Callable
from contextlib import nullcontext
from datetime import date
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from syncd import config as configuration
from syncd import corrections, daemon, engine
from syncd.cli_app import App, SyncdGroup, fail, parse_moment, pass_app, setup_logging
from syncd.cli_service import install_service, run, secret, status
from syncd.config import ConfigError
from syncd.lock import pass_lock
from syncd.people import Relationship, find_person, relationships
from syncd.report import Summary
from syncd.store import Store, StoreError
from syncd.views import contacts_table, person_json, show_person

# How long `syncd sync` waits, by default, for a pass that is already running.
LOCK_WAIT = 60
log = logging.getLogger("syncd")


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
    with pass_lock(config.state.database, wait), app.store(must_exist=False) as store:
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
    # Not in the middle of a pass: it would store what it reads under the rules it started with.
    with pass_lock(app.config.state.database, LOCK_WAIT), app.store() as store:
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
# In syncd/cli_service.py; added here so that `syncd --help` lists them with the others.

main.add_command(run)
main.add_command(status)
main.add_command(secret)
main.add_command(install_service)
