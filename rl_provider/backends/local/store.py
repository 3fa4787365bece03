"""The local backend's state: one SQLite database (WAL) under the home, shared by processes.

Workers, the triggerer, runners, model servers and the CLI read and write it at once. Every state
change is one ``BEGIN IMMEDIATE`` transaction (``database.py``); a compare-and-set on the status
keeps a late writer from overwriting a terminal job state, and an endpoint record changes only by
one of its transitions (``endpoint_state.py``, through ``change_endpoint``).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rl_provider.backends.local.database import Database
from rl_provider.backends.local.endpoint_state import EndpointRecord
from rl_provider.core.enums import SecondaryStatus, TrainingJobStatus
from rl_provider.exceptions import JobNotFoundError, ResourceExistsError

# The kinds of resource in the kv table.
ENDPOINT = "endpoint"
ENDPOINT_CONFIG = "endpoint_config"
MODEL = "model"

_NON_TERMINAL = tuple(s.value for s in TrainingJobStatus if not s.is_terminal())
# A job's secondary-status transitions in order, and its last value of each metric.
_TRANSITIONS = (
    "SELECT status, start_time, end_time, message FROM transitions WHERE job = ? ORDER BY seq"
)
_FINAL_METRICS = (
    "SELECT name, value, timestamp FROM metrics WHERE id IN "
    "(SELECT MAX(id) FROM metrics WHERE job = ? GROUP BY name) ORDER BY name"
)


def resolve_home(home: str | os.PathLike[str] | None = None) -> Path:
    """``home``, else ``RL_PROVIDER_HOME``, else ``$AIRFLOW_HOME/rl_provider``, else ~."""
    if home:
        return Path(home).expanduser().resolve()
    if os.environ.get("RL_PROVIDER_HOME"):
        return Path(os.environ["RL_PROVIDER_HOME"]).expanduser().resolve()
    if os.environ.get("AIRFLOW_HOME"):
        return (Path(os.environ["AIRFLOW_HOME"]).expanduser() / "rl_provider").resolve()
    return (Path.home() / ".rl_provider").resolve()


@dataclass(frozen=True, slots=True)
class JobRow:
    name: str
    request: dict[str, Any]
    status: TrainingJobStatus
    secondary_status: SecondaryStatus
    failure_reason: str | None
    model_artifacts: str | None
    creation_time: float
    training_start_time: float | None
    training_end_time: float | None
    last_modified_time: float
    runner_pid: int | None
    runner_started: float | None
    entry_pid: int | None
    stop_grace: float


_shared_lock = threading.Lock()
# (pid, home) -> the store every LocalBackend of this process opens on that home. Weak: a store
# (and its connections) goes when the last backend using it does.
_shared: weakref.WeakValueDictionary[tuple[int, Path], LocalStore] = weakref.WeakValueDictionary()


class LocalStore(Database):
    """Typed access to the home's database (``database.py``: its mechanics).

    ``LocalStore.shared(home)`` is the process's one store per home: a triggerer follows
    hundreds of jobs, each trigger with its own backend, and a store per backend held a SQLite
    connection (3 descriptors: the database, its WAL and shared memory) per worker thread per
    trigger; shared, it is one per worker thread (docs/DESIGN.md "Triggerer at scale").
    """

    @classmethod
    def shared(cls, home: Path) -> LocalStore:
        """The store of ``home`` shared by this process (a forked child opens its own)."""
        key = (os.getpid(), home)
        with _shared_lock:
            store = _shared.get(key)
            if store is None:
                store = _shared[key] = cls(home)
            return store

    # ------------------------------------------------------------------------------ jobs
    def insert_job(self, name: str, request: Mapping[str, Any], stop_grace: float) -> None:
        now = time.time()
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM training_jobs WHERE name = ?", (name,)).fetchone():
                raise ResourceExistsError(
                    f"Training job {name!r} already exists: training job names must be unique "
                    "(SageMaker rule); pick another name or attach to it."
                )
            db.execute(
                "INSERT INTO training_jobs (name, request, status, secondary_status, "
                "creation_time, last_modified_time, stop_grace) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    json.dumps(request),
                    TrainingJobStatus.IN_PROGRESS.value,
                    SecondaryStatus.STARTING.value,
                    now,
                    now,
                    stop_grace,
                ),
            )
            db.execute(
                "INSERT INTO transitions (job, seq, status, start_time, message) "
                "VALUES (?, 0, ?, ?, ?)",
                (name, SecondaryStatus.STARTING.value, now, "Preparing the instances for training"),
            )

    def job_exists(self, name: str) -> bool:
        return bool(self._rows("SELECT 1 FROM training_jobs WHERE name = ?", (name,)))

    def set_runner(self, name: str, pid: int, started: float) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE training_jobs SET runner_pid = ?, runner_started = ? WHERE name = ?",
                (pid, started, name),
            )

    def set_entry_pid(self, name: str, pid: int | None) -> None:
        with self._transaction() as db:
            db.execute("UPDATE training_jobs SET entry_pid = ? WHERE name = ?", (pid, name))

    def get_job(self, name: str) -> JobRow:
        rows = self._rows("SELECT * FROM training_jobs WHERE name = ?", (name,))
        row = rows[0] if rows else None
        if row is None:
            raise self._job_not_found(name)
        return _job_row(row)

    def require_job(self, name: str) -> None:
        """``JobNotFoundError`` unless the job exists (without reading its row: a trigger's log
        read asks this at every poll)."""
        if (
            self._connection()
            .execute("SELECT 1 FROM training_jobs WHERE name = ?", (name,))
            .fetchone()
            is None
        ):
            raise self._job_not_found(name)

    def _job_not_found(self, name: str) -> JobNotFoundError:
        return JobNotFoundError(
            f"Training job {name!r} not found in {self.home} "
            "(check the name, or the home: RL_PROVIDER_HOME / the rl connection's 'home')."
        )

    def list_jobs(self, status: str | None = None, limit: int | None = None) -> list[JobRow]:
        sql = "SELECT * FROM training_jobs"
        args: list[Any] = []
        if status:
            sql += " WHERE status = ?"
            args.append(status)
        sql += " ORDER BY creation_time DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [_job_row(r) for r in self._rows(sql, args)]

    def transition(
        self,
        name: str,
        secondary: SecondaryStatus,
        message: str,
        *,
        status: TrainingJobStatus | None = None,
        failure_reason: str | None = None,
        model_artifacts: str | None = None,
        only_if_active: bool = True,
    ) -> bool:
        """Close the open transition and open ``secondary``; False if the job already ended or
        is past ``secondary`` (the secondary status never moves backwards)."""
        now = time.time()
        with self._transaction() as db:
            row = db.execute(
                "SELECT status, secondary_status, training_start_time FROM training_jobs "
                "WHERE name = ?",
                (name,),
            ).fetchone()
            if row is None:
                raise JobNotFoundError(f"Training job {name!r} not found in {self.home}.")
            if only_if_active and row["status"] not in _NON_TERMINAL:
                return False
            if secondary.progress() < SecondaryStatus(row["secondary_status"]).progress():
                return False
            seq = db.execute(
                "SELECT COALESCE(MAX(seq), -1) FROM transitions WHERE job = ?", (name,)
            ).fetchone()[0]
            db.execute(
                "UPDATE transitions SET end_time = ? "
                "WHERE job = ? AND seq = ? AND end_time IS NULL",
                (now, name, seq),
            )
            terminal = secondary.is_terminal()
            db.execute(
                "INSERT INTO transitions (job, seq, status, start_time, end_time, message) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (name, seq + 1, secondary.value, now, now if terminal else None, message),
            )
            updates = {"secondary_status": secondary.value, "last_modified_time": now}
            if status is not None:
                updates["status"] = status.value
            if failure_reason is not None:
                updates["failure_reason"] = failure_reason[:1024]  # SageMaker's limit
            if model_artifacts is not None:
                updates["model_artifacts"] = model_artifacts
            if secondary is SecondaryStatus.TRAINING and row["training_start_time"] is None:
                updates["training_start_time"] = now
            if terminal:
                updates["training_end_time"] = now
            assignments = ", ".join(f"{key} = ?" for key in updates)
            db.execute(
                f"UPDATE training_jobs SET {assignments} WHERE name = ?",
                (*updates.values(), name),
            )
            return True

    def transitions(self, name: str) -> list[sqlite3.Row]:
        return self._rows(_TRANSITIONS, (name,))

    # --------------------------------------------------------------------------- metrics
    def add_metrics(self, name: str, points: list[tuple[str, float, float]]) -> None:
        if not points:
            return
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO metrics (job, name, value, timestamp) VALUES (?, ?, ?, ?)",
                [(name, metric, value, ts) for metric, value, ts in points],
            )

    def metrics(self, name: str) -> dict[str, list[tuple[float, float]]]:
        series: dict[str, list[tuple[float, float]]] = {}
        for row in self._rows(
            "SELECT name, value, timestamp FROM metrics WHERE job = ? ORDER BY id", (name,)
        ):
            series.setdefault(row["name"], []).append((row["timestamp"], row["value"]))
        return series

    def final_metrics(self, name: str) -> list[sqlite3.Row]:
        return self._rows(_FINAL_METRICS, (name,))

    def last_values(self) -> dict[str, list[sqlite3.Row]]:
        """Every job's last value of each metric, in one query (for a listing of many jobs)."""
        found: dict[str, list[sqlite3.Row]] = {}
        for row in self._connection().execute(
            "SELECT job, name, value, timestamp FROM metrics WHERE id IN "
            "(SELECT MAX(id) FROM metrics GROUP BY job, name) ORDER BY job, name"
        ):
            found.setdefault(row["job"], []).append(row)
        return found

    # -------------------------------------------------------- models, endpoint configs, endpoints
    def put(self, kind: str, name: str, body: Mapping[str, Any], *, replace: bool = False) -> None:
        with self._transaction() as db:
            exists = db.execute(
                "SELECT 1 FROM kv WHERE kind = ? AND name = ?", (kind, name)
            ).fetchone()
            if exists and not replace:
                raise ResourceExistsError(f"{kind} {name!r} already exists.")
            db.execute(
                "INSERT OR REPLACE INTO kv (kind, name, body, creation_time) VALUES (?, ?, ?, ?)",
                (kind, name, _dump(body), time.time()),
            )

    def _update(
        self, kind: str, name: str, change: Callable[[dict[str, Any]], dict[str, Any] | None]
    ) -> None:
        """Read-modify-write in one transaction; ``change`` returns the new body or None."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT body, creation_time FROM kv WHERE kind = ? AND name = ?", (kind, name)
            ).fetchone()
            body = None if row is None else change(_body(row))
            if body is not None:
                db.execute(
                    "UPDATE kv SET body = ? WHERE kind = ? AND name = ?",
                    (_dump(body), kind, name),
                )

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        """The stored body with its creation time as ``_created``; None if there is none."""
        rows = self._rows(
            "SELECT body, creation_time FROM kv WHERE kind = ? AND name = ?", (kind, name)
        )
        return _body(rows[0]) if rows else None

    def delete(self, kind: str, name: str) -> bool:
        with self._transaction() as db:
            return (
                db.execute("DELETE FROM kv WHERE kind = ? AND name = ?", (kind, name)).rowcount > 0
            )

    def names(self, kind: str) -> list[str]:
        return [
            r["name"]
            for r in self._rows(
                "SELECT name FROM kv WHERE kind = ? ORDER BY creation_time DESC", (kind,)
            )
        ]

    # ------------------------------------------------------------------ endpoint records
    def insert_endpoint(self, record: EndpointRecord) -> None:
        """A new endpoint's record (``ResourceExistsError`` if the name is taken)."""
        self.put(ENDPOINT, record.name, record.to_body())

    def endpoint(self, name: str) -> EndpointRecord | None:
        body = self.get(ENDPOINT, name)
        return None if body is None else EndpointRecord.from_body(body)

    def change_endpoint(
        self, name: str, transition: Callable[[EndpointRecord], EndpointRecord | None]
    ) -> EndpointRecord | None:
        """Read the record, apply ``transition`` (``endpoint_state.py``) and write the result,
        in one transaction; the record written, None if there is none or the transition does
        not apply (nothing written)."""
        written: list[EndpointRecord] = []

        def apply(body: dict[str, Any]) -> dict[str, Any] | None:
            record = transition(EndpointRecord.from_body(body))
            if record is None:
                return None
            written.append(record)
            return record.to_body()

        self._update(ENDPOINT, name, apply)
        return written[0] if written else None


def _body(row: sqlite3.Row) -> dict[str, Any]:
    """A stored resource with its creation time as ``_created`` (epoch seconds)."""
    return {**json.loads(row["body"]), "_created": row["creation_time"]}


def _dump(body: Mapping[str, Any]) -> str:
    return json.dumps({k: v for k, v in body.items() if k != "_created"})


def _job_row(row: sqlite3.Row) -> JobRow:
    return JobRow(
        name=row["name"],
        request=json.loads(row["request"]),
        status=TrainingJobStatus(row["status"]),
        secondary_status=SecondaryStatus(row["secondary_status"]),
        failure_reason=row["failure_reason"],
        model_artifacts=row["model_artifacts"],
        creation_time=row["creation_time"],
        training_start_time=row["training_start_time"],
        training_end_time=row["training_end_time"],
        last_modified_time=row["last_modified_time"],
        runner_pid=row["runner_pid"],
        runner_started=row["runner_started"],
        entry_pid=row["entry_pid"],
        stop_grace=row["stop_grace"],
    )
