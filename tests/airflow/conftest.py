"""The Airflow test harness: a throw-away AIRFLOW_HOME, its database, DAG files and ``dag.test()``.

Airflow reads its configuration when it is first imported, so the environment is set here at
import time, before any test module imports airflow. Each test gets a fresh local-backend home
(``rl_home``); DAG files are written into the configured DAGs folder (``write_dag``) because
``dag.test()`` in Airflow 3.3 serializes the DAG from there; ``run_dag`` runs one and returns
its states, XComs and log text.

Facts: the first ``dag.test()`` in a process takes a few seconds (imports, serialization), the
next ones a fraction of a second; a deferred task runs its trigger inline.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

if "airflow" in sys.modules and not os.environ.get("AIRFLOW_HOME", "").startswith(
    tempfile.gettempdir()
):
    raise RuntimeError(
        "airflow was imported before tests/airflow/conftest.py could point AIRFLOW_HOME at a "
        "temporary directory: import airflow inside tests, not at the top of a test module "
        "collected earlier."
    )

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="rl-airflow-test-"))
_DAGS_FOLDER = _AIRFLOW_HOME / "dags"
_DAGS_FOLDER.mkdir()
atexit.register(shutil.rmtree, _AIRFLOW_HOME, ignore_errors=True)

os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(_DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}",
        "AIRFLOW__DATABASE__LOAD_DEFAULT_CONNECTIONS": "False",
        "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "False",
        # dag.test() runs a trigger inline in the deferring process, so it has no defer-exit
        # race: tests that defer do so at once (tests of the grace set it themselves).
        "AIRFLOW__RL_PROVIDER__DEFER_GRACE": "0",
        # Local jobs created outside a test's rl_home never land in the user's ~/.rl_provider.
        "RL_PROVIDER_HOME": str(_AIRFLOW_HOME / "rl_provider"),
    }
)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A fresh Airflow metadata database for the session (``airflow db reset``)."""
    from airflow.utils import db

    db.resetdb()
    return _AIRFLOW_HOME


@pytest.fixture
def dags_folder(airflow_db: Path) -> Path:
    return _DAGS_FOLDER


@pytest.fixture
def write_dag(dags_folder: Path) -> Iterator[Callable[[str, str], Path]]:
    """Write DAG source (dedented) into the DAGs folder; return its path.

    The files are removed after the test: ``dag.test()`` parses the whole folder on every run.
    """
    written: list[Path] = []

    def write(source: str, filename: str) -> Path:
        path = dags_folder / filename
        path.write_text(textwrap.dedent(source))
        written.append(path)
        return path

    yield write
    for path in written:
        path.unlink(missing_ok=True)


@pytest.fixture
def rl_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh local-backend home for this test (``RL_PROVIDER_HOME``)."""
    home = tmp_path / "rl_home"
    home.mkdir()
    monkeypatch.setenv("RL_PROVIDER_HOME", str(home))
    return home


@dataclass(frozen=True, slots=True, kw_only=True)
class DagRunResult:
    """What a ``dag.test()`` run left behind."""

    dag_id: str
    run_id: str
    state: str
    task_states: dict[str, str | None]
    try_numbers: dict[str, int]
    log: str

    def xcom(self, task_id: str, key: str = "return_value") -> Any:
        """The stored XCom value (as Airflow keeps it: JSON), or None."""
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            row = (
                session.query(XComModel)
                .filter_by(dag_id=self.dag_id, run_id=self.run_id, task_id=task_id, key=key)
                .one_or_none()
            )
            return None if row is None else row.value

    def xcom_keys(self, task_id: str) -> set[str]:
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            rows = (
                session.query(XComModel.key)
                .filter_by(dag_id=self.dag_id, run_id=self.run_id, task_id=task_id)
                .all()
            )
            return {row[0] for row in rows}


def load_dag(path: Path, dag_id: str) -> Any:
    """Parse one DAG file the way the DAG processor does; fail on import errors."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(path))
    if bag.import_errors:
        raise AssertionError(f"DAG file {path} has import errors: {bag.import_errors}")
    dag = bag.get_dag(dag_id)
    if dag is None:
        raise AssertionError(f"{path} defines no DAG {dag_id!r} (found {sorted(bag.dag_ids)})")
    return dag


@pytest.fixture
def run_dag(airflow_db: Path, capfd: pytest.CaptureFixture[str]) -> Callable[..., DagRunResult]:
    """``run_dag(path, dag_id, **dag_test_kwargs)`` -> ``DagRunResult`` (state, XComs, log).

    The log is everything the run printed (Airflow's task and trigger logs go to stdout under
    ``dag.test()``); it is also echoed back so a failing test shows it.
    """

    def run(path: Path, dag_id: str, **kwargs: Any) -> DagRunResult:
        dag = load_dag(path, dag_id)
        capfd.readouterr()
        dag_run = dag.test(**kwargs)
        out, err = capfd.readouterr()
        sys.stdout.write(out)
        sys.stderr.write(err)
        instances = dag_run.get_task_instances()
        return DagRunResult(
            dag_id=dag_id,
            run_id=dag_run.run_id,
            state=str(dag_run.state),
            task_states={ti.task_id: (str(ti.state) if ti.state else None) for ti in instances},
            try_numbers={ti.task_id: ti.try_number for ti in instances},
            log=out + err,
        )

    return run
