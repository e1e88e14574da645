"""Talking WebDAV for the CalDAV and CardDAV connectors: requests, answers, errors.

Plain HTTP with hand-written PROPFIND and REPORT bodies (RFC 4918, 4791, 6352, 6578): a handful of
requests per pass, each readable in a server's log, and every failure one sentence a user can act
on. A connector passes the error class it raises (SourceError or SinkError).
"""

from __future__ import annotations

import base64
import http.client
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote, unquote, urljoin, urlsplit
from xml.etree import ElementTree

from pydantic import field_validator, model_validator

from connectors.base import ConfigPath, Context, SecretOptions, SourceError, is_loopback

TIMEOUT = 60  # seconds without an answer before a request fails
_REDIRECTS = 5
DAV = "{DAV:}"
CALENDARSERVER = "{http://calendarserver.org/ns/}"
# Every request body declares the same prefixes: D (WebDAV), C (CalDAV), R (CardDAV), CS.
NAMESPACES = (
    'xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" '
    'xmlns:R="urn:ietf:params:xml:ns:carddav" xmlns:CS="http://calendarserver.org/ns/"'
)


class DavOptions(SecretOptions):
    """The keys every DAV connector has: where the server is, and whom to trust for TLS."""

    url: str
    ca_file: ConfigPath | None = None

    @field_validator("url")
    @classmethod
    def _web_address(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("expected the server's address, such as https://dav.example.org/")
        return value

    @model_validator(mode="after")
    def _encrypted_login(self) -> Self:
        parts = urlsplit(self.url)
        login = self.username or self.has_secret
        if login and parts.scheme == "http" and not is_loopback(parts.hostname or ""):
            raise ValueError(
                "an http:// url would send the password unencrypted; it is allowed only for a "
                "server on this machine (localhost, 127.0.0.1); use https://"
            )
        return self


@dataclass(frozen=True)
class Kind:
    """CalDAV or CardDAV: the names that differ between the two protocols."""

    namespace: str
    prefix: str  # as NAMESPACES declares it
    home_set: str  # the principal's property naming where the collections live
    collection: str  # the resourcetype of a calendar / address book
    multiget: str
    data: str  # the property that carries an item's text
    well_known: str
    noun: str  # what a user calls a collection

    def clark(self, name: str) -> str:
        """`{namespace}name`, as ElementTree names a property of this protocol."""
        return f"{{{self.namespace}}}{name}"

    def element(self, name: str) -> str:
        """`<C:name/>` or `<R:name/>`, as a request body names it."""
        return f"<{self.prefix}:{name}/>"


CALDAV = Kind(
    "urn:ietf:params:xml:ns:caldav", "C", "calendar-home-set", "calendar", "calendar-multiget",
    "calendar-data", "/.well-known/caldav", "calendar",
)  # fmt: skip
CARDDAV = Kind(
    "urn:ietf:params:xml:ns:carddav", "R", "addressbook-home-set", "addressbook",
    "addressbook-multiget", "address-data", "/.well-known/carddav", "address book",
)  # fmt: skip


@dataclass(frozen=True)
class Response:
    status: int
    headers: Message
    body: bytes


@dataclass(frozen=True)
class Found:
    """One <response> of a multistatus: a resource, its status, the properties the server had."""

    href: str  # absolute URL
    status: int
    props: dict[str, ElementTree.Element]

    def text(self, name: str) -> str | None:
        element = self.props.get(name)
        return None if element is None or element.text is None else element.text.strip()

    def hrefs(self, name: str) -> list[str]:
        element = self.props.get(name)
        found = [] if element is None else element.findall(f"{DAV}href")
        return [child.text.strip() for child in found if child.text]

    def children(self, name: str) -> list[ElementTree.Element]:
        element = self.props.get(name)
        return [] if element is None else list(element)


def client_for(options: DavOptions, context: Context, error: type[Exception]) -> Client:
    """A client for the server `options` name, logged in with the secret the context finds."""
    login = None
    if options.has_secret or options.username:
        if not (options.has_secret and options.username):
            raise error("set both username and a password (password, password_command or "
                        "password_file) to log in, or neither")  # fmt: skip
        try:
            login = (options.username, context.secret(options))
        except SourceError as problem:  # the secret resolver speaks for sources; say it our way
            raise error(str(problem)) from None
    return Client(options.url, login, options.ca_file, error)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects are followed by `Client.request`, which keeps the method and guards the login."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Client:
    """Requests to one DAV server, logged in with HTTP Basic auth over a verified connection."""

    def __init__(
        self, url: str, login: tuple[str, str] | None, ca_file: Path | None,
        error: type[Exception],
    ) -> None:  # fmt: skip
        self.url = url if url.endswith("/") else url + "/"
        self.login = login
        self.error = error
        self._ca_file = ca_file
        self._opener: urllib.request.OpenerDirector | None = None

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    def request(
        self, method: str, url: str, body: str | None = None,
        headers: dict[str, str] | None = None, ok: Sequence[int] = (200, 207),
    ) -> Response:  # fmt: skip
        """Send one request, following redirects; a status not in `ok` raises `self.error`."""
        for _ in range(_REDIRECTS):
            response = self._send(method, url, body, headers or {})
            location = response.headers.get("Location")
            if response.status not in (301, 302, 307, 308) or not location:
                break
            url = urljoin(url, location)
        if response.status not in ok:
            raise self.error(self._refusal(method, url, response.status))
        return response

    def propfind(self, url: str, props: Iterable[str], depth: str) -> list[Found]:
        body = xml(f"<D:propfind {NAMESPACES}><D:prop>{''.join(props)}</D:prop></D:propfind>")
        return self.multistatus(self.request("PROPFIND", url, body, {"Depth": depth}), url)

    def report(self, url: str, body: str) -> list[Found]:
        return self.multistatus(self.request("REPORT", url, xml(body), {"Depth": "1"}), url)

    def multistatus(self, response: Response, url: str) -> list[Found]:
        try:
            root = ElementTree.fromstring(response.body)
        except ElementTree.ParseError as problem:
            message = f"{self.host} sent an answer that is not WebDAV XML ({problem})"
            raise self.error(message) from None
        return [_found(element, url) for element in root.iter(f"{DAV}response")]

    def _send(self, method: str, url: str, body: str | None, headers: dict[str, str]) -> Response:
        data = None if body is None else body.encode("utf-8")
        request = urllib.request.Request(
            url, data, {"User-Agent": "syncd", **headers}, method=method
        )
        # The password goes only where `url` points, and never over a weaker connection.
        if self.login and urlsplit(url)[:2] == urlsplit(self.url)[:2]:
            token = base64.b64encode(":".join(self.login).encode("utf-8")).decode("ascii")
            request.add_header("Authorization", f"Basic {token}")
        try:
            with self._connection().open(request, timeout=TIMEOUT) as answer:
                return Response(answer.status, answer.headers, answer.read())
        except urllib.error.HTTPError as answer:
            with answer:
                return Response(answer.code, answer.headers, answer.read())
        except urllib.error.URLError as failure:
            raise self.error(self._unreachable(url, failure.reason)) from None
        except (http.client.HTTPException, OSError) as failure:  # OSError: timeouts too
            raise self.error(self._unreachable(url, failure)) from None

    def _connection(self) -> urllib.request.OpenerDirector:
        if self._opener is None:
            try:
                context = ssl.create_default_context(cafile=self._ca_file)
            except (OSError, ssl.SSLError) as problem:
                raise self.error(f"ca_file {self._ca_file} cannot be used: {problem}") from None
            https = urllib.request.HTTPSHandler(context=context)
            self._opener = urllib.request.build_opener(https, _NoRedirects())
        return self._opener

    def _unreachable(self, url: str, reason: object) -> str:
        host = urlsplit(url).netloc
        if isinstance(reason, ssl.SSLCertVerificationError):
            return (
                f"the TLS certificate of {host} is not trusted ({reason.verify_message}); if the "
                "server uses its own certificate authority, set ca_file to it"
            )
        if isinstance(reason, TimeoutError):
            return f"{host} did not answer within {TIMEOUT} seconds; try again later"
        why = getattr(reason, "strerror", None) or reason
        return f"cannot reach {host} ({why}); check `url` and that the server is running"

    def _refusal(self, method: str, url: str, status: int) -> str:
        where = unquote(urlsplit(url).path)
        if status == 401:
            if self.login is None:
                return f"{self.host} asks for a login (HTTP 401); set username and a password"
            return (
                f"{self.host} refused the login of user {self.login[0]!r} (HTTP 401); check "
                "username and password"
            )
        if status == 403:
            return f"{self.host} does not allow {method} on {where} (HTTP 403) for this user"
        if status == 404:
            return f"{where} does not exist on {self.host} (HTTP 404); check `url`"
        if status >= 500:
            return f"{self.host} failed on {method} {where} (HTTP {status}); try again later"
        return f"{self.host} answered {method} {where} with HTTP {status}"


def xml(body: str) -> str:
    return f'<?xml version="1.0" encoding="utf-8"?>\n{body}'


def _status(element: ElementTree.Element | None) -> int | None:
    """The code of a <status>HTTP/1.1 404 Not Found</status>."""
    parts = (element.text or "").split() if element is not None else []
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def _found(response: ElementTree.Element, base: str) -> Found:
    href = urljoin(base, (response.findtext(f"{DAV}href") or "").strip())
    props: dict[str, ElementTree.Element] = {}
    codes: list[int] = []
    for propstat in response.iter(f"{DAV}propstat"):
        code = _status(propstat.find(f"{DAV}status")) or 200
        codes.append(code)
        if code == 200:
            props.update({prop.tag: prop for prop in propstat.iterfind(f"{DAV}prop/*")})
    status = _status(response.find(f"{DAV}status"))
    if status is None:
        status = 200 if props or not codes else codes[0]
    return Found(href, status, props)


def same_resource(left: str, right: str) -> bool:
    """Whether two hrefs name one resource (servers differ in what they percent-encode)."""
    return unquote(urlsplit(left).path).rstrip("/") == unquote(urlsplit(right).path).rstrip("/")


def href(url: str) -> str:
    """The path of `url` as a request body names it: percent-encoded once (so XML-safe too)."""
    return quote(unquote(urlsplit(url).path), safe="/@:+=,;!$'()*~")
