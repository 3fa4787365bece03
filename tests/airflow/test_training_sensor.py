"""RLTrainingJobSensor under ``dag.test()``: poke, reschedule and deferrable modes."""

from __future__ import annotations

import time

import pendulum
import pytest

from rl_provider.backends.local import LocalBackend
from rl_provider.sensors.training_job import log_cursor_variable
from tests.airflow.dagkit import train_dag, write_entry_point

RUN = {
    "logical_date": pendulum.datetime(2026, 3, 1, tz="UTC"),
    "run_after": pendulum.datetime(2026, 3, 1, tz="UTC"),
}
MODES = [
    pytest.param({"mode": "poke"}, id="poke"),
    pytest.param({"mode": "reschedule"}, id="reschedule"),
    pytest.param({"deferrable": True}, id="deferrable"),
]
LINES = [f"line {i}: episode_reward_mean: {10.0 * (i + 1)}" for i in range(6)]


def sensor_source(job_name: str, **kwargs) -> str:
    args = "".join(f", {key}={value!r}" for key, value in kwargs.items())
    return (
        f"RLTrainingJobSensor(task_id='wait', job_name={job_name!r}, poke_interval=0.2, "
        f"timeout=300{args})"
    )


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_train_then_sensor_prints_each_line_once(tmp_path, rl_home, write_dag, run_dag, mode):
    dag_id = f"sensor_ok_{next(iter(mode.values()))}"
    src = write_entry_point(tmp_path)
    job = "{{ ti.xcom_pull(task_ids='train', key='job_name') }}"
    source = train_dag(
        dag_id,
        src,
        # Output over ~3 s, so the sensor pokes several times while lines keep coming.
        hyperparameters={"lines": 6, "interval": 0.5},
        wait_for_completion=False,
        downstream=f"train >> {sensor_source(job, **mode)}\n",
    )
    result = run_dag(write_dag(source, f"{dag_id}.py"), dag_id, **RUN)
    assert result.task_states == {"train": "success", "wait": "success"}, result.log
    name = result.xcom("train", "job_name")
    assert result.xcom("wait")["Training"]["TrainingJobName"] == name
    assert result.xcom("wait")["Training"]["TrainingJobStatus"] == "Completed"
    messages = [_message(x) for x in result.log.splitlines()]
    for line in [*LINES, "done"]:
        assert messages.count(line) == 1, (line, messages.count(line))
    pokes = sum(1 for x in result.log.splitlines() if f"Training job {name}: InProgress" in x)
    if "mode" in mode:
        assert pokes >= 2, "the sensor should have poked while the job ran"
    if mode.get("mode") == "reschedule":
        assert "Rescheduling task" in result.log or "UP_FOR_RESCHEDULE" in result.log.upper()
        assert variable(log_cursor_variable(dag_id, "wait", result.run_id, -1)) is None


def _message(log_line: str) -> str:
    """The message of an Airflow console log line (``<time> [info     ] <message>  [logger]``)."""
    _, _, rest = log_line.partition("] ")
    return rest.rsplit(" [", 1)[0].rstrip()


def variable(key: str):
    from airflow.models.variable import Variable as VariableModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(VariableModel).filter_by(key=key).one_or_none()
        return None if row is None else row.val


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_sensor_fails_on_a_failed_job(tmp_path, rl_home, write_dag, run_dag, mode):
    from rl_provider import RLEstimator

    src = write_entry_point(tmp_path)
    RLEstimator(
        entry_point="train.py",
        source_dir=str(src),
        toolkit="ray",
        toolkit_version="2.60.0",
        framework="pytorch",
        hyperparameters={"fail": "boom: diverged"},
        backend=LocalBackend(rl_home),
    ).fit(wait=False, job_name="doomed")
    dag_id = f"sensor_fail_{next(iter(mode.values()))}"
    source = f"""\
        import pendulum
        from airflow.sdk import DAG
        from rl_provider.sensors.training_job import RLTrainingJobSensor

        with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
            {sensor_source("doomed", **mode)}
        """
    result = run_dag(write_dag(source, f"{dag_id}.py"), dag_id, **RUN)
    assert result.task_states == {"wait": "failed"}
    assert "Training job doomed ended Failed: " in result.log
    assert "boom: diverged" in result.log


@pytest.mark.slow
def test_sensor_fails_on_a_stopped_job_without_blaming_max_runtime(
    tmp_path, rl_home, write_dag, run_dag
):
    from rl_provider import RLEstimator

    backend = LocalBackend(rl_home, stop_grace_seconds=5.0)
    RLEstimator(
        entry_point="train.py",
        source_dir=str(write_entry_point(tmp_path)),
        toolkit="ray",
        toolkit_version="2.60.0",
        framework="pytorch",
        hyperparameters={"sleep": 120},
        backend=backend,
    ).fit(wait=False, job_name="halted")
    # Stop it once the entry point runs (a stop during the runner's start-up is another story).
    deadline = time.monotonic() + 60
    while not backend.read_logs("halted")[0] and time.monotonic() < deadline:
        time.sleep(0.1)
    backend.stop_training_job("halted")
    source = f"""\
        import pendulum
        from airflow.sdk import DAG
        from rl_provider.sensors.training_job import RLTrainingJobSensor

        with DAG("sensor_stopped", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
            {sensor_source("halted")}
        """
    result = run_dag(write_dag(source, "stopped.py"), "sensor_stopped", **RUN)
    assert result.task_states == {"wait": "failed"}
    assert "Training job halted ended Stopped: stopped before it completed" in result.log
    assert "MaxRuntimeExceeded" not in result.log
