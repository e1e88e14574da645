"""In-memory sources and sinks for engine tests: the engine's contract, without files or servers."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import ClassVar, Literal

from connectors.base import ConnectorOptions, Context, Cursor, SourceError
from syncd.model import Card, FollowUpStatus, Interaction, Reminder, ReminderState

# What each named memory source holds; tests fill it.
FEEDS: dict[str, list[Card | Interaction]] = {}
# A memory source raises this after yielding `fail_after` items, once.
CRASH: dict[str, int] = {}


class MemoryOptions(ConnectorOptions):
    type: Literal["memory"]
    feed: str


class MemorySource:
    """Yields the items of FEEDS[feed] it has not yielded before; the cursor counts them."""

    type: ClassVar[str] = "memory"
    Options: ClassVar[type[ConnectorOptions]] = MemoryOptions

    def __init__(self, options: MemoryOptions, context: Context) -> None:
        self.options = options
        self.context = context

    def scan(self, cursor: Cursor) -> Iterator[Card | Interaction]:
        items = FEEDS.get(self.options.feed)
        if items is None:
            raise SourceError(f"feed {self.options.feed} is unreachable")
        start = cursor.state.get("done", 0)
        for position, item in enumerate(items[start:], start=start + 1):
            if CRASH.get(self.options.feed) == position:
                del CRASH[self.options.feed]
                raise RuntimeError("killed")
            cursor.state["done"] = position
            yield item

    def check(self) -> list[str]:
        return [] if self.options.feed in FEEDS else ["feed missing"]


class MemorySinkOptions(ConnectorOptions):
    type: Literal["memory"]


# uid -> reminder as written; tests edit ITEMS / STATES to play the user.
ITEMS: dict[str, Reminder] = {}
STATES: dict[str, ReminderState] = {}


class MemorySink:
    type: ClassVar[str] = "memory"
    Options: ClassVar[type[ConnectorOptions]] = MemorySinkOptions

    def __init__(self, options: MemorySinkOptions, context: Context) -> None:
        """Nothing to open: what is written lives in ITEMS, what the user did in STATES."""

    def put(self, reminder: Reminder) -> str:
        ITEMS[reminder.uid] = reminder
        return f'"{hash(reminder)}"'

    def remove(self, uid: str) -> None:
        ITEMS.pop(uid, None)

    def read_back(self, uids: Iterable[str]) -> Iterator[ReminderState]:
        for uid in uids:
            if uid in STATES:
                yield STATES[uid]
            elif uid in ITEMS:
                yield ReminderState(uid, FollowUpStatus.OPEN, due=ITEMS[uid].due)
            else:
                yield ReminderState(uid, FollowUpStatus.DELETED)

    def check(self) -> list[str]:
        return []
