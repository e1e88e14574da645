"""Secrets for sources and sinks that log in: the system keyring, a command, or a file.

Never the config file, never a log line: errors name where syncd looked, not what it found.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from types import ModuleType

from connectors.base import ConnectorOptions, SecretOptions, SourceError

COMMAND_TIMEOUT = 60


NO_KEYRING = (
    "no system keyring is available here (no D-Bus session?); use password_command "
    '(e.g. ["pass", "show", "mail"]) or password_file instead'
)


def _keyring() -> ModuleType:
    """The keyring module with a working backend; never the fail or null backend, which would
    lose a stored secret or answer None without saying why."""
    import keyring

    backend = keyring.get_keyring()
    if type(backend).__module__.startswith(("keyring.backends.fail", "keyring.backends.null")):
        raise SourceError(NO_KEYRING)
    return keyring


def _from_keyring(service: str, user: str) -> str:
    from keyring.errors import KeyringError, NoKeyringError

    try:
        value = _keyring().get_password(service, user)
    except NoKeyringError:
        raise SourceError(NO_KEYRING) from None
    except KeyringError as error:
        raise SourceError(f"the keyring could not be read: {type(error).__name__}") from None
    if not value:
        raise SourceError(
            f"no secret found in the keyring for service {service!r}, user {user!r}; "
            f"store it with `syncd secret set {service}`"
        )
    return str(value)


def store_in_keyring(service: str, user: str, secret: str) -> None:
    """Keep `secret` in the system keyring, where `password = { keyring = SERVICE }` finds it."""
    from keyring.errors import KeyringError, NoKeyringError

    try:
        _keyring().set_password(service, user, secret)
    except NoKeyringError:
        raise SourceError(NO_KEYRING) from None
    except KeyringError as error:
        raise SourceError(f"the keyring could not store it: {type(error).__name__}") from None


def keyring_logins(connectors: dict[str, ConnectorOptions], name: str) -> list[tuple[str, str]]:
    """(service, user) of each connector that reads its secret from the keyring under `name`, or
    that is itself called `name`; the user is its `username`, else its name, as `resolve` uses."""
    found = []
    for connector, options in connectors.items():
        if isinstance(options, SecretOptions) and options.password is not None:
            service = options.password["keyring"]
            if name in (connector, service):
                found.append((service, options.username or connector))
    return list(dict.fromkeys(found))


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
