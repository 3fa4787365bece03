"""Helpers shared by the local backend's training and serving halves."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from rl_provider.backends.local import container, files, transfer
from rl_provider.backends.local.processes import process_start, same_process
from rl_provider.exceptions import RLConfigError

_T = TypeVar("_T")


def arn(kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:local:000000000000:{kind}/{name}"


def utc(ts: float | None) -> dt.datetime | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, tz=dt.UTC)


def spawn_detached(
    module: str, args: list[str], home: Path, cwd: Path, uris: list[str]
) -> tuple[int, float]:
    """Start ``python -m module HOME ARGS --detach``; return the detached process's pid/start.

    The process gets the scrubbed environment and a private umask; if ``uris`` include s3://
    locations it gets the caller's AWS credentials on stdin (kept in its memory, never in an
    environment user code can read).
    """
    spawned = subprocess.run(
        [sys.executable, "-m", module, str(home), *args, "--detach"],
        input=transfer.credentials_for(uris) + "\n",
        capture_output=True,
        text=True,
        cwd=cwd,
        env=container.scrubbed_env(),
        umask=files.PRIVATE_UMASK,
    )
    if spawned.returncode != 0 or not spawned.stdout.strip().isdigit():
        raise OSError(spawned.stderr.strip() or f"{module} exited {spawned.returncode}")
    pid = int(spawned.stdout.strip())
    started = process_start(pid)
    return pid, started if started is not None else 0.0


def listing(
    items: Iterable[_T],
    name: Callable[[_T], str],
    name_contains: str | None,
    max_results: int,
    summary: Callable[[_T], dict[str, Any] | None],
) -> list[dict[str, Any]]:
    """A List* page: the summaries of the items whose name contains ``name_contains``, in order,
    at most ``max_results``; ``summary`` returns None for an item to leave out."""
    if isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 1:
        # SageMaker's List* calls take MaxResults between 1 and 100.
        raise RLConfigError(f"MaxResults={max_results!r}: pass a positive int.")
    summaries: list[dict[str, Any]] = []
    for item in items:
        if name_contains and name_contains not in name(item):
            continue
        entry = summary(item)
        if entry is not None:
            summaries.append(entry)
            if len(summaries) >= max_results:
                break
    return summaries


def alive(record: Mapping[str, Any] | None) -> bool:
    """Whether the process a record names (pid + start time) still runs."""
    if not record or not record.get("pid"):
        return False
    return same_process(int(record["pid"]), record.get("started"))
