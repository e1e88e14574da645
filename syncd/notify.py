"""Talking to systemd: sd_notify datagrams, the watchdog, and journald's `<N>` priority prefixes.

The notify protocol is one datagram of `KEY=value` lines to the AF_UNIX socket in $NOTIFY_SOCKET,
so it is written here directly rather than pulling in a library for it.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from typing import TextIO

log = logging.getLogger("syncd")

# syslog priorities, as journald reads them from a `<N>` line prefix.
PRIORITIES = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


def priority(level: int) -> int:
    """The syslog priority of a logging level (a level between two takes the lower one's)."""
    return next((p for floor, p in PRIORITIES.items() if level >= floor), 7)


def notify(*fields: str) -> bool:
    """Send `READY=1`, `STATUS=...` and the like to systemd; False when not run by it."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall("\n".join(fields).encode())
    except OSError as error:
        log.debug("cannot notify systemd at %s: %s", address, error)
        return False
    return True


def status_text(text: str) -> str:
    """A STATUS= field: one line, as systemctl shows it."""
    return "STATUS=" + " ".join(text.split())


def watchdog_interval() -> float | None:
    """Seconds between WATCHDOG=1 pings: half of $WATCHDOG_USEC, when it is meant for us."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2_000_000


class Watchdog:
    """Pings systemd's watchdog when half its period has passed since the last ping."""

    def __init__(self) -> None:
        self.interval = watchdog_interval()
        self.last = time.monotonic()

    def ping(self, force: bool = False) -> None:
        if self.interval is None:
            return
        if force or time.monotonic() - self.last >= self.interval:
            notify("WATCHDOG=1")
            self.last = time.monotonic()

    def seconds_left(self) -> float | None:
        if self.interval is None:
            return None
        return max(0.0, self.interval - (time.monotonic() - self.last))


def under_journal(stream: TextIO = sys.stderr) -> bool:
    """Whether `stream` goes to journald: $JOURNAL_STREAM names its device and inode (systemd
    sets it for the service's own stdout/stderr, not for whatever they are redirected to)."""
    device, _, inode = os.environ.get("JOURNAL_STREAM", "").partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        found = os.fstat(stream.fileno())
    except (OSError, ValueError):
        return False
    return (found.st_dev, found.st_ino) == (int(device), int(inode))


class JournalFormatter(logging.Formatter):
    """Each line with its syslog priority in front (`<3>` error, `<4>` warning, `<6>` info), no
    time stamp: journald adds its own."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines())


def log_formatter(stream: TextIO = sys.stderr) -> logging.Formatter:
    """Journald prefixes under systemd, plain `LEVEL message` lines otherwise."""
    if under_journal(stream):
        return JournalFormatter("%(message)s")
    return logging.Formatter("%(levelname)s %(message)s")
