"""What a production user does to deferred training tasks, in a real deployment (issue 10).

Scheduler, triggerer, dag-processor and api-server run as separate processes (``conftest.py``);
everything is driven through the REST API. Jobs use the tiny entry point (seconds, no RLlib).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from rl_provider.backends.local import LocalBackend
from rl_provider.core.enums import TrainingJobStatus
from tests.airflow.dagkit import start_job, write_entry_point
from tests.deployment.conftest import Deployment, wait_until
from tests.test_cli import one_line_error, tree

pytestmark = pytest.mark.slow

RL_PROVIDER = Path(sys.executable).with_name("rl-provider")
LINE = re.compile(r"line (\d+): episode_reward_mean")


def jobs(deployment: Deployment) -> dict[str, TrainingJobStatus]:
    backend = LocalBackend(home=deployment.rl_home)
    summaries = backend.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]
    return {s["TrainingJobName"]: TrainingJobStatus(s["TrainingJobStatus"]) for s in summaries}


def jobs_named(deployment: Deployment, prefix: str) -> list[str]:
    return [name for name in jobs(deployment) if name.startswith(prefix)]


def job_of(deployment: Deployment, dag_id: str, run_id: str) -> str:
    """The training job the run's train task follows (its ``job_name`` XCom; "" before)."""
    try:
        xcom = deployment.api(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/train/xcomEntries/job_name"
            "?deserialize=true",
        )
    except AssertionError as err:
        if "-> 404" in str(err):
            return ""
        raise
    return str(xcom["value"])


def line_counts(log: str) -> Counter[int]:
    return Counter(int(m.group(1)) for m in LINE.finditer(log))


def start_waiting(deployment: Deployment, dag_id: str, state: str, lines: int) -> tuple[str, str]:
    """Trigger ``dag_id``; return (run id, job name) once its train task is in ``state`` and
    its log has ``lines`` of the job's lines."""
    run_id = deployment.trigger(dag_id)
    deployment.wait_task_state(dag_id, run_id, "train", state)
    name = wait_until(lambda: job_of(deployment, dag_id, run_id), "the job name")
    wait_until(
        lambda: len(line_counts(deployment.task_log(dag_id, run_id, "train", 1))) >= lines,
        f"{lines} lines in the task log",
        timeout=60,
    )
    return run_id, name


def test_conn_lists_the_jobs_of_a_connection_created_through_the_rest_api(
    deployment: Deployment, tmp_path: Path
) -> None:
    """``rl-provider --conn rl_default jobs list`` finds a connection made the way a user makes
    it (the REST API stores it in the metadata database) and lists that connection's home; an
    unknown id is a one-line exit 2; no read creates a home or a state.db anywhere."""
    home = tmp_path / "rest-home"
    backend = LocalBackend(home)
    src = write_entry_point(tmp_path)
    expected = {"rest-completed": "Completed", "rest-failed": "Failed"}
    for name, hyperparameters in (("rest-completed", {}), ("rest-failed", {"fail": "on purpose"})):
        start_job(backend, src, name, **hyperparameters)
    for name in expected:
        wait_until(
            lambda name=name: backend.describe_training_job(name).is_terminal, f"{name} ended", 60
        )
    # The deployment's settings (AIRFLOW_HOME, its database) as a shell on that machine has them:
    # the connection lives only in the database, and no RL_PROVIDER_HOME is there to fall back on.
    env = {
        **{
            k: v
            for k, v in deployment.env.items()
            if k != "RL_PROVIDER_HOME" and not k.startswith("AIRFLOW_CONN_")
        },
        "NO_COLOR": "1",
    }
    cwd = tmp_path / "cwd"
    cwd.mkdir()

    def jobs_list(conn_id: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(RL_PROVIDER), "--conn", conn_id, "jobs", "list", "--json"],
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd,
            timeout=180,
        )

    def state_dbs() -> set[Path]:
        return {*deployment.home.rglob("state.db*"), *tmp_path.rglob("state.db*")}

    before = (tree(home), state_dbs())
    # This test runs first in the module: the other tests' DAGs use rl_default, removed below.
    deployment.api(
        "POST",
        "/connections",
        {
            "connection_id": "rl_default",
            "conn_type": "rl",
            "extra": json.dumps({"backend": "local", "home": str(home)}),
        },
    )
    try:
        listed = jobs_list("rl_default")
        unknown = jobs_list("rl_typo")
    finally:
        deployment.api("DELETE", "/connections/rl_default")

    assert listed.returncode == 0, listed.stderr
    summaries = json.loads(listed.stdout)["TrainingJobSummaries"]
    assert {s["TrainingJobName"]: s["TrainingJobStatus"] for s in summaries} == expected
    assert unknown.returncode == 2
    assert "'rl_typo' does not exist" in one_line_error(unknown)
    assert (tree(home), state_dbs()) == before  # no read wrote a state.db or into the home
    assert not (deployment.home / "rl_provider").exists()  # the default home was not created
    assert not any(cwd.iterdir())


@pytest.mark.parametrize(
    ("dag_id", "state"), [("rl_deploy_clear", "deferred"), ("rl_deploy_clear_sync", "running")]
)
def test_clearing_a_waiting_train_task_starts_one_new_job(
    deployment: Deployment, dag_id: str, state: str
) -> None:
    run_id, first = start_waiting(deployment, dag_id, state, lines=3)

    deployment.api(
        "POST",
        f"/dags/{dag_id}/clearTaskInstances",
        {"dry_run": False, "dag_run_id": run_id, "task_ids": ["train"], "only_failed": False},
    )

    assert deployment.wait_run_done(dag_id, run_id) == "success"
    ti = deployment.task(dag_id, run_id, "train")
    assert ti["try_number"] == 2
    second = job_of(deployment, dag_id, run_id)
    assert second == f"{first}-r2"
    ours = {name: status for name, status in jobs(deployment).items() if name.startswith(first)}
    assert ours == {first: TrainingJobStatus.STOPPED, second: TrainingJobStatus.COMPLETED}
    wait_until(lambda: not deployment.job_processes(), "no job process left", timeout=30)
    # The new try's log has the new job's lines, each once, from the first.
    counts = line_counts(deployment.task_log(dag_id, run_id, "train", 2))
    assert counts == Counter(range(40)), counts


def test_a_triggerer_restart_prints_each_log_line_once(deployment: Deployment) -> None:
    dag_id = "rl_deploy_restart"
    # The worker prints ~20 lines during the defer grace: at 25 the trigger has printed some.
    # Then restart the triggerer in the middle of the job.
    run_id, _ = start_waiting(deployment, dag_id, "deferred", lines=25)
    deployment.stop("triggerer")
    deployment.start("triggerer")

    assert deployment.wait_run_done(dag_id, run_id) == "success"
    log = deployment.task_log(dag_id, run_id, "train", 1)
    counts = line_counts(log)
    assert counts == Counter(range(50)), {n: c for n, c in counts.items() if c != 1}
    assert len(jobs_named(deployment, job_of(deployment, dag_id, run_id))) == 1


@pytest.mark.parametrize("dag_id", ["rl_deploy_mark_failed", "rl_deploy_mark_failed_sync"])
def test_marking_a_waiting_train_task_failed_stops_its_job(
    deployment: Deployment, dag_id: str
) -> None:
    state = "deferred" if dag_id == "rl_deploy_mark_failed" else "running"
    # The worker prints ~20 lines during the defer grace; more means the trigger runs (a trigger
    # removed before the triggerer loaded it gets no on_kill from Airflow: see docs/DESIGN.md).
    run_id, name = start_waiting(deployment, dag_id, state, lines=30)
    assert jobs(deployment)[name] is TrainingJobStatus.IN_PROGRESS

    marked = time.monotonic()
    deployment.api(
        "PATCH",
        f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/train",
        {"new_state": "failed"},
    )
    wait_until(
        lambda: jobs(deployment)[name] is TrainingJobStatus.STOPPED, "job Stopped", timeout=60
    )
    wait_until(lambda: not deployment.job_processes(), "no job process left", timeout=30)
    stopped_after = time.monotonic() - marked
    assert deployment.task(dag_id, run_id, "train")["state"] == "failed"
    assert stopped_after < 30, stopped_after
    if state == "running":
        # The task process ended by itself within Airflow's 5 s before SIGKILL: no escalation.
        ti_id = deployment.task(dag_id, run_id, "train")["id"]
        wait_until(
            lambda: any(
                "Workload finished" in line and ti_id in line
                for line in deployment.log_of("scheduler").splitlines()
            ),
            "the task process to end",
            timeout=60,
        )
        assert "did not terminate in time" not in deployment.log_of("scheduler")


def test_clearing_a_deferred_deploy_task_waits_for_the_change_it_started(
    deployment: Deployment,
) -> None:
    dag_id = "rl_deploy_clear_deploy"
    endpoint = "rl-deploy-clear"
    backend = LocalBackend(home=deployment.rl_home)
    run_id = deployment.trigger(dag_id)
    try:
        deployment.wait_task_state(dag_id, run_id, "deploy", "deferred", timeout=180)
        assert backend.describe_endpoint(endpoint).endpoint_status.value == "Creating"
        deployment.api(
            "POST",
            f"/dags/{dag_id}/clearTaskInstances",
            {"dry_run": False, "dag_run_id": run_id, "task_ids": ["deploy"], "only_failed": False},
        )
        assert deployment.wait_run_done(dag_id, run_id) == "success"
        assert deployment.task(dag_id, run_id, "deploy")["try_number"] == 2
        assert backend.describe_endpoint(endpoint).endpoint_status.value == "InService"
        # The new try waited for the change the cleared try started, and changed nothing.
        log = deployment.task_log(dag_id, run_id, "deploy", 2)
        assert "waiting for that change to finish" in log
        assert "already serves model" in log
        assert "Creating endpoint" not in log
        assert "Updating endpoint" not in log
    finally:
        backend.delete_endpoint(endpoint)  # no model server left behind
