"""The `imap` source: who wrote to whom and when, from the headers of the mail on an IMAP server.

Read-only: folders are opened with EXAMINE and headers fetched with BODY.PEEK, so not even `\\Seen`
changes. Incremental per folder: the cursor keeps UIDVALIDITY, the last UID read, UIDNEXT and the
message count, so a folder with no new mail costs one STATUS. A connection that breaks mid-fetch is
opened again and the scan goes on after the last message it yielded.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote

from connectors.base import Context, Cursor, SourceError
from connectors.imap.folders import Listed, chosen_folders
from connectors.imap.options import ImapOptions
from connectors.imap.session import FolderStatus, Session, Unreachable, open_session
from connectors.imap.wire import ConnectionLost, Fetched, Refused, internal_date, windows
from connectors.mailheaders import Fields, headers_of
from connectors.mailpool import Result, read_ahead
from syncd.model import Interaction

# Seconds to wait before each new attempt after the connection broke; then the scan gives up.
RETRY_DELAYS: tuple[float, ...] = (2.0, 10.0, 30.0)
# Messages per UID FETCH (session.AHEAD more windows are asked for while one is read). Measured
# with bench/imap.py: on a near server any size from 250 up costs the same; over a 40 ms round
# trip 500 is within 10% of 2000. A scan resumes after the last message yielded, not the window.
WINDOW = 500
_STATE_KEYS = ("uidvalidity", "last_uid", "uidnext", "messages")

FolderState = dict[str, int]


def _ref(folder: str, uidvalidity: int, message: Fetched) -> str:
    if message.gmail_id is not None:  # the same under every label
        return f"X-GM-MSGID/{message.gmail_id}"
    return f"{folder}/{uidvalidity}/{message.uid}"


def folder_states(state: dict[str, Any]) -> dict[str, FolderState]:
    """The cursor's per-folder part; an entry that is not four integers is read afresh."""
    found = state.get("folders")
    if not isinstance(found, dict):
        return {}
    return {
        name: {key: entry[key] for key in _STATE_KEYS}
        for name, entry in found.items()
        if isinstance(entry, dict) and all(type(entry.get(key)) is int for key in _STATE_KEYS)
    }


@dataclass
class _Progress:
    """What one scan knows across reconnections."""

    folders: dict[str, FolderState]
    known: Callable[[str], bool]  # Cursor.known
    gmail_seen: set[str] = field(default_factory=set)
    reported: bool = False


class ImapSource:
    """Mail on an IMAP server (any provider, Gmail and Office 365 too): one item per message."""

    Options: ClassVar[type[ImapOptions]] = ImapOptions
    type: ClassVar[str] = "imap"

    def __init__(self, options: ImapOptions, context: Context) -> None:
        self.options = options
        self.context = context

    def check(self) -> list[str]:
        """Log in, log the folders a sync would read with their message counts, log out."""
        try:
            session = open_session(self.options, self.context)
        except SourceError as error:
            return [str(error)]
        try:
            listing = session.folders()
            chosen, missing = chosen_folders(listing, self.options.folders)
            for folder in chosen:
                count = session.status(folder.name).messages
                self.context.logger.info("%s: would read %s (%d messages)",
                                         self.context.name, folder.name, count)  # fmt: skip
        except SourceError as error:
            return [str(error)]
        finally:
            session.close()
        return [self._not_there(name, listing) for name in missing]

    def scan(self, cursor: Cursor) -> Iterator[Interaction]:
        progress = _Progress(folder_states(cursor.state), cursor.known)
        cursor.state["folders"] = progress.folders
        for attempt in itertools.count(1):
            try:
                yield from self._scan_account(progress)
                return
            except (ConnectionLost, Unreachable) as lost:
                if isinstance(lost, Unreachable) and attempt == 1:
                    raise
                self._wait_before_retry(lost, attempt)

    def _wait_before_retry(self, lost: SourceError, attempt: int) -> None:
        if attempt > len(RETRY_DELAYS):
            raise SourceError(
                f"{lost}; gave up after {attempt} attempts (the next sync goes on from the last "
                "message read)"
            ) from lost
        delay = RETRY_DELAYS[attempt - 1]
        self.context.logger.warning("%s; trying again in %g s", lost, delay)
        time.sleep(delay)

    def _scan_account(self, progress: _Progress) -> Iterator[Interaction]:
        session = open_session(self.options, self.context)
        try:
            listing = session.folders()
            chosen, missing = chosen_folders(listing, self.options.folders)
            if not progress.reported:
                self._report_missing(listing, missing, progress.folders)
                progress.reported = True
            for folder in chosen:
                yield from self._scan_folder(session, folder.name, progress)
        finally:
            session.close()

    def _report_missing(
        self, listing: list[Listed], missing: list[str], states: dict[str, FolderState]
    ) -> None:
        for name in missing:
            self.context.warn(self._url(name), self._not_there(name, listing))
        present = {folder.name for folder in listing}
        for name in sorted(states.keys() - present):
            self.context.warn(self._url(name), "this folder, read before, is no longer on the "
                              "server; what was read from it is kept")  # fmt: skip

    def _not_there(self, name: str, listing: list[Listed]) -> str:
        names = ", ".join(folder.name for folder in listing if folder.selectable)
        return f"folder {name!r} is not on {self.options.host} (it has: {names})"

    # --- one folder --------------------------------------------------------------------------

    def _scan_folder(
        self, session: Session, name: str, progress: _Progress
    ) -> Iterator[Interaction]:
        state = progress.folders.get(name)
        if state is not None and self._unchanged(name, state, session.status(name)):
            return
        opened = session.examine(name)
        state = self._state_for(name, opened, progress.folders)
        ranges = session.search(state["last_uid"] + 1, self.options.since)

        def refused(uids: str, error: Refused) -> None:
            self.context.warn(self._url(name), f"the server did not send all of UIDs {uids} "
                              f"({error}); those it did not send are skipped")  # fmt: skip

        asked = session.fetch(windows(ranges, state["last_uid"], WINDOW), refused)

        def header(message: Fetched) -> bytes | None:  # None: known, so not parsed
            known = progress.known(_ref(name, state["uidvalidity"], message))
            return None if known else message.header

        # Headers are picked in a helper process while the next windows arrive (large folders).
        for message, fields in read_ahead(asked, header):
            if message.uid <= state["last_uid"]:  # `n:*` answers the last UID when none is new
                continue
            state["last_uid"] = message.uid
            found = self._interaction(name, state["uidvalidity"], message, fields, progress)
            if found is not None:
                yield found
        state["uidnext"] = max(opened.uidnext, state["last_uid"] + 1)
        state["messages"] = opened.messages

    def _unchanged(self, name: str, state: FolderState, status: FolderStatus) -> bool:
        if status.messages == 0 and state["messages"] > 0:
            # A server that suddenly shows nothing is more often broken than emptied.
            self.context.warn(self._url(name), f"the server now reports this folder empty; it "
                              f"had {state['messages']} messages; nothing read from it is "
                              "forgotten")  # fmt: skip
            return True
        if status.uidvalidity == state["uidvalidity"] and status.uidnext == state["uidnext"]:
            state["messages"] = status.messages
            return True
        return False

    def _state_for(
        self, name: str, opened: FolderStatus, states: dict[str, FolderState]
    ) -> FolderState:
        state = states.get(name)
        if state is not None and state["uidvalidity"] == opened.uidvalidity:
            return state
        if state is not None:
            self.context.logger.info("%s: %s has a new UIDVALIDITY; reading it again",
                                     self.context.name, name)  # fmt: skip
        state = {"uidvalidity": opened.uidvalidity, "last_uid": 0, "uidnext": 0, "messages": 0}
        states[name] = state
        return state

    def _interaction(
        self, folder: str, uidvalidity: int, message: Fetched, fields: Result, progress: _Progress
    ) -> Interaction | None:
        ref = _ref(folder, uidvalidity, message)
        if ref in progress.gmail_seen or not isinstance(fields, Fields):
            return None  # read under another Gmail label, or known (not parsed)
        if message.gmail_id is not None:  # one message under several labels is read once
            progress.gmail_seen.add(ref)
        headers = headers_of(fields)
        at = headers.date or internal_date(message.internaldate)
        if at is None:
            where = self._url(folder, uidvalidity, message.uid)
            self.context.warn(where, "neither a readable Date header nor a delivery time; skipped")
            return None
        mid = headers.message_id
        evidence = f"<{mid}>" if mid else self._url(folder, uidvalidity, message.uid)
        found = headers.interaction(
            source=self.context.name, ref=ref, evidence=evidence, fallback_at=at
        )
        if found is None:
            where = self._url(folder, uidvalidity, message.uid)
            self.context.warn(where, "no From address in the header; message skipped")
        return found

    def _url(self, folder: str, uidvalidity: int | None = None, uid: int | None = None) -> str:
        """Where a message is, as an IMAP URL (RFC 5092) a user can look up."""
        url = f"imap://{quote(self.options.user)}@{self.options.host}/{quote(folder)}"
        if uidvalidity is not None:
            url += f";UIDVALIDITY={uidvalidity}"
        return url if uid is None else f"{url}/;UID={uid}"
