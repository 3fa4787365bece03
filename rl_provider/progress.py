"""How far a task instance has watched its training job, kept where every process can read it.

One Airflow Variable per task instance, ``rl_provider.log_cursor.<dag>.<task>.<run>.<map_index>``,
holds JSON ``{"job_name", "cursor", "try_number", "deferred"}``:

- ``cursor``: the backend's log cursor after the last line printed into the task log, so a
  rebuilt trigger (triggerer restart) or a rescheduled sensor poke prints no line twice;
- ``try_number`` and ``deferred``: the try that handed the job to the triggerer. A *new* try that
  finds such a record for a running job knows that try was ended by a user action (clear, mark
  failed/success) or a trigger failure, not by a worker death, and that its job is being stopped.

A Variable, not an XCom: Airflow 3 deletes a task's XComs when a new try starts (the new try
must read the old try's record) and logs an ``error`` for every XCom read that finds nothing.
Reads and writes are synchronous SDK calls: from a trigger's event loop Airflow runs them through
its greenback portal without blocking the loop.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["WatchRecord", "forget_watch", "load_watch", "save_watch", "watch_variable"]


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchRecord:
    """Where one try's watch of ``job_name`` stands."""

    job_name: str
    cursor: Any = None
    try_number: int | None = None
    deferred: bool = False


def watch_variable(dag_id: str, task_id: str, run_id: str, map_index: int | None) -> str:
    """The Variable name for one task instance (all its tries share it)."""
    index = map_index if map_index is not None else -1
    return f"rl_provider.log_cursor.{dag_id}.{task_id}.{run_id}.{index}"


def load_watch(key: str) -> WatchRecord | None:
    """The stored record, or ``None`` (none stored, or not one of ours)."""
    from airflow.sdk import Variable

    stored = Variable.get(key, default=None)
    if stored is None:
        return None
    try:
        data = json.loads(stored)
        return WatchRecord(
            job_name=str(data["job_name"]),
            cursor=data.get("cursor"),
            try_number=data.get("try_number"),
            deferred=bool(data.get("deferred", False)),
        )
    except (ValueError, TypeError, KeyError):  # edited by hand: start afresh rather than fail
        return None


def save_watch(key: str, record: WatchRecord) -> None:
    from airflow.sdk import Variable

    Variable.set(key, json.dumps(asdict(record)), description="rl_provider: job watch progress")


def forget_watch(key: str) -> None:
    from airflow.sdk import Variable

    Variable.delete(key)
