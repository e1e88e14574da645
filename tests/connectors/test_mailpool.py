from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors import mailpool
from connectors.mailheaders import Fields, read_fields


def header(number: int) -> bytes:
    return (
        f"From: Jan {number} <jan{number}@example.nl>\r\nTo: sam@example.org\r\n"
        f"Subject: =?utf-8?q?offerte_{number}_=E2=82=AC?=\r\n"
        f"Date: Tue, 5 Mar 2024 10:{number % 60:02d}:00 +0100\r\n"
        f"Message-ID: <m{number}@example.nl>\r\n"
    ).encode()


@pytest.fixture
def helped(monkeypatch: pytest.MonkeyPatch) -> list[mailpool.Helper]:
    """Small chunks, and a helper from the tenth message on; the helpers started are listed."""
    monkeypatch.setattr(mailpool, "LEAST", 10)
    monkeypatch.setattr(mailpool, "CHUNK", 7)
    monkeypatch.setattr(mailpool, "AHEAD", 2)
    started: list[mailpool.Helper] = []

    class Listed(mailpool.Helper):
        def __init__(self) -> None:
            super().__init__()
            started.append(self)

    monkeypatch.setattr(mailpool, "Helper", Listed)
    return started


def files(folder: Path, count: int) -> list[str]:
    paths = []
    for number in range(count):
        path = folder / f"{number}.eml"
        path.write_bytes(header(number) + b"\r\n" + b"body text\r\n" * 100)
        paths.append(str(path))
    return paths


def test_many_messages_are_read_in_a_helper_in_order_with_markers_in_place(
    tmp_path: Path, helped: list[mailpool.Helper]
) -> None:
    paths = files(tmp_path, 40)
    jobs: list[str | bytes | None] = [*paths[:20], None, header(99), *paths[20:], None]
    found = list(mailpool.read_ahead(jobs, lambda job: job))
    assert len(helped) == 1
    assert [job for job, _ in found] == jobs
    expected = [read_fields(header(n)) for n in range(20)]
    expected += [None, read_fields(header(99))]
    expected += [read_fields(header(n)) for n in range(20, 40)] + [None]
    assert [result for _, result in found] == expected
    first = found[0][1]
    assert isinstance(first, Fields)
    assert first.subject == "offerte 0 €"


def test_a_few_messages_are_read_without_a_helper(
    tmp_path: Path, helped: list[mailpool.Helper]
) -> None:
    paths = files(tmp_path, 5)
    found = list(mailpool.read_ahead(paths, lambda job: job))
    assert helped == []
    assert [result for _, result in found] == [read_fields(header(n)) for n in range(5)]


@pytest.mark.parametrize("count", [5, 40])
def test_a_file_that_cannot_be_read_gives_its_error(
    tmp_path: Path, helped: list[mailpool.Helper], count: int
) -> None:
    paths = files(tmp_path, count)
    os.remove(paths[3])
    results = [result for _, result in mailpool.read_ahead(paths, lambda job: job)]
    assert isinstance(results[3], FileNotFoundError)
    assert all(isinstance(result, Fields) for n, result in enumerate(results) if n != 3)


@pytest.mark.parametrize("count", [5, 40])
def test_what_was_got_before_a_failure_is_given_then_the_failure_raised(
    tmp_path: Path, helped: list[mailpool.Helper], count: int
) -> None:
    paths = files(tmp_path, count)

    def breaking() -> Iterator[str]:
        yield from paths
        raise ConnectionError("dropped")

    given = []

    def read_all() -> None:
        for job, result in mailpool.read_ahead(breaking(), lambda job: job):
            assert isinstance(result, Fields)
            given.append(job)

    with pytest.raises(ConnectionError, match="dropped"):
        read_all()
    assert given == paths


def test_a_helper_that_dies_leaves_the_rest_read_in_process(
    tmp_path: Path, helped: list[mailpool.Helper]
) -> None:
    paths = files(tmp_path, 60)
    found = []
    for job, result in mailpool.read_ahead(paths, lambda job: job):
        if not found:
            os.kill(helped[0].process.pid, signal.SIGKILL)
        found.append((job, result))
    assert [job for job, _ in found] == paths
    assert [result for _, result in found] == [read_fields(header(n)) for n in range(60)]


def test_the_helper_ends_with_the_reading(tmp_path: Path, helped: list[mailpool.Helper]) -> None:
    paths = files(tmp_path, 40)
    reading = mailpool.read_ahead(paths, lambda job: job)
    next(reading)
    assert helped[0].process.poll() is None
    began = time.monotonic()
    reading.close()  # a caller that stops early (SIGTERM between batches)
    assert helped[0].process.returncode is not None
    assert time.monotonic() - began < 4  # not left to time out (it was sending answers)


def test_a_fault_in_the_helper_is_raised_in_the_caller(
    tmp_path: Path, helped: list[mailpool.Helper]
) -> None:
    jobs: list[object] = [*files(tmp_path, 20), 12345]  # neither a path nor a header

    def read_all() -> None:
        for _ in mailpool.read_ahead(jobs, lambda job: job):  # type: ignore[arg-type, return-value]
            pass

    with pytest.raises(TypeError):
        read_all()


def test_a_helper_that_stops_answering_is_given_up_and_the_rest_read_here(
    tmp_path: Path, helped: list[mailpool.Helper], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mailpool, "PATIENCE", 0.5)
    paths = files(tmp_path, 60)
    found = []
    for job, result in mailpool.read_ahead(paths, lambda job: job):
        if not found:
            os.kill(helped[0].process.pid, signal.SIGSTOP)  # stuck, as on a hung network disk
        found.append((job, result))
    assert [result for _, result in found] == [read_fields(header(n)) for n in range(60)]
    assert helped[0].process.wait(timeout=5) == -signal.SIGKILL


def test_without_a_helper_the_headers_are_read_here(
    tmp_path: Path, helped: list[mailpool.Helper], monkeypatch: pytest.MonkeyPatch
) -> None:
    def cannot() -> None:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(mailpool, "Helper", cannot)
    paths = files(tmp_path, 40)
    found = [result for _, result in mailpool.read_ahead(paths, lambda job: job)]
    assert found == [read_fields(header(n)) for n in range(40)]
