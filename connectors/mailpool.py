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

import contextlib
import fcntl
import itertools
import logging
import os
import pickle
import queue
import select
import signal
import struct
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import IO, TypeVar

from connectors.mailheaders import Fields, header_end, read_fields

CHUNK = 250
AHEAD = 8
LEAST = 2000
# Seconds without an answer after which the helper is given up.
PATIENCE = 30
log = logging.getLogger("syncd")
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
            data += more
            end = header_end(data, max(len(data) - len(more) - 2, 0))
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
    """The helper process and the pipes to it. Chunks are answered in the order they are sent.

    A fresh interpreter running this module (not a fork: the caller has threads of its own, and
    not `multiprocessing`, which would import the caller's main module there too). The caller talks
    to it from its own thread only, so no feeder thread waits for the global lock while the caller
    parses; in the helper a thread takes the chunks off the pipe as they come, so a caller
    sending ahead never waits on a helper sending back.
    """

    def __init__(self) -> None:
        here = str(Path(__file__).resolve().parent.parent)  # where `connectors` can be imported
        path = os.pathsep.join([here, *filter(None, [os.environ.get("PYTHONPATH")])])
        self.process = subprocess.Popen(
            [sys.executable, "-P", "-m", "connectors.mailpool"],  # -P: not from the working folder
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": path},
        )
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.requests, self.answers = self.process.stdin, self.process.stdout
        for pipe in (self.requests, self.answers):
            _widen(pipe)
        self._come = bytearray()  # answers read off the pipe, not yet taken (unbuffered reads)
        self._waiting = select.poll()
        self._waiting.register(self.answers.fileno(), select.POLLIN)
        self.gone = False  # the helper ended (killed): nothing more is sent to it or read

    def send(self, chunk: list[Wanted]) -> bool:
        """Ask for a chunk; False when the helper is gone."""
        if self.gone:
            return False
        try:
            _write(self.requests, pickle.dumps(chunk, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:
            self.gone = True
        return not self.gone

    def ready(self) -> bool:
        """Whether the answer to the oldest chunk is back (or the helper gone), without waiting."""
        if self._whole() is None and self._waiting.poll(0):
            self._more()
        return self._whole() is not None or self.gone

    def receive(self) -> list[Result] | None:
        """The answer to the oldest chunk asked for; None when the helper is gone, or silent for
        `PATIENCE` seconds (stopped, or stuck on a file): then it is ended and not asked again."""
        while (size := self._whole()) is None:
            if self.gone:
                return None
            if not self._waiting.poll(PATIENCE * 1000):
                self.gone = True
                self.process.kill()
                return None
            self._more()
        data = bytes(self._come[_SIZE.size : _SIZE.size + size])
        del self._come[: _SIZE.size + size]
        failed, answer = pickle.loads(data)
        if failed:
            raise answer
        return [Fields._make(found) if isinstance(found, tuple) else found for found in answer]

    def _whole(self) -> int | None:
        """The size of the first answer when all of it has been read, else None."""
        if len(self._come) < _SIZE.size:
            return None
        (size,) = _SIZE.unpack_from(self._come)
        return size if len(self._come) >= _SIZE.size + size else None

    def _more(self) -> bool:
        """Read what the helper has sent (waiting for some); False at the end of the pipe."""
        try:
            data = os.read(self.answers.fileno(), _PIPE_BYTES)
        except OSError:
            data = b""
        self._come += data
        self.gone = self.gone or not data
        return not self.gone

    def close(self) -> None:
        """End the helper: it stops at the end of its input, or at once when it was still
        answering (a caller that stopped early), as nobody reads its answers any more."""
        for pipe in (self.requests, self.answers):
            with contextlib.suppress(OSError):
                pipe.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_SIZE = struct.Struct("<Q")
# Room in each pipe for several chunks (Linux; elsewhere the system's size): with the usual 64 KB
# a sender waits for the other side's reading thread at every chunk.
_PIPE_BYTES = 1 << 20


def _widen(pipe: IO[bytes]) -> None:
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or above pipe-max-size
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)


def _write(pipe: IO[bytes], data: bytes) -> None:
    pipe.write(_SIZE.pack(len(data)) + data)
    pipe.flush()


def _read(pipe: IO[bytes]) -> bytes | None:
    """The next message; None at the end of the pipe (or a broken one)."""
    try:
        head = pipe.read(_SIZE.size)
        if len(head) < _SIZE.size:
            return None
        (size,) = _SIZE.unpack(head)
        data = pipe.read(size)
    except OSError:
        return None
    return data if len(data) == size else None


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """The helper's loop: chunks in, fields out (as plain tuples, pickled in half the time)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's to handle
    asked: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    threading.Thread(target=_take, args=(requests, asked), daemon=True).start()
    while (data := asked.get()) is not None:
        try:
            results = _results(pickle.loads(data))
            answer: tuple[bool, object] = (False, [tuple(r) if isinstance(r, Fields) else r
                                                   for r in results])  # fmt: skip
        except Exception as error:  # a fault in the parser: the caller raises it
            answer = (True, error)
        try:
            _write(answers, pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:
            return


def _take(requests: IO[bytes], asked: queue.SimpleQueue[bytes | None]) -> None:
    while (data := _read(requests)) is not None:
        asked.put(data)
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
    helper = _started() if len(first) == LEAST else None
    if helper is None:
        yield from ((job, _result(wanted(job))) for job in itertools.chain(first, pending))
    else:
        try:
            yield from _through(helper, itertools.chain(first, pending), wanted)
        finally:
            helper.close()
    if pending.error is not None:
        raise pending.error


def _started() -> Helper | None:
    try:
        return Helper()
    except OSError as error:  # no more processes, no memory: read in this process
        log.warning("cannot start a helper process (%s); reading the headers in this one", error)
        return None


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
    """The helper gets a chunk while it has fewer than `AHEAD`; otherwise the chunk is read here
    rather than waited for, so on two cores the helper and the caller share the reading as
    their other work allows. Results are given in order all the same."""
    flight: deque[tuple[list[Job], list[Result] | None]] = deque()  # None: the helper has it

    def oldest() -> Iterator[tuple[Job, Result]]:
        nonlocal flight
        done, results = flight.popleft()
        if results is None and (results := helper.receive()) is None:
            # The helper died: what it had is read here.
            flight = deque((chunk, found or _here(chunk, wanted)) for chunk, found in flight)
            results = _here(done, wanted)
        return zip(done, results, strict=True)

    while chunk := list(islice(jobs, CHUNK)):
        asked = sum(1 for _, found in flight if found is None)
        if asked < AHEAD and helper.send([wanted(job) for job in chunk]):
            flight.append((chunk, None))
        else:
            flight.append((chunk, _here(chunk, wanted)))
        while flight and (flight[0][1] is not None or len(flight) > 4 * AHEAD or helper.ready()):
            yield from oldest()
    while flight:  # the last chunks: waited for
        yield from oldest()


def _here(chunk: list[Job], wanted: Callable[[Job], Wanted]) -> list[Result]:
    return _results([wanted(job) for job in chunk])


if __name__ == "__main__":  # the helper (`Helper`)
    answering = sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not land among the answers
    serve(sys.stdin.buffer, answering)
