"""Local training jobs under the SageMaker container contract: real entry points, real processes."""

from __future__ import annotations

import json
import os
import signal
import tarfile
import time

import psutil
import pytest

from rl_provider import RLEstimator
from rl_provider.backends.local import LocalBackend
from rl_provider.backends.local.transfer import file_path
from rl_provider.core.enums import SecondaryStatus, TrainingJobStatus
from rl_provider.exceptions import JobFailedError, JobNotFoundError, RLConfigError

CONTRACT = """
import json, os, sys
from pathlib import Path

env = {k: v for k, v in os.environ.items() if k.startswith(("SM_", "SAGEMAKER_", "TRAINING_JOB_NAME", "MY_"))}
channel = Path(os.environ["SM_CHANNEL_TRAINING"])
files = sorted(p.name for p in channel.iterdir())
try:
    (channel / "data.csv").write_text("tampered")  # the job may write its copy, never the source
except OSError:
    pass
configs = {
    name: json.loads((Path(os.environ["SM_INPUT_CONFIG_DIR"]) / name).read_text())
    for name in ("hyperparameters.json", "resourceconfig.json", "inputdataconfig.json")
}
report = {"argv": sys.argv[1:], "env": env, "files": files, "configs": configs, "cwd": os.getcwd(),
          "sys_path0": sys.path[0], "pythonpath": os.environ.get("PYTHONPATH", "").split(os.pathsep)[0]}
Path(os.environ["SM_MODEL_DIR"], "policy.txt").write_text("weights")
Path(os.environ["SM_MODEL_DIR"], "sub").mkdir()
Path(os.environ["SM_MODEL_DIR"], "sub", "extra.bin").write_bytes(b"\\x00\\x01")
Path(os.environ["SM_OUTPUT_DATA_DIR"], "report.json").write_text(json.dumps(report))
for i, value in enumerate([10.0, 12.5, 11.0, 12.5]):
    print(f"iteration {i} episode_reward_mean: {value} episode_reward_max: {value + 5}", flush=True)
print("a warning on stderr", file=sys.stderr)
"""


def members(uri: str) -> dict[str, bytes]:
    with tarfile.open(file_path(uri)) as tar:
        return {
            m.name: tar.extractfile(m).read() if m.isfile() else b"<dir>" for m in tar.getmembers()
        }


def test_contract_end_to_end(backend, write_script, estimator_for, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "data.csv").write_text("1,2\n")
    (data / "more.csv").write_text("3,4\n")
    src = write_script(CONTRACT, extra={"helpers/util.py": "X = 1\n"})
    estimator = estimator_for(
        src,
        hyperparameters={"lr": 0.001, "env": "CartPole-v1", "b": True, "nested": {"a": 1}, "k": 3},
        environment={"MY_FLAG": "on"},
    )
    estimator.fit({"training": str(data)}, job_name="contract-1")

    job = backend.describe_training_job("contract-1")
    assert job.training_job_status is TrainingJobStatus.COMPLETED
    assert [t.status for t in job.secondary_status_transitions] == [
        SecondaryStatus.STARTING,
        SecondaryStatus.DOWNLOADING,
        SecondaryStatus.TRAINING,
        SecondaryStatus.UPLOADING,
        SecondaryStatus.COMPLETED,
    ]
    assert all(t.end_time is not None for t in job.secondary_status_transitions)
    assert job.final_metrics == {"episode_reward_mean": 12.5, "episode_reward_max": 17.5}
    assert [v for _, v in backend.metrics("contract-1")["episode_reward_mean"]] == [
        10.0,
        12.5,
        11.0,
        12.5,
    ]

    # Artifacts: exact contents, at <output_path>/<job>/output/.
    output = backend.default_output_path()
    assert job.model_data == f"{output}/contract-1/output/model.tar.gz"
    assert members(job.model_data) == {
        "policy.txt": b"weights",
        "sub": b"<dir>",
        "sub/extra.bin": b"\x00\x01",
    }
    out = members(f"{output}/contract-1/output/output.tar.gz")
    assert set(out) == {"report.json"}
    report = json.loads(out["report.json"])

    # Hyperparameters: sorted CLI args, one-letter keys with one dash, values as sagemaker-training renders them.
    assert report["argv"] == [
        "-b",
        "True",
        "--env",
        "CartPole-v1",
        "-k",
        "3",
        "--lr",
        "0.001",
        "--nested",
        "a=1",
    ]
    env = report["env"]
    base = backend.home / "jobs" / "contract-1" / "opt_ml"
    assert json.loads(env["SM_HPS"]) == {
        "lr": 0.001,
        "env": "CartPole-v1",
        "b": True,
        "nested": {"a": 1},
        "k": 3,
    }
    expected = {
        "SAGEMAKER_BASE_DIR": str(base),
        "SM_MODEL_DIR": str(base / "model"),
        "SM_CHANNELS": '["training"]',
        "SM_CHANNEL_TRAINING": str(base / "input/data/training"),
        "SM_OUTPUT_DATA_DIR": str(base / "output/data"),
        "SM_OUTPUT_INTERMEDIATE_DIR": str(base / "output/intermediate"),
        "SM_INPUT_DIR": str(base / "input"),
        "SM_INPUT_CONFIG_DIR": str(base / "input/config"),
        "SM_OUTPUT_DIR": str(base / "output"),
        "SM_CURRENT_HOST": "algo-1",
        "SM_HOSTS": '["algo-1"]',
        "SM_NUM_CPUS": str(os.cpu_count()),
        "SM_NUM_GPUS": "0",
        "SM_MODULE_NAME": "train",
        "SM_MODULE_DIR": f"{output}/contract-1/source/sourcedir.tar.gz",
        "SM_LOG_LEVEL": "20",
        "SM_HP_LR": "0.001",
        "SM_HP_ENV": "CartPole-v1",
        "SM_HP_B": "true",
        "SM_HP_NESTED": '{"a": 1}',
        "SM_HP_K": "3",
        "TRAINING_JOB_NAME": "contract-1",
        "MY_FLAG": "on",
    }
    assert {k: env[k] for k in expected} == expected
    assert json.loads(env["SM_USER_ARGS"]) == report["argv"]
    assert json.loads(env["SM_RESOURCE_CONFIG"])["current_host"] == "algo-1"
    assert json.loads(env["SM_INPUT_DATA_CONFIG"])["training"]["TrainingInputMode"] == "File"
    training_env = json.loads(env["SM_TRAINING_ENV"])
    assert training_env["hyperparameters"] == json.loads(env["SM_HPS"])
    assert training_env["channel_input_dirs"] == {"training": expected["SM_CHANNEL_TRAINING"]}
    assert training_env["job_name"] == "contract-1"
    assert report["configs"]["hyperparameters.json"] == job.hyper_parameters
    assert report["configs"]["resourceconfig.json"]["hosts"] == ["algo-1"]
    assert report["files"] == ["data.csv", "more.csv"]
    assert report["cwd"] == str(base / "code")
    assert report["pythonpath"] == str(base / "code")
    assert (data / "data.csv").read_text() == "1,2\n"  # the source data is untouched
    assert (base / "output" / "success").exists()

    # fit() printed the status changes and every log line.
    printed = capsys.readouterr().out
    assert "Training - Training image download completed" in printed
    assert "iteration 3 episode_reward_mean: 12.5" in printed
    assert "a warning on stderr" in printed


def test_fit_attach_and_model_data(backend, write_script, estimator_for):
    estimator = estimator_for(write_script("print('episode_return_mean: 3.5')\n"))
    estimator.fit(job_name="attach-1", logs=False)
    again = RLEstimator.attach("attach-1", backend=backend)
    assert again.toolkit_version == "2.60.0"
    assert again.model_data == estimator.model_data
    assert again.model_data.endswith("/attach-1/output/model.tar.gz")
    assert backend.describe_training_job("attach-1").final_metrics == {"episode_return_mean": 3.5}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            "import sys\nprint('bad things', file=sys.stderr)\nsys.exit(3)\n",
            "AlgorithmError: ExitCode 3\nbad things",
        ),
        ("raise ValueError('no env named Foo-v0')\n", "ValueError: no env named Foo-v0"),
        (
            "import os\nopen(os.path.join(os.environ['SM_OUTPUT_DIR'], 'failure'), 'w').write('Reward diverged')\n"
            "raise SystemExit(1)\n",
            "Reward diverged",
        ),
    ],
)
def test_failing_entry_points(backend, write_script, estimator_for, body, reason):
    estimator = estimator_for(write_script(body))
    with pytest.raises(JobFailedError) as info:
        estimator.fit(job_name="fails-1", logs=False)
    assert info.value.status == "Failed"
    job = backend.describe_training_job("fails-1")
    assert job.training_job_status is TrainingJobStatus.FAILED
    assert reason in job.failure_reason
    assert reason in str(info.value)


SIGTERM_SAVER = """
import os, signal, sys, time
from pathlib import Path

def save_and_exit(*_):
    Path(os.environ["SM_MODEL_DIR"], "checkpoint.txt").write_text("saved on SIGTERM")
    print("checkpoint saved", flush=True)
    sys.exit(0)

signal.signal(signal.SIGTERM, save_and_exit)
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_stop_packages_what_the_sigterm_handler_saved(backend, write_script, estimator_for):
    estimator = estimator_for(write_script(SIGTERM_SAVER))
    estimator.fit(job_name="stop-1", wait=False)
    wait_for(lambda: "ready" in backend.read_logs("stop-1")[0])
    started = time.monotonic()
    backend.stop_training_job("stop-1")
    assert backend.describe_training_job("stop-1").training_job_status in (
        TrainingJobStatus.STOPPING,
        TrainingJobStatus.STOPPED,
    )
    wait_for(lambda: backend.describe_training_job("stop-1").is_terminal)
    assert time.monotonic() - started < backend.stop_grace_seconds
    job = backend.describe_training_job("stop-1")
    assert (job.training_job_status, job.secondary_status) == (
        TrainingJobStatus.STOPPED,
        SecondaryStatus.STOPPED,
    )
    assert members(job.model_data) == {"checkpoint.txt": b"saved on SIGTERM"}
    with pytest.raises(JobFailedError, match="ended Stopped"):
        estimator.latest_training_job.wait(logs=False)


# An entry point with a helper process in its group that exits on SIGTERM (as Ray's GCS, raylet
# and agents do): the helper must still be there while the entry point saves.
SAVER_WITH_HELPER = """
import os, signal, subprocess, sys, time
from pathlib import Path

helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])

def save_and_exit(*_):
    time.sleep(0.5)  # a save that takes a while
    state = "helper alive" if helper.poll() is None else f"helper gone ({helper.returncode})"
    Path(os.environ["SM_MODEL_DIR"], "checkpoint.txt").write_text(state)
    sys.exit(0)

signal.signal(signal.SIGTERM, save_and_exit)
print(f"ready {helper.pid}", flush=True)
while True:
    time.sleep(0.05)
"""


def test_stop_signals_the_entry_point_not_its_helpers(backend, write_script, estimator_for):
    estimator_for(write_script(SAVER_WITH_HELPER)).fit(job_name="stop-helper", wait=False)
    wait_for(lambda: any(line.startswith("ready ") for line in backend.read_logs("stop-helper")[0]))
    ready = next(line for line in backend.read_logs("stop-helper")[0] if line.startswith("ready "))
    helper = psutil.Process(int(ready.split()[1]))
    backend.stop_training_job("stop-helper")
    wait_for(lambda: backend.describe_training_job("stop-helper").is_terminal)

    job = backend.describe_training_job("stop-helper")
    assert job.training_job_status is TrainingJobStatus.STOPPED
    assert members(job.model_data) == {"checkpoint.txt": b"helper alive"}
    # Once the entry point has exited, the rest of its group is killed: no orphan.
    wait_for(lambda: not helper.is_running() or helper.status() == psutil.STATUS_ZOMBIE)


def test_a_stop_right_after_create_ends_stopped_not_failed(backend, write_script, estimator_for):
    """The runner's pid is recorded (and may be signalled) before it reaches its main loop."""
    for attempt in range(3):  # the race window is short: try it a few times
        name = f"stop-early-{attempt}"
        estimator_for(write_script("import time\ntime.sleep(600)\n")).fit(job_name=name, wait=False)
        backend.stop_training_job(name)
        wait_for(lambda n=name: backend.describe_training_job(n).is_terminal)
        job = backend.describe_training_job(name)
        assert job.training_job_status is TrainingJobStatus.STOPPED, job.failure_reason


def test_stop_kills_an_entry_point_that_ignores_sigterm(tmp_path, write_script):
    backend = LocalBackend(tmp_path / "h2", stop_grace_seconds=1.0)
    src = write_script(
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('up', flush=True)\ntime.sleep(600)\n"
    )
    RLEstimator("train.py", source_dir=str(src), image_uri="x/y:1", backend=backend).fit(
        job_name="stubborn", wait=False
    )
    wait_for(lambda: "up" in backend.read_logs("stubborn")[0])
    backend.stop_training_job("stubborn")
    wait_for(lambda: backend.describe_training_job("stubborn").is_terminal, timeout=15)
    assert (
        backend.describe_training_job("stubborn").training_job_status is TrainingJobStatus.STOPPED
    )
    assert "grace period of 1s over, sending SIGKILL" in "\n".join(backend.read_logs("stubborn")[0])


def test_max_runtime_exceeded(backend, write_script, estimator_for):
    estimator = estimator_for(write_script("import time\ntime.sleep(600)\n"), max_run=2)
    started = time.monotonic()
    with pytest.raises(JobFailedError, match="MaxRuntimeExceeded") as info:
        estimator.fit(job_name="slow-1", logs=False)
    assert time.monotonic() - started < 2 + backend.stop_grace_seconds
    assert info.value.status == "Stopped"
    job = backend.describe_training_job("slow-1")
    assert job.secondary_status is SecondaryStatus.MAX_RUNTIME_EXCEEDED
    assert job.max_runtime_exceeded
    assert job.model_data is not None  # artifacts written so far are packaged


def test_killed_runner_fails_the_job_on_the_next_describe(backend, write_script, estimator_for):
    estimator = estimator_for(
        write_script("import time\nprint('up', flush=True)\ntime.sleep(600)\n")
    )
    estimator.fit(job_name="orphan-1", wait=False)
    wait_for(lambda: "up" in backend.read_logs("orphan-1")[0])
    row = backend.store.get_job("orphan-1")
    os.kill(row.runner_pid, signal.SIGKILL)
    wait_for(
        lambda: (
            not psutil.pid_exists(row.runner_pid)
            or psutil.Process(row.runner_pid).status() == psutil.STATUS_ZOMBIE
        )
    )
    # Listing by status sees the job as it really is before anything has described it.
    assert backend.list_training_jobs(StatusEquals="InProgress")["TrainingJobSummaries"] == []
    (failed,) = backend.list_training_jobs(StatusEquals="Failed")["TrainingJobSummaries"]
    assert failed["TrainingJobName"] == "orphan-1"
    job = backend.describe_training_job("orphan-1")
    assert job.training_job_status is TrainingJobStatus.FAILED
    assert f"local runner (pid {row.runner_pid}) exited without finishing it" in job.failure_reason
    wait_for(lambda: not psutil.pid_exists(row.entry_pid))  # no orphaned training process


def test_ten_jobs_at_once_keep_every_line_and_metric(backend, write_script, estimator_for):
    src = write_script(
        "import sys\nfor i in range(200):\n    print(f'step {i} episode_reward_mean: {i}')\n"
        "    print(f'err {i}', file=sys.stderr)\n"
    )
    names = [f"many-{i}" for i in range(10)]
    for name in names:
        estimator_for(src).fit(job_name=name, wait=False)
    for name in names:
        wait_for(lambda name=name: backend.describe_training_job(name).is_terminal, timeout=120)
    for name in names:
        job = backend.describe_training_job(name)
        assert job.training_job_status is TrainingJobStatus.COMPLETED, job.failure_reason
        lines = backend.read_logs(name)[0]
        assert [line for line in lines if line.startswith("step")] == [
            f"step {i} episode_reward_mean: {i}" for i in range(200)
        ]
        assert sum(line.startswith("err") for line in lines) == 200
        assert [v for _, v in backend.metrics(name)["episode_reward_mean"]] == [
            float(i) for i in range(200)
        ]
        assert job.final_metrics == {"episode_reward_mean": 199.0}


def test_read_logs_cursor_returns_each_line_once(backend, write_script, estimator_for):
    estimator_for(write_script("for i in range(5):\n    print(i)\n")).fit(
        job_name="logs-1", logs=False
    )
    lines, cursor = backend.read_logs("logs-1")
    assert lines == ["0", "1", "2", "3", "4"]
    assert backend.read_logs("logs-1", cursor) == ([], cursor)
    with pytest.raises(JobNotFoundError, match="not found"):
        backend.read_logs("nope")


def test_requirements_are_installed_into_a_cached_environment(
    backend, write_script, estimator_for, tmp_path
):
    wheel = make_wheel(tmp_path, "rlp_tiny_dep", "VALUE = 42\n")
    src = write_script(
        "import sys, rlp_tiny_dep\nprint('dep', rlp_tiny_dep.VALUE, sys.prefix)\n",
        extra={"requirements.txt": f"{wheel}\n"},
    )
    estimator_for(src).fit(job_name="req-1", logs=False)
    estimator_for(src).fit(job_name="req-2", logs=False)
    first, second = (backend.read_logs(n)[0] for n in ("req-1", "req-2"))
    assert any(line.startswith("dep 42") for line in first)
    assert any("Installing requirements.txt" in line for line in first)
    assert any("Using the cached environment" in line for line in second)
    assert len(list((backend.home / "envs").glob("*/.complete"))) == 1


def make_wheel(tmp_path, name, code):
    import base64
    import hashlib
    import zipfile

    def record_line(path, data):
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        return f"{path},sha256={digest},{len(data)}"

    dist = f"{name}-1.0.dist-info"
    files = {
        f"{name}.py": code.encode(),
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "\n".join(record_line(p, d) for p, d in files.items()) + f"\n{dist}/RECORD,,\n"
    wheel = tmp_path / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
        zf.writestr(f"{dist}/RECORD", record)
    return wheel


def test_bad_requests_are_refused_before_anything_is_created(
    backend, write_script, estimator_for, monkeypatch
):
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    src = write_script("print(1)\n")
    cases = [
        (
            lambda: estimator_for(src).fit({"training": "s3://bucket/data"}, job_name="s3-1"),
            "need AWS credentials",
        ),
        (
            lambda: estimator_for(src).fit({"training": "/does/not/exist"}, job_name="nofile-1"),
            "does not exist",
        ),
        (
            lambda: estimator_for(
                src, image_uri="my/img:1", instance_count=2, instance_type="ml.c5.xlarge"
            ).fit(job_name="two-1"),
            "one instance",
        ),
        (lambda: estimator_for(src, entry_point="nope.py").fit(job_name="nope-1"), "No file named"),
    ]
    for start, message in cases:
        with pytest.raises(RLConfigError, match=message):
            start()
    assert backend.list_training_jobs()["TrainingJobSummaries"] == []
    estimator_for(src).fit(job_name="dup-1", logs=False)
    with pytest.raises(Exception, match="already exists"):
        estimator_for(src).fit(job_name="dup-1", logs=False)


def test_no_secrets_reach_the_job(backend, write_script, estimator_for, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "SUPERSECRET-aws-key")
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", "aws://AKIA:SUPERSECRET-conn@")
    monkeypatch.setenv("MY_API_TOKEN", "SUPERSECRET-token")
    src = write_script("import os\nfor k, v in sorted(os.environ.items()):\n    print(k, v)\n")
    estimator_for(src).fit(job_name="secrets-1", logs=False)
    job_dir = backend.home / "jobs" / "secrets-1"
    for path in job_dir.rglob("*"):
        if path.is_file():
            assert b"SUPERSECRET" not in path.read_bytes(), path
    assert any(line.startswith("PATH ") for line in backend.read_logs("secrets-1")[0])


def test_list_training_jobs(backend, write_script, estimator_for):
    src = write_script("print(1)\n")
    for name in ("list-a", "list-b"):
        estimator_for(src).fit(job_name=name, logs=False)
    summaries = backend.list_training_jobs()["TrainingJobSummaries"]
    assert [s["TrainingJobName"] for s in summaries] == ["list-b", "list-a"]
    assert backend.list_training_jobs(StatusEquals="Failed")["TrainingJobSummaries"] == []
    assert len(backend.list_training_jobs(MaxResults=1)["TrainingJobSummaries"]) == 1


def test_async_twin_runs_off_the_event_loop(backend, write_script, estimator_for):
    import asyncio
    import threading

    from rl_provider.backends.local import AsyncLocalBackend

    estimator_for(write_script("print('hello')\n")).fit(job_name="async-1", logs=False)
    twin = AsyncLocalBackend(backend)

    worker_threads = set()
    describe = backend.describe_training_job

    def describe_recording_thread(name):  # a real call; only records where it ran
        worker_threads.add(threading.get_ident())
        return describe(name)

    backend.describe_training_job = describe_recording_thread

    async def probe():
        job = await twin.describe_training_job("async-1")
        lines, _ = await twin.read_logs("async-1")
        return job, lines

    job, lines = asyncio.run(probe(), debug=True)
    assert job.training_job_status is TrainingJobStatus.COMPLETED
    assert lines == ["hello"]
    assert worker_threads
    assert threading.get_ident() not in worker_threads
