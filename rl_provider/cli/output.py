"""How the CLI writes: rich tables for people, JSON for scripts, progress on stderr.

stdout carries only the answer (a table, JSON, log lines, a response body) so it can be piped;
progress displays and notes go to stderr.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table

# Width used when stdout is not a terminal (a pipe, a file, a test): wide enough that 63-char
# SageMaker names and ISO times never wrap, so `grep` and `awk` see one row per line.
_PIPE_WIDTH = 200


def _console(stderr: bool) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() or os.environ.get("COLUMNS") else _PIPE_WIDTH
    return Console(stderr=stderr, highlight=False, width=width)


def json_default(value: object) -> Any:
    """``json.dumps`` fallback: datetimes as ISO-8601 (the typed descriptions' rule)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def as_datetime(value: object) -> dt.datetime | None:
    """A UTC datetime from a datetime, ISO string or epoch seconds (list responses mix them)."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        result = value
    elif isinstance(value, int | float):
        result = dt.datetime.fromtimestamp(value, dt.UTC)
    else:
        result = dt.datetime.fromisoformat(str(value))
    if result.tzinfo is None:
        result = result.replace(tzinfo=dt.UTC)
    return result.astimezone(dt.UTC)


def when(value: object) -> str:
    """``2026-11-25 08:51:41`` in UTC (column headers say UTC), or ``-``."""
    moment = as_datetime(value)
    return "-" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S}"


def duration(seconds: float | None) -> str:
    """``0.4s``, ``12s``, ``3m 05s``, ``2h 01m``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


def number(value: float) -> str:
    return f"{value:.6g}"


class Output:
    """The two streams and the output mode of one CLI run."""

    def __init__(self, *, json_mode: bool) -> None:
        self.json_mode = json_mode
        self.out = _console(stderr=False)
        self.err = _console(stderr=True)

    def emit_json(self, value: Any) -> None:
        sys.stdout.write(json.dumps(value, indent=2, default=json_default) + "\n")

    def line(self, text: str) -> None:
        """One raw line on stdout (log lines, bodies): no markup, no highlighting."""
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def note(self, text: str) -> None:
        """A message for the person at the terminal, on stderr, as one unwrapped line."""
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def print(self, renderable: RenderableType) -> None:
        self.out.print(renderable)

    def fields(self, rows: Sequence[tuple[str, object]]) -> None:
        """A two-column ``key  value`` block; rows whose value is None or empty are left out."""
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(overflow="fold")
        for key, value in rows:
            if value is None or value == "" or value == {}:
                continue
            grid.add_row(key, str(value))
        self.out.print(grid)

    def table(
        self,
        title: str | None,
        columns: Sequence[str],
        rows: Sequence[Sequence[object]],
        *,
        empty: str,
    ) -> None:
        """A table, or the ``empty`` sentence when there are no rows."""
        if not rows:
            self.note(empty)
            return
        table = Table(title=title, title_justify="left", header_style="bold", box=None)
        for index, column in enumerate(columns):
            # The first column is a resource name: never wrapped, so it can be copied.
            table.add_column(column, no_wrap=index == 0, overflow="fold")
        for row in rows:
            table.add_row(*(str(cell) for cell in row))
        self.out.print(table)

    def listing(
        self,
        key: str,
        items: Sequence[Mapping[str, Any]],
        columns: Sequence[str],
        row: Callable[[Mapping[str, Any]], Sequence[object]],
        *,
        empty: str,
    ) -> None:
        """A List* answer: ``{key: items}`` as JSON, else a table of ``row(item)``."""
        if self.json_mode:
            self.emit_json({key: list(items)})
        else:
            self.table(None, columns, [row(item) for item in items], empty=empty)

    @contextmanager
    def progress(self, text: str) -> Iterator[Live]:
        """A spinner on stderr; ``live.update(Spinner(...))`` changes its text.

        stdout is redirected through the display only when it is the same terminal (so log lines
        scroll above the spinner); a redirected stdout is left alone, whatever stderr is.
        """
        with Live(
            Spinner("dots", text=text),
            console=self.err,
            transient=True,
            refresh_per_second=8,
            redirect_stdout=sys.stdout.isatty(),
            redirect_stderr=False,
        ) as live:
            yield live


def spinner(text: str) -> Spinner:
    return Spinner("dots", text=text)


def mapping_rows(value: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={item}" for key, item in sorted(value.items()))


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` then rename onto ``path``: a reader never sees a half-written file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
