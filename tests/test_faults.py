"""Faults a daemon meets in months of running: kill -9 mid-pass, two passes at once, a full disk,
a read-only state folder, a calendar that is away. Each leaves the state whole and loses nothing."""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import icalendar
import pytest

from connectors import base
from connectors.base import SinkError
from connectors.maildir import find_folders, split_info
from syncd import config as configuration
from syncd import daemon, engine
from syncd.lock import FileLock, lock_path
from syncd.model import Reminder, ReminderState
from syncd.store import Store
from tests import fakes
from tests.test_daemon import (
    ROOT,
    clean_env,
    correspondents,
    mail_bytes,
    out_mail,
    run_syncd,
    syncd_command,
    write_config,
    write_maildir,
)

SEED = 20261123


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "home"
    write_maildir(folder / "Mail", correspondents(3000, 200))
    return folder


def database_of(home: Path) -> Path:
    return home / "state" / "syncd.sqlite"


def rows(database: Path, query: str) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(database)
    try:
        return connection.execute(query).fetchall()
    finally:
        connection.close()


def message_ids(maildir: Path) -> set[str]:
    found = set()
    for file in (maildir / "cur").iterdir():
        for line in file.read_text().splitlines():
            if line.startswith("Message-ID: "):
                found.add(line.removeprefix("Message-ID: ").strip("<>"))
    return found


@dataclass(frozen=True)
class FollowUpItem:
    uid: str
    person: str
    completed: bool


def calendar_items(path: Path) -> list[FollowUpItem]:
    if not path.exists():
        return []
    calendar = icalendar.Calendar.from_ical(path.read_bytes())
    return [
        FollowUpItem(str(item["UID"]), str(item.get("X-SYNCD-PERSON", "")),
                     str(item.get("STATUS", "")).upper() == "COMPLETED")
        for item in calendar.walk() if item.name in ("VTODO", "VEVENT")
    ]  # fmt: skip


def assert_whole(home: Path) -> None:
    """What must hold after any crash: the database is sound and no cursor is ahead of its data."""
    database = database_of(home)
    if not database.exists():
        return
    assert rows(database, "PRAGMA integrity_check") == [("ok",)]
    store = Store.open(database)
    try:
        refs = store.known_refs("mail")
        covered = store.cursor_state("mail").get("dirs", {})
    finally:
        store.close()
    for folder in find_folders(home / "Mail"):
        for part in ("cur", "new"):
            directory = folder.path / part
            if covered.get(f"{folder.name}/{part}") != directory.stat().st_mtime_ns:
                continue  # the cursor does not claim this listing
            for name in os.listdir(directory):
                assert f"{folder.name}/{split_info(name)[0]}" in refs, name


def assert_nothing_twice(home: Path) -> None:
    """After a normal pass: each mail once, one follow-up per person (and cycle), all known."""
    database = database_of(home)
    mails = message_ids(home / "Mail")
    assert rows(database, "SELECT count(*), count(DISTINCT key) FROM interactions") == [
        (len(mails), len(mails))
    ]
    stored = {key.removeprefix("mid:") for (key,) in rows(database, "SELECT key FROM interactions")}
    assert stored == mails
    items = calendar_items(home / "out" / "f.ics")
    assert len({item.uid for item in items}) == len(items)
    open_items = Counter(item.person for item in items if not item.completed)
    assert max(open_items.values()) == 1
    known = {uid for (uid,) in rows(database, "SELECT uid FROM followups WHERE status = 'open'")}
    assert {item.uid for item in items if not item.completed} == known


def test_kill_9_at_random_points_then_a_normal_pass_loses_and_doubles_nothing(home: Path) -> None:
    rng = random.Random(SEED)
    config = write_config(home)
    # How long a pass after new mail takes on this machine (on a copy): kills land all over it.
    probe = home.parent / "probe"
    shutil.copytree(home, probe)
    assert run_syncd(write_config(probe), "sync").returncode == 0
    write_maildir(probe / "Mail", correspondents(150, 220, start=3000))
    started = time.monotonic()
    assert run_syncd(write_config(probe), "sync").returncode == 0
    whole = time.monotonic() - started
    number = 3000
    kills = 0
    for _ in range(24):
        # New mail between passes: each pass has reading, resolving and writing to do.
        write_maildir(home / "Mail", correspondents(rng.randint(20, 300), 220, start=number))
        number += 300
        command = syncd_command(config, "sync", batch=250)
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        process = subprocess.Popen(command, cwd=ROOT, env=clean_env(), **quiet)
        time.sleep(rng.uniform(0.3, 1.1) * whole)
        kills += process.poll() is None
        process.kill()
        process.wait()
        assert_whole(home)
    assert kills >= 12  # most passes were killed, not finished
    finished = run_syncd(config, "sync")
    assert finished.returncode == 0, finished.stderr
    assert_whole(home)
    assert_nothing_twice(home)
    again = run_syncd(config, "sync")  # and a pass after that changes nothing
    assert again.stdout.strip().endswith("0 follow-ups written")


def test_two_passes_at_once_wait_for_each_other(home: Path) -> None:
    config = write_config(home)
    command = syncd_command(config, "sync", "--wait", "60", batch=250)
    passes = [
        subprocess.Popen(command, cwd=ROOT, env=clean_env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]  # fmt: skip
    results = [p.communicate(timeout=120) for p in passes]
    assert [p.returncode for p in passes] == [0, 0, 0], results
    written = sorted(int(out.split("; ")[3].split()[0]) for out, _ in results)
    assert written == [0, 0, 200]  # the first wrote them all; the others found nothing to do
    assert_whole(home)
    assert_nothing_twice(home)


def test_a_pass_that_cannot_wait_says_which_process_runs(home: Path) -> None:
    config = write_config(home)
    with FileLock(lock_path(database_of(home))).acquire():
        refused = run_syncd(config, "sync", "--wait", "0.5")
    assert refused.returncode == 1
    assert f"a syncd pass is already running (pid {os.getpid()}; lock file " in refused.stderr
    assert "after waiting 0.5 s; try again when it has finished" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not database_of(home).exists() or rows(database_of(home), "SELECT * FROM refs") == []


# -- a full disk, a read-only folder ------------------------------------------------------------


@contextmanager
def mounted(target: Path, *arguments: str) -> Iterator[None]:
    """`mount ARGUMENTS TARGET` for the test's duration; skips where mounting is not allowed."""
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", *arguments, str(target)], capture_output=True, text=True,
                          check=False)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"mount is not allowed here: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def dump(database: Path) -> list[str]:
    connection = sqlite3.connect(database)
    try:
        return list(connection.iterdump())
    finally:
        connection.close()


def new_people(count: int, start: int) -> list[tuple[int, bytes]]:
    """Mail I sent 40 days ago to people syncd has not seen: each is due for a follow-up."""
    at = datetime.now(UTC) - timedelta(days=40)
    return [(n, mail_bytes(n, f"new{n}@example.org", at)) for n in range(start, start + count)]


def test_a_full_disk_is_a_clear_error_and_leaves_the_state_as_it_was(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_maildir(home / "Mail", correspondents(50, 20))
    config = write_config(home)
    state = home / "state"
    with mounted(state, "-t", "tmpfs", "-o", "size=700k", "tmpfs"):
        assert run_syncd(config, "sync").returncode == 0
        before = dump(database_of(home))
        write_maildir(home / "Mail", correspondents(5000, 20, start=50))  # one batch: 2 MB more
        full = run_syncd(config, "sync")
        assert full.returncode == 1
        assert "could not be written (database or disk is full)" in full.stderr
        assert "Make room on the disk holding" in full.stderr
        assert "Traceback" not in full.stderr
        assert dump(database_of(home)) == before
        assert rows(database_of(home), "PRAGMA integrity_check") == [("ok",)]
        # Room again: the next pass reads everything, once.
        subprocess.run(["mount", "-o", "remount,size=64m", str(state)], check=True)
        assert run_syncd(config, "sync").returncode == 0
        assert rows(database_of(home), "SELECT count(*) FROM interactions") == [(5050,)]


def test_a_read_only_state_folder_is_a_clear_error_and_changes_nothing(home: Path) -> None:
    config = write_config(home)
    assert run_syncd(config, "sync").returncode == 0
    before = dump(database_of(home))
    write_maildir(home / "Mail", new_people(5, start=9000))
    state = home / "state"
    with mounted(state, "--bind", "-o", "ro", str(state)):
        refused = run_syncd(config, "sync")
        assert refused.returncode == 1
        assert f"cannot create the lock file {state}/syncd.sqlite.pass.lock" in refused.stderr
        assert "Read-only file system; the state folder" in refused.stderr
        assert "must be writable" in refused.stderr
        assert "Traceback" not in refused.stderr
    assert dump(database_of(home)) == before
    assert run_syncd(config, "sync").returncode == 0  # writable again: it carries on
    assert_nothing_twice(home)


# -- a calendar that is away ---------------------------------------------------------------------


def test_follow_ups_wait_while_the_calendar_file_is_away_and_are_written_when_it_returns(
    home: Path,
) -> None:
    config = write_config(home)
    assert run_syncd(config, "sync").returncode == 0
    (home / "out").rename(home / "away")  # a disk that is not mounted
    write_maildir(home / "Mail", new_people(10, start=9000))
    away = run_syncd(config, "sync")
    assert away.returncode == 1
    assert "f.ics is missing, yet syncd wrote follow-ups there" in away.stderr
    assert away.stdout.strip().endswith("0 follow-ups written")
    assert not (home / "out").exists()  # nothing was written in its place
    status = json.loads(run_syncd(config, "status", "--json").stdout)
    assert status["sinks"] == [{"name": "calendar", "pending": 10, "written": 200, "completed": 0}]
    assert "is missing" in status["planning"]["last_error"]
    (home / "away").rename(home / "out")
    back = run_syncd(config, "sync")
    assert back.returncode == 0
    assert back.stdout.strip().endswith("10 follow-ups written")
    assert_nothing_twice(home)
    assert len(calendar_items(home / "out" / "f.ics")) == 210


class AwaySink(fakes.MemorySink):
    """The in-memory calendar, unreachable while `away`; `puts_left` puts before it goes away."""

    away: ClassVar[bool] = False
    puts_left: ClassVar[int | None] = None

    def put(self, reminder: Reminder) -> str:
        if AwaySink.puts_left is not None:
            AwaySink.away = AwaySink.puts_left <= 0
            AwaySink.puts_left -= 1
        if AwaySink.away:
            raise SinkError("the calendar server does not answer")
        return super().put(reminder)

    def read_back(self, uids: Any) -> Iterator[ReminderState]:
        if AwaySink.away:
            raise SinkError("the calendar server does not answer")
        return super().read_back(uids)


def test_a_sink_that_fails_midway_keeps_the_rest_pending_and_writes_each_once_later(
    tmp_path: Path, memory: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(base.SINKS, "memory", "tests.test_faults:AwaySink")
    monkeypatch.setattr(AwaySink, "away", False)
    monkeypatch.setattr(AwaySink, "puts_left", 2)
    fakes.FEEDS["mail"] = [out_mail(f"m{n}", f"p{n}@example.net") for n in range(5)]
    config = configuration.validate({
        "me": {"emails": ["me@example.org"], "timezone": "Europe/Amsterdam"},
        "state": {"database": "state.sqlite"},
        "sources": {"mail": {"type": "memory", "feed": "mail"}},
        "sinks": {"calendar": {"type": "memory"}},
        "cadence": {"default": "30d", "learn": False},
        "reminders": {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
    }, tmp_path)  # fmt: skip
    store = Store.open(config.state.database)
    now = daemon.wall_clock()
    first = engine.sync(config, store, now)
    assert first.sink_errors == ["calendar: the calendar server does not answer"]
    assert len(fakes.ITEMS) == 2
    assert daemon.status(config, store, now)["sinks"][0] == {
        "name": "calendar", "pending": 3, "written": 2, "completed": 0,
    }  # fmt: skip
    second = engine.sync(config, store, now)  # still away: nothing lost, nothing written
    assert second.sink_errors
    assert len(fakes.ITEMS) == 2
    AwaySink.puts_left, AwaySink.away = None, False
    back = engine.sync(config, store, now)
    assert (back.sink_errors, len(back.written), len(fakes.ITEMS)) == ([], 3, 5)
    assert len(engine.sync(config, store, now).written) == 0
    assert sorted(r.person_id for r in fakes.ITEMS.values()) == sorted(
        f.person_id for f in store.followups("calendar")
    )
