"""The daemon, `syncd run`: each source on its interval, planning once a day, until SIGTERM.

The `schedule` library holds the jobs and runs those that are due. When each job is next due is
syncd's own rule, worked out from the run records in the database: an overdue job runs once at
start (never once per missed interval), a failing one backs off, and planning happens at a time
of day in `me.timezone`.
"""

from __future__ import annotations

import logging
import select
import signal
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

import schedule

from syncd import config as configuration
from syncd import engine, notify
from syncd.config import Config, ConfigError
from syncd.lock import Busy, FileLock, lock_path, pass_lock
from syncd.report import Summary
from syncd.store import Run, Store, StoreError

log = logging.getLogger("syncd")

PLAN = "plan"  # the daily job: read back, plan and write follow-ups
SOURCE = "source:"  # a source's job is "source:NAME"
BACKOFF_CAP = timedelta(hours=4)
PLAN_RETRY = timedelta(minutes=5)  # the first wait after planning failed (a sink was down)
BUSY_RETRY = timedelta(minutes=1)  # another pass (a manual `syncd sync`) held the lock
# The longest sleep: the clock is looked at again this often, so a resume from suspend is
# noticed within a minute.
IDLE_MAX = 60.0


class Stopping(Exception):
    """Raised between batches once SIGTERM or SIGINT arrived: the batch before it is committed."""


def source_job(name: str) -> str:
    return SOURCE + name


def label(job: str) -> str:
    """How a job is named in the log: "source mail", "planning"."""
    return "planning" if job == PLAN else f"source {job.removeprefix(SOURCE)}"


# -- when a job is due ----------------------------------------------------------------------------


def backoff(first: timedelta, failures: int) -> timedelta:
    """The wait after `failures` failures in a row: `first`, doubled for each further failure, at
    most a few hours (or `first` itself, when that is longer)."""
    doubled: timedelta = first * 2 ** min(max(failures - 1, 0), 20)
    return min(doubled, max(BACKOFF_CAP, first))


def next_plan_time(after: datetime, at: clock_time, zone: ZoneInfo) -> datetime:
    """The first planning time (`at`, in `zone`) strictly after `after`; in UTC."""
    local = after.astimezone(zone)
    candidate = datetime.combine(local.date(), at, zone)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), at, zone)
    return candidate.astimezone(UTC)


def due_at(job: str, run: Run | None, config: Config) -> datetime | None:
    """When `job` is due after its last recorded run; None when it never ran."""
    if run is None or run.last_run is None:
        return None
    if job == PLAN:
        if run.failures:
            return run.last_run + backoff(PLAN_RETRY, run.failures)
        return next_plan_time(run.last_run, config.schedule.plan, config.me.zone)
    interval = config.schedule.interval(job.removeprefix(SOURCE))
    if run.failures:
        return run.last_run + backoff(2 * interval, run.failures)
    return run.last_run + interval


def next_run(job: str, run: Run | None, config: Config, now: datetime) -> datetime:
    """`due_at`, or `now` when that has passed: an overdue job runs once, however much it missed."""
    due = due_at(job, run, config)
    return now if due is None or due <= now else due


def after(run: Run | None, job: str, at: datetime, error: str | None) -> Run:
    """The record of `job` once a run finished at `at` (`error` None when it worked)."""
    before = run or Run(job)
    if error is None:
        return replace(before, last_run=at, last_success=at, last_error=None, failures=0)
    return replace(before, last_run=at, last_error=error, failures=before.failures + 1)


def remember(store: Store, summary: Summary, at: datetime, planned: bool) -> None:
    """Record what a `syncd sync` pass did, per source and (when it planned) for planning."""
    runs = store.runs()
    for report in summary.sources:
        job = source_job(report.name)
        store.save_run(after(runs.get(job), job, at, report.error))
    if planned:
        store.save_run(after(runs.get(PLAN), PLAN, at, failure(PLAN, summary)))


def failure(job: str, summary: Summary) -> str | None:
    """What went wrong in a job, from its summary; None when nothing did."""
    if job == PLAN:
        return "; ".join(summary.sink_errors) or None
    return next((s.error for s in summary.sources if s.error), None)


def state_problem(path: Path, error: sqlite3.Error) -> str:
    """A database error in a user's words: what it means and what to do."""
    return (
        f"the state database {path} could not be written ({error}); what was read before the "
        f"last complete batch is kept, nothing after it. Make room on the disk holding "
        f"{path.parent} and see that it is writable, then sync again"
    )


def wall_clock() -> datetime:
    """Now, in whole seconds as the database keeps times (a follow-up planned at a fraction of a
    second would differ from itself once read back, and be written again)."""
    return datetime.now(UTC).replace(microsecond=0)


def duration_text(length: timedelta) -> str:
    """30m, 2h, 1d, 45s: as the config writes it."""
    seconds = int(length.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _local_naive(moment: datetime) -> datetime:
    """`schedule` keeps next-run times as naive local times."""
    return moment.astimezone().replace(tzinfo=None)


# -- the daemon -----------------------------------------------------------------------------------


class Daemon:
    """The loop of `syncd run`. `serve()` returns after SIGTERM or SIGINT."""

    def __init__(self, config_path: Path, config: Config) -> None:
        self.config_path = config_path
        self.config = config
        self.scheduler = schedule.Scheduler()
        self.jobs: dict[str, schedule.Job] = {}
        self.due: dict[str, datetime] = {}
        self.runs: dict[str, Run] = {}
        self.stopping = False
        self.reload_wanted = False
        self.watchdog = notify.Watchdog()

    def serve(self) -> None:
        with self._signals() as wake:
            self._schedule_jobs()
            notify.notify("READY=1", notify.status_text(self._plan_line()))
            log.info("syncd run: %s", self._plan_line())
            while not self.stopping:
                if self.reload_wanted:
                    self.reload()
                self.scheduler.run_pending()
                self._apply_due()
                self.watchdog.ping()
                self._sleep(wake)
            notify.notify("STOPPING=1")
            log.info("syncd run: stopped")

    # -- jobs --

    def _schedule_jobs(self) -> None:
        self.scheduler.clear()
        self.jobs, self.due = {}, {}
        for name in self.config.sources:
            every = self.config.schedule.interval(name)
            self._add(source_job(name), every)
        self._add(PLAN, timedelta(days=1))
        self.runs = self._load_runs()
        now = wall_clock()
        for job in self.jobs:
            self._set_due(job, next_run(job, self.runs.get(job), self.config, now))
        self._apply_due()
        self._save_runs(list(self.jobs))

    def _add(self, job: str, every: timedelta) -> None:
        seconds = max(1, int(every.total_seconds()))
        self.jobs[job] = self.scheduler.every(seconds).seconds.do(self._job, job)

    def _apply_due(self) -> None:
        """Put syncd's own next-run times over those `schedule` worked out after each run."""
        for job, when in self.due.items():
            self.jobs[job].next_run = _local_naive(when)

    def _job(self, job: str) -> None:
        if self.stopping:
            return
        started = wall_clock()
        try:
            with pass_lock(self.config.state.database), self._store() as store:
                error = self._work(job, store, started)
        except Busy as busy:
            log.info("%s: %s; trying again in a minute", label(job), busy)
            self._set_due(job, started + BUSY_RETRY)
            self._save_runs([job])
            return
        except Stopping:
            log.info("%s: stopped after its last complete batch", label(job))
            return
        except sqlite3.Error as problem:
            error = state_problem(self.config.state.database, problem)
            log.error("%s failed: %s", label(job), error)
        except Exception as problem:  # one job's failure must never stop the others
            error = f"{type(problem).__name__}: {problem}"
            log.error("%s failed: %s", label(job), error, exc_info=log.isEnabledFor(logging.DEBUG))
        self._finished(job, error)

    def _work(self, job: str, store: Store, now: datetime) -> str | None:
        if job == PLAN:
            summary = engine.plan_and_write(self.config, store, now)
            line = summary.line()
        else:
            summary = Summary()
            name = job.removeprefix(SOURCE)
            engine.import_all(self.config, store, now, summary, only=name,
                              progress=self._between_batches)  # fmt: skip
            report = summary.sources[0]
            line = f"source {name}: {report.items} items read"
        error = failure(job, summary)
        if error is None:
            log.info("%s", line)
            at = datetime.now(self.config.me.zone).strftime("%H:%M")
            notify.notify(notify.status_text(f"{at} {line}"))
        return error

    def _between_batches(self, name: str, count: int) -> None:
        self.watchdog.ping()
        if self.stopping:
            raise Stopping

    def _finished(self, job: str, error: str | None) -> None:
        """Record the run, in memory and (when it can be written) in the database, and when the
        job is due next: its interval after a success, a growing back-off after a failure."""
        now = wall_clock()
        run = after(self.runs.get(job), job, now, error)
        when = next_run(job, run, self.config, now)
        self.runs[job] = run
        self._set_due(job, when)
        if error is not None:
            local = when.astimezone(self.config.me.zone).strftime("%Y-%m-%d %H:%M")
            log.warning("%s: failed %d times in a row; next try at %s", label(job),
                        run.failures, local)  # fmt: skip
        self._save_runs([job])

    def _set_due(self, job: str, when: datetime) -> None:
        self.due[job] = when
        self.runs[job] = replace(self.runs.get(job) or Run(job), next_run=when)

    def _save_runs(self, jobs: list[str]) -> None:
        """Write the run records (with the next run, for `syncd status`) to the database."""
        try:
            with self._store() as store:
                for job in jobs:
                    store.save_run(self.runs[job])
        except (StoreError, sqlite3.Error) as problem:
            log.error("cannot record the runs of %s: %s", ", ".join(map(label, jobs)), problem)

    def _load_runs(self) -> dict[str, Run]:
        try:
            with self._store() as store:
                return store.runs()
        except (StoreError, sqlite3.Error) as problem:
            log.error("cannot read when jobs last ran: %s", problem)
            return dict(self.runs)

    @contextmanager
    def _store(self) -> Iterator[Store]:
        # Opened per job: no file stays open between passes, and a state folder that was
        # unwritable for a while works again without a restart.
        store = Store.open(self.config.state.database)
        try:
            yield store
        finally:
            store.close()

    def _plan_line(self) -> str:
        every = duration_text(self.config.schedule.sync)
        return (f"{len(self.config.sources)} sources every {every}, follow-ups planned daily at "
                f"{self.config.schedule.plan.strftime('%H:%M')}")  # fmt: skip

    # -- signals, reload, sleep --

    @contextmanager
    def _signals(self) -> Iterator[socket.socket]:
        """SIGTERM and SIGINT stop, SIGHUP reloads; each wakes the loop at once through a
        socket the signal machinery writes to."""
        reader, writer = socket.socketpair()
        for end in (reader, writer):
            end.setblocking(False)
        previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        wanted = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        previous = {number: signal.signal(number, self._on_signal) for number in wanted}
        try:
            yield reader
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
            signal.set_wakeup_fd(previous_fd)
            reader.close()
            writer.close()

    def _on_signal(self, number: int, frame: FrameType | None) -> None:
        # Only flags here: the loop (or the next batch boundary) acts on them.
        if number == signal.SIGHUP:
            self.reload_wanted = True
        else:
            self.stopping = True

    def reload(self) -> None:
        """Read the config again; a config with problems is reported and the old one kept."""
        self.reload_wanted = False
        notify.notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")
        try:
            config = configuration.load(self.config_path)
        except ConfigError as error:
            problems = "; ".join(error.problems) or str(error)
            log.error("the changed config %s is not used, the one before stays: %s",
                      self.config_path, problems)  # fmt: skip
            notify.notify("READY=1", notify.status_text("config reload failed; see the log"))
            return
        self.config = config
        self._schedule_jobs()
        log.info("config reloaded: %s", self._plan_line())
        notify.notify("READY=1", notify.status_text("config reloaded"))

    def _sleep(self, wake: socket.socket) -> None:
        waits = (self.scheduler.idle_seconds, self.watchdog.seconds_left(), IDLE_MAX)
        timeout = min(w for w in waits if w is not None)
        if self.stopping or self.reload_wanted or timeout <= 0:
            return
        readable, _, _ = select.select([wake], [], [], timeout)
        if readable:
            wake.recv(4096)


def run(config_path: Path, config: Config) -> None:
    """`syncd run`: one daemon per database, until SIGTERM."""
    daemon_lock = FileLock(lock_path(config.state.database, "run"), "syncd run")
    with daemon_lock.acquire():
        Daemon(config_path, config).serve()


# -- status ---------------------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def status(config: Config, store: Store, now: datetime) -> dict[str, Any]:
    """What `syncd status` shows: the daemon, each source's runs, planning, each sink's
    follow-ups (pending: due but not in the calendar yet; written: open there; completed)."""
    pid = FileLock(lock_path(config.state.database, "run")).held_elsewhere()
    runs = store.runs()

    def job_status(job: str) -> dict[str, Any]:
        run = runs.get(job, Run(job))
        return {"last_success": _iso(run.last_success), "last_error": run.last_error,
                "failures": run.failures,
                "next_run": _iso(run.next_run) if pid else None}  # fmt: skip

    pending = engine.plan_and_write(config, store, now, dry_run=True).written
    counts = store.followup_counts()
    return {
        "daemon": {"running": pid is not None, "pid": pid if pid and pid > 0 else None},
        "sources": [{"name": n, **job_status(source_job(n))} for n in config.sources],
        "planning": job_status(PLAN),
        "sinks": [
            {"name": name, "pending": sum(1 for _, sink in pending if sink == name),
             "written": counts.get(name, {}).get("open", 0),
             "completed": counts.get(name, {}).get("completed", 0)}
            for name in config.sinks
        ],
    }  # fmt: skip
