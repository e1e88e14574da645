"""Timing a benchmark's child processes: wall time and the child's own peak RSS."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


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
