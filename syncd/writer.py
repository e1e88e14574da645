"""Storing an import's batches on a thread of its own, while the source goes on reading.

SQLite does a batch's work (one statement per table over the batch as JSON, see `Store.write`)
without holding Python's global lock, so reading and parsing on one core and storing on the other
overlap. At most `AHEAD` batches wait; a batch is stored whole with its cursor, in order.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from syncd.batch import Batch
from syncd.store import Store

AHEAD = 2
log = logging.getLogger("syncd")


class Writer:
    def __init__(self, store: Store, name: str) -> None:
        self.store = store
        # Held while a batch is stored: whoever else asks the store during the import waits.
        self.lock = threading.Lock()
        self._waiting: queue.Queue[Batch | None] = queue.Queue(maxsize=AHEAD)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"store {name}", daemon=True)
        self._thread.start()

    def put(self, batch: Batch) -> None:
        """Queue a batch; raises what storing an earlier one raised (nothing after it is kept)."""
        self._raise()
        self._waiting.put(batch)

    def close(self) -> None:
        """Store what is queued and stop; raises what storing raised. A Ctrl-C meanwhile is
        raised after: the connection must not be closed under the writer thread."""
        self._waiting.put(None)
        interrupted = None
        while self._thread.is_alive():
            try:
                self._thread.join()
            except KeyboardInterrupt as error:
                interrupted = error
        self._raise()
        if interrupted is not None:
            raise interrupted

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while (batch := self._waiting.get()) is not None:
            if self._error is not None:
                continue  # a later batch must not be stored over a lost one
            try:
                with self.lock:
                    self.store.write(batch)
            except BaseException as error:  # handed to the reading thread
                self._error = error


@contextmanager
def writer(store: Store, name: str) -> Iterator[Writer]:
    """A writer for one import; on leaving, what was queued is stored (also after an error in
    the reading thread: those batches are whole, with the cursor they reached)."""
    started = Writer(store, name)
    try:
        yield started
    except BaseException as reading:
        try:
            started.close()
        except Exception as error:  # the reading thread's error is the one raised
            if error is not reading:  # not the storing error `put` raised already
                log.error("storing the last batches failed as well: %s", error)
        raise
    started.close()
