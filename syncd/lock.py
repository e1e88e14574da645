"""One pass at a time: an flock'd lock file beside the database, holding the pid of its owner.

The kernel drops an flock when its process ends, however it ends (kill -9 included), so a lock is
never left behind by a crash and no stale-pid guessing is needed.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

POLL = 0.1  # seconds between attempts while waiting


class LockError(Exception):
    """The lock file cannot be created or locked (a read-only or missing state folder)."""


class Busy(LockError):
    """Another process holds the lock; `pid` is its process id when it could be read."""

    def __init__(self, message: str, pid: int | None) -> None:
        super().__init__(message)
        self.pid = pid


def lock_path(database: Path, kind: str = "pass") -> Path:
    """`syncd.sqlite` -> `syncd.sqlite.pass.lock` (one pass) or `.run.lock` (the daemon)."""
    return database.with_name(f"{database.name}.{kind}.lock")


def pass_lock(database: Path, wait: float = 0.0) -> FileLock:
    """The one-pass lock of `database`, held: a sync, a daemon job or a correction."""
    return FileLock(lock_path(database)).acquire(wait)


def holder(path: Path) -> int | None:
    """The pid written in a lock file, or None when there is none (or it cannot be read)."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


class FileLock:
    """An exclusive lock on `path`, held from `acquire` until `release` (or the process ends)."""

    def __init__(self, path: Path, what: str = "a syncd pass") -> None:
        self.path = path
        self.what = what
        self.fd: int | None = None

    def acquire(self, wait: float = 0.0) -> FileLock:
        """Take the lock, waiting up to `wait` seconds; Busy names the pid that holds it."""
        fd = self._open()
        deadline = time.monotonic() + wait
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                os.close(fd)
                raise self._busy(wait)
            time.sleep(POLL)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            # The pid goes before the lock does, so nobody reads a finished owner's pid.
            os.ftruncate(self.fd, 0)
            os.close(self.fd)
            self.fd = None

    def held_elsewhere(self) -> int | None:
        """The pid of another process holding this lock, or None when it is free (not taken)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            if _try_lock(fd, shared=True):
                return None
            return holder(self.path) or -1
        finally:
            os.close(fd)

    def _open(self) -> int:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as error:
            raise LockError(
                f"cannot create the lock file {self.path}: {error.strerror}; the state folder "
                f"{self.path.parent} must be writable"
            ) from None

    def _busy(self, wait: float) -> Busy:
        pid = holder(self.path)
        who = f"pid {pid}" if pid else "another process"
        waited = f" after waiting {wait:g} s" if wait else ""
        return Busy(
            f"{self.what} is already running ({who}; lock file {self.path}){waited}; try again "
            "when it has finished",
            pid,
        )

    def __enter__(self) -> FileLock:
        return self if self.fd is not None else self.acquire()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _try_lock(fd: int, shared: bool = False) -> bool:
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
