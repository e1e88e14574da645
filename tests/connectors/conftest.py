"""Servers for connector tests: a private Dovecot (session-wide) and a TCP relay that can break."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from tests.servers.dovecot import DOVECOT, HOST, Dovecot


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """Dovecot on 127.0.0.1, plaintext on `.port`, implicit TLS on `.tls_port` (trust `.ca_file`).

    Tests add their own accounts (`add_account`), so they share the server but no mailbox.
    """
    yield from _running_dovecot()


@pytest.fixture
def own_dovecot() -> Iterator[Dovecot]:
    """A Dovecot for one test: after a failed login Dovecot delays every later login from the
    same address by seconds, which would slow the tests that share the other one."""
    yield from _running_dovecot()


def _running_dovecot() -> Iterator[Dovecot]:
    if not os.path.exists(DOVECOT):
        pytest.fail("Dovecot is not installed: apt-get install -y dovecot-imapd")
    server = Dovecot()
    server.start()
    yield server
    server.stop()


class Relay:
    """Relays 127.0.0.1:`port` to a server; the first `cuts` connections are cut off abruptly once
    the server has sent `cut_after` bytes on them. Records what clients sent (`sent`)."""

    def __init__(self, target: int, cut_after: int | None = None, cuts: int = 0) -> None:
        self.target = target
        self.cut_after = cut_after
        self.cuts = cuts
        self.connections = 0
        self.sent = bytearray()
        self._listener = socket.create_server((HOST, 0))
        self.port: int = self._listener.getsockname()[1]
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def commands(self) -> list[str]:
        """The command names clients sent (LOGIN, STATUS, EXAMINE, UID FETCH ...)."""
        names = []
        for line in self.sent.decode("utf-8", "replace").splitlines():
            words = line.split()
            if len(words) >= 2:
                uid = words[1].upper() == "UID" and len(words) > 2
                names.append(f"UID {words[2].upper()}" if uid else words[1].upper())
        return names

    def close(self) -> None:
        self._listener.close()
        for sock in self._open:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection((HOST, self.target))
            self._open += [client, server]
            limit = self.cut_after if self.connections < self.cuts else None
            self.connections += 1
            for args in ((client, server, None, True), (server, client, limit, False)):
                threading.Thread(target=self._pump, args=args, daemon=True).start()

    def _pump(
        self, source: socket.socket, sink: socket.socket, limit: int | None, record: bool
    ) -> None:
        passed = 0
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if limit is not None and passed + len(data) >= limit:
                    sink.sendall(data[: limit - passed])
                    break
                if record:
                    self.sent += data
                sink.sendall(data)
                passed += len(data)
        for sock in (source, sink):  # one side ends: the other ends too, as a cut cable would
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def relay(dovecot: Dovecot) -> Iterator[Callable[..., Relay]]:
    """Build relays to the Dovecot plaintext port: `relay(cut_after=..., cuts=...)`."""
    made: list[Relay] = []

    def build(cut_after: int | None = None, cuts: int = 0) -> Relay:
        made.append(Relay(dovecot.port, cut_after, cuts))
        return made[-1]

    yield build
    for one in made:
        one.close()
