"""Which folders an IMAP source reads: by SPECIAL-USE attribute (RFC 6154), names being localised.

By default INBOX plus the `\\Sent` and `\\Archive` folders, or only `\\All` where the server has one
(Gmail's "All Mail" holds every other label). `\\Junk`, `\\Trash` and `\\Drafts` are never read by
default. A server that marks no folder at all gets a fallback on common names.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

INBOX = "INBOX"
READ = frozenset({"\\sent", "\\archive"})
NEVER = frozenset({"\\junk", "\\trash", "\\drafts"})
SPECIAL_USE = READ | NEVER | {"\\all", "\\flagged", "\\important"}
NOT_SELECTABLE = frozenset({"\\noselect", "\\nonexistent"})
# Last name of a sent or archive folder on servers without SPECIAL-USE (lower case).
FALLBACK_NAMES = frozenset(
    {
        "sent", "sent items", "sent mail", "sent messages", "sent-mail", "outbox sent",
        "gesendet", "gesendete elemente", "gesendete objekte", "envoyés", "éléments envoyés",
        "messages envoyés", "enviados", "elementos enviados", "posta inviata", "inviati",
        "verzonden", "verzonden items", "wysłane", "skickat", "skickade objekt", "sendt",
        "lähetetyt", "отправленные",
        "archive", "archives", "archiv", "archief", "archivio", "archivo", "arkiv", "archiwum",
        "arquivo", "архив",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Listed:
    """A folder as LIST shows it: its name (decoded), attributes (lower case) and separator."""

    name: str
    attributes: frozenset[str]
    separator: str

    @property
    def last_name(self) -> str:
        if not self.separator:
            return self.name
        return self.name.rsplit(self.separator, 1)[-1]

    @property
    def selectable(self) -> bool:
        return not self.attributes & NOT_SELECTABLE


def listed(answer: Iterable[tuple[Sequence[bytes], bytes | None, str]]) -> list[Listed]:
    """imapclient's `list_folders()` answer as `Listed` folders."""
    return [
        Listed(
            str(name),
            frozenset(flag.decode("ascii", "replace").lower() for flag in flags),
            separator.decode("ascii", "replace") if separator else "",
        )
        for flags, separator, name in answer
    ]


def default_folders(folders: list[Listed]) -> list[Listed]:
    """INBOX, Sent and Archive by attribute (or by name where no folder has one), or All Mail."""
    usable = [folder for folder in folders if folder.selectable]
    for folder in usable:
        if "\\all" in folder.attributes:
            return [folder]
    marked = any(folder.attributes & SPECIAL_USE for folder in usable)
    return [folder for folder in usable if _default(folder, marked)]


def _default(folder: Listed, marked: bool) -> bool:
    if folder.name.upper() == INBOX:
        return True
    if folder.attributes & NEVER:
        return False
    if marked:
        return bool(folder.attributes & READ)
    return folder.last_name.casefold() in FALLBACK_NAMES


def chosen_folders(
    folders: list[Listed], wanted: list[str] | None
) -> tuple[list[Listed], list[str]]:
    """The folders to read, and the wanted names the server does not have.

    Names are matched as written, then ignoring case (INBOX is case-insensitive anyway).
    """
    if wanted is None:
        return default_folders(folders), []
    by_name = {folder.name: folder for folder in folders}
    by_folded = {folder.name.casefold(): folder for folder in folders}
    chosen: list[Listed] = []
    missing: list[str] = []
    for name in wanted:
        folder = by_name.get(name) or by_folded.get(name.casefold())
        if folder is None or not folder.selectable:
            missing.append(name)
        elif folder not in chosen:
            chosen.append(folder)
    return chosen, missing
