"""Timing a benchmark's child processes: wall time and the child's own peak RSS."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Run:
    seconds: float  # wall time of the child, interpreter start-up included
    peak_rss_mb: float
    output: str = ""


def run_child(command: list[str], cwd: Path | None = None) -> Run:
    """Run a child; its wall time and its own peak RSS (wait4 reports that child alone)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        began = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=err, cwd=cwd)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - began
        code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if code != 0:
            problem = err.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(command[:4])} failed ({code}): {problem}")
        return Run(seconds, usage.ru_maxrss / 1024, out.read().decode().strip())


def scan_once(source: Any, context: Any, state_file: Path) -> None:
    """In a child: one `scan()` with the cursor state and refs saved in `state_file` by the
    previous one; prints the scan's own seconds, the items, the warnings and the header helper's
    peak RSS in MB (a first sync when the file is missing, a re-sync after)."""
    from connectors.base import Cursor

    saved = json.loads(state_file.read_text()) if state_file.exists() else {"state": {}, "refs": []}
    refs = set(saved["refs"])
    cursor = Cursor(state=saved["state"], known=refs.__contains__)
    began = time.perf_counter()
    count = 0
    for item in source.scan(cursor):
        refs.add(item.ref)
        count += 1
    seconds = time.perf_counter() - began
    state_file.write_text(json.dumps({"state": cursor.state, "refs": sorted(refs)}))
    helper = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the header helper
    print(f"{seconds:.3f} {count} {context.warnings} {helper:.1f}")
