"""The commands that run syncd as a service: `run` (the daemon), `status`, `secret set` and
`install-service`. They are added to the `syncd` group in syncd/cli.py."""

from __future__ import annotations

import json
import sys

import click

from syncd import daemon, secrets, service
from syncd.cli_app import App, pass_app
from syncd.views import status_tables


@click.command()
@pass_app
def run(app: App) -> None:
    """The daemon: read sources on [schedule] sync, write follow-ups daily at [schedule] plan,
    until SIGTERM; SIGHUP reloads the config."""
    daemon.run(app.config_path, app.config)


@click.command()
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


@click.group()
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


@click.command("install-service")
@click.option("--timer", is_flag=True, help="A timer and a one-shot sync instead of the daemon.")
@click.option("--force", is_flag=True, help="Replace unit files that differ.")
@pass_app
def install_service(app: App, timer: bool, force: bool) -> None:
    """Write the systemd user unit that runs `syncd run` (or, with --timer, `syncd sync`)."""
    installed = service.install(app.config_path, app.config, timer=timer, force=force)
    for line in service.instructions(installed):
        click.echo(line)
