"""Secrets for sources and sinks that log in: the system keyring, a command, or a file.

Never the config file, never a log line: errors name where syncd looked, not what it found.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from connectors.base import SecretOptions, SourceError

COMMAND_TIMEOUT = 60


def _from_keyring(service: str, user: str) -> str:
    import keyring
    from keyring.errors import KeyringError, NoKeyringError

    try:
        backend = keyring.get_keyring()
        if type(backend).__module__.startswith(("keyring.backends.fail", "keyring.backends.null")):
            raise NoKeyringError(type(backend).__name__)
        value = keyring.get_password(service, user)
    except NoKeyringError:
        raise SourceError(
            "no system keyring is available here (no D-Bus session?); use password_command "
            '(e.g. ["pass", "show", "mail"]) or password_file instead'
        ) from None
    except KeyringError as error:
        raise SourceError(f"the keyring could not be read: {type(error).__name__}") from None
    if not value:
        raise SourceError(
            f"no secret found in the keyring for service {service!r}, user {user!r}; "
            f"store it with `syncd secret set`"
        )
    return value


def _from_command(command: list[str]) -> str:
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SourceError(f"password_command {command[0]!r} could not run: {error}") from None
    if done.returncode != 0:
        raise SourceError(
            f"password_command {command[0]!r} failed with exit code {done.returncode}"
        )
    first = done.stdout.splitlines()[0] if done.stdout else ""
    if not first:
        raise SourceError(f"password_command {command[0]!r} printed nothing")
    return first


def credential_path(path: Path) -> Path:
    """`%d/NAME` is a systemd credential: $CREDENTIALS_DIRECTORY/NAME."""
    text = str(path)
    if "%d/" in text:
        folder = os.environ.get("CREDENTIALS_DIRECTORY")
        if not folder:
            raise SourceError("password_file uses %d but $CREDENTIALS_DIRECTORY is not set "
                              "(LoadCredential= in the systemd unit sets it)")  # fmt: skip
        return Path(folder) / text.split("%d/", 1)[1]
    return path


def _from_file(path: Path) -> str:
    path = credential_path(path)
    try:
        first = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise SourceError(f"password_file {path} cannot be read: {error.strerror}") from None
    if not first or not first[0]:
        raise SourceError(f"password_file {path} is empty")
    return first[0]


def resolve(options: SecretOptions, name: str) -> str:
    """The secret for connector `name`, or SourceError saying where it was looked for."""
    if options.password is not None:
        return _from_keyring(options.password["keyring"], options.username or name)
    if options.password_command:
        return _from_command(options.password_command)
    if options.password_file is not None:
        return _from_file(options.password_file)
    raise SourceError(f"{name} needs a secret: set password = {{ keyring = \"...\" }}, "
                      "password_command or password_file")  # fmt: skip
