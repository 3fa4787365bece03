"""RLTrainOperator on the Ray backend under ``dag.test()`` (waiting and deferred): an ``rl``
connection with ``backend: ray``, the cluster's token as its password."""

from __future__ import annotations

import json
import textwrap
import threading
import time
from pathlib import Path

import pendulum
import pytest

from rl_provider.backends.ray.backend import RayBackend
from rl_provider.backends.ray.devcluster import LocalRayCluster

# The Airflow harness sets AIRFLOW_HOME before airflow is imported; its fixtures are reused here.
from tests.airflow.conftest import airflow_db, dags_folder, run_dag, write_dag  # noqa: F401
from tests.airflow.test_train_operator import RUN, run_id_for

pytestmark = pytest.mark.slow
LOGICAL_DATE = pendulum.datetime(2026, 3, 1, tz="UTC")

ENTRY = """
    import os, time
    from pathlib import Path
    print("ray job started", flush=True)
    # Runs until the test says the task has attached (at most a minute).
    flag = Path(os.environ["SM_HP_FLAG"])
    deadline = time.monotonic() + 60
    while not flag.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    Path(os.environ["SM_MODEL_DIR"], "policy.txt").write_text("ok")
    print("episode_reward_mean: 42.0", flush=True)
"""


@pytest.fixture
def ray_conn(ray_cluster: LocalRayCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    conn_id = f"rl_ray_{int(time.time() * 1000)}"
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}",
        json.dumps(
            {
                "conn_type": "rl",
                "password": ray_cluster.token,
                "extra": {
                    "backend": "ray",
                    "address": ray_cluster.dashboard_url,
                    "storage": (tmp_path / "storage").as_uri(),
                    "home": str(tmp_path / "home"),
                },
            }
        ),
    )
    return conn_id


def _dag(dag_id: str, src: Path, conn_id: str, deferrable: bool, flag: str) -> str:
    return textwrap.dedent(
        f"""\
        import pendulum
        from airflow.sdk import DAG

        from rl_provider import RLEstimator
        from rl_provider.operators.train import RLTrainOperator

        with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
            RLTrainOperator(
                task_id="train",
                estimator=RLEstimator(
                    entry_point="train.py",
                    source_dir={str(src)!r},
                    image_uri="rayproject/ray:2.60.0",
                    instance_type="ray",
                    hyperparameters={{"flag": {flag!r}}},
                ),
                conn_id={conn_id!r},
                check_interval=0.5,
                deferrable={deferrable!r},
            )
        """
    )


def _release_when_attached(dag_id: str, flag: str) -> None:
    """Let the entry point finish once the task has attached (it records its link first)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with create_session() as session:
            found = (
                session.query(XComModel)
                .filter_by(dag_id=dag_id, task_id="train", key="rl_training_job_link")
                .first()
            )
        if found is not None:
            Path(flag).touch()
            return
        time.sleep(0.2)


@pytest.mark.parametrize("deferrable", [False, True], ids=["waiting", "deferrable"])
def test_a_retry_reattaches_to_the_ray_job(
    ray_cluster: LocalRayCluster,
    ray_conn: str,
    tmp_path: Path,
    write_dag,  # noqa: F811
    run_dag,  # noqa: F811
    deferrable: bool,
) -> None:
    """The first try created the Ray job and died: the task follows that one job to the end."""
    from rl_provider.operators.train import deterministic_job_name

    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text(textwrap.dedent(ENTRY))
    dag_id = f"ray_reattach_{deferrable}"
    flag = str(tmp_path / "attached")
    name = deterministic_job_name(dag_id, "train", run_id_for(LOGICAL_DATE))
    backend = RayBackend(
        ray_cluster.dashboard_url,
        token=ray_cluster.token,
        storage=(tmp_path / "storage").as_uri(),
    )
    from rl_provider import RLEstimator

    RLEstimator(
        "train.py",
        source_dir=str(src),
        image_uri="rayproject/ray:2.60.0",
        instance_type="ray",
        hyperparameters={"flag": flag},
        backend=backend,
    ).fit(job_name=name, wait=False)

    watcher = threading.Thread(target=_release_when_attached, args=(dag_id, flag), daemon=True)
    watcher.start()
    result = run_dag(
        write_dag(_dag(dag_id, src, ray_conn, deferrable, flag), f"{dag_id}.py"), dag_id, **RUN
    )
    assert result.task_states == {"train": "success"}, result.log
    assert f"Training job {name} exists" in result.log
    # Exactly one Ray job: the first try's.
    listed = backend.list_training_jobs(NameContains="ray-reattach")["TrainingJobSummaries"]
    assert [
        (s["TrainingJobName"], s["TrainingJobStatus"])
        for s in listed
        if s["TrainingJobName"].startswith(name)
    ] == [(name, "Completed")]
    training = result.xcom("train")["Training"]
    assert training["TrainingJobName"] == name
    assert training["ModelArtifacts"]["S3ModelArtifacts"].endswith(f"{name}/output/model.tar.gz")
    assert result.log.count("episode_reward_mean: 42.0") == 1
    if deferrable:
        assert "Pausing task as DEFERRED" in result.log
    from rl_provider.links import RLTrainingJobLink

    link = RLTrainingJobLink().format(result.xcom("train", "rl_training_job_link"))
    assert link == f"{ray_cluster.dashboard_url}/#/jobs/{name}"


def test_rl_ray_retrain_example_dag_trains_on_ray_and_deploys_locally(
    ray_cluster: LocalRayCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    dags_folder,  # noqa: F811
    run_dag,  # noqa: F811
) -> None:
    """dags/rl_ray_retrain.py as shipped: PPO on the cluster (env runners sized from it), then
    evaluate, promote, deploy on this machine and smoke-test, through the rl_ray connection."""
    import shutil

    from rl_provider.backends.local import LocalBackend

    dags = Path(__file__).resolve().parents[3] / "dags"
    shutil.copytree(dags / "cartpole", dags_folder / "cartpole", dirs_exist_ok=True)
    path = Path(shutil.copy(dags / "rl_ray_retrain.py", dags_folder / "rl_ray_retrain.py"))
    monkeypatch.syspath_prepend(str(dags_folder))  # Airflow puts its DAGs folder on sys.path
    home = tmp_path / "home"
    monkeypatch.setenv(
        "AIRFLOW_CONN_RL_RAY",
        json.dumps(
            {
                "conn_type": "rl",
                "password": ray_cluster.token,
                "extra": {
                    "backend": "ray",
                    "address": ray_cluster.dashboard_url,
                    "storage": (tmp_path / "storage").as_uri(),
                    "home": str(home),
                },
            }
        ),
    )
    conf = {"iterations": 1, "threshold": 0, "endpoint_name": "ray-dag", "episodes": 2}
    try:
        result = run_dag(path, "rl_ray_retrain", run_conf=conf)
        assert result.state == "success", (result.task_states, result.log)
        summary = result.xcom("summary")
        assert summary["deployed"] is True
        assert summary["smoke_test_return"] >= 8
        assert "Sized 3 env runners from the cluster" in result.log
        training = result.xcom("train")["Training"]
        assert training["ModelArtifacts"]["S3ModelArtifacts"].startswith(
            (tmp_path / "storage").as_uri()
        )
        served = LocalBackend(home).describe_endpoint("ray-dag")
        assert served.endpoint_status.value == "InService"
    finally:
        local = LocalBackend(home)
        for endpoint in local.list_endpoints()["Endpoints"]:
            local.delete_endpoint(endpoint["EndpointName"])
        (dags_folder / "rl_ray_retrain.py").unlink(missing_ok=True)


def test_ray_settings_round_trip_through_a_trigger_and_keep_the_token_out_of_extras() -> None:
    from rl_provider.exceptions import RLConfigError
    from rl_provider.hooks.rl import BackendKind, BackendSettings

    settings = BackendSettings.from_extras(
        "rl_ray",
        {"backend": "ray", "address": "http://head:8265", "runtime_env": {"pip": ["gymnasium"]}},
        password="s3cret-token",
    )
    assert settings.backend is BackendKind.RAY
    assert "s3cret-token" not in repr(settings)
    assert BackendSettings.from_dict(settings.to_dict()) == settings
    with pytest.raises(RLConfigError, match="unknown extras \\['token'\\]"):
        BackendSettings.from_extras(
            "rl_ray", {"backend": "ray", "address": "http://h:1", "token": "x"}
        )
    with pytest.raises(RLConfigError, match="without an address"):
        BackendSettings.from_extras("rl_ray", {"backend": "ray"})
