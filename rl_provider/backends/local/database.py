"""The home's SQLite database: opened once under a file lock, WAL, a connection per thread.

``Database`` holds the mechanics every state change relies on (``store.py`` holds what is
stored): the schema and the WAL switch done once under an exclusive ``flock`` (many processes
open a home at once), private file modes, one ``BEGIN IMMEDIATE`` transaction per change, and
SQLite's errors raised as ``BackendError`` saying what happened.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rl_provider.backends.local import files
from rl_provider.exceptions import BackendError

SCHEMA = """
CREATE TABLE IF NOT EXISTS training_jobs (
    name TEXT PRIMARY KEY,
    request TEXT NOT NULL,
    status TEXT NOT NULL,
    secondary_status TEXT NOT NULL,
    failure_reason TEXT,
    model_artifacts TEXT,
    creation_time REAL NOT NULL,
    training_start_time REAL,
    training_end_time REAL,
    last_modified_time REAL NOT NULL,
    runner_pid INTEGER,
    runner_started REAL,
    entry_pid INTEGER,
    stop_grace REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS transitions (
    job TEXT NOT NULL,
    seq INTEGER NOT NULL,
    status TEXT NOT NULL,
    start_time REAL NOT NULL,
    end_time REAL,
    message TEXT,
    PRIMARY KEY (job, seq)
);
CREATE TABLE IF NOT EXISTS metrics (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job TEXT NOT NULL,
    name TEXT NOT NULL,
    value REAL NOT NULL,
    timestamp REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_by_job ON metrics (job, name, id);
CREATE TABLE IF NOT EXISTS kv (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    creation_time REAL NOT NULL,
    PRIMARY KEY (kind, name)
);
"""

_TABLES = {"training_jobs", "transitions", "metrics", "kv"}


class Database:
    """The database of a home; one connection per thread (and per process: a forked child
    never uses its parent's)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.path = home / "state.db"
        self._local = threading.local()
        with self._errors():
            self._open()

    def _open(self) -> None:
        """Create or migrate the database once, under an exclusive file lock.

        Switching to WAL and creating the schema take SQLite locks that the busy timeout does not
        always cover: many processes opening the home at once (two Airflow tasks starting
        together) got "database is locked". Under the lock only one process does it at a time,
        and each skips what is already done.
        """
        files.private_dir(self.home)  # first: nobody else can reach what is created inside
        lock = files.private_file(self.home / "state.lock")
        with open(lock, "a") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            db = self._connection()
            if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
            if not _TABLES.issubset(tables):
                db.executescript(SCHEMA)
            for suffix in ("", "-wal", "-shm"):
                # By path, never through a descriptor: closing any descriptor of the database
                # file drops this process's SQLite locks on it (sqlite.org/howtocorrupt.html).
                # SQLite gives -wal/-shm the database's mode; older homes had 0644.
                with contextlib.suppress(FileNotFoundError):
                    os.chmod(self.path.with_name(self.path.name + suffix), files.PRIVATE_FILE_MODE)

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None or self._local.pid != os.getpid():
            # A forked child (Airflow forks workers) never uses its parent's connection.
            db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=60000")
            self._local.db, self._local.pid = db, os.getpid()
        return db

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """SQLite's errors as a ``BackendError`` that says what happened (disk full, above all)."""
        try:
            yield
        except (sqlite3.Error, OSError) as err:
            what = (
                f"state database {self.path}"
                if isinstance(err, sqlite3.Error)
                else f"home {self.home}"
            )
            if files.is_out_of_space(err, self.home):
                detail = f"cannot be written: {files.out_of_space_message(self.home, err)}"
            else:
                detail = f"failed: {type(err).__name__}: {err}."
            raise BackendError(f"The local backend's {what} {detail}") from err

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._errors():
            return list(self._connection().execute(sql, args))

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._errors():
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
