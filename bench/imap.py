"""How fast syncd reads mail headers over IMAP, against the protocol's own limit.

    python bench/imap.py [--messages N] [--windows 250,500,1000] [--latency MS] [--no-imapclient]

Writes N generated messages (default 100,000) straight into the Maildir of a private Dovecot on
127.0.0.1 (tests/servers/dovecot.py), warms Dovecot's indexes and header cache, then prints from
one run: a minimal raw-socket client that sends the same `UID FETCH 1:* (...)` per folder and
discards the bytes (the protocol's limit); the imap connector's first sync and no-change re-sync
(in a child process: scan() time, wall time, peak RSS); `syncd sync` end-to-end when the CLI
runs; a plain imapclient fetch loop for reference; and the ratios against the targets.
Not part of the test run.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import queue
import random
import socket
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from children import Run, run_child, scan_once  # noqa: E402  (bench/ is on sys.path when a script runs)

from connectors.imap.wire import FETCH_ITEMS  # noqa: E402
from tests.servers.dovecot import HOST, Account, Dovecot  # noqa: E402

SEED = 20240601
USER = "sam"
ME = ("Sam Example", "sam@example.org")
# folder -> share of the messages; syncd reads INBOX, Verzonden (\Sent) and Archief (\Archive).
FOLDERS = {"INBOX": 0.45, "Verzonden": 0.2, "Archief": 0.25, "Ongewenst": 0.05, "Prullenbak": 0.05}
READ = ("INBOX", "Verzonden", "Archief")
NAMES = ("Anna", "Jan", "Pieter", "Sofie", "Émile", "José", "Zoë", "Łukasz", "Björn", "Ингрид",
         "Akira", "Mei")  # fmt: skip
SURNAMES = ("de Vries", "Müller", "García", "Nowak", "Øster", "Jansen", "Smith", "Kowalski",
            "Tanaka", "Rossi")  # fmt: skip
WORDS = ("meeting", "invoice", "project", "draft", "review", "thanks", "schedule", "budget",
         "client", "proposal", "call")  # fmt: skip
DOMAINS = ("nl", "de", "com", "fr")


# --- the corpus ------------------------------------------------------------------------------


def _name(rng: random.Random) -> str:
    name = f"{rng.choice(NAMES)} {rng.choice(SURNAMES)}"
    if name.isascii():
        return f'"{name}"' if rng.random() < 0.3 else name
    return f"=?utf-8?b?{base64.b64encode(name.encode()).decode()}?="


def _correspondents(rng: random.Random) -> list[tuple[str, str]]:
    """400 people, each always under one name, as in real mail (and in bench/maildir.py)."""
    return [(_name(rng), f"p{n}@example.{rng.choice(DOMAINS)}") for n in range(1, 401)]


def _message(
    rng: random.Random, number: int, folder: str, at: datetime, known: list[tuple[str, str]]
) -> bytes:  # fmt: skip
    people = rng.choices(known, k=3)
    me = f"{ME[0]} <{ME[1]}>"
    sender = me if folder == "Verzonden" else f"{people[0][0]} <{people[0][1]}>"
    to = ", ".join(f"{n} <{a}>" for n, a in people[1:]) if sender == me else me
    lines = [f"Return-Path: <{ME[1] if sender == me else people[0][1]}>"]
    lines += [f"Received: from mx{hop}.example.net (mx{hop}.example.net [198.51.100.{hop}])\r\n"
              f"\tby mail.example.org (Postfix) with ESMTPS id {rng.getrandbits(40):X};\r\n"
              f"\t{format_datetime(at)}" for hop in range(rng.randint(2, 5))]  # fmt: skip
    lines += [
        "DKIM-Signature: v=1; a=rsa-sha256; d=example.net; s=s1;\r\n"
        f"\tb={base64.b64encode(rng.randbytes(128)).decode()}",
        f"From: {sender}",
        f"To: {to}",
        f"Subject: {' '.join(rng.choices(WORDS, k=rng.randint(2, 7)))}",
        f"Date: {format_datetime(at)}",
        f"Message-ID: <{number}.{rng.getrandbits(48):x}@example.net>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
    ]
    if rng.random() < 0.1:
        lines += ["List-Id: <news.example.net>", "List-Unsubscribe: <mailto:leave@example.net>"]
    body = " ".join(rng.choices(WORDS, k=rng.randint(100, 1500)))
    return ("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode()


def corpus(count: int) -> dict[str, Iterator[tuple[bytes, str]]]:
    """Generators of (message, Maildir flags) per folder, their shares of `count`."""
    rng = random.Random(SEED)
    known = _correspondents(rng)
    start = datetime(2016, 1, 1, tzinfo=UTC)
    sizes = {folder: round(share * count) for folder, share in FOLDERS.items()}
    sizes["INBOX"] += count - sum(sizes.values())

    def folder_mails(folder: str, offset: int) -> Iterator[tuple[bytes, str]]:
        for number in range(offset, offset + sizes[folder]):
            at = start + timedelta(minutes=number * 41)
            yield _message(rng, number, folder, at, known), rng.choice(("S", "S", "RS", "FS", "S"))

    offsets = [0]
    for folder in FOLDERS:
        offsets.append(offsets[-1] + sizes[folder])
    return {folder: folder_mails(folder, offsets[i]) for i, folder in enumerate(FOLDERS)}


# --- the raw client: the protocol's limit ----------------------------------------------------


class RawClient:
    """Plain socket, one `UID FETCH 1:*` per folder, every byte read and thrown away."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((HOST, port))
        self.tags = 0
        self.sock.recv(4096)  # the greeting

    def command(self, text: bytes) -> int:
        self.tags += 1
        tag = b"R%d " % self.tags
        self.sock.sendall(tag + text + b"\r\n")
        tail, total = b"", 0
        while True:
            data = self.sock.recv(1 << 18)
            total += len(data)
            tail = (tail + data)[-4096:]
            if not data:
                raise ConnectionError("the server closed the connection")
            end = tail.rfind(b"\r\n", 0, len(tail) - 2)
            last_line = tail[end + 2 :] if end >= 0 else tail
            if tail.endswith(b"\r\n") and last_line.startswith(tag):
                return total


def raw_fetch(port: int, account: Account) -> tuple[float, int]:
    began = time.perf_counter()
    client = RawClient(port)
    client.command(b"LOGIN %s %s" % (account.user.encode(), account.password.encode()))
    total = 0
    for folder in READ:
        client.command(b'EXAMINE "%s"' % folder.encode())
        total += client.command(b"UID FETCH 1:* (" + FETCH_ITEMS + b")")
    client.command(b"LOGOUT")
    return time.perf_counter() - began, total


def imapclient_loop(port: int, account: Account) -> float:
    """What a plain imapclient fetch loop costs: its parser, windows of 500, headers parsed."""
    from imapclient import IMAPClient

    from connectors.mailheaders import HEADER_FIELDS, parse_headers

    item = f"BODY.PEEK[HEADER.FIELDS ({' '.join(HEADER_FIELDS).upper()})]"
    began = time.perf_counter()
    with IMAPClient(HOST, port, ssl=False) as client:
        client.login(account.user, account.password)
        for folder in READ:
            client.select_folder(folder, readonly=True)
            uids = client.search(["ALL"])
            for start in range(0, len(uids), 500):
                answer = client.fetch(uids[start : start + 500], ["INTERNALDATE", item])
                for data in answer.values():
                    parse_headers(next(v for k, v in data.items() if k.startswith(b"BODY")))
    return time.perf_counter() - began


class SlowLink:
    """A relay to the server that delays everything by `delay` seconds each way: a distant
    server, whose round trip (2 x delay) a client pays for every command it waits on."""

    def __init__(self, target: int, delay: float) -> None:
        self.target, self.delay = target, delay
        self.listener = socket.create_server((HOST, 0))
        self.port: int = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            client, _ = self.listener.accept()
            server = socket.create_connection((HOST, self.target))
            for source, sink in ((client, server), (server, client)):
                line: queue.Queue[tuple[float, bytes]] = queue.Queue()
                threading.Thread(target=self._read, args=(source, line), daemon=True).start()
                threading.Thread(target=self._write, args=(sink, line), daemon=True).start()

    def _read(self, source: socket.socket, line: queue.Queue[tuple[float, bytes]]) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(1 << 16):
                line.put((time.monotonic() + self.delay, data))
        line.put((time.monotonic() + self.delay, b""))

    def _write(self, sink: socket.socket, line: queue.Queue[tuple[float, bytes]]) -> None:
        with contextlib.suppress(OSError):
            while True:
                due, data = line.get()
                time.sleep(max(0.0, due - time.monotonic()))
                if not data:
                    sink.shutdown(socket.SHUT_WR)
                    return
                sink.sendall(data)


def parse_cost(port: int, account: Account) -> tuple[float, float, int]:
    """Seconds the shared header parser and the Interaction values alone take for every message
    syncd reads: the part of a sync that no IMAP client can make faster."""
    from zoneinfo import ZoneInfo

    from connectors.base import Context
    from connectors.imap import ImapOptions
    from connectors.imap.session import open_session
    from connectors.imap.wire import windows
    from connectors.mailheaders import parse_headers

    context = Context(
        "bench", ZoneInfo("UTC"), datetime.now(UTC), secret=lambda _: account.password
    )
    options = ImapOptions(type="imap", host=HOST, port=port, security="none", username=USER,
                          password={"keyring": "bench"})  # fmt: skip
    session = open_session(options, context)
    headers = []
    for folder in READ:
        session.examine(folder)
        uids = windows(session.search(1, None), 0, 500)
        headers += [message.header for message in session.fetch(uids, lambda *_: None)]
    session.close()
    began = time.perf_counter()
    for header in headers:
        parse_headers(header)
    parsing = time.perf_counter() - began
    began = time.perf_counter()
    for number, header in enumerate(headers):  # nothing kept, as in a sync
        found = parse_headers(header)
        at = found.date or datetime.now(UTC)
        found.interaction(source="bench", ref=str(number), evidence="", fallback_at=at)
    return parsing, time.perf_counter() - began - parsing, len(headers)


# --- syncd -----------------------------------------------------------------------------------


def time_connector(
    port: int, account: Account, workdir: Path, window: int, tries: int = 3
) -> tuple[Run, Run]:
    """The imap connector's scan() in a child: the best of `tries` first syncs (as the raw
    client's best of three), then a no-change re-sync."""
    state = workdir / f"connector-state-{window}.json"
    command = [sys.executable, __file__, "--child-scan", str(port), "--state", str(state),
               "--password", account.password, "--window", str(window)]  # fmt: skip
    firsts = []
    for _ in range(tries):
        state.unlink(missing_ok=True)
        firsts.append(run_child(command))
    best = min(firsts, key=lambda run: float(run.output.split()[0]))
    return best, run_child(command)


def child_scan(port: int, state_file: Path, password: str, window: int) -> None:
    """In a child: one scan with the saved cursor; prints the scan's own time and counts."""
    from zoneinfo import ZoneInfo

    from connectors.base import Context
    from connectors.imap import ImapOptions, ImapSource
    from connectors.imap import source as imap_source

    imap_source.WINDOW = window
    context = Context("bench", ZoneInfo("UTC"), datetime.now(UTC), secret=lambda _: password)
    options = ImapOptions(type="imap", host=HOST, port=port, security="none", username=USER,
                          password={"keyring": "bench"})  # fmt: skip
    scan_once(ImapSource(options, context), context, state_file)


def time_syncd(port: int, account: Account, workdir: Path) -> tuple[Run, Run] | None:
    """`syncd sync` end-to-end on a fresh database: the first sync, then a no-change re-sync."""
    home = workdir / "syncd-home"
    home.mkdir(exist_ok=True)
    (home / "password").write_text(account.password + "\n")
    (home / "syncd.sqlite").unlink(missing_ok=True)
    (home / "config.toml").write_text(
        f'[me]\nname = "{ME[0]}"\nemails = ["{ME[1]}"]\ntimezone = "UTC"\n\n'
        '[state]\ndatabase = "syncd.sqlite"\n\n'
        f'[sources.mail]\ntype = "imap"\nhost = "{HOST}"\nport = {port}\nsecurity = "none"\n'
        f'username = "{account.user}"\npassword_file = "password"\n'
    )
    command = [sys.executable, "-c", "from syncd.cli import main; main()",
               "--config", str(home / "config.toml"), "sync", "--source", "mail"]  # fmt: skip
    try:
        return run_child(command, cwd=home), run_child(command, cwd=home)
    except RuntimeError as error:
        print(f"syncd sync did not run: {str(error)[-300:]}")
        return None


# --- report ----------------------------------------------------------------------------------


def _check(label: str, value: float, limit: float, unit: str = "") -> None:
    verdict = "ok" if value <= limit else "MISSED"
    print(f"  {label:36s} {value:8.3f}{unit}  (target <= {limit:g}{unit})  {verdict}")


def start_server(count: int) -> tuple[Dovecot, Account]:
    server = Dovecot()
    began = time.perf_counter()
    account = server.add_account(USER, corpus(count))
    print(f"corpus: {count} messages written in {time.perf_counter() - began:.1f} s")
    server.start()
    began = time.perf_counter()
    server.doveadm("force-resync", "-u", USER, "*")
    for _ in range(2):  # the second pass finds the header fields in Dovecot's cache
        raw_fetch(server.port, account)
    print(f"Dovecot indexes and header cache warmed in {time.perf_counter() - began:.1f} s")
    return server, account


def latency_sweep(
    args: argparse.Namespace, server: Dovecot, account: Account, workdir: Path
) -> None:
    """The same first sync over a link with a round trip of 2 x `--latency` ms."""
    link = SlowLink(server.port, args.latency / 2000)
    raw, _ = raw_fetch(link.port, account)
    print(f"\nover a link with a {args.latency:g} ms round trip: raw client {raw:.2f} s")
    for window in args.windows:
        first, _ = time_connector(link.port, account, workdir, window)
        seconds = float(first.output.split()[0])
        print(f"  window {window:5d}: first sync {seconds:6.2f} s, {seconds / raw:.2f}x raw")


def report(args: argparse.Namespace, server: Dovecot, account: Account, workdir: Path) -> None:
    raw, size = min(raw_fetch(server.port, account) for _ in range(3))
    print(f"\nraw client, UID FETCH 1:* per folder: {raw:.2f} s, {size / 1e6:.0f} MB (best of 3)")
    runs = {window: time_connector(server.port, account, workdir, window)
            for window in args.windows}  # fmt: skip
    print("connector scan() alone, per UID window (first sync / no-change re-sync):")
    for window, (first, again) in runs.items():
        seconds, count, warnings, helper = first.output.split()
        resync = float(again.output.split()[0])
        print(f"  window {window:5d}: {float(seconds):6.2f} s / {resync:.3f} s in scan(), "
              f"{first.seconds:.2f} s wall, peak RSS {first.peak_rss_mb:.0f} MB (the header "
              f"helper's own {float(helper):.0f} MB), {count} interactions, {warnings} "
              "warnings")  # fmt: skip
    first, again = runs[500] if 500 in runs else next(iter(runs.values()))
    scan_first, scan_again = float(first.output.split()[0]), float(again.output.split()[0])
    parsing, values, parsed = parse_cost(server.port, account)
    print(f"work any IMAP client does, timed alone in one process: parse_headers() "
          f"{parsing:.2f} s, building the {parsed} Interaction values {values:.2f} s (the "
          "connector picks the headers in a helper process while it reads)")  # fmt: skip
    syncd = time_syncd(server.port, account, workdir)
    if syncd is not None:
        print("syncd sync --source mail end-to-end (store, rules, planning included):")
        for label, run in zip(("first sync", "re-sync"), syncd, strict=True):
            print(f"  {label:11s} {run.seconds:7.2f} s wall, peak RSS {run.peak_rss_mb:.0f} MB")
    if args.imapclient:
        loop = imapclient_loop(server.port, account)
        print(f"plain imapclient fetch loop (windows of 500, headers parsed): {loop:.2f} s")
    print("\nratios and targets:")
    _check("connector first sync / raw client", scan_first / raw, 4)
    share = (parsing + values) / raw
    print(f"  {'  parse_headers + Interaction / raw':36s} {share:8.3f}  (alone, in one process)")
    if syncd is not None:
        print(f"  {'syncd sync first sync / raw client':36s} {syncd[0].seconds / raw:8.3f}")
    if args.imapclient:
        print(f"  {'imapclient loop / raw client':36s} {loop / raw:8.3f}")
    _check("no-change re-sync, in scan()", scan_again, 0.2, " s")
    rss = max(first.peak_rss_mb, again.peak_rss_mb)
    _check("connector peak RSS", rss, 200, " MB")
    if syncd is not None:
        _check("syncd sync peak RSS", max(run.peak_rss_mb for run in syncd), 200, " MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--windows", default="500", help="UID window sizes to time, e.g. 250,500")
    parser.add_argument("--latency", type=float, default=0, help="also time over a link with "
                        "this round trip, in ms (e.g. 30)")  # fmt: skip
    parser.add_argument("--no-imapclient", dest="imapclient", action="store_false")
    parser.add_argument("--child-scan", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--password", help=argparse.SUPPRESS)
    parser.add_argument("--window", type=int, default=500, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_scan:
        child_scan(args.child_scan, args.state, args.password, args.window)
        return
    args.windows = [int(size) for size in args.windows.split(",")]
    server, account = start_server(args.messages)
    try:
        report(args, server, account, server.root)
        if args.latency:
            latency_sweep(args, server, account, server.root)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
