"""Chats from WhatsApp's "Export chat" files: Android .txt files, iOS .zip files holding _chat.txt.

Each message of a chat becomes one WHATSAPP `Interaction` at its local time in the user's zone; the
text, media file names and system lines are never kept. Each file decides its own line format and
date order, since an export follows the phone's language and region, not syncd's.

Reading an export's text into lines and dates is connectors.whatsapp.text; this module finds the
exports, tells who is who in each chat, and turns its lines into interactions.
"""

from __future__ import annotations

import builtins
import difflib
import os
import re
import unicodedata
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Literal

from connectors.base import ConfigPath, ConnectorOptions, Context, Cursor, SourceError, handed_over
from connectors.files import find_files
from connectors.whatsapp.text import _Chat, _day, _decode, _Line, chat_title, date_order, parse_chat
from syncd.model import Channel, Direction, Identity, IdentityKind, Interaction, Party


class WhatsAppOptions(ConnectorOptions):
    type: Literal["whatsapp"]
    path: ConfigPath


# What some exports call the user in their own lines.
_YOU = frozenset({"you", "jij", "ik", "du", "ich", "tú", "tu", "yo", "vous", "moi"})
_PHONE = re.compile(r"\+?[\d\s().\-/]+")
_LARGEST = 512 * 1024 * 1024  # no chat export is near this; a bigger member is not one
_ZIP_ERRORS = (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError, RuntimeError)


@dataclass(frozen=True)
class _Cast:
    """Who is who in one chat: every author, which of them are the user, whether a group."""

    lines: list[_Line]
    authors: tuple[str, ...]
    me: frozenset[str]
    group: bool


def is_phone(name: str) -> bool:
    return bool(_PHONE.fullmatch(name)) and sum(ch.isdigit() for ch in name) >= 6


def _plain(name: str) -> str:
    """A name as two spellings share it: case, accents, spacing, emoji and punctuation dropped."""
    folded = unicodedata.normalize("NFKD", name.casefold())
    return "".join(ch for ch in folded if ch.isalnum())


def _same_number(one: str, other: str) -> bool:
    """Whether two numbers are one, whatever their format (06-..., +31 6 ..., 0031 6 ...)."""
    digits = ["".join(ch for ch in text if ch.isdigit()) for text in (one, other)]
    return min(map(len, digits)) >= 7 and digits[0][-9:] == digits[1][-9:]


def _same_name(author: str, title: str) -> bool:
    if is_phone(author) and is_phone(title):
        return _same_number(author, title)
    return _plain(author) == _plain(title) != ""


def _likeness(author: str, title: str) -> float:
    return difflib.SequenceMatcher(None, _plain(author), _plain(title)).ratio()


def _party(name: str) -> Party:
    kind = IdentityKind.PHONE if is_phone(name) else IdentityKind.NAME
    return Party(Identity(kind, name), name=name)


class WhatsAppSource:
    """WhatsApp chats from an export file (.txt or .zip) or a folder of them.

    `cursor.state` is {"files": {path: {"size", "mtime_ns"}}, "my_names": [...]}: an unchanged file
    is not read again; a changed or new one yields only messages the store does not know, so a
    re-export of a chat adds only its new messages. `my_names` holds what the user's own exports
    called the user in one-to-one chats, to find the user among a group's authors.
    Refs are "<chat>/<local time ISO>/<out|in, or the author in a group>/<n-th at that time>".
    """

    type: ClassVar[str] = "whatsapp"
    Options: ClassVar[builtins.type[WhatsAppOptions]] = WhatsAppOptions

    def __init__(self, options: WhatsAppOptions, context: Context) -> None:
        self.options = options
        self.context = context

    def check(self) -> list[str]:
        path = self.options.path
        if not path.exists():
            return [f"{path} does not exist; point `path` at a WhatsApp export or a folder of them"]
        if not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
            return [f"{path} cannot be read by this user; check its permissions"]
        if path.is_dir() and not any(self._exports()):
            return [f"{path} holds no WhatsApp export (WhatsApp Chat with NAME.txt or .zip)"]
        return []

    def scan(self, cursor: Cursor) -> Iterator[Interaction]:
        files = cursor.state.get("files")
        if not isinstance(files, dict):
            files = cursor.state["files"] = {}
        names = cursor.state.get("my_names")
        my_names = {str(name) for name in names} if isinstance(names, list) else set()
        changed, present = self._changed(files)
        casts = self._cast_all(changed, my_names)
        cursor.state["my_names"] = sorted(my_names)
        yielded: set[str] = set()
        for key, stamp, chat in changed:
            found = [] if chat is None else list(self._messages(chat, casts[key]))
            found = [ix for ix in found if ix.ref not in yielded and not cursor.known(ix.ref)]
            yielded.update(ix.ref for ix in found)
            yield from handed_over(found, partial(files.__setitem__, key, stamp))
        for gone in set(files) - present:
            del files[gone]

    def _exports(self) -> Iterator[Path]:
        return find_files(self.options.path, (".txt", ".zip"))

    def _changed(
        self, files: dict[str, Any]
    ) -> tuple[list[tuple[str, dict[str, int], _Chat | None]], set[str]]:
        """The files new or changed since the cursor, read; and every file present."""
        changed: list[tuple[str, dict[str, int], _Chat | None]] = []
        present: set[str] = set()
        for path in self._exports():
            present.add(str(path))
            try:
                status = path.stat()
                stamp = {"size": status.st_size, "mtime_ns": status.st_mtime_ns}
                if files.get(str(path)) != stamp:
                    changed.append((str(path), stamp, self._read(path)))
            except OSError as error:
                self._unreadable(path, error)
        return changed, present

    def _read(self, path: Path) -> _Chat | None:
        if path.suffix.lower() == ".zip":
            return self._read_zip(path)
        # An unpacked iOS export: WhatsApp Chat - NAME/_chat.txt
        title = chat_title(path.parent.name if path.name == "_chat.txt" else path.name)
        if title is None:
            self.context.warn(path, "not named like a WhatsApp export; keep the name it was "
                              "exported with (WhatsApp Chat with NAME.txt); skipped")  # fmt: skip
            return None
        return self._parse(path.read_bytes(), title, str(path))

    def _read_zip(self, path: Path) -> _Chat | None:
        try:
            with zipfile.ZipFile(path) as archive:
                member = self._chat_member(archive)
                if member is None or member.file_size > _LARGEST:
                    self.context.warn(path, "holds no _chat.txt; not a WhatsApp export? skipped")
                    return None
                data = archive.read(member)
        except _ZIP_ERRORS as error:
            self.context.warn(path, f"cannot be unpacked ({error}); download it again; skipped")
            return None
        name = member.filename.rsplit("/", 1)[-1]
        title = chat_title(path.name) or chat_title(name) or path.stem
        return self._parse(data, title, f"{path}/{member.filename}")

    @staticmethod
    def _chat_member(archive: zipfile.ZipFile) -> zipfile.ZipInfo | None:
        for member in archive.infolist():
            name = member.filename.rsplit("/", 1)[-1]
            if name == "_chat.txt" or (name.lower().endswith(".txt") and chat_title(name)):
                return member
        return None

    def _parse(self, data: bytes, title: str, label: str) -> _Chat:
        chat = parse_chat(_decode(data), title, label, lambda what, at: self._warn(label, what, at))
        if not chat.lines:
            self._warn(label, "no WhatsApp messages found; skipped")
        return chat

    def _warn(self, label: str, message: str, line: int | None = None) -> None:
        self.context.warn(label, message, line=line)

    def _unreadable(self, path: Path, error: OSError) -> None:
        reason = error.strerror or str(error)
        if path == self.options.path:
            raise SourceError(f"cannot read {path}: {reason}; check that this user may read it")
        self.context.warn(path, f"cannot be read ({reason}); skipped")

    # --- who is who -----------------------------------------------------------------------------

    def _cast_all(
        self, changed: list[tuple[str, dict[str, int], _Chat | None]], my_names: set[str]
    ) -> dict[str, _Cast]:
        """The cast of every chat; one-to-one chats first, as they teach the user's own names."""
        chats = [(key, chat) for key, _, chat in changed if chat is not None]
        casts = {key: self._authors(chat) for key, chat in chats}
        for key, chat in sorted(chats, key=lambda item: casts[item[0]].group):
            casts[key] = self._who_is_me(chat, casts[key], my_names)
        return casts

    @staticmethod
    def _authors(chat: _Chat) -> _Cast:
        lines = [line for line in chat.lines if line.author]
        authors = tuple(dict.fromkeys(line.author for line in lines))
        group = chat.group_events or len(authors) > 2
        if group:  # iOS writes a group's own events under the group's name
            lines = [line for line in lines if not (line.marked and line.author == chat.title)]
            authors = tuple(dict.fromkeys(line.author for line in lines))
        return _Cast(lines, authors, frozenset(), group)

    def _who_is_me(self, chat: _Chat, cast: _Cast, my_names: set[str]) -> _Cast:
        if cast.group:
            me = frozenset(a for a in cast.authors if self._is_me(a, my_names))
            if not me and cast.lines:
                self._warn(chat.label, "cannot tell which author is you; add your number to "
                           "[me] phones; every message is read as sent to you")  # fmt: skip
        else:
            partner = self._partner(chat, cast.authors, my_names)
            me = frozenset(a for a in cast.authors if a != partner)
            my_names.update(_plain(name) for name in me if partner is not None)
        return _Cast(cast.lines, cast.authors, me, cast.group)

    def _is_me(self, author: str, my_names: set[str]) -> bool:
        phones = [i.value for i in self.context.me if i.kind is IdentityKind.PHONE]
        if is_phone(author):
            return any(_same_number(author, phone) for phone in phones)
        return _plain(author) in my_names or author.casefold() in _YOU

    def _partner(self, chat: _Chat, authors: tuple[str, ...], my_names: set[str]) -> str | None:
        """The author who is the chat partner: the one named like the chat; None when only the
        user wrote."""
        named = [a for a in authors if _same_name(a, chat.title)]
        if named or not authors:
            return named[0] if named else None
        others = [a for a in authors if not self._is_me(a, my_names)]
        if len(authors) == 1:
            return authors[0] if _likeness(authors[0], chat.title) >= 0.8 else None
        # Renamed since the export: the one who is not the user, else the likest name.
        choice = max(others or authors, key=lambda author: _likeness(author, chat.title))
        self._warn(chat.label, f"no author is named {chat.title!r}; {choice!r} is taken as them")
        return choice

    # --- messages -------------------------------------------------------------------------------

    def _messages(self, chat: _Chat, cast: _Cast) -> Iterator[Interaction]:
        order = date_order(chat)
        at_moment: Counter[str] = Counter()
        for line in cast.lines:
            local = self._local(chat, line, order)
            if local is None:
                continue
            mine = line.author in cast.me
            side = line.author if cast.group else ("out" if mine else "in")
            moment = f"{chat.title}/{local.isoformat()}/{side}"
            at_moment[moment] += 1
            sender, recipients = self._parties(chat, cast, line.author)
            yield Interaction(
                source=self.context.name,
                ref=f"{moment}/{at_moment[moment]}",
                at=local.replace(tzinfo=self.context.timezone).astimezone(UTC),
                channel=Channel.WHATSAPP,
                sender=sender,
                recipients=recipients,
                evidence=f"{chat.label}:{line.number}",
                signals={"chat": "group"} if cast.group else {},
                direction=Direction.OUT if mine else Direction.IN,
            )

    @staticmethod
    def _parties(chat: _Chat, cast: _Cast, author: str) -> tuple[Party | None, tuple[Party, ...]]:
        """(sender, recipients): the partner, or in a group the author or everyone but the user."""
        if author not in cast.me:
            return _party(author if cast.group else chat.title), ()
        if cast.group:
            return None, tuple(_party(a) for a in cast.authors if a not in cast.me)
        return None, (_party(chat.title),)

    def _local(self, chat: _Chat, line: _Line, order: str) -> datetime | None:
        day = _day(line.fields, order)
        if day is None or line.clock is None:
            what = "date" if day is None else "time"
            self._warn(chat.label, f"message skipped: its {what} cannot be read", line.number)
            return None
        return datetime.combine(day, line.clock)
