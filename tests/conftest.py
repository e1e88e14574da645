from __future__ import annotations

from pathlib import Path

import pytest

from connectors import base
from tests import fakes


@pytest.fixture
def memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register the in-memory source and sink types and start them empty."""
    monkeypatch.setitem(base.SOURCES, "memory", "tests.fakes:MemorySource")
    monkeypatch.setitem(base.SINKS, "memory", "tests.fakes:MemorySink")
    monkeypatch.setattr(base, "ADDRESS_BOOKS", base.ADDRESS_BOOKS | {"memory"})
    for table in (fakes.FEEDS, fakes.CRASH, fakes.ITEMS, fakes.STATES):
        table.clear()
    return


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "conf"
    folder.mkdir()
    return folder
