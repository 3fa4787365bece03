"""Reading a Ray job's log back: the entry point's lines, and the launcher's markers.

The Jobs API returns a job's whole log as text; it only grows, so a character offset after the
last complete line is a cursor that loses and repeats nothing. Pure functions: the sync and the
async backend fetch, these parse.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from rl_provider.backends.ray.launcher import ESCAPE, MARKER

_TAIL_LINES = 10


def split_log(text: str, offset: int) -> tuple[list[str], list[dict[str, Any]], int]:
    """(entry point lines, markers, new offset) of the complete lines after ``offset``.

    Split on "\\n" only: programs write "\\r" inside a line (progress bars). A marker whose JSON
    is broken (a line cut by a killed process) is dropped, not shown as user text.
    """
    end = text.rfind("\n", offset) + 1
    if end <= offset:
        return [], [], offset
    lines: list[str] = []
    markers: list[dict[str, Any]] = []
    for line in text[offset:end].split("\n")[:-1]:
        if line.startswith(MARKER):
            try:
                marker = json.loads(line[len(MARKER) :])
            except ValueError:
                continue
            if isinstance(marker, dict):
                markers.append(marker)
        elif line.startswith(ESCAPE):
            lines.append(line[len(ESCAPE) :])
        else:
            lines.append(line)
    return lines, markers, end


@dataclass
class ParsedLog:
    """What the markers of a job's log say so far (kept per job, fed only the new part)."""

    offset: int = 0
    transitions: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    end: dict[str, Any] | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=_TAIL_LINES))
    #: Fed a log fetched after the job ended: the whole log (it no longer grows).
    complete: bool = False

    def feed(self, text: str) -> None:
        if len(text) < self.offset:  # a different job now holds the name (cannot happen today)
            self.__init__()  # type: ignore[misc]
        lines, markers, self.offset = split_log(text, self.offset)
        self.tail.extend(lines)
        for marker in markers:
            kind = marker.get("kind")
            stamp = float(marker.get("time", 0.0))
            if kind == "status":
                self.transitions.append(
                    {"status": str(marker["status"]), "time": stamp, "message": marker["message"]}
                )
            elif kind == "metrics":
                for name, value in marker.get("points", []):
                    self.metrics.setdefault(str(name), []).append((stamp, float(value)))
            elif kind == "end":
                self.end = marker
