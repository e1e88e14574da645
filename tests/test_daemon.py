"""`syncd run` and its operations: schedule and catch-up, back-off, signals, systemd's notify
protocol and journald, `syncd status`, the unit files, `install-service` and `secret set`."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import keyring
import pytest
from click.testing import CliRunner
from keyring.backend import KeyringBackend

from connectors.base import SourceError
from syncd import config as configuration
from syncd import daemon, secrets, service
from syncd.cli import main
from syncd.daemon import PLAN, backoff, due_at, next_plan_time, next_run, source_job
from syncd.lock import FileLock, lock_path
from syncd.model import Channel, Identity, IdentityKind, Interaction, Party
from syncd.store import Run, Store
from tests import fakes

ROOT = Path(__file__).resolve().parent.parent
ME = "me@example.org"
AMSTERDAM = ZoneInfo("Europe/Amsterdam")


# -- helpers shared with test_faults -----------------------------------------------------------


def mail_bytes(number: int, to: str, at: datetime, sender: str = ME) -> bytes:
    return (
        f"From: Me <{sender}>\r\nTo: <{to}>\r\nSubject: note {number}\r\n"
        f"Date: {format_datetime(at)}\r\nMessage-ID: <m{number}@example.org>\r\n\r\nhello\r\n"
    ).encode()


def write_maildir(folder: Path, mails: Iterable[tuple[int, bytes]]) -> None:
    """A Maildir as a mail client leaves it: messages in cur/, seen ("S")."""
    for part in ("cur", "new", "tmp"):
        (folder / part).mkdir(parents=True, exist_ok=True)
    for number, data in mails:
        (folder / "cur" / f"1700000000.M{number}P1.host:2,S").write_bytes(data)
    settled = time.time() - 60  # as if written a minute ago: the source trusts its listing
    os.utime(folder / "cur", (settled, settled))


def correspondents(count: int, people: int, start: int = 0) -> list[tuple[int, bytes]]:
    """`count` mails from me to `people` people, spread over the last 200 days."""
    now = datetime.now(UTC)
    return [
        (n, mail_bytes(n, f"p{n % people}@example.net", now - timedelta(days=30 + n % 170)))
        for n in range(start, start + count)
    ]


def write_config(folder: Path, extra: str = "", sync: str = "30m", sink: str = "out/f.ics") -> Path:
    path = folder / "config.toml"
    path.write_text(
        f"""
[me]
emails = ["{ME}"]
timezone = "Europe/Amsterdam"
[state]
database = "state/syncd.sqlite"
[sources.mail]
type = "maildir"
path = "Mail"
[sinks.calendar]
type = "ics"
path = "{sink}"
[cadence]
default = "14d"
learn = false
[reminders]
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
per_day = 1000
[schedule]
sync = "{sync}"
{extra}
""",
        encoding="utf-8",
    )
    return path


def syncd_command(config: Path, *args: str, batch: int | None = None) -> list[str]:
    """`syncd --config CONFIG ARGS`, with the engine's batch size set when `batch` is given."""
    if batch is None:
        return [sys.executable, "-m", "syncd", "--config", str(config), *args]
    code = (
        "import sys, syncd.engine as engine; engine.BATCH = int(sys.argv.pop(1)); "
        "from syncd.cli import main; main(prog_name='syncd')"
    )
    return [sys.executable, "-c", code, str(batch), "--config", str(config), *args]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "JOURNAL_STREAM")}
    env.update(extra)
    return env


def run_syncd(
    config: Path, *args: str, timeout: float = 120, **kw: Any
) -> subprocess.CompletedProcess[str]:
    env = kw.pop("env", None) or clean_env()
    return subprocess.run(
        syncd_command(config, *args), cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=timeout, check=False, **kw,
    )  # fmt: skip


@dataclass
class Running:
    """A `syncd run` subprocess whose stderr goes to a file the test reads."""

    process: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, pattern: str, timeout: float = 30, count: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while len(re.findall(pattern, self.text())) < count:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} ({count}x) in the log:\n{self.text()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 10) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


@pytest.fixture
def daemons() -> Iterator[list[Running]]:
    started: list[Running] = []
    yield started
    for running in started:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait()


def start_daemon(
    started: list[Running], config: Path, *args: str, batch: int | None = None,
    env: dict[str, str] | None = None, stderr: Any = None,
) -> Running:  # fmt: skip
    log = config.parent / f"daemon-{len(started)}.log"
    out = stderr if stderr is not None else log.open("wb")
    process = subprocess.Popen(
        syncd_command(config, *args, "run", batch=batch), cwd=ROOT, env=env or clean_env(),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=out,
    )  # fmt: skip
    running = Running(process, log)
    started.append(running)
    return running


def database_rows(database: Path, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(database) as connection:
        return connection.execute(query).fetchall()


def runs_in(database: Path) -> dict[str, Run]:
    store = Store.open(database)
    try:
        return store.runs()
    finally:
        store.close()


# -- when jobs are due --------------------------------------------------------------------------

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def make_config(tmp_path: Path, **schedule: Any) -> configuration.Config:
    raw: dict[str, Any] = {
        "me": {"emails": [ME], "timezone": "Europe/Amsterdam"},
        "state": {"database": "state.sqlite"},
        "sources": {"mail": {"type": "memory", "feed": "mail"},
                    "book": {"type": "memory", "feed": "book"}},
        "sinks": {"calendar": {"type": "memory"}},
        "schedule": {"sync": "30m", **schedule},
    }  # fmt: skip
    return configuration.validate(raw, tmp_path)


def test_backoff_doubles_after_each_failure_and_stops_at_a_few_hours() -> None:
    first = timedelta(minutes=5)
    waits = [backoff(first, n) for n in range(1, 10)]
    assert waits[:4] == [first, first * 2, first * 4, first * 8]
    assert max(waits) == daemon.BACKOFF_CAP == waits[-1]
    assert backoff(first, 10_000) == daemon.BACKOFF_CAP  # no overflow after months of failing
    assert backoff(timedelta(hours=6), 3) == timedelta(hours=6)  # never shorter than the first wait


def test_a_failing_source_waits_longer_each_time(tmp_path: Path, memory: None) -> None:
    config = make_config(tmp_path)
    waits = [
        due_at(source_job("mail"), Run("source:mail", last_run=NOW, failures=n), config) - NOW
        for n in range(1, 6)
    ]
    assert waits == [timedelta(hours=1), timedelta(hours=2), timedelta(hours=4),
                     timedelta(hours=4), timedelta(hours=4)]  # fmt: skip


def test_planning_happens_at_the_set_time_in_my_time_zone() -> None:
    at = clock_time(7, 30)
    # 06:00 in Amsterdam (winter, UTC+1): today at 07:30 local = 06:30 UTC.
    assert next_plan_time(datetime(2026, 11, 23, 5, 0, tzinfo=UTC), at, AMSTERDAM) == datetime(
        2026, 11, 23, 6, 30, tzinfo=UTC
    )
    # Just after it: tomorrow.
    assert next_plan_time(datetime(2026, 11, 23, 6, 30, tzinfo=UTC), at, AMSTERDAM) == datetime(
        2026, 11, 24, 6, 30, tzinfo=UTC
    )
    # Across the change to summer time (29 March 2026): 07:30 local is then 05:30 UTC.
    assert next_plan_time(datetime(2026, 3, 28, 7, 0, tzinfo=UTC), at, AMSTERDAM) == datetime(
        2026, 3, 29, 5, 30, tzinfo=UTC
    )


def test_an_overdue_job_runs_once_at_start_not_once_per_missed_interval(
    tmp_path: Path, memory: None
) -> None:
    config = make_config(tmp_path)
    week_ago = Run("source:mail", last_run=NOW - timedelta(days=7), last_success=NOW)
    assert next_run("source:mail", week_ago, config, NOW) == NOW
    ran = daemon.after(week_ago, "source:mail", NOW, None)
    assert next_run("source:mail", ran, config, NOW) == NOW + timedelta(minutes=30)
    never = next_run("source:book", None, config, NOW)
    assert never == NOW


def test_a_job_that_ran_recently_waits_for_its_own_interval(tmp_path: Path, memory: None) -> None:
    config = make_config(tmp_path, sources={"book": "1d"})
    recent = NOW - timedelta(minutes=10)
    assert next_run("source:mail", Run("source:mail", last_run=recent), config, NOW) == (
        recent + timedelta(minutes=30)
    )
    assert next_run("source:book", Run("source:book", last_run=recent), config, NOW) == (
        recent + timedelta(days=1)
    )


def test_planning_missed_while_stopped_runs_at_start_and_only_once_a_day(
    tmp_path: Path, memory: None
) -> None:
    config = make_config(tmp_path, plan="07:30")
    yesterday = Run(PLAN, last_run=datetime(2026, 11, 22, 6, 31, tzinfo=UTC))
    # 13:00 in Amsterdam today: today's 07:30 was missed, so planning runs now ...
    assert next_run(PLAN, yesterday, config, NOW) == NOW
    # ... and after that, tomorrow at 07:30 local.
    today = daemon.after(yesterday, PLAN, NOW, None)
    assert next_run(PLAN, today, config, NOW) == datetime(2026, 11, 24, 6, 30, tzinfo=UTC)
    # Planning failed (a sink was down): tried again in minutes, not tomorrow.
    failed = daemon.after(yesterday, PLAN, NOW, "sink calendar: gone")
    assert next_run(PLAN, failed, config, NOW) == NOW + daemon.PLAN_RETRY


def test_a_schedule_for_an_unknown_source_is_a_config_error(tmp_path: Path, memory: None) -> None:
    with pytest.raises(configuration.ConfigError) as error:
        make_config(tmp_path, sources={"mial": "10m"})
    assert error.value.problems == ["schedule.sources.mial: no source named 'mial' in [sources]"]
    with pytest.raises(configuration.ConfigError) as error:
        make_config(tmp_path, sync="0s")
    assert "at least a second" in error.value.problems[0]


# -- the daemon in this process, on in-memory sources --------------------------------------------


def serve_for(seconds: float, config: configuration.Config) -> None:
    """Run the daemon in this thread until a SIGTERM that arrives after `seconds`."""
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        daemon.Daemon(Path("unused.toml"), config).serve()
    finally:
        timer.cancel()


def party(address: str) -> Party:
    return Party(Identity(IdentityKind.EMAIL, address))


def out_mail(ref: str, to: str, days_ago: int = 40) -> Interaction:
    at = datetime.now(UTC) - timedelta(days=days_ago)
    return Interaction("mail", ref, at, Channel.EMAIL, sender=party(ME), recipients=(party(to),),
                       message_id=f"{ref}@x")  # fmt: skip


def memory_config(tmp_path: Path, **extra: Any) -> configuration.Config:
    raw: dict[str, Any] = {
        "me": {"emails": [ME], "timezone": "Europe/Amsterdam"},
        "state": {"database": "state.sqlite"},
        "sources": {name: {"type": "memory", "feed": name} for name in ("good", "bad", "crashy")},
        "sinks": {"calendar": {"type": "memory"}},
        "schedule": {"sync": "1s"},
        "cadence": {"default": "30d", "learn": False},
        "reminders": {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
    }
    raw.update(extra)
    return configuration.validate(raw, tmp_path)


def test_a_failing_source_is_logged_by_name_backs_off_and_the_others_keep_running(
    tmp_path: Path, memory: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="syncd")
    fakes.FEEDS.update({"good": [out_mail("g1", "anna@example.net")], "crashy": []})
    fakes.FEEDS["crashy"] = [out_mail("c1", "bob@example.net"), out_mail("c2", "cor@example.net")]
    fakes.CRASH["crashy"] = 2  # a bug in a connector: not a SourceError
    config = memory_config(tmp_path)
    serve_for(3.5, config)
    runs = runs_in(config.state.database)
    assert runs["source:good"].failures == 0
    assert caplog.text.count("source good: ") >= 3  # every second, undisturbed
    bad = runs["source:bad"]
    assert "feed bad is unreachable" in (bad.last_error or "")
    assert "source bad: feed bad is unreachable" in caplog.text
    # It failed at start, and after that waited two intervals before failing again.
    assert bad.failures == 2
    assert bad.next_run is not None
    assert bad.last_run is not None
    assert bad.next_run - bad.last_run == backoff(timedelta(seconds=2), 2)
    assert "source crashy failed: RuntimeError: killed" in caplog.text
    # The crash was once; its retry two seconds later read on from the cursor.
    assert runs["source:crashy"].failures == 0
    assert Store.open(config.state.database).cursor_state("crashy") == {"done": 2}
    # Planning ran once, after the first imports: Anna's follow-up (crashy's people came later).
    assert len(fakes.ITEMS) == 1


def test_what_was_missed_while_stopped_runs_once_at_start(
    tmp_path: Path, memory: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="syncd")
    fakes.FEEDS.update({"good": [], "bad": [], "crashy": []})
    config = memory_config(tmp_path, schedule={"sync": "1h", "sources": {"bad": "1m"}})
    now = daemon.wall_clock()
    store = Store.open(config.state.database)
    store.save_run(Run("source:good", last_run=now - timedelta(days=3)))  # missed 72 runs
    store.save_run(Run("source:bad", last_run=now - timedelta(seconds=5)))  # ran just now
    store.save_run(Run("source:crashy", last_run=now - timedelta(minutes=59, seconds=59)))
    store.save_run(Run(PLAN, last_run=now - timedelta(seconds=1)))  # planned today already
    store.close()
    serve_for(2.0, config)
    assert caplog.text.count("source good: ") == 1
    assert "source bad: " not in caplog.text
    assert caplog.text.count("source crashy: ") == 1  # became due while running
    assert "follow-ups written" not in caplog.text  # planning waits for tomorrow
    runs = runs_in(config.state.database)
    good = runs["source:good"]
    assert good.next_run is not None
    assert good.last_run is not None
    assert good.next_run - good.last_run == timedelta(hours=1)
    plan = runs[PLAN]
    assert plan.next_run == next_plan_time(plan.last_run or now, clock_time(7, 30), AMSTERDAM)


def test_a_pass_already_running_makes_the_daemon_wait_not_fail(
    tmp_path: Path, memory: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="syncd")
    fakes.FEEDS.update({"good": [], "bad": [], "crashy": []})
    config = memory_config(tmp_path)
    with FileLock(lock_path(config.state.database)).acquire():
        serve_for(1.0, config)
    assert f"a syncd pass is already running (pid {os.getpid()}" in caplog.text
    assert "trying again in a minute" in caplog.text
    runs = runs_in(config.state.database).values()
    assert all(run.last_run is None for run in runs)
    assert all(run.failures == 0 for run in runs)  # waiting is not failing


# -- the daemon as a process --------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "home"
    write_maildir(folder / "Mail", correspondents(20, 5))
    return folder


def test_sigterm_mid_import_commits_the_batch_in_flight_and_exits_0_promptly(
    home: Path, daemons: list[Running]
) -> None:
    write_maildir(home / "Mail", correspondents(6000, 300, start=100))
    config = write_config(home)
    database = home / "state" / "syncd.sqlite"
    running = start_daemon(daemons, config, batch=100)
    deadline = time.monotonic() + 60
    while not database.exists() or not _count(database, "SELECT count(*) FROM refs"):
        assert time.monotonic() < deadline, running.text()
        assert running.process.poll() is None, running.text()
        time.sleep(0.01)
    asked = time.monotonic()
    assert running.stop() == 0
    assert time.monotonic() - asked < 5
    assert "stopped after its last complete batch" in running.text()
    imported = _count(database, "SELECT count(*) FROM refs")
    assert imported % 100 == 0
    assert 0 < imported < 6020
    # Started again, it reads on from there: everything once.
    again = start_daemon(daemons, config)
    again.wait_for(r"follow-ups written")
    assert again.stop() == 0
    assert _count(database, "SELECT count(*) FROM refs") == 6020
    assert _count(database, "SELECT count(*) FROM interactions") == 6020


def _count(database: Path, query: str) -> int:
    try:
        return int(database_rows(database, query)[0][0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_sighup_reloads_the_config_and_a_broken_one_is_refused(
    home: Path, daemons: list[Running]
) -> None:
    config = write_config(home, sync="1h")
    running = start_daemon(daemons, config)
    running.wait_for("follow-ups written")
    good = config.read_text()
    config.write_text(good.replace('timezone = "Europe/Amsterdam"', 'timezone = "Mars/Base"'))
    running.process.send_signal(signal.SIGHUP)
    running.wait_for("is not used, the one before stays")
    assert "me.timezone: expected a time zone name" in running.text()
    assert running.process.poll() is None
    write_maildir(home / "Work", correspondents(3, 3, start=900))
    config.write_text(good + '\n[sources.work]\ntype = "maildir"\npath = "Work"\n')
    running.process.send_signal(signal.SIGHUP)
    running.wait_for("config reloaded: 2 sources")
    running.wait_for("source work: 3 items read")
    assert running.stop() == 0


def receive_all(sock: socket.socket) -> list[str]:
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages


def test_systemd_hears_ready_status_watchdog_and_stopping(
    home: Path, daemons: list[Running]
) -> None:
    address = str(home / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(address)
        listener.setblocking(False)
        env = clean_env(NOTIFY_SOCKET=address, WATCHDOG_USEC="400000")
        running = start_daemon(daemons, write_config(home, sync="1h"), env=env)
        running.wait_for("follow-ups written")
        time.sleep(1.0)
        assert running.stop() == 0
        messages = receive_all(listener)
    assert messages[0] == "READY=1\nSTATUS=1 sources every 1h, follow-ups planned daily at 07:30"
    statuses = [m for m in messages if m.startswith("STATUS=")]
    assert any(re.fullmatch(r"STATUS=\d\d:\d\d source mail: 20 items read", m) for m in statuses)
    assert any("5 follow-ups written" in m for m in statuses)
    assert messages.count("WATCHDOG=1") >= 3  # every 0.2 s for about a second
    assert messages[-1] == "STOPPING=1"


def test_no_watchdog_pings_when_the_watchdog_is_meant_for_another_process(
    home: Path, daemons: list[Running]
) -> None:
    address = str(home / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(address)
        listener.setblocking(False)
        env = clean_env(NOTIFY_SOCKET=address, WATCHDOG_USEC="200000", WATCHDOG_PID="1")
        running = start_daemon(daemons, write_config(home, sync="1h"), env=env)
        running.wait_for("follow-ups written")
        time.sleep(0.5)
        running.stop()
        assert "WATCHDOG=1" not in receive_all(listener)


def test_logs_carry_journald_priorities_only_when_stderr_is_the_journal(
    home: Path, daemons: list[Running]
) -> None:
    shutil.rmtree(home / "Mail")  # a Maildir gone: an error line
    config = write_config(home, sync="1h")
    reader, writer = os.pipe()
    found = os.fstat(writer)
    env = clean_env(JOURNAL_STREAM=f"{found.st_dev}:{found.st_ino}")
    running = start_daemon(daemons, config, env=env, stderr=writer)
    os.close(writer)
    time.sleep(1.5)
    running.stop()
    with os.fdopen(reader, "rb") as pipe:
        lines = pipe.read().decode().splitlines()
    assert "<6>syncd run: 1 sources every 1h, follow-ups planned daily at 07:30" in lines
    assert any(line.startswith("<3>source mail: ") for line in lines), lines
    assert any(line.startswith("<4>source mail: failed 1 times in a row") for line in lines)
    assert all(re.match(r"<\d>", line) for line in lines)
    plain = run_syncd(config, "sync").stderr.splitlines()  # not the journal: plain lines
    assert any(line.startswith("ERROR source mail: ") for line in plain)
    assert not any(line.startswith("<") for line in plain)


def test_a_second_daemon_on_the_same_database_says_which_one_runs(
    home: Path, daemons: list[Running]
) -> None:
    config = write_config(home, sync="1h")
    first = start_daemon(daemons, config)
    first.wait_for("follow-ups written")
    second = run_syncd(config, "run", timeout=20)
    assert second.returncode == 1
    assert f"syncd run is already running (pid {first.process.pid}" in second.stderr
    assert "Traceback" not in second.stderr
    assert first.stop() == 0


def test_status_shows_each_source_and_sink(home: Path, daemons: list[Running]) -> None:
    config = write_config(home, sync="1h")
    config.write_text(config.read_text() + '\n[sources.gone]\ntype = "maildir"\npath = "Gone"\n')
    running = start_daemon(daemons, config)
    running.wait_for("follow-ups written")
    found = json.loads(run_syncd(config, "status", "--json").stdout)
    assert found["daemon"] == {"running": True, "pid": running.process.pid}
    mail, gone = found["sources"]
    assert mail["last_error"] is None
    assert mail["last_success"] is not None
    assert datetime.fromisoformat(mail["next_run"]) - datetime.fromisoformat(
        mail["last_success"]
    ) == timedelta(hours=1)
    assert "Gone does not exist" in gone["last_error"]
    assert gone["last_success"] is None
    assert gone["failures"] == 1
    assert found["sinks"] == [{"name": "calendar", "pending": 0, "written": 5, "completed": 0}]
    assert running.stop() == 0
    table = run_syncd(config, "status").stdout
    assert "syncd run: not running" in table
    assert re.search(r"calendar\s+0\s+5\s+0", table)
    stopped = json.loads(run_syncd(config, "status", "--json").stdout)
    assert stopped["sources"][0]["next_run"] is None  # nothing is scheduled while it is stopped


# -- unit files and install-service -----------------------------------------------------------


def unit_settings(text: str) -> dict[str, list[str]]:
    """`Section.Key` -> values, as systemd reads a unit (keys may repeat; # lines are comments)."""
    settings: dict[str, list[str]] = {}
    section = ""
    for line in text.splitlines():
        if not line.strip() or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        settings.setdefault(f"{section}.{key}", []).append(value)
    return settings


def test_the_shipped_units_are_what_install_service_writes_for_pipx() -> None:
    assert (ROOT / "systemd" / "syncd.service").read_text() == service.service_unit()
    assert (ROOT / "systemd" / "syncd-sync.service").read_text() == service.sync_service_unit()
    assert (ROOT / "systemd" / "syncd-sync.timer").read_text() == service.timer_unit()


def test_the_daemon_unit_is_a_hardened_notify_service() -> None:
    unit = unit_settings((ROOT / "systemd" / "syncd.service").read_text())
    assert unit["Service.Type"] == ["notify"]
    assert unit["Service.ExecStart"] == ["%h/.local/bin/syncd run"]
    assert unit["Service.ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert unit["Service.Restart"] == ["on-failure"]
    assert unit["Service.WatchdogSec"] == ["10min"]
    assert unit["Service.NoNewPrivileges"] == ["yes"]
    assert unit["Service.ProtectSystem"] == ["strict"]
    assert unit["Service.ReadWritePaths"] == ["-%S/syncd -%E/syncd"]
    assert unit["Service.PrivateTmp"] == ["yes"]
    assert unit["Install.WantedBy"] == ["default.target"]
    text = (ROOT / "systemd" / "syncd.service").read_text()
    assert "#LoadCredential=mail:%E/syncd/mail.password" in text
    assert 'password_file = "%d/mail"' in text


def test_the_timer_runs_a_one_shot_sync_and_catches_up_after_downtime() -> None:
    sync = unit_settings((ROOT / "systemd" / "syncd-sync.service").read_text())
    assert sync["Service.Type"] == ["oneshot"]
    assert sync["Service.ExecStart"] == ["%h/.local/bin/syncd sync --wait 600"]
    assert sync["Service.ProtectSystem"] == ["strict"]
    timer = unit_settings((ROOT / "systemd" / "syncd-sync.timer").read_text())
    assert timer["Timer.Persistent"] == ["true"]
    assert timer["Timer.OnCalendar"] == ["*:0/30"]
    assert timer["Install.WantedBy"] == ["timers.target"]


@pytest.fixture
def user_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "user"
    (folder / ".local" / "bin").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(folder))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder / ".config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(folder / ".local" / "state"))
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    return folder


def verify(unit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemd-analyze", "verify", "--user", str(unit)], capture_output=True,
                          text=True, check=False, timeout=60)  # fmt: skip


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_accepts_the_shipped_units(user_home: Path, tmp_path: Path) -> None:
    syncd = user_home / ".local" / "bin" / "syncd"
    syncd.write_text("#!/bin/sh\n")
    syncd.chmod(0o755)
    for name in ("syncd.service", "syncd-sync.service", "syncd-sync.timer"):
        copy = tmp_path / name
        shutil.copy(ROOT / "systemd" / name, copy)
        checked = verify(copy)
        assert checked.returncode == 0, (name, checked.stderr)
        assert checked.stderr == "", (name, checked.stderr)


def test_install_service_writes_the_unit_for_this_installation(
    user_home: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "my config"
    folder.mkdir()
    config = write_config(folder, sink="/srv/calendars/followups.ics")
    result = CliRunner().invoke(main, ["--config", str(config), "install-service"])
    assert result.exit_code == 0, result.output
    unit = user_home / ".config" / "systemd" / "user" / "syncd.service"
    assert result.output.splitlines()[1:4] == [
        "  systemctl --user daemon-reload",
        "  systemctl --user enable --now syncd.service",
        "To keep it running while you are logged out (on a server, say):",
    ]
    assert "loginctl enable-linger" in result.output
    settings = unit_settings(unit.read_text())
    (start,) = settings["Service.ExecStart"]
    assert start.endswith(f' --config "{config}" run')
    writable = settings["Service.ReadWritePaths"][0]
    assert f'"-{folder}/state"' in writable
    assert f'"-{folder}"' in writable
    assert "-/srv/calendars" in writable  # the sink's folder: follow-ups are written there
    assert (folder / "state").is_dir()
    if shutil.which("systemd-analyze"):
        checked = verify(unit)
        assert checked.returncode == 0, checked.stderr
        assert checked.stderr == "", checked.stderr


def test_install_service_keeps_a_unit_the_user_changed_unless_forced(
    user_home: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path)
    runner = CliRunner()
    assert runner.invoke(main, ["--config", str(config), "install-service"]).exit_code == 0
    unit = user_home / ".config" / "systemd" / "user" / "syncd.service"
    unit.write_text(unit.read_text() + "Nice=10\n")
    again = runner.invoke(main, ["--config", str(config), "install-service"])
    assert again.exit_code == 1
    assert "exists and differs; use --force" in again.output
    assert "Nice=10" in unit.read_text()
    forced = runner.invoke(main, ["--config", str(config), "install-service", "--force"])
    assert forced.exit_code == 0
    assert "Nice=10" not in unit.read_text()
    timer = runner.invoke(main, ["--config", str(config), "install-service", "--timer"])
    assert "systemctl --user enable --now syncd-sync.timer" in timer.output
    sync_unit = unit_settings((unit.parent / "syncd-sync.service").read_text())
    assert sync_unit["Service.ExecStart"][0].endswith(" sync --wait 600")
    assert (unit.parent / "syncd-sync.timer").read_text() == service.timer_unit()


def test_a_password_file_from_systemd_credentials_gets_its_load_credential_line(
    user_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = IMAP_WITH_KEYRING.replace('password = { keyring = "work-mail" }',
                                      'password_file = "%d/work-mail"')  # fmt: skip
    config = write_config(tmp_path, extra=extra)
    result = CliRunner().invoke(main, ["--config", str(config), "install-service"])
    assert result.exit_code == 0, result.output
    stored = tmp_path / "credentials" / "work-mail"
    assert f"Put the password for work-mail in {stored} (mode 0600)" in result.output
    unit = (user_home / ".config" / "systemd" / "user" / "syncd.service").read_text()
    assert unit_settings(unit)["Service.LoadCredential"] == [f"work-mail:{stored}"]
    # What systemd then does: the file appears as $CREDENTIALS_DIRECTORY/work-mail.
    handed = tmp_path / "run-credentials"
    handed.mkdir()
    (handed / "work-mail").write_text("from-systemd\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(handed))
    options = configuration.load(config).sources["work"]
    assert secrets.resolve(options, "work") == "from-systemd"  # type: ignore[arg-type]


# -- secrets ------------------------------------------------------------------------------------


class MemoryKeyring(KeyringBackend):
    """A keyring that works, for the tests: what `set_password` stores, `get_password` finds."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.stored: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.stored.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.stored[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.stored.pop((service, username), None)


@pytest.fixture
def keyring_backend() -> Iterator[MemoryKeyring]:
    before = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(before)


IMAP_WITH_KEYRING = """
[sources.work]
type = "imap"
host = "127.0.0.1"
port = 9
security = "none"
username = "me@example.org"
password = { keyring = "work-mail" }
"""


def test_secret_set_stores_the_password_where_the_source_finds_it(
    tmp_path: Path, keyring_backend: MemoryKeyring
) -> None:
    config = write_config(tmp_path, extra=IMAP_WITH_KEYRING)
    # By the source's name or by the keyring name it uses: either finds the same entry.
    for name in ("work", "work-mail"):
        result = CliRunner().invoke(main, ["--config", str(config), "secret", "set", name],
                                    input=f"s3cret-{name}\n")  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "service 'work-mail', user 'me@example.org'" in result.output
        assert f"s3cret-{name}" not in result.output
    loaded = configuration.load(config)
    options = loaded.sources["work"]
    assert secrets.resolve(options, "work") == "s3cret-work-mail"  # type: ignore[arg-type]


def test_secret_set_for_a_name_nothing_uses_says_how_to_use_it(
    tmp_path: Path, keyring_backend: MemoryKeyring
) -> None:
    config = write_config(tmp_path, extra=IMAP_WITH_KEYRING)
    result = CliRunner().invoke(main, ["--config", str(config), "secret", "set", "mail"],
                                input="x\n")  # fmt: skip
    assert result.exit_code == 1
    assert 'write password = { keyring = "mail" } in its table first' in result.output
    assert keyring_backend.stored == {}


@pytest.mark.parametrize("backend", ["keyring.backends.fail", "keyring.backends.null"])
def test_without_a_keyring_secret_set_names_the_alternatives(tmp_path: Path, backend: str) -> None:
    import importlib

    before = keyring.get_keyring()
    keyring.set_keyring(importlib.import_module(backend).Keyring())
    try:
        config = write_config(tmp_path, extra=IMAP_WITH_KEYRING)
        result = CliRunner().invoke(main, ["--config", str(config), "secret", "set", "work"],
                                    input="hunter2\n")  # fmt: skip
        with pytest.raises(SourceError, match="no system keyring"):
            secrets.resolve(configuration.load(config).sources["work"], "work")  # type: ignore[arg-type]
    finally:
        keyring.set_keyring(before)
    assert result.exit_code == 1
    assert "no system keyring is available here" in result.output
    assert "password_command" in result.output
    assert "password_file" in result.output
    assert "hunter2" not in result.output


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again when this returns


def test_a_planted_secret_is_in_no_output_log_or_database(
    home: Path, daemons: list[Running]
) -> None:
    planted = "Pl4nted-s3cret-7f1d"
    (home / "mail.password").write_text(planted + "\n")
    (home / "smtp.password").write_text(planted + "\n")
    extra = f"""
[sources.work]
type = "imap"
host = "127.0.0.1"
port = {closed_port()}
security = "none"
username = "me@example.org"
password_file = "mail.password"
[sinks.invitations]
type = "invite"
host = "127.0.0.1"
port = {closed_port()}
security = "none"
from = "syncd@example.org"
to = "me@example.org"
username = "syncd@example.org"
password_file = "smtp.password"
"""
    config = write_config(home, extra=extra, sync="1s")
    outputs = [run_syncd(config, "-vv", "check"), run_syncd(config, "-vv", "sync")]
    assert "work" in outputs[0].stdout + outputs[0].stderr  # it did try, and said so
    running = start_daemon(daemons, config, "-vv")
    running.wait_for("source work", count=2)
    running.stop()
    outputs.append(run_syncd(config, "-v", "status"))
    texts = [o.stdout + o.stderr for o in outputs] + [running.text()]
    for text in texts:
        assert planted not in text
    for stored in (home / "state").iterdir():
        assert planted.encode() not in stored.read_bytes(), stored
