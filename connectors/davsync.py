"""Finding a user's calendars or address books on a DAV server, and what changed in them.

Discovery follows RFC 6764 and 5397 (well-known address, current-user-principal, home set). What
changed comes from sync-collection (RFC 6578) where the server keeps sync tokens, else from the
ctag and a listing of ETags. The cursor keeps, per collection, the token or ctag and a short digest
of each item's ETag, so a server that forgets a token costs a listing, not a full download.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, NoReturn, TypeVar
from urllib.parse import unquote, urljoin, urlsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from connectors.base import Context, Cursor, SourceError
from connectors.dav import (
    CALDAV,
    CALENDARSERVER,
    DAV,
    NAMESPACES,
    Client,
    DavOptions,
    Found,
    Kind,
    Response,
    client_for,
    href,
    same_resource,
    xml,
)

Found_T = TypeVar("Found_T")
BATCH = 100  # items per multiget REPORT
_COLLECTION_PROPS = (
    "<D:resourcetype/>", "<D:displayname/>", "<C:supported-calendar-component-set/>",
    "<D:sync-token/>", "<CS:getctag/>",
)  # fmt: skip

State = dict[str, Any]
# url -> etag of each member listed; None for one the server says was removed.
Listing = dict[str, str | None]


@dataclass(frozen=True)
class Collection:
    """A calendar or an address book."""

    url: str  # ends with "/"
    name: str  # its display name, else the last part of its path
    components: frozenset[str]  # what a calendar takes; empty: anything
    sync_token: str | None  # RFC 6578, when the server has it
    ctag: str | None  # CalendarServer's collection tag, the older way to see a change

    def item_name(self, url: str) -> str:
        """The item's name inside this collection, as the cursor keeps it."""
        path, mine = unquote(urlsplit(url).path), unquote(urlsplit(self.url).path)
        return path[len(mine) :] if path.startswith(mine) else path

    def takes(self, component: str) -> bool:
        return not self.components or component in self.components


@dataclass(frozen=True)
class Item:
    url: str
    etag: str
    text: str


def digest(etag: str) -> str:
    """A short stand-in for an ETag in the cursor: it is only ever compared, and ETags are long."""
    return hashlib.blake2b(etag.encode("utf-8"), digest_size=8).hexdigest()


# --- discovery -------------------------------------------------------------------------------


def collection_of(kind: Kind, found: Found) -> Collection | None:
    """The collection a PROPFIND answer describes; None when it is no calendar / address book."""
    types = {child.tag for child in found.children(f"{DAV}resourcetype")}
    if found.status != 200 or kind.clark(kind.collection) not in types:
        return None
    url = found.href if found.href.endswith("/") else found.href + "/"
    offered = found.children(CALDAV.clark("supported-calendar-component-set"))
    components = {child.get("name", "").upper() for child in offered} - {""}
    last = unquote(urlsplit(url).path).rstrip("/").rpartition("/")[2]
    return Collection(
        url, found.text(f"{DAV}displayname") or last, frozenset(components),
        found.text(f"{DAV}sync-token"), found.text(f"{CALENDARSERVER}getctag"),
    )  # fmt: skip


def _properties(client: Client, url: str, props: tuple[str, ...], depth: str) -> list[Found]:
    """PROPFIND; nothing at all when `url` does not exist."""
    body = xml(f"<D:propfind {NAMESPACES}><D:prop>{''.join(props)}</D:prop></D:propfind>")
    response = client.request("PROPFIND", url, body, {"Depth": depth}, ok=(207, 404))
    return client.multistatus(response, url) if response.status == 207 else []


def collection_at(client: Client, kind: Kind, url: str) -> Collection | None:
    """The collection at `url`, or None when there is none there."""
    found = _properties(client, url, _COLLECTION_PROPS, "0")
    return collection_of(kind, found[0]) if found else None


def collections(client: Client, kind: Kind) -> list[Collection]:
    """Every calendar (or address book) `url` leads to: itself, or those in the user's home."""
    props = (*_COLLECTION_PROPS, *_home_props(kind))
    found = _properties(client, client.url, props, "0")
    itself = collection_of(kind, found[0]) if found else None
    if itself is not None:
        return [itself]
    home = home_of(client, kind, found[0] if found else None)
    listing = _properties(client, home, _COLLECTION_PROPS, "1")
    return [each for entry in listing if (each := collection_of(kind, entry)) is not None]


def _home_props(kind: Kind) -> tuple[str, ...]:
    return ("<D:current-user-principal/>", kind.element(kind.home_set))


def home_of(client: Client, kind: Kind, at_url: Found | None = None) -> str:
    """Where the user's collections live: the home set named at `url` or at its principal.

    `at_url` is what `url` already said, when it was asked for these properties.
    """
    starts: list[str | Found] = [at_url or client.url]
    if urlsplit(client.url).path in ("", "/"):  # a bare server address: the well-known one too
        starts.append(urljoin(client.url, kind.well_known))
    for start in starts:
        found = (
            _properties(client, start, _home_props(kind), "0")
            if isinstance(start, str)
            else [start]
        )
        home = _home_set(client, kind, found[0]) if found else None
        if home:
            return home
    return client.url  # no principal: take `url` as a folder of collections


def _home_set(client: Client, kind: Kind, found: Found) -> str | None:
    homes = found.hrefs(kind.clark(kind.home_set))
    principal = found.hrefs(f"{DAV}current-user-principal")
    if not homes and principal:
        at_principal = _properties(
            client, urljoin(found.href, principal[0]), _home_props(kind), "0"
        )
        homes = at_principal[0].hrefs(kind.clark(kind.home_set)) if at_principal else []
    return urljoin(found.href, homes[0]) if homes else None


def chosen(
    found: list[Collection], names: list[str] | None, kind: Kind, error: type[Exception]
) -> list[Collection]:
    """The collections a config names (display name or path), all of them when it names none."""
    if names is None:
        return found
    picked = []
    for name in names:
        match = next((collection for collection in found if matches(collection, name)), None)
        if match is None:
            known = ", ".join(repr(collection.name) for collection in found) or "none"
            raise error(f"there is no {kind.noun} {name!r} on the server; found: {known}")
        picked.append(match)
    return picked


def matches(collection: Collection, name: str) -> bool:
    """A config names a collection by its display name, its path, or the last part of its path."""
    path = unquote(urlsplit(collection.url).path).strip("/")
    wanted = name.strip()
    return wanted == collection.name or wanted.strip("/") in (path, path.rpartition("/")[2])


def states_of(
    cursor: State, key: str, picked: list[Collection], kind: Kind, error: type[Exception]
) -> dict[str, State]:
    """The cursor's state per collection (under `key`), forgetting collections no longer read.

    A server that suddenly lists none where syncd read some is an error, not a reason to forget.
    """
    states = cursor.get(key)
    if not isinstance(states, dict):
        states = cursor[key] = {}
    if states and not picked:
        raise error(f"the server lists no {kind.noun} where syncd read some before; check `url`")
    for gone in set(states) - {collection.url for collection in picked}:
        del states[gone]
    return states


# --- what changed ----------------------------------------------------------------------------


@dataclass
class Changes:
    """What changed in a collection since the cursor's state, and the marker that covers it."""

    changed: dict[str, str] = field(default_factory=dict)  # url -> etag, added or changed
    removed: list[str] = field(default_factory=list)  # item names gone
    marker: dict[str, str] = field(default_factory=dict)  # {"sync_token": ...} or {"ctag": ...}
    fresh: bool = False  # no usable state: every item is new

    def state(self, collection: Collection, before: State, read: list[Item]) -> State:
        """The collection's cursor state once the changed items `read` are handed over."""
        etags = dict(before.get("etags") or {})
        for name in [*self.removed, *map(collection.item_name, self.changed)]:
            etags.pop(name, None)  # a changed one that vanished before it was read stays out
        etags.update({collection.item_name(item.url): digest(item.etag) for item in read})
        return {**self.marker, "etags": etags}


def changes(client: Client, collection: Collection, state: State) -> Changes:
    """Items added, changed and removed since `state`: by sync token, else by ctag and ETags."""
    known = state.get("etags")
    etags: dict[str, str] = known if isinstance(known, dict) else {}
    fresh = not isinstance(known, dict)
    if collection.sync_token is not None:
        token = None if fresh else state.get("sync_token")
        if token == collection.sync_token:
            return Changes(marker={"sync_token": collection.sync_token})
        since = _sync(client, collection, token) if isinstance(token, str) and token else None
        complete = since is None  # without a token (or when the server forgot it) list all
        listing, new_token = since or _sync(client, collection, "") or _refused(client, collection)
        marker = {"sync_token": new_token} if new_token else {}
    else:
        if not fresh and collection.ctag and state.get("ctag") == collection.ctag:
            return Changes(marker={"ctag": collection.ctag})
        listing, complete = members(client, collection), True
        marker = {"ctag": collection.ctag} if collection.ctag else {}
    return _compare(collection, etags, listing, complete, Changes(marker=marker, fresh=fresh))


def _compare(
    collection: Collection, etags: dict[str, str], listing: Listing, complete: bool,
    result: Changes,
) -> Changes:  # fmt: skip
    """Fill `result` from `listing`; `complete` when it names every member of the collection."""
    for url, etag in listing.items():
        name = collection.item_name(url)
        if etag is None:
            result.removed.append(name)
        elif etags.get(name) != digest(etag):
            result.changed[url] = etag
    if complete:
        present = {collection.item_name(url) for url, etag in listing.items() if etag}
        result.removed += sorted(set(etags) - present)
    return result


def members(client: Client, collection: Collection) -> Listing:
    listing = _properties(client, collection.url, ("<D:getetag/>",), "1")
    return {
        found.href: etag
        for found in listing
        if not same_resource(found.href, collection.url)
        and found.status == 200
        and (etag := found.text(f"{DAV}getetag"))
    }


def _sync(client: Client, collection: Collection, token: str) -> tuple[Listing, str] | None:
    """RFC 6578 sync-collection since `token` ("": everything) and the new token; None when the
    server refuses the report (a token it forgot, or no sync support after all)."""
    listing: Listing = {}
    for _ in range(1000):  # a long list may come in parts (507 on the collection itself)
        body = (
            f"<D:sync-collection {NAMESPACES}><D:sync-token>{escape(token)}</D:sync-token>"
            "<D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>"
        )
        response = client.request(
            "REPORT", collection.url, xml(body), {"Depth": "1"}, ok=(207, 400, 403, 409)
        )
        if response.status != 207:
            return None
        more = _read_sync(client, collection, response, listing)
        token = _sync_token(response) or token
        if not more:
            break
    return listing, token


def _refused(client: Client, collection: Collection) -> NoReturn:
    raise client.error(f"{client.host} refused to list the items of {collection.name}")


def _read_sync(
    client: Client, collection: Collection, response: Response, listing: Listing
) -> bool:
    """Add one sync-collection answer to `listing`; True when the server says there is more."""
    more = False
    for found in client.multistatus(response, collection.url):
        if same_resource(found.href, collection.url):
            more = more or found.status == 507
        elif found.status == 404:
            listing[found.href] = None
        elif found.status == 200 and (etag := found.text(f"{DAV}getetag")):
            listing[found.href] = etag
    return more


def _sync_token(response: Response) -> str | None:
    try:
        token = ElementTree.fromstring(response.body).findtext(f"{DAV}sync-token")
    except ElementTree.ParseError:
        return None
    return token.strip() if token else None


# --- reading items ---------------------------------------------------------------------------


def multiget(client: Client, kind: Kind, collection: Collection, urls: list[str]) -> list[Item]:
    """The items at `urls` that exist, with their text; BATCH at a time."""
    items: list[Item] = []
    for start in range(0, len(urls), BATCH):
        hrefs = "".join(f"<D:href>{href(url)}</D:href>" for url in urls[start : start + BATCH])
        report = f"{kind.prefix}:{kind.multiget}"
        body = (
            f"<{report} {NAMESPACES}><D:prop><D:getetag/>{kind.element(kind.data)}</D:prop>"
            f"{hrefs}</{report}>"
        )
        items += items_in(client.report(collection.url, body), kind)
    return items


def items_in(found: list[Found], kind: Kind) -> list[Item]:
    """The items a REPORT returned with ETag and text; those it could not give are left out."""
    items = []
    for entry in found:
        etag, data = entry.text(f"{DAV}getetag"), entry.props.get(kind.clark(kind.data))
        if entry.status == 200 and etag and data is not None:
            items.append(Item(entry.href, etag, data.text or ""))
    return items


class DavSource(Generic[Found_T]):
    """What the CalDAV and CardDAV sources share: the account, the collections they read, how a
    scan walks them, and check()."""

    what: ClassVar[str]  # "calendars", "address books": for messages
    kind: ClassVar[Kind]  # CALDAV or CARDDAV
    state_key: ClassVar[str]  # where the collections' states live in cursor.state

    def __init__(self, options: DavOptions, context: Context) -> None:
        self.options = options
        self.context = context
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = client_for(self.options, self.context, SourceError)
        return self._client

    def picked(self) -> list[Collection]:
        """The collections to read: all that fit, or those the config names."""
        raise NotImplementedError

    def scan(self, cursor: Cursor) -> Iterator[Found_T]:
        picked = self.picked()
        states = states_of(cursor.state, self.state_key, picked, self.kind, SourceError)
        for collection in picked:
            yield from self._scan(collection, states)

    def _scan(self, collection: Collection, states: dict[str, State]) -> Iterator[Found_T]:
        raise NotImplementedError

    def check(self) -> list[str]:
        try:
            found = self.picked()
        except SourceError as problem:
            return [str(problem)]
        return [] if found else [f"{self.client.host} holds no {self.what} for this user"]
