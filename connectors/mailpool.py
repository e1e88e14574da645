"""Reading mail headers in a helper process, ahead of the source that asked.

A first sync of a large mailbox is bound by the CPU: the files' header blocks read and their
fields picked (`mailheaders.read_fields`) on one core, the store busy on the other. Here a helper
process does the reading and picking, in chunks of `CHUNK` messages with up to `AHEAD` chunks in
flight, and the source gets the results back in order, as plain values (`Fields`) that cost
little to pass; the parties are made in the source's own process, where they are cached.

Fewer than `LEAST` messages are read in-process: starting a helper costs about 0.1 s. A helper
that dies (killed, out of memory) is not retried; the rest is read in-process.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from itertools import islice
from typing import TypeVar

from connectors.mailheaders import Fields, header_end, read_fields

CHUNK = 500
AHEAD = 4
LEAST = 2000
# The largest header block read from a file; what lies beyond is not looked at.
MAX_HEADER = 256 * 1024
_READ = 4096

Job = TypeVar("Job")
# What is to be read for a job: a file's path, a header block already in memory, or None for a
# job that only keeps its place in the order (a marker of the caller's own).
Wanted = str | bytes | None
# What came of it: the fields, the error reading the file raised, or None for a marker.
Result = Fields | OSError | None
# A result as the helper sends it: the fields as a plain tuple.
_Sent = tuple[object, ...] | OSError | None


def read_header_block(path: str) -> bytes:
    """A message file's header block, reading no further than needed."""
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.read(fd, _READ)
        end = header_end(data)
        while end < 0 and len(data) < MAX_HEADER:
            more = os.read(fd, _READ)
            if not more:
                break
            end = header_end(data + more, max(len(data) - 2, 0))
            data += more
    finally:
        os.close(fd)
    return data[:end] if end >= 0 else data


def _result(wanted: Wanted) -> Result:
    if wanted is None:
        return None
    if isinstance(wanted, bytes):
        return read_fields(wanted)
    try:
        return read_fields(read_header_block(wanted))
    except OSError as error:
        return error


def _results(chunk: list[Wanted]) -> list[Result]:
    """In the helper: one chunk."""
    return [_result(wanted) for wanted in chunk]


def _sent(chunk: list[Wanted]) -> list[_Sent]:
    """In the helper: one chunk, the fields as plain tuples (pickled in half the time)."""
    return [tuple(found) if isinstance(found, Fields) else found for found in _results(chunk)]


def _received(sent: list[_Sent]) -> list[Result]:
    return [Fields._make(found) if isinstance(found, tuple) else found for found in sent]


def _helper() -> ProcessPoolExecutor:
    # A fork server rather than a fork: the caller has threads of its own (the store's writer).
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["connectors.mailheaders"])
    return ProcessPoolExecutor(max_workers=1, mp_context=context)


def read_ahead(
    jobs: Iterable[Job], wanted: Callable[[Job], Wanted]
) -> Iterator[tuple[Job, Result]]:
    """Each job with its result, in order; read in a helper process when there are many.

    When getting the next job fails (an IMAP connection drops), the jobs got before it are still
    given, then the error is raised: what was read before a failure is not lost.
    """
    pending = _Until(jobs)
    first = list(islice(pending, LEAST))
    if len(first) < LEAST:
        yield from ((job, _result(wanted(job))) for job in first)
    else:
        pool = _helper()
        try:
            yield from _through(pool, itertools.chain(first, pending), wanted)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
    if pending.error is not None:
        raise pending.error


class _Until(Iterator[Job]):
    """The jobs until getting one fails; the error is kept for after those got before it."""

    def __init__(self, jobs: Iterable[Job]) -> None:
        self.jobs = iter(jobs)
        self.error: Exception | None = None

    def __next__(self) -> Job:
        if self.error is not None:
            raise StopIteration
        try:
            return next(self.jobs)
        except StopIteration:
            raise
        except Exception as error:
            self.error = error
            raise StopIteration from error


def _through(
    pool: ProcessPoolExecutor, jobs: Iterator[Job], wanted: Callable[[Job], Wanted]
) -> Iterator[tuple[Job, Result]]:
    flight: deque[tuple[list[Job], Future[list[_Sent]] | None]] = deque()
    broken = False
    while True:
        chunk = list(islice(jobs, CHUNK))
        if chunk:
            asked = [wanted(job) for job in chunk]
            future = None if broken else _submit(pool, asked)
            broken = future is None
            flight.append((chunk, future))
        if flight and (len(flight) > AHEAD or not chunk):
            done, future = flight.popleft()
            results = _collected(future, done, wanted)
            yield from zip(done, results, strict=True)
        elif not chunk:
            return


def _submit(pool: ProcessPoolExecutor, asked: list[Wanted]) -> Future[list[_Sent]] | None:
    try:
        return pool.submit(_sent, asked)
    except (BrokenProcessPool, RuntimeError):
        return None


def _collected(
    future: Future[list[_Sent]] | None,
    jobs: list[Job],
    wanted: Callable[[Job], Wanted],
) -> list[Result]:
    if future is not None:
        try:
            return _received(future.result())
        except BrokenProcessPool:
            pass
    return _results([wanted(job) for job in jobs])
