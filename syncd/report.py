"""What a pass did, for the one-line summary, `syncd status` and the daemon's STATUS=."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SourceReport:
    name: str
    items: int = 0
    warnings: int = 0
    error: str | None = None


@dataclass
class Summary:
    sources: list[SourceReport] = field(default_factory=list)
    relationships: int = 0
    due: int = 0
    written: list[tuple[str, str]] = field(default_factory=list)  # (person name, sink)
    withdrawn: int = 0
    completed: int = 0
    dismissed: int = 0
    later: int = 0
    sink_errors: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(s.error for s in self.sources) or bool(self.sink_errors)

    def line(self) -> str:
        imported = sum(s.items for s in self.sources)
        warnings = sum(s.warnings for s in self.sources)
        parts = [f"{imported} items read", f"{self.relationships} relationships",
                 f"{self.due} due", f"{len(self.written)} follow-ups written"]  # fmt: skip
        if self.later:
            parts.append(f"{self.later} more planned for the coming days")
        for count, what in ((self.completed, "completed"), (self.dismissed, "dismissed"),
                            (self.withdrawn, "withdrawn"), (warnings, "warnings")):  # fmt: skip
            if count:
                parts.append(f"{count} {what}")
        failed = [s.name for s in self.sources if s.error]
        if failed:
            parts.append("failed: " + ", ".join(failed))
        return "; ".join(parts)
