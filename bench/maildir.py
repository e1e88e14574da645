"""How fast syncd reads a large Maildir, against `mu index` and a loop that only opens files.

    python bench/maildir.py [--messages N] [--workdir DIR]

Generates (once; reused while N and the corpus version match) a Maildir++ of N messages with
realistic headers and 1-40 KB bodies, then prints syncd's first-sync and no-change re-sync times
(`syncd sync` end-to-end, and the Maildir connector alone), peak RSS, `mu index` on the same
corpus, and a plain loop that reads each file's first 4 KB, with the ratios and targets.
Not part of the test run.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from children import Run, run_child, scan_once

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CORPUS_VERSION = 1
SEED = 20240601
ME = ("Sam Example", "sam@example.org")
# folder -> share of the messages; Maildir++ layout, "" is the inbox at the root.
FOLDERS = {
    "": 0.38,
    ".Sent": 0.15,
    ".Archive": 0.18,
    ".Archive.2023": 0.10,
    ".Lists.python-dev": 0.06,
    ".Newsletters": 0.08,
    ".Trash": 0.02,
    ".Drafts": 0.01,
    ".Junk": 0.02,
}
FIRST = (
    "Anna Jan Pieter Sofie Lukas Émile José Zoë Łukasz Björn Ingrid Дмитрий Ольга Akira Mei Nils"
)
LAST = "de Vries Müller García Nowak Øster Jansen Smith Kowalski Иванов Tanaka Rossi Dubois O'Brien"
TEXT = (
    "the of and to in a is that for it as was with be by on not he this are or his from at which "
    "meeting invoice project draft review thanks regards schedule budget client proposal week "
    "tomorrow call update deadline contract report notes agenda follow question answer"
)
WORDS = TEXT.split()


# --- the corpus -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    name: str
    address: str


def _people(rng: random.Random, count: int) -> list[Person]:
    firsts, lasts = FIRST.split(), LAST.split()
    domains = ["example.com", "example.net", "firma.nl", "correo.es", "post.pl", "mail.ru"]
    people = []
    for number in range(count):
        first, last = rng.choice(firsts), rng.choice(lasts)
        local = f"{first}.{last}".lower().encode("ascii", "ignore").decode() or "x"
        people.append(Person(f"{first} {last}", f"{local}{number}@{rng.choice(domains)}"))
    return people


def _encoded_name(rng: random.Random, name: str) -> str:
    if name.isascii():
        if rng.random() < 0.2:
            first, _, last = name.partition(" ")
            return f'"{last}, {first}"'
        return name
    style = rng.random()
    if style < 0.5:
        return f"=?utf-8?b?{base64.b64encode(name.encode()).decode()}?="
    if style < 0.8:
        quoted = "".join(
            c if c.isascii() and c.isalnum() else f"={b:02X}" for c in name for b in c.encode()
        )
        return f"=?utf-8?q?{quoted}?="
    return f'"{name}"'


def _address(rng: random.Random, person: Person) -> str:
    return f"{_encoded_name(rng, person.name)} <{person.address}>"


def _received_chain(rng: random.Random, at: datetime) -> list[str]:
    hops = []
    for hop in range(rng.randint(3, 6)):
        host = f"mx{rng.randint(1, 40)}.relay{hop}.example.net"
        stamp = format_datetime(at + timedelta(seconds=hop))
        hops.append(
            f"Received: from {host} ({host} [198.51.100.{rng.randint(1, 254)}])\n"
            f"\tby mail.example.org (Postfix) with ESMTPS id {rng.getrandbits(40):X}\n"
            f"\tfor <{ME[1]}>; {stamp}"
        )
    return hops


def _message(rng: random.Random, folder: str, people: list[Person], at: datetime) -> str:
    me = Person(*ME)
    newsletter = folder in (".Newsletters", ".Lists.python-dev")
    sender = me if folder == ".Sent" else rng.choice(people)
    to = rng.sample(people, rng.randint(1, 3)) if sender is me else [me]
    lines = [f"Return-Path: <{sender.address}>", f"Delivered-To: {ME[1]}"]
    lines += _received_chain(rng, at)
    lines.append(
        "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.net; s=sel;\n"
        f"\th=from:to:subject:date; bh={base64.b64encode(rng.randbytes(32)).decode()};\n"
        f"\tb={base64.b64encode(rng.randbytes(128)).decode()}"
    )
    lines += [
        f"From: {_address(rng, sender)}",
        "To: " + ",\n\t".join(_address(rng, p) for p in to),
    ]
    if rng.random() < 0.3:
        lines.append(f"Cc: {_address(rng, rng.choice(people))}")
    domain = sender.address.split("@")[1]
    subject = " ".join(rng.choices(WORDS, k=rng.randint(2, 8)))
    if rng.random() < 0.15:
        subject = f"=?utf-8?q?{subject.replace(' ', '_')}_=E2=80=93_r=C3=A9sum=C3=A9?="
    lines += [
        f"Subject: Re: {subject}" if rng.random() < 0.4 else f"Subject: {subject}",
        f"Date: {format_datetime(at)}",
        f"Message-ID: <{rng.getrandbits(64):x}.{rng.getrandbits(32):x}@{domain}>",
        "MIME-Version: 1.0",
        'Content-Type: text/plain; charset="utf-8"',
        "Content-Transfer-Encoding: 8bit",
        f"X-Spam-Status: No, score=-{rng.randint(0, 50) / 10} required=5.0",
    ]
    if newsletter:
        lines += [
            "List-Id: Python development <python-dev.python.org>",
            "List-Unsubscribe: <mailto:leave@example.net>, <https://example.net/u/abc>",
            "Precedence: list",
        ]
    return "\n".join(lines) + "\n\n"


def _body_text(rng: random.Random) -> str:
    words = rng.choices(WORDS, k=20000)
    return "\n".join(" ".join(words[i : i + 12]) for i in range(0, len(words), 12))


def _folders_by_share(count: int) -> Iterator[str]:
    for folder, share in FOLDERS.items():
        yield from [folder] * round(share * count)


def generate(maildir: Path, count: int) -> None:
    marker = maildir / "bench-corpus.json"
    wanted = {"messages": count, "version": CORPUS_VERSION, "seed": SEED}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        print(f"corpus: reusing {count} messages in {maildir}")
        return
    print(f"corpus: generating {count} messages in {maildir} ...", flush=True)
    shutil.rmtree(maildir, ignore_errors=True)
    rng = random.Random(SEED)
    people = _people(rng, 300)
    pool = _body_text(rng) * 4  # ~500 KB of text; bodies are slices of it
    folders = list(_folders_by_share(count))[:count]
    folders += [""] * (count - len(folders))
    start = datetime(2015, 1, 1, tzinfo=UTC)
    for folder in FOLDERS:
        for sub in ("cur", "new", "tmp"):
            (maildir / folder / sub).mkdir(parents=True, exist_ok=True)
    for number, folder in enumerate(folders):
        at = start + timedelta(minutes=number * 37 + rng.randint(0, 30))
        size = rng.randint(1024, 40 * 1024)
        offset = rng.randint(0, len(pool) - size)
        text = _message(rng, folder, people, at) + pool[offset : offset + size]
        flags = rng.choice(["S", "S", "S", "RS", "FS", ""])
        sub = "new" if rng.random() < 0.02 else "cur"
        name = f"{int(at.timestamp())}.M{number}P4242.bench.example"
        name += f":2,{flags}" if sub == "cur" else ""
        (maildir / folder / sub / name).write_text(text, encoding="utf-8")
    marker.write_text(json.dumps(wanted))


# --- readers ----------------------------------------------------------------------------------


def _read_files(maildir: Path) -> Iterator[str]:
    """The message files syncd reads (skipped folders and D/T flags left out), as paths."""
    from connectors.maildir import DEFAULT_SKIP, is_skipped_folder, is_trashed, split_info

    for folder in FOLDERS:
        if folder and is_skipped_folder(folder.lstrip(".").replace(".", "/"), DEFAULT_SKIP):
            continue
        for sub in ("new", "cur"):
            directory = os.path.join(maildir, folder, sub)
            for name in os.listdir(directory):
                if not is_trashed(split_info(name)[1]):
                    yield os.path.join(directory, name)


def plain_loop(maildir: Path) -> float:
    """List the folders and read the first 4 KB of every message syncd reads, as Python code
    would: `open(path, "rb").read(4096)`."""
    began = time.perf_counter()
    for path in _read_files(maildir):
        with open(path, "rb") as file:
            file.read(4096)
    return time.perf_counter() - began


def syscall_loop(maildir: Path) -> float:
    """The same with bare os.open/os.read/os.close: what the kernel alone costs, for reference."""
    began = time.perf_counter()
    for path in _read_files(maildir):
        fd = os.open(path, os.O_RDONLY)
        os.read(fd, 4096)
        os.close(fd)
    return time.perf_counter() - began


def warm_cache(maildir: Path) -> None:
    """Read every file whole once, so all readers below find it in the page cache."""
    for directory, _, names in os.walk(maildir):
        for name in names:
            with open(os.path.join(directory, name), "rb") as file:
                while file.read(1 << 20):
                    pass


def time_connector(maildir: Path, workdir: Path) -> tuple[Run, Run]:
    """The Maildir connector's scan() alone, in a child; its refs and state kept in a file.

    The child prints the seconds spent in scan() itself, without start-up and the state file.
    """
    state = workdir / "connector-state.json"
    state.unlink(missing_ok=True)
    command = [sys.executable, __file__, "--child-scan", str(maildir), "--state", str(state)]
    return run_child(command), run_child(command)


def time_syncd(maildir: Path, workdir: Path) -> tuple[Run, Run]:
    """`syncd sync` end-to-end on a fresh database: the first sync, then a no-change re-sync."""
    home = workdir / "syncd-home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir()
    (home / "config.toml").write_text(
        f'[me]\nname = "{ME[0]}"\nemails = ["{ME[1]}"]\ntimezone = "UTC"\n\n'
        f'[state]\ndatabase = "syncd.sqlite"\n\n'
        f'[sources.mail]\ntype = "maildir"\npath = "{maildir}"\n'
    )
    command = [sys.executable, "-c", "from syncd.cli import main; main()",
               "--config", str(home / "config.toml"), "sync"]  # fmt: skip
    return run_child(command, cwd=home), run_child(command, cwd=home)


def child_scan(maildir: Path, state_file: Path) -> None:
    """In a child: one scan with the saved cursor; prints the scan's own time and counts."""
    from zoneinfo import ZoneInfo

    from connectors.base import Context
    from connectors.maildir import MaildirSource

    context = Context("bench", ZoneInfo("UTC"), datetime.now(UTC))
    source = MaildirSource(MaildirSource.Options(type="maildir", path=maildir), context)
    scan_once(source, context, state_file)


def time_mu(maildir: Path, workdir: Path) -> Run | None:
    mu = shutil.which("mu")
    if mu is None:
        return None
    home = Path(tempfile.mkdtemp(prefix="mu-", dir=workdir))
    try:
        run_child([mu, "init", f"--maildir={maildir}", f"--muhome={home}"])
        return run_child([mu, "index", f"--muhome={home}"])
    finally:
        shutil.rmtree(home, ignore_errors=True)


# --- report -----------------------------------------------------------------------------------


def _check(label: str, value: float, limit: float, unit: str = "") -> None:
    verdict = "ok" if value <= limit else "MISSED"
    print(f"  {label:34s} {value:8.3f}{unit}  (target <= {limit:g}{unit})  {verdict}")


def report(maildir: Path, workdir: Path, with_mu: bool = True) -> None:
    print("page cache: every file read whole once, then each reader run once untimed, first")
    warm_cache(maildir)
    plain_loop(maildir)
    time_connector(maildir, workdir)
    plain = plain_loop(maildir)
    syscalls = syscall_loop(maildir)
    first, again = time_connector(maildir, workdir)
    scan_first, count, warnings, helper = first.output.split()
    scan_again = float(again.output.split()[0])
    print(f"\nplain loop, open().read(4096) of each file syncd reads: {plain:.2f} s")
    print(f"  the same with bare os.open/os.read/os.close: {syscalls:.2f} s")
    print(f"connector scan() alone: {count} interactions, {warnings} warnings")
    print(f"  first sync  {float(scan_first):7.2f} s in scan(), {first.seconds:.2f} s wall")
    print(f"  re-sync     {scan_again:7.3f} s in scan(), {again.seconds:.2f} s wall")
    helper_mb = float(helper)
    print(f"  peak RSS    {first.peak_rss_mb:7.1f} MB (the header helper's own {helper_mb:.1f} MB)")
    syncd = time_syncd(maildir, workdir)
    print(f"syncd sync end-to-end (store, rules, planning included): {syncd[0].output}")
    print(f"  first sync  {syncd[0].seconds:7.2f} s wall, peak RSS {syncd[0].peak_rss_mb:.1f} MB")
    print(f"  re-sync     {syncd[1].seconds:7.2f} s wall, peak RSS {syncd[1].peak_rss_mb:.1f} MB")
    mu = time_mu(maildir, workdir) if with_mu else None
    if mu is not None:
        print(f"mu index: {mu.seconds:.2f} s wall, peak RSS {mu.peak_rss_mb:.1f} MB")
    else:
        print("mu index: " + ("skipped (--no-mu)" if not with_mu else "mu is not installed"))
    print("\nratios and targets:")
    if mu is not None:
        _check("syncd first sync / mu index", syncd[0].seconds / mu.seconds, 0.2)
    _check("connector scan() / plain loop", float(scan_first) / plain, 4)
    print(f"  {'connector scan() / bare syscall loop':34s} {float(scan_first) / syscalls:8.3f}")
    _check("syncd first sync / plain loop", syncd[0].seconds / plain, 4)
    _check("syncd re-sync", syncd[1].seconds, 1, " s")
    _check("syncd peak RSS", max(syncd[0].peak_rss_mb, syncd[1].peak_rss_mb), 200, " MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "syncd-bench")
    parser.add_argument("--no-mu", action="store_true", help="leave out `mu index` (it is slow)")
    parser.add_argument("--child-scan", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_scan:
        child_scan(args.child_scan, args.state)
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    maildir = args.workdir / f"maildir-{args.messages}"
    generate(maildir, args.messages)
    report(maildir, args.workdir, with_mu=not args.no_mu)


if __name__ == "__main__":
    main()
