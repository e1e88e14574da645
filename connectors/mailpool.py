"""Reading mail headers in a helper process, ahead of the source that asked.

A first sync of a large mailbox is bound by the CPU: the files read and their header fields picked
(`mailheaders.read_fields`), the addresses parsed, the batches stored. Here a helper process does
the reading and picking, in chunks of `CHUNK` messages with up to `AHEAD` chunks in flight, and
the source gets the results back in order as plain values (`Fields`), cheap to pass; the parties
are made in the source's own process, where they are cached. Measured with bench/maildir.py and
bench/imap.py on two cores: chunks of 100 to 500 cost the same within the noise.

Fewer than `LEAST` messages are read in-process: starting a helper costs about 0.1 s. A helper
that dies (killed, out of memory) is not started again; the rest is read in-process."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import pickle
import queue
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from multiprocessing.connection import Connection
from typing import TypeVar

from connectors.mailheaders import Fields, header_end, read_fields

CHUNK = 250
AHEAD = 8
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


class Helper:
    """The helper process and the pipe to it. Chunks are answered in the order they are sent.

    The calling process talks to it from its own thread only (no feeder threads that would wait
    for the global lock while the caller parses); in the helper a thread takes the chunks off the
    pipe as they come, so a caller sending ahead never waits on a helper sending back.
    """

    def __init__(self) -> None:
        # A fork server rather than a fork: the caller has threads of its own (the store's writer).
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["connectors.mailheaders"])
        self.pipe, theirs = context.Pipe()
        self.process = context.Process(target=_serve, args=(theirs,), name="syncd headers")
        self.process.daemon = True
        self.process.start()
        theirs.close()

    def send(self, chunk: list[Wanted]) -> bool:
        """Ask for a chunk; False when the helper is gone."""
        try:
            self.pipe.send_bytes(pickle.dumps(chunk, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:
            return False
        return True

    def receive(self) -> list[Result] | None:
        """The answer to the oldest chunk asked for; None when the helper is gone."""
        try:
            failed, answer = pickle.loads(self.pipe.recv_bytes())
        except (OSError, EOFError):
            return None
        if failed:
            raise answer
        return [Fields._make(found) if isinstance(found, tuple) else found for found in answer]

    def close(self) -> None:
        self.pipe.close()  # the helper ends when it reads the end of the pipe
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def _serve(pipe: Connection) -> None:
    """The helper's loop: chunks in, fields out (as plain tuples, pickled in half the time)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's to handle
    asked: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    threading.Thread(target=_take, args=(pipe, asked), daemon=True).start()
    while (data := asked.get()) is not None:
        try:
            results = _results(pickle.loads(data))
            answer: tuple[bool, object] = (False, [tuple(r) if isinstance(r, Fields) else r
                                                   for r in results])  # fmt: skip
        except Exception as error:  # a fault in the parser: the caller raises it
            answer = (True, error)
        try:
            pipe.send_bytes(pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:
            return


def _take(pipe: Connection, asked: queue.SimpleQueue[bytes | None]) -> None:
    try:
        while True:
            asked.put(pipe.recv_bytes())
    except (OSError, EOFError):
        asked.put(None)


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
        helper = Helper()
        try:
            yield from _through(helper, itertools.chain(first, pending), wanted)
        finally:
            helper.close()
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
    helper: Helper, jobs: Iterator[Job], wanted: Callable[[Job], Wanted]
) -> Iterator[tuple[Job, Result]]:
    flight: deque[tuple[list[Job], bool]] = deque()  # each chunk, and whether the helper has it
    alive = True
    while True:
        chunk = list(islice(jobs, CHUNK))
        if chunk:
            alive = alive and helper.send([wanted(job) for job in chunk])
            flight.append((chunk, alive))
        if flight and (len(flight) > AHEAD or not chunk):
            done, sent = flight.popleft()
            results = helper.receive() if sent else None
            if results is None:  # the helper died: this chunk and the rest are read here
                alive = False
                results = _results([wanted(job) for job in done])
            yield from zip(done, results, strict=True)
        elif not chunk:
            return
