"""A real Radicale (CalDAV and CardDAV) on 127.0.0.1 for tests, started as a subprocess.

htpasswd logins (plain passwords in a file the fixture writes), filesystem storage in a temporary
folder, a free loopback port. Each test takes its own account (`dav_account`), so tests share the
server but no calendar. `DavAccount` also plays the user's calendar app: plain HTTP requests with
no syncd code in between.

Import the fixtures into a test module: `from tests.servers.radicale import dav_account, radicale`.
"""

from __future__ import annotations

import base64
import itertools
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from urllib.parse import urljoin, urlsplit
from xml.etree import ElementTree

import pytest

from tests.servers.dovecot import make_certificates

HOST = "127.0.0.1"
START_TIMEOUT = 30.0
CALDAV = "urn:ietf:params:xml:ns:caldav"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Message
    body: bytes

    @property
    def etag(self) -> str:
        return str(self.headers.get("ETag", ""))


@dataclass(frozen=True)
class DavAccount:
    """One user on the server, and the user's own calendar app: plain WebDAV requests."""

    server: str  # the server's root URL, ending in "/"
    username: str
    password: str
    ca_file: Path | None = None

    @property
    def home(self) -> str:
        return f"/{self.username}/"

    def url(self, path: str = "") -> str:
        return urljoin(self.server, path)

    def request(
        self, method: str, path: str, body: str | bytes | None = None, **headers: str
    ) -> Answer:
        data = body.encode("utf-8") if isinstance(body, str) else body
        names = {key.replace("_", "-"): value for key, value in headers.items()}
        login = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        request = urllib.request.Request(self.url(path), data, names, method=method)
        request.add_header("Authorization", f"Basic {login}")
        context = None
        if self.ca_file is not None:
            import ssl

            context = ssl.create_default_context(cafile=self.ca_file)
        try:
            with urllib.request.urlopen(request, timeout=30, context=context) as answer:
                return Answer(answer.status, answer.headers, answer.read())
        except urllib.error.HTTPError as answer:
            with answer:
                return Answer(answer.code, answer.headers, answer.read())

    def make_calendar(self, name: str, components: tuple[str, ...] = ("VEVENT", "VTODO")) -> str:
        """A calendar as a calendar app makes one; its path."""
        path = f"{self.home}{name.lower().replace(' ', '-')}/"
        comps = "".join(f'<C:comp name="{component}"/>' for component in components)
        body = (
            f'<C:mkcalendar xmlns:D="DAV:" xmlns:C="{CALDAV}"><D:set><D:prop>'
            f"<D:displayname>{name}</D:displayname><C:supported-calendar-component-set>{comps}"
            "</C:supported-calendar-component-set></D:prop></D:set></C:mkcalendar>"
        )
        assert self.request("MKCALENDAR", path, body).status == 201
        return path

    def make_addressbook(self, name: str) -> str:
        path = f"{self.home}{name.lower().replace(' ', '-')}/"
        body = (
            '<D:mkcol xmlns:D="DAV:" xmlns:R="urn:ietf:params:xml:ns:carddav"><D:set><D:prop>'
            "<D:resourcetype><D:collection/><R:addressbook/></D:resourcetype>"
            f"<D:displayname>{name}</D:displayname></D:prop></D:set></D:mkcol>"
        )
        assert self.request("MKCOL", path, body).status == 201
        return path

    def put(self, path: str, text: str | bytes, content_type: str = "text/calendar") -> str:
        """Save an item as the user's app does (no precondition); its new ETag."""
        answer = self.request("PUT", path, text, Content_Type=f"{content_type}; charset=utf-8")
        assert answer.status in (201, 204), answer
        return answer.etag

    def get(self, path: str) -> Answer:
        return self.request("GET", path)

    def delete(self, path: str) -> None:
        assert self.request("DELETE", path).status in (200, 204)

    def members(self, collection: str) -> list[str]:
        """The paths of the items in a collection."""
        answer = self.request(
            "PROPFIND", collection, '<D:propfind xmlns:D="DAV:"><D:prop><D:getetag/></D:prop>'
            "</D:propfind>", Depth="1",
        )  # fmt: skip
        root = ElementTree.fromstring(answer.body)
        paths = [urlsplit(href.text or "").path for href in root.iter("{DAV:}href")]
        return sorted(path for path in paths if path.rstrip("/") != collection.rstrip("/"))

    def contents(self, collection: str) -> dict[str, bytes]:
        """Every item of a collection, by path, as stored."""
        return {path: self.get(path).body for path in self.members(collection)}


@dataclass
class Radicale:
    """A running Radicale; `new_account()` adds a user to its htpasswd file."""

    url: str
    folder: Path
    ca_file: Path | None = None
    _numbers: Iterator[int] = field(default_factory=itertools.count)

    @property
    def users(self) -> Path:
        return self.folder / "users"

    def new_account(self) -> DavAccount:
        name = f"user{next(self._numbers)}"
        password = f"secret-{name}"
        with self.users.open("a") as users:  # Radicale reads the file on every login
            users.write(f"{name}:{password}\n")
        return DavAccount(self.url, name, password, self.ca_file)


def _configuration(folder: Path, port: int, tls: bool) -> Path:
    lines = [
        "[server]", f"hosts = {HOST}:{port}",
        *(["ssl = True", f"certificate = {folder / 'server.pem'}",
           f"key = {folder / 'server.key'}"] if tls else []),
        "[auth]", "type = htpasswd", f"htpasswd_filename = {folder / 'users'}",
        "htpasswd_encryption = plain", "delay = 0",
        "[storage]", f"filesystem_folder = {folder / 'storage'}",
        "[rights]", "type = owner_only",
        "[web]", "type = none",
        "[logging]", "level = warning",
    ]  # fmt: skip
    path = folder / "config"
    path.write_text("\n".join(lines) + "\n")
    return path


def _wait_for(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"Radicale stopped at start:\n{log.read_text()}")
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"Radicale did not listen on {HOST}:{port} within {START_TIMEOUT} s")


def running_radicale(folder: Path, tls: bool = False) -> Iterator[Radicale]:
    """Start Radicale in `folder`, yield it, stop it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "users").write_text("")
    if tls:
        make_certificates(folder)
    port = free_port()
    log = folder / "radicale.log"
    with log.open("wb") as output:
        command = [
            sys.executable,
            "-m",
            "radicale",
            "--config",
            str(_configuration(folder, port, tls)),
        ]
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        _wait_for(port, process, log)
        scheme = "https" if tls else "http"
        yield Radicale(f"{scheme}://{HOST}:{port}/", folder, folder / "ca.pem" if tls else None)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Radicale]:
    """Radicale over plain HTTP on 127.0.0.1, for the whole session."""
    yield from running_radicale(tmp_path_factory.mktemp("radicale"))


@pytest.fixture
def dav_account(radicale: Radicale) -> DavAccount:
    """A new user on the shared Radicale: an empty home, nobody else's calendars."""
    return radicale.new_account()


@pytest.fixture(scope="session")
def radicale_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Radicale]:
    """Radicale over HTTPS with a certificate from a throw-away authority (`.ca_file`)."""
    yield from running_radicale(tmp_path_factory.mktemp("radicale-tls"), tls=True)
