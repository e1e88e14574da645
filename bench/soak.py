"""A soak test: `syncd run` for a while against a private Dovecot and Radicale, mail arriving.

    python bench/soak.py [--minutes 10] [--interval 30] [--per-minute 30] [--workdir DIR]

Starts Dovecot (IMAP, plaintext on 127.0.0.1) with an account holding a few hundred messages and
Radicale (CalDAV on 127.0.0.1) with a "Follow-ups" calendar, then runs the daemon with every
source on an `--interval`-second schedule. New mail is delivered into the account's Maildir all
along. Every ten seconds it prints the daemon's resident memory (RSS), its open file descriptors,
the interactions in its database and its last systemd STATUS=; at the end, whether RSS and file
descriptors stayed flat (the last minutes against the first). Loopback only; not in the test run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers.dovecot import Account, Dovecot, _folder_path  # noqa: E402
from tests.servers.radicale import Radicale, running_radicale  # noqa: E402

ME = "ada@example.org"
PEOPLE = [f"contact{n}@example.net" for n in range(120)]
SAMPLE_EVERY = 10.0  # seconds
RSS_GROWTH_LIMIT = 1.10  # the last minutes' median RSS against the first minutes'


def message(rng: random.Random, number: int, at: datetime) -> bytes:
    person = rng.choice(PEOPLE)
    sender, to = (ME, person) if rng.random() < 0.4 else (person, ME)
    return (
        f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: soak {number}\r\n"
        f"Date: {format_datetime(at)}\r\nMessage-ID: <soak{number}@example.org>\r\n\r\n"
        + "body text\r\n"
        * rng.randint(1, 50)
    ).encode()


def start_mail(workdir: Path, rng: random.Random) -> tuple[Dovecot, Account]:
    (workdir / "dovecot").mkdir()
    workdir.chmod(0o755)  # Dovecot's mail processes run as another user and must reach the homes
    server = Dovecot(workdir / "dovecot")
    server.start()
    now = datetime.now(UTC)
    inbox = [(message(rng, n, now - timedelta(days=rng.randint(1, 400))), "S") for n in range(300)]
    account = server.add_account("ada", {"INBOX": inbox, "Verzonden": []})
    return server, account


def deliver(account: Account, server: Dovecot, rng: random.Random, first: int, count: int) -> None:
    """New mail, as a delivery agent leaves it: a file of its own in INBOX/new."""
    new = _folder_path(account.home / "Maildir", "INBOX") / "new"
    _, uid, gid = server._owner
    now = datetime.now(UTC)
    for number in range(first, first + count):
        path = new / f"{time.time_ns()}.M{number}P{os.getpid()}.soak"
        path.write_bytes(message(rng, number, now))
        os.chown(path, uid, gid)


def write_config(workdir: Path, server: Dovecot, account: Account, radicale: Radicale,
                 interval: int) -> tuple[Path, Path]:  # fmt: skip
    dav = radicale.new_account()
    dav.make_calendar("Follow-ups")
    for name, secret in (("imap.password", account.password), ("dav.password", dav.password)):
        (workdir / name).write_text(secret + "\n")
        (workdir / name).chmod(0o600)
    config = workdir / "config.toml"
    config.write_text(f"""
[me]
emails = ["{ME}"]
timezone = "Europe/Amsterdam"
[state]
database = "state/syncd.sqlite"
[sources.mail]
type = "imap"
host = "127.0.0.1"
port = {server.port}
security = "none"
username = "{account.user}"
password_file = "imap.password"
[sinks.calendar]
type = "caldav"
url = "{dav.url()}"
calendar = "Follow-ups"
username = "{dav.username}"
password_file = "dav.password"
[cadence]
default = "30d"
learn = false
[schedule]
sync = "{interval}s"
""")
    return config, workdir / "state" / "syncd.sqlite"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def interactions(database: Path) -> int:
    try:
        with contextlib.closing(sqlite3.connect(database, timeout=5)) as db:
            return int(db.execute("SELECT count(*) FROM interactions").fetchone()[0])
    except sqlite3.Error:
        return 0


def last_status(listener: socket.socket, previous: str) -> str:
    status = previous
    with contextlib.suppress(BlockingIOError):
        while True:
            for line in listener.recv(65536).decode().splitlines():
                if line.startswith("STATUS="):
                    status = line.removeprefix("STATUS=")
    return status


@contextlib.contextmanager
def daemon(config: Path, notify: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = dict(os.environ, NOTIFY_SOCKET=str(notify))
    env.pop("JOURNAL_STREAM", None)
    log = (config.parent / "daemon.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "syncd", "--config", str(config), "run"],
                               cwd=ROOT, env=env, stdout=log, stderr=log)  # fmt: skip
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(30)
            print(f"daemon stopped with exit code {code}")
        except subprocess.TimeoutExpired:
            process.kill()
            print("daemon did not stop within 30 s of SIGTERM: killed")
        log.close()


def soak(workdir: Path, minutes: float, interval: int, per_minute: int) -> bool:
    rng = random.Random(20261123)
    server, account = start_mail(workdir, rng)
    radicale_context = contextlib.contextmanager(running_radicale)(workdir / "radicale")
    samples: list[tuple[float, int, int]] = []
    try:
        with radicale_context as radicale, socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as ear:
            config, database = write_config(workdir, server, account, radicale, interval)
            ear.bind(str(workdir / "notify.sock"))
            ear.setblocking(False)
            with daemon(config, workdir / "notify.sock") as process:
                samples = watch(process, database, ear, account, server, rng, minutes, per_minute)
    finally:
        server.stop()
    return verdict(samples)


def watch(process: subprocess.Popen[bytes], database: Path, ear: socket.socket, account: Account,
          server: Dovecot, rng: random.Random, minutes: float,
          per_minute: int) -> list[tuple[float, int, int]]:  # fmt: skip
    start = time.monotonic()
    samples: list[tuple[float, int, int]] = []
    status, delivered = "", 0
    print(f"{'time':>6} {'RSS MiB':>8} {'fds':>4} {'stored':>7}  status")
    while (elapsed := time.monotonic() - start) < minutes * 60:
        if process.poll() is not None:
            raise SystemExit(f"the daemon ended early with exit code {process.returncode}")
        batch = max(1, round(per_minute * SAMPLE_EVERY / 60))
        deliver(account, server, rng, 1000 + delivered, batch)
        delivered += batch
        time.sleep(SAMPLE_EVERY)
        rss, fds = rss_kib(process.pid), open_fds(process.pid)
        samples.append((elapsed, rss, fds))
        status = last_status(ear, status)
        print(f"{elapsed:6.0f} {rss / 1024:8.1f} {fds:4d} {interactions(database):7d}  {status}")
    return samples


def verdict(samples: list[tuple[float, int, int]]) -> bool:
    if len(samples) < 6:
        print("too short to judge; run for a few minutes")
        return False
    part = max(3, len(samples) // 5)
    first = statistics.median(rss for _, rss, _ in samples[:part])
    last = statistics.median(rss for _, rss, _ in samples[-part:])
    fds = [fd for _, _, fd in samples]
    rss_flat = last <= first * RSS_GROWTH_LIMIT
    # Medians: a sample taken while a pass is in flight counts its open connection too.
    fds_flat = statistics.median(fds[-part:]) <= statistics.median(fds[:part])
    print(f"RSS: {first / 1024:.1f} MiB at the start, {last / 1024:.1f} MiB at the end "
          f"(limit x{RSS_GROWTH_LIMIT}): {'flat' if rss_flat else 'GROWING'}")  # fmt: skip
    print(f"open fds: {min(fds)}..{max(fds)}: {'flat' if fds_flat else 'GROWING'}")
    return rss_flat and fds_flat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--interval", type=int, default=30, help="seconds between imports")
    parser.add_argument("--per-minute", type=int, default=30, help="new mails per minute")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="syncd-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"soak in {workdir}: {args.minutes:g} min, imports every {args.interval} s, "
          f"{args.per_minute} new mails a minute")  # fmt: skip
    sys.exit(0 if soak(workdir, args.minutes, args.interval, args.per_minute) else 1)


if __name__ == "__main__":
    main()
