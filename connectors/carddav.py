"""The `carddav` source: address books on a CardDAV server, parsed exactly as the `vcard` source
parses files.

Each pass reads only the cards added or changed since the last one (sync-collection, else ctag and
ETags). `cursor.state` is {"addressbooks": {url: {"sync_token" or "ctag",
"etags": {name: digest}}}}.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from typing import ClassVar, Literal

from connectors.base import ConnectorOptions, SourceError, handed_over
from connectors.dav import CARDDAV, DavOptions
from connectors.davsync import (
    Collection,
    DavSource,
    Item,
    State,
    changes,
    chosen,
    collections,
    multiget,
)
from connectors.vcard import Place, parse_cards
from syncd.model import Card


class CardDavOptions(DavOptions):
    type: Literal["carddav"]
    addressbooks: list[str] | None = None  # display names or paths; None: every address book


def _refs_by_item(state: State) -> dict[str, list[str]]:
    """Item name -> the refs of the cards it held, as the cursor remembers them."""
    found = state.get("refs")
    if not isinstance(found, dict):
        return {}
    return {name: list(refs) for name, refs in found.items() if isinstance(refs, list)}


class CardDavSource(DavSource[Card]):
    """Cards from every address book (or the ones named) that a CardDAV account holds."""

    type: ClassVar[str] = "carddav"
    Options: ClassVar[builtins.type[ConnectorOptions]] = CardDavOptions
    what = "address books"
    kind = CARDDAV
    state_key = "addressbooks"
    options: CardDavOptions

    def picked(self) -> list[Collection]:
        found = collections(self.client, CARDDAV)
        return chosen(found, self.options.addressbooks, CARDDAV, SourceError)

    def _scan(self, book: Collection, states: dict[str, State]) -> Iterator[Card]:
        before = states.get(book.url)
        if not isinstance(before, dict):
            before = {}
        listing = changes(self.client, book, before)
        read = multiget(self.client, CARDDAV, book, list(listing.changed))
        refs = _refs_by_item(before)
        for name in [*listing.removed, *map(book.item_name, listing.changed)]:
            refs.pop(name, None)
        cards = []
        for item in read:
            found = self._cards(item, book)
            refs[book.item_name(item.url)] = [card.ref for card in found]
            cards += found
        # A contact deleted on the server: withdrawn (a card without identities), unless its card
        # now lives in another item.
        live = {ref for item_refs in refs.values() for ref in item_refs}
        earlier = {ref for item_refs in _refs_by_item(before).values() for ref in item_refs}
        cards += [Card(self.context.name, ref, name="", identities=())
                  for ref in sorted(earlier - live)]  # fmt: skip

        def advance() -> None:
            states[book.url] = {**listing.state(book, before, read), "refs": refs}

        yield from handed_over(cards, advance)

    def _cards(self, item: Item, book: Collection) -> list[Card]:
        def warn(line: int, message: str) -> None:
            self.context.warn(item.url, message, line=line)

        place = Place(item.url, book.item_name(item.url))
        return parse_cards(item.text.encode("utf-8"), place, self.context.name, warn)
