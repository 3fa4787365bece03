"""RLTrainOperator under ``dag.test()`` against the local backend, waiting and deferred."""

from __future__ import annotations

import datetime as dt
import json

import pendulum
import pytest

from rl_provider.backends.local import LocalBackend
from rl_provider.core.enums import TrainingJobStatus
from rl_provider.operators.train import deterministic_job_name
from tests.airflow import dagkit
from tests.airflow.dagkit import train_dag, write_entry_point

LOGICAL_DATE = pendulum.datetime(2026, 3, 1, tz="UTC")
# dag.test() names a manual run after run_after: fixing it makes the run id (and so the
# deterministic job name) known before the run.
RUN = {"logical_date": LOGICAL_DATE, "run_after": LOGICAL_DATE}
MODES = [pytest.param(False, id="waiting"), pytest.param(True, id="deferrable")]


def run_id_for(logical_date: dt.datetime) -> str:
    from airflow.models.dagrun import DagRun
    from airflow.utils.types import DagRunType

    return DagRun.generate_run_id(
        run_type=DagRunType.MANUAL, logical_date=logical_date, run_after=logical_date
    )


def is_iso(value: str) -> bool:
    return dt.datetime.fromisoformat(value).tzinfo is not None


@pytest.mark.slow
@pytest.mark.parametrize("deferrable", MODES)
def test_train_renders_templates_and_returns_json_xcoms(
    tmp_path, rl_home, write_dag, run_dag, deferrable
):
    dag_id = f"train_ok_{deferrable}"
    src = write_entry_point(tmp_path)
    path = write_dag(
        train_dag(
            dag_id,
            src,
            hyperparameters={"day": "{{ ds }}"},
            deferrable=deferrable,
            outlets="OUTLETS",
        ).replace("'OUTLETS'", "[model_asset('cartpole')]"),
        f"{dag_id}.py",
    )
    result = run_dag(path, dag_id, **RUN)
    assert result.task_states == {"train": "success"}, result.log

    name = deterministic_job_name(dag_id, "train", result.run_id)
    assert result.xcom("train", "job_name") == name
    # The job really ran with the rendered hyperparameter; its lines reached the task log once.
    assert result.log.count("day=2026-03-01") == 1
    assert result.log.count("line 2: episode_reward_mean: 30.0") == 1

    returned = result.xcom("train")
    assert json.loads(json.dumps(returned)) == returned
    training = returned["Training"]
    assert training["TrainingJobName"] == name
    assert training["TrainingJobStatus"] == "Completed"
    assert json.loads(training["HyperParameters"]["day"]) == "2026-03-01"
    for key in ("CreationTime", "TrainingStartTime", "TrainingEndTime", "LastModifiedTime"):
        assert is_iso(training[key]), (key, training[key])
    assert all(is_iso(t["StartTime"]) for t in training["SecondaryStatusTransitions"])

    if deferrable:  # the lines were printed by the trigger, while the task was deferred
        assert "Pausing task as DEFERRED" in result.log
        line = next(x for x in result.log.splitlines() if "line 2: episode_reward_mean" in x)
        assert "RLTrainingJobTrigger" in line

    model_data = result.xcom("train", "model_data")
    assert model_data == training["ModelArtifacts"]["S3ModelArtifacts"]
    assert model_data.startswith("file://")
    assert model_data.endswith(f"{name}/output/model.tar.gz")
    assert result.xcom("train", "final_metrics") == {"episode_reward_mean": 30.0}

    # On the local backend only the job's page in the Airflow UI (tests/airflow/test_links.py).
    assert result.xcom("train", "_link_RLTrainingLogLink") is None
    assert result.xcom("train", "_link_RLTrainingJobPageLink") == f"/rl/jobs/{name}?conn=rl_default"
    # The model asset got an event carrying the artifact.
    event = asset_events("rl_model/cartpole")[-1]
    assert event["model_data"] == model_data
    assert event["job_name"] == name


def asset_events(uri: str) -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.uri == uri)
            .order_by(AssetEvent.id)
            .all()
        )
        return [dict(row.extra) for row in rows]


def jobs(home) -> dict[str, str]:
    backend = LocalBackend(home)
    summaries = backend.list_training_jobs()["TrainingJobSummaries"]
    return {s["TrainingJobName"]: s["TrainingJobStatus"] for s in summaries}


@pytest.mark.slow
@pytest.mark.parametrize("deferrable", MODES)
def test_failing_entry_point_fails_the_task_with_the_failure_reason(
    tmp_path, rl_home, write_dag, run_dag, deferrable
):
    dag_id = f"train_fail_{deferrable}"
    src = write_entry_point(tmp_path)
    hps = {"fail": "boom: reward collapsed"}
    path = write_dag(train_dag(dag_id, src, hyperparameters=hps, deferrable=deferrable), "f.py")
    result = run_dag(path, dag_id, **RUN)
    assert result.task_states == {"train": "failed"}
    assert result.state == "failed"
    name = deterministic_job_name(dag_id, "train", result.run_id)
    assert f"JobFailedError: Training job {name} ended Failed: " in result.log
    assert "boom: reward collapsed" in result.log
    assert result.xcom("train", "job_name") == name
    assert result.xcom("train") is None  # nothing that looks like a result
    assert jobs(rl_home) == {name: "Failed"}


@pytest.mark.slow
@pytest.mark.parametrize("deferrable", MODES)
def test_max_runtime_exceeded_fails_the_task_and_says_so(
    tmp_path, rl_home, write_dag, run_dag, deferrable
):
    dag_id = f"train_maxrun_{deferrable}"
    src = write_entry_point(tmp_path)
    source = train_dag(
        dag_id,
        src,
        hyperparameters={"sleep": 60},
        estimator_kwargs={"max_run": 1},
        deferrable=deferrable,
    )
    result = run_dag(write_dag(source, "m.py"), dag_id, **RUN)
    assert result.task_states == {"train": "failed"}
    name = deterministic_job_name(dag_id, "train", result.run_id)
    assert f"Training job {name} ended Stopped: " in result.log
    assert "MaxRuntimeExceeded: the job was stopped at MaxRuntimeInSeconds" in result.log
    assert jobs(rl_home) == {name: "Stopped"}


def start_job(home, src, name: str, **hyperparameters) -> LocalBackend:
    backend = LocalBackend(home)
    dagkit.start_job(backend, src, name, **hyperparameters)
    return backend


@pytest.mark.slow
@pytest.mark.parametrize("deferrable", MODES)
@pytest.mark.parametrize("finished", [False, True], ids=["running", "completed"])
def test_a_retry_reattaches_to_the_job_of_a_killed_worker(
    tmp_path, rl_home, write_dag, run_dag, deferrable, finished
):
    """The first try's worker died after creating the job: the task follows that one job."""
    dag_id = f"train_reattach_{deferrable}_{finished}"
    src = write_entry_point(tmp_path)
    name = deterministic_job_name(dag_id, "train", run_id_for(LOGICAL_DATE))
    backend = start_job(rl_home, src, name, sleep=0 if finished else 1.5)
    if finished:
        wait_terminal(backend, name)
    source = train_dag(dag_id, src, deferrable=deferrable)
    result = run_dag(write_dag(source, "r.py"), dag_id, **RUN)
    assert result.run_id == run_id_for(LOGICAL_DATE)
    assert result.task_states == {"train": "success"}, result.log
    assert f"Training job {name} exists" in result.log
    assert jobs(rl_home) == {name: "Completed"}  # exactly one job
    assert result.xcom("train")["Training"]["TrainingJobName"] == name


@pytest.mark.slow
def test_a_retry_after_a_failed_job_starts_a_new_named_job(tmp_path, rl_home, write_dag, run_dag):
    dag_id = "train_retry"
    src = write_entry_point(tmp_path)
    marker = tmp_path / "second-attempt"
    source = train_dag(
        dag_id,
        src,
        hyperparameters={"fail_unless_exists": str(marker)},
        retries=1,
        retry_delay=dt.timedelta(0),
    )
    result = run_dag(write_dag(source, "rr.py"), dag_id, **RUN)
    assert result.task_states == {"train": "success"}, result.log
    assert result.try_numbers == {"train": 2}
    name = deterministic_job_name(dag_id, "train", result.run_id)
    assert jobs(rl_home) == {name: "Failed", f"{name}-r2": "Completed"}
    assert result.xcom("train", "job_name") == f"{name}-r2"


@pytest.mark.slow
def test_killing_the_task_stops_the_job(tmp_path, rl_home, write_dag, run_dag):
    """execution_timeout kills the task the way Airflow does (on_kill), under dag.test()."""
    dag_id = "train_kill"
    src = write_entry_point(tmp_path)
    source = train_dag(
        dag_id, src, hyperparameters={"sleep": 120}, execution_timeout=dt.timedelta(seconds=4)
    )
    result = run_dag(write_dag(source, "k.py"), dag_id, **RUN)
    assert result.task_states == {"train": "failed"}
    name = deterministic_job_name(dag_id, "train", result.run_id)
    assert f"Task killed: stopping training job {name}" in result.log
    backend = LocalBackend(rl_home)
    description = wait_terminal(backend, name)
    assert description.training_job_status is TrainingJobStatus.STOPPED


def wait_terminal(backend, name, timeout=60.0):
    import time

    deadline = time.monotonic() + timeout
    while True:
        description = backend.describe_training_job(name)
        if description.is_terminal or time.monotonic() > deadline:
            return description
        time.sleep(0.2)


@pytest.mark.parametrize(
    ("operator_kwargs", "message"),
    [
        (
            {"action_if_job_exists": "overwrite"},
            "Invalid action_if_job_exists 'overwrite': valid values are 'reattach', 'timestamp', 'fail'",
        ),
        ({"check_interval": 0}, "check_interval=0: pass a positive number"),
        ({"job_name": "bad_name!"}, "Invalid training job name 'bad_name!'"),
        ({"conn_id": "rl_missing"}, "'rl_missing' does not exist"),
    ],
)
def test_bad_arguments_fail_at_once_without_retries_or_jobs(
    tmp_path, rl_home, write_dag, run_dag, operator_kwargs, message
):
    dag_id = "train_bad"
    src = write_entry_point(tmp_path)
    source = train_dag(dag_id, src, retries=3, **operator_kwargs)
    result = run_dag(write_dag(source, "b.py"), dag_id, **RUN)
    assert result.task_states == {"train": "failed"}
    assert result.try_numbers == {"train": 1}  # AirflowFailException: no retry
    assert message in result.log
    assert jobs(rl_home) == {}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("action", "expect_new"), [("fail", False), ("timestamp", True)], ids=["fail", "timestamp"]
)
def test_action_if_job_exists(tmp_path, rl_home, write_dag, run_dag, action, expect_new):
    dag_id = f"train_exists_{action}"
    src = write_entry_point(tmp_path)
    name = deterministic_job_name(dag_id, "train", run_id_for(LOGICAL_DATE))
    start_job(rl_home, src, name)
    source = train_dag(dag_id, src, action_if_job_exists=action)
    result = run_dag(write_dag(source, "e.py"), dag_id, **RUN)
    names = set(jobs(rl_home))
    if expect_new:
        assert result.task_states == {"train": "success"}, result.log
        new = result.xcom("train", "job_name")
        assert names == {name, new}
        assert new.startswith(name)
        assert new != name
    else:
        assert result.task_states == {"train": "failed"}
        assert f"Training job {name} exists" in result.log
        assert "action_if_job_exists='fail'" in result.log
        assert names == {name}


def test_every_estimator_template_field_is_an_attribute(tmp_path):
    """Airflow getattr/setattr's each name; a stale one would break every templated DAG."""
    from rl_provider import RLEstimator

    estimator = RLEstimator(
        entry_point="train.py", toolkit="ray", toolkit_version="2.60.0", framework="pytorch"
    )
    for name in RLEstimator.template_fields:
        assert hasattr(estimator, name), name
    for expected in ("_hyperparameters", "output_path", "base_job_name", "environment", "tags"):
        assert expected in RLEstimator.template_fields


@pytest.mark.parametrize(
    ("dag_id", "task_id", "run_id", "map_index", "base", "prefix"),
    [
        ("weekly", "train", "manual__2026-03-01T00:00:00+00:00", -1, None, "weekly-train-"),
        ("my_dag.v2", "group.train_ppo", "scheduled__x", -1, None, "my-dag-v2-group-train-ppo-"),
        ("d" * 250, "t" * 250, "r" * 250, -1, None, "d" * 47 + "-"),
        ("weekly", "train", "manual__x", 3, "cartpole-ppo", "cartpole-ppo-"),
        ("___", "...", "manual__x", -1, None, "rl-"),
    ],
)
def test_deterministic_job_names_are_valid_stable_and_leave_room_for_retries(
    dag_id, task_id, run_id, map_index, base, prefix
):
    from rl_provider.core.naming import NAME_PATTERN
    from rl_provider.operators.job import retry_name

    name = deterministic_job_name(dag_id, task_id, run_id, map_index, base=base)
    assert name == deterministic_job_name(dag_id, task_id, run_id, map_index, base=base)
    assert name.startswith(prefix)
    assert NAME_PATTERN.match(name)
    assert NAME_PATTERN.match(retry_name(name, 999))
    assert retry_name(name, 999).startswith(name)  # the retry suffix never cuts the name
    others = {
        deterministic_job_name(dag_id, task_id, run_id + "x", map_index, base=base),
        deterministic_job_name(dag_id, task_id, run_id, map_index + 1, base=base),
        deterministic_job_name(dag_id + "x", task_id, run_id, map_index, base=base),
    }
    assert name not in others


@pytest.mark.parametrize(
    ("event", "error", "message"),
    [
        (
            {"status": "failed", "failure_reason": "AlgorithmError: boom"},
            "JobFailedError",
            "Training job j ended Failed: AlgorithmError: boom",
        ),
        (
            {"status": "stopped", "secondary_status": "MaxRuntimeExceeded"},
            "JobFailedError",
            "MaxRuntimeExceeded: the job was stopped at MaxRuntimeInSeconds",
        ),
        (
            {"status": "stopped"},
            "JobFailedError",
            "Training job j ended Stopped: stopped before it completed",
        ),
        ({"status": "timeout", "message": "waited 5 s"}, "AirflowException", "waited 5 s"),
        ({"status": "error"}, "AirflowException", "Training job j: error"),
    ],
)
def test_trigger_events_map_to_one_error_for_operator_and_sensor(event, error, message):
    # RLTrainOperator and RLTrainingJobSensor both resume through training_event_error.
    from rl_provider.operators.job import training_event_error

    err = training_event_error("j", event)
    assert type(err).__name__ == error
    assert message in str(err)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("grace", "defers"), [pytest.param("30", False, id="short"), pytest.param("1", True, id="long")]
)
def test_a_deferrable_task_waits_the_grace_in_the_worker_first(
    tmp_path, rl_home, write_dag, run_dag, monkeypatch, grace, defers
):
    """A job shorter than the defer grace never defers (no defer-exit race to lose); a longer
    one defers, and the lines printed by the worker and by the trigger each appear once."""
    monkeypatch.setenv("AIRFLOW__RL_PROVIDER__DEFER_GRACE", grace)
    dag_id = f"train_grace_{defers}"
    src = write_entry_point(tmp_path)
    source = train_dag(dag_id, src, hyperparameters={"lines": 10, "interval": 0.3}, deferrable=True)
    result = run_dag(write_dag(source, "g.py"), dag_id, **RUN)
    assert result.task_states == {"train": "success"}, result.log
    assert ("Pausing task as DEFERRED" in result.log) is defers
    for i in range(10):
        assert result.log.count(f"line {i}: episode_reward_mean") == 1, i
    if defers:  # the trigger took over in the middle of the job
        assert result.log.index("Pausing task as DEFERRED") < result.log.index("line 9:")
