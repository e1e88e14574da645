"""What every command shares: the App (config, clock, store), the --now parsing, and how an error
a user can act on is printed."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console

from connectors.base import SinkError, SourceError
from syncd import config as configuration
from syncd import daemon, notify, service
from syncd.config import Config, ConfigError
from syncd.lock import LockError
from syncd.people import UnknownPerson
from syncd.store import Store, StoreError

USER_ERRORS = (
    ConfigError, StoreError, UnknownPerson, SourceError, SinkError, click.BadParameter, LockError,
    service.ServiceError,
)  # fmt: skip
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
