"""`syncd install-service`: the systemd user units, written for this installation.

The files in the repository's `systemd/` folder are these same units for a `pipx install`ed syncd
with the default paths; a test keeps the two equal.
"""

from __future__ import annotations

import getpass
import shlex
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from syncd.config import Config

SERVICE = "syncd.service"
SYNC_SERVICE = "syncd-sync.service"
TIMER = "syncd-sync.timer"
# What the shipped units run, and what they may write: pipx's syncd, the XDG state and config
# folders (%S and %E in a user unit are $XDG_STATE_HOME and $XDG_CONFIG_HOME).
DEFAULT_COMMAND = "%h/.local/bin/syncd"
# "-": a folder that does not exist (yet) is not an error at start.
DEFAULT_WRITABLE = ("-%S/syncd", "-%E/syncd")
# How long `syncd sync` started by the timer waits for a pass that is still running.
TIMER_WAIT = 600


class ServiceError(Exception):
    """A unit file cannot be written; the message says what to do."""


def _hardening(writable: Iterable[str]) -> str:
    return f"""\
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths={" ".join(writable)}
PrivateTmp=yes
LockPersonality=yes
RestrictRealtime=yes
UMask=0077
"""


def _credential_lines(credentials: Iterable[tuple[str, Path]]) -> str:
    return "".join(f"LoadCredential={name}:{_quoted(str(path))}\n" for name, path in credentials)


def service_unit(
    command: str = DEFAULT_COMMAND,
    writable: Iterable[str] = DEFAULT_WRITABLE,
    credentials: Iterable[tuple[str, Path]] = (),
) -> str:
    """The daemon's user unit: `syncd run`, Type=notify with a watchdog, hardened."""
    return f"""\
# syncd, the keep-in-touch daemon, as a systemd user service (`syncd install-service` writes it).
#   systemctl --user daemon-reload && systemctl --user enable --now syncd.service
[Unit]
Description=syncd: keep-in-touch follow-ups in your calendar
After=network-online.target

[Service]
Type=notify
NotifyAccess=main
ExecStart={command} run
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=30s
WatchdogSec=10min
TimeoutStopSec=30s
# Secrets as systemd credentials: one line per secret, and in the config
# password_file = "%d/mail" (the part after %d/ is the name before the colon).
#LoadCredential=mail:%E/syncd/mail.password
{_credential_lines(credentials)}{_hardening(writable)}
[Install]
WantedBy=default.target
"""


def sync_service_unit(
    command: str = DEFAULT_COMMAND,
    writable: Iterable[str] = DEFAULT_WRITABLE,
    credentials: Iterable[tuple[str, Path]] = (),
) -> str:
    """One pass, `syncd sync`, for the timer; for those who prefer a timer to the daemon."""
    return f"""\
# One syncd pass, started by syncd-sync.timer (instead of syncd.service, not beside it).
[Unit]
Description=syncd: one pass over sources and follow-ups
After=network-online.target

[Service]
Type=oneshot
ExecStart={command} sync --wait {TIMER_WAIT}
#LoadCredential=mail:%E/syncd/mail.password
{_credential_lines(credentials)}{_hardening(writable)}"""


def timer_unit() -> str:
    return """\
# A syncd pass every 30 minutes; one missed while the machine was off or asleep runs at start.
#   systemctl --user daemon-reload && systemctl --user enable --now syncd-sync.timer
[Unit]
Description=syncd: a pass every 30 minutes

[Timer]
OnCalendar=*:0/30
Persistent=true
RandomizedDelaySec=60

[Install]
WantedBy=timers.target
"""


def _quoted(path: str) -> str:
    """A path as a unit file reads it: `%` escaped, quoted when it has spaces."""
    text = path.replace("%", "%%")
    return f'"{text}"' if any(c.isspace() for c in text) else text


def command_for(config_path: Path) -> str:
    """How this installation's syncd is started, with its config file named explicitly (the
    user's service manager does not see the shell's $SYNCD_CONFIG)."""
    script = Path(sys.executable).with_name("syncd")
    start = [str(script)] if script.exists() else [sys.executable, "-m", "syncd"]
    words = [*start, "--config", str(config_path.resolve())]
    return " ".join(_quoted(word) for word in words)


def writable_folders(config_path: Path, config: Config) -> list[str]:
    """The folders syncd writes in: its state, its config, and each file sink's folder."""
    folders = [config.state.database.parent, config_path.resolve().parent]
    for options in config.sinks.values():
        path = getattr(options, "path", None)
        if isinstance(path, Path):
            folders.append(path if path.is_dir() else path.parent)
    return [_quoted(f"-{folder}") for folder in dict.fromkeys(folders)]


def credentials(config_path: Path, config: Config) -> list[tuple[str, Path]]:
    """(NAME, file) for each `password_file = "%d/NAME"`: systemd hands the file to syncd as the
    credential NAME; the file is expected in `credentials/` beside the config."""
    folder = config_path.resolve().parent / "credentials"
    found = []
    for options in [*config.sources.values(), *config.sinks.values()]:
        path = getattr(options, "password_file", None)
        if isinstance(path, Path) and "%d/" in str(path):
            name = str(path).split("%d/", 1)[1]
            found.append((name, folder / name))
    return list(dict.fromkeys(found))


def unit_folder() -> Path:
    """$XDG_CONFIG_HOME/systemd/user, where the user's service manager looks."""
    return platformdirs.user_config_path("systemd") / "user"


@dataclass(frozen=True)
class Installed:
    paths: list[Path]
    start: str  # the unit to enable: syncd.service or syncd-sync.timer
    credentials: list[tuple[str, Path]]


def install(config_path: Path, config: Config, *, timer: bool, force: bool) -> Installed:
    """Write the daemon's unit (or the timer and its one-shot service) for this installation."""
    command = command_for(config_path)
    writable = writable_folders(config_path, config)
    secrets = credentials(config_path, config)
    if timer:
        units = {SYNC_SERVICE: sync_service_unit(command, writable, secrets), TIMER: timer_unit()}
    else:
        units = {SERVICE: service_unit(command, writable, secrets)}
    folder = unit_folder()
    targets = {folder / name: text for name, text in units.items()}
    for path, text in targets.items():
        if path.exists() and path.read_text(encoding="utf-8") != text and not force:
            raise ServiceError(f"{path} exists and differs; use --force to replace it (put "
                               "your own changes in `systemctl --user edit` drop-ins)")  # fmt: skip
    try:
        folder.mkdir(parents=True, exist_ok=True)
        config.state.database.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        for path, text in targets.items():
            path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise ServiceError(f"cannot write {folder}: {error.strerror}") from None
    return Installed(list(targets), TIMER if timer else SERVICE, secrets)


def instructions(installed: Installed) -> list[str]:
    """What the user runs next."""
    hints = [f"Put the password for {name} in {path} (mode 0600); systemd hands it to syncd."
             for name, path in installed.credentials if not path.exists()]  # fmt: skip
    return [
        f"Wrote {', '.join(str(p) for p in installed.paths)}. Start it with:",
        "  systemctl --user daemon-reload",
        f"  systemctl --user enable --now {installed.start}",
        "To keep it running while you are logged out (on a server, say):",
        f"  loginctl enable-linger {shlex.quote(getpass.getuser())}",
        *hints,
    ]
