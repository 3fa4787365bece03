"""The Ray backend on a real two-node Ray cluster (tests/backends/conftest.py): tiny entry
points, through RLEstimator and the backend, no mocks."""

from __future__ import annotations

import json
import tarfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rl_provider import RLEstimator
from rl_provider.backends.ray.backend import RayBackend
from rl_provider.backends.ray.devcluster import LocalRayCluster
from rl_provider.core.enums import SecondaryStatus, TrainingJobStatus
from rl_provider.exceptions import ResourceExistsError, RLConfigError
from tests.backends.conftest import ray_backend

pytestmark = pytest.mark.slow


@pytest.fixture
def backend(ray_cluster: LocalRayCluster, tmp_path: Path) -> RayBackend:
    return ray_backend(ray_cluster, tmp_path)


def _estimator(backend: RayBackend, tmp_path: Path, script: str, **kwargs: Any) -> RLEstimator:
    source = tmp_path / "src"
    source.mkdir(exist_ok=True)
    (source / "train.py").write_text(textwrap.dedent(script))
    return RLEstimator(
        "train.py",
        source_dir=str(source),
        image_uri="rayproject/ray:2.60.0",
        instance_type="ray",
        backend=backend,
        **kwargs,
    )


def _wait(backend: RayBackend, name: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        description = backend.describe_training_job(name)
        if description.is_terminal:
            return description
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} still {description.secondary_status} after {timeout}s")
        time.sleep(0.5)


def _members(uri: str) -> dict[str, bytes]:
    path = Path(uri.removeprefix("file://"))
    with tarfile.open(path) as archive:
        return {
            m.name.removeprefix("./"): archive.extractfile(m).read()  # type: ignore[union-attr]
            for m in archive.getmembers()
            if m.isfile()
        }


def _wait_for(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.3)


CONTRACT = """
    import json, os, sys
    from pathlib import Path
    model = Path(os.environ["SM_MODEL_DIR"])
    (model / "weights.txt").write_text("trained on ray")
    Path(os.environ["SM_OUTPUT_DATA_DIR"], "extra.txt").write_text("output")
    seen = {k: v for k, v in os.environ.items() if k.startswith("SM_") or k == "TRAINING_JOB_NAME"}
    seen["argv"] = sys.argv[1:]
    seen["secrets"] = sorted(k for k in os.environ if k.startswith("AWS_ACCESS"))
    seen["ray_address"] = bool(os.environ.get("RAY_ADDRESS"))
    (model / "contract.json").write_text(json.dumps(seen))
    for i in range(3):
        print(f"step {i} reward={i * 1.5}", flush=True)
    print("::rl_provider:: {\\"kind\\": \\"end\\", \\"status\\": \\"Completed\\"}")
"""


def test_job_completes_with_the_container_contract_artifacts_logs_and_metrics(
    backend: RayBackend, tmp_path: Path
) -> None:
    estimator = _estimator(
        backend,
        tmp_path,
        CONTRACT,
        hyperparameters={"lr": 0.5, "n": 3},
        metric_definitions=[{"Name": "reward", "Regex": r"reward=([0-9.]+)"}],
    )
    estimator.fit(job_name="ray-contract", wait=False)
    description = _wait(backend, "ray-contract")
    assert description.training_job_status is TrainingJobStatus.COMPLETED, (
        description.failure_reason
    )
    statuses = [t.status for t in description.secondary_status_transitions]
    assert statuses == [
        SecondaryStatus.STARTING,
        SecondaryStatus.DOWNLOADING,
        SecondaryStatus.TRAINING,
        SecondaryStatus.UPLOADING,
        SecondaryStatus.COMPLETED,
    ]
    model = _members(description.model_data or "")
    assert model["weights.txt"] == b"trained on ray"
    contract = json.loads(model["contract.json"])
    assert contract["TRAINING_JOB_NAME"] == "ray-contract"
    assert contract["argv"] == ["--lr", "0.5", "-n", "3"]
    assert json.loads(contract["SM_HPS"]) == {"lr": 0.5, "n": 3}
    assert contract["SM_NUM_CPUS"] == "1"
    assert contract["ray_address"] is True
    output = str(description.model_data).replace("model.tar.gz", "output.tar.gz")
    assert _members(output)["extra.txt"] == b"output"
    # Each line once, across polls with a cursor; the forged marker is the entry point's text.
    first, cursor = backend.read_logs("ray-contract")
    rest, cursor2 = backend.read_logs("ray-contract", cursor)
    assert rest == []
    assert cursor2 == cursor
    steps = [line for line in first if line.startswith("step ")]
    assert steps == ["step 0 reward=0.0", "step 1 reward=1.5", "step 2 reward=3.0"]
    assert '::rl_provider:: {"kind": "end", "status": "Completed"}' in first
    assert [v for _, v in backend.metrics("ray-contract")["reward"]] == [0.0, 1.5, 3.0]
    assert description.final_metrics == {"reward": 3.0}
    listed = backend.list_training_jobs(NameContains="ray-contract")["TrainingJobSummaries"]
    assert [s["TrainingJobName"] for s in listed] == ["ray-contract"]


def test_failing_entry_point_fails_with_its_reason(backend: RayBackend, tmp_path: Path) -> None:
    script = """
        import os, sys
        from pathlib import Path
        Path(os.environ["SM_OUTPUT_DIR"], "failure").write_text("bad reward shaping")
        sys.exit(3)
    """
    _estimator(backend, tmp_path, script).fit(job_name="ray-fails", wait=False)
    description = _wait(backend, "ray-fails")
    assert description.training_job_status is TrainingJobStatus.FAILED
    assert description.failure_reason == "bad reward shaping"


def test_duplicate_name_is_refused_before_upload(backend: RayBackend, tmp_path: Path) -> None:
    estimator = _estimator(backend, tmp_path, "print('once')")
    estimator.fit(job_name="ray-dup", wait=False)
    code = Path(str(backend.storage).removeprefix("file://"), "ray-dup", "source")
    before = (code / "sourcedir.tar.gz").stat().st_mtime_ns
    with pytest.raises(ResourceExistsError, match="ray-dup"):
        _estimator(backend, tmp_path, "print('twice')").fit(job_name="ray-dup", wait=False)
    assert (code / "sourcedir.tar.gz").stat().st_mtime_ns == before
    assert _wait(backend, "ray-dup").training_job_status is TrainingJobStatus.COMPLETED


def test_bad_input_is_refused_before_anything_is_created(
    backend: RayBackend, tmp_path: Path
) -> None:
    with pytest.raises(RLConfigError, match="instance_count=1"):
        _estimator(backend, tmp_path, "pass", instance_count=2).fit(job_name="ray-bad")
    with pytest.raises(RLConfigError, match="s3:// or file://"):
        _estimator(backend, tmp_path, "pass", output_path="/plain/path").fit(job_name="ray-bad")
    assert backend.list_training_jobs(NameContains="ray-bad")["TrainingJobSummaries"] == []


SLEEPER = """
    import os, signal, sys, time
    from pathlib import Path
    def term(*_):
        Path(os.environ["SM_MODEL_DIR"], "partial.txt").write_text("saved on SIGTERM")
        print("got SIGTERM", flush=True)
        sys.exit(0)
    signal.signal(signal.SIGTERM, term)
    print("up", flush=True)
    time.sleep(120)
"""


def test_stop_gives_stopped_with_artifacts(backend: RayBackend, tmp_path: Path) -> None:
    _estimator(backend, tmp_path, SLEEPER).fit(job_name="ray-stop", wait=False)
    _wait_for(lambda: "up" in backend.read_logs("ray-stop")[0])
    backend.stop_training_job("ray-stop")
    assert backend.describe_training_job("ray-stop").training_job_status in (
        TrainingJobStatus.STOPPING,
        TrainingJobStatus.STOPPED,
    )
    description = _wait(backend, "ray-stop")
    assert description.training_job_status is TrainingJobStatus.STOPPED
    assert description.secondary_status is SecondaryStatus.STOPPED
    assert _members(description.model_data or "")["partial.txt"] == b"saved on SIGTERM"
    assert "got SIGTERM" in backend.read_logs("ray-stop")[0]


def test_max_run_gives_max_runtime_exceeded_with_artifacts(
    backend: RayBackend, tmp_path: Path
) -> None:
    _estimator(backend, tmp_path, SLEEPER, max_run=3).fit(job_name="ray-maxrun", wait=False)
    description = _wait(backend, "ray-maxrun")
    assert description.training_job_status is TrainingJobStatus.STOPPED
    assert description.secondary_status is SecondaryStatus.MAX_RUNTIME_EXCEEDED
    assert _members(description.model_data or "")["partial.txt"] == b"saved on SIGTERM"


def test_sigkill_of_the_driver_fails_the_job_with_a_reason(
    backend: RayBackend, tmp_path: Path
) -> None:
    import psutil

    _estimator(backend, tmp_path, SLEEPER).fit(job_name="ray-sigkill", wait=False)
    _wait_for(lambda: "up" in backend.read_logs("ray-sigkill")[0])
    # The entry point is the one process whose contract names this job; its parent the driver.
    entry = next(
        p for p in psutil.process_iter() if _environ(p).get("TRAINING_JOB_NAME") == "ray-sigkill"
    )
    driver = entry.parent()
    assert driver is not None
    assert "rl_provider.backends.ray.launcher" in " ".join(driver.cmdline())
    driver.kill()
    description = _wait(backend, "ray-sigkill")
    assert description.training_job_status is TrainingJobStatus.FAILED
    assert "the job's driver failed on Ray" in (description.failure_reason or "")
    assert "exit code 137" in (description.failure_reason or "")  # 128 + SIGKILL
    # The entry point did not outlive its driver.
    _wait_for(lambda: not entry.is_running() or entry.status() == psutil.STATUS_ZOMBIE, 10)


def _environ(process: Any) -> dict[str, str]:
    import psutil

    try:
        return dict(process.environ())
    except (psutil.Error, OSError):
        return {}


def test_s3_code_and_artifacts_through_a_moto_server(
    ray_cluster: LocalRayCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """s3:// code and output: uploaded from here, read and written from the cluster (moto on
    loopback stands for S3; the cluster gets its credentials through runtime_env, the entry
    point none of them)."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        aws = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        }
        for key, value in aws.items():
            monkeypatch.setenv(key, value)
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="rl-ray")
        backend = RayBackend(
            ray_cluster.dashboard_url,
            token=ray_cluster.token,
            storage="s3://rl-ray/jobs",
            runtime_env={"env_vars": aws},
        )
        _estimator(backend, tmp_path, CONTRACT).fit(job_name="ray-s3", wait=False)
        description = _wait(backend, "ray-s3")
        assert description.training_job_status is TrainingJobStatus.COMPLETED, (
            description.failure_reason
        )
        assert description.model_data == "s3://rl-ray/jobs/ray-s3/output/model.tar.gz"
        local = tmp_path / "model.tar.gz"
        s3.download_file("rl-ray", "jobs/ray-s3/output/model.tar.gz", str(local))
        model = _members(local.as_uri())
        assert model["weights.txt"] == b"trained on ray"
        assert json.loads(model["contract.json"])["secrets"] == []
        keys = {o["Key"] for o in s3.list_objects_v2(Bucket="rl-ray")["Contents"]}
        assert "jobs/ray-s3/output/output.tar.gz" in keys
    finally:
        server.stop()


def test_cli_lists_describes_and_prints_logs_of_ray_jobs(
    backend: RayBackend, ray_cluster: LocalRayCluster, tmp_path: Path
) -> None:
    import subprocess
    import sys

    _estimator(backend, tmp_path, "print('hello from the cli job')").fit(
        job_name="ray-cli", wait=False
    )
    _wait(backend, "ray-cli")
    script = str(Path(sys.executable).with_name("rl-provider"))
    env = {k: v for k, v in ray_cluster.env.items() if not k.startswith("AIRFLOW")}
    env["RAY_AUTH_TOKEN"] = ray_cluster.token
    base = [script, "--backend", "ray", "--address", ray_cluster.dashboard_url]
    described = subprocess.run(
        [*base, "--json", "jobs", "describe", "ray-cli"], capture_output=True, text=True, env=env
    )
    assert described.returncode == 0, described.stderr
    assert json.loads(described.stdout)["TrainingJobStatus"] == "Completed"
    logs = subprocess.run(
        [*base, "jobs", "logs", "ray-cli"], capture_output=True, text=True, env=env
    )
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.count("hello from the cli job") == 1
    # Without the token the job server refuses, and the CLI says what to do.
    del env["RAY_AUTH_TOKEN"]
    refused = subprocess.run(
        [*base, "jobs", "describe", "ray-cli"], capture_output=True, text=True, env=env
    )
    assert refused.returncode != 0
    assert "token" in refused.stderr


def _wheel(directory: Path, name: str, version: str, module: str) -> Path:
    """A pure-Python wheel of one module, built here (no index, no build backend needed)."""
    import base64
    import hashlib
    import zipfile

    dist = f"{name.replace('-', '_')}-{version}"
    files = {
        f"{name.replace('-', '_')}.py": module.encode(),
        f"{dist}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        ).encode(),
        f"{dist}.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = [
        f"{path},sha256="
        f"{base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},"
        f"{len(data)}"
        for path, data in files.items()
    ]
    files[f"{dist}.dist-info/RECORD"] = "\n".join(
        [*record, f"{dist}.dist-info/RECORD,,", ""]
    ).encode()
    wheel = directory / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


REQUIRES = """
    import os
    from pathlib import Path
    import rl_tiny_dep
    Path(os.environ["SM_MODEL_DIR"], "dep.txt").write_text(rl_tiny_dep.VALUE)
    print("imported from", rl_tiny_dep.__file__, flush=True)
"""


def test_requirements_txt_is_installed_for_the_entry_point(
    backend: RayBackend, tmp_path: Path
) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels, "rl-tiny-dep", "1.0", "VALUE = 'from a local wheel'\n")
    estimator = _estimator(backend, tmp_path, REQUIRES)
    # No index: pip finds the package only in the local directory.
    (tmp_path / "src" / "requirements.txt").write_text(
        f"--no-index\n--find-links {wheels}\nrl-tiny-dep==1.0\n"
    )
    estimator.fit(job_name="ray-requirements", wait=False)
    description = _wait(backend, "ray-requirements")
    assert description.training_job_status is TrainingJobStatus.COMPLETED, (
        description.failure_reason
    )
    assert _members(description.model_data or "")["dep.txt"] == b"from a local wheel"
    lines = backend.read_logs("ray-requirements")[0]
    assert any(line.startswith("Installing requirements.txt into ") for line in lines)
    # From the job's own --target directory, not from this interpreter's site-packages.
    imported = next(line for line in lines if line.startswith("imported from "))
    assert "/requirements/rl_tiny_dep.py" in imported


def test_requirements_txt_that_fails_to_install_fails_the_job(
    backend: RayBackend, tmp_path: Path
) -> None:
    estimator = _estimator(backend, tmp_path, REQUIRES)
    (tmp_path / "src" / "requirements.txt").write_text("--no-index\nrl-tiny-dep==9.9\n")
    estimator.fit(job_name="ray-requirements-bad", wait=False)
    description = _wait(backend, "ray-requirements-bad")
    assert description.training_job_status is TrainingJobStatus.FAILED
    assert "pip install -r requirements.txt failed" in (description.failure_reason or "")
    assert "rl-tiny-dep==9.9" in (description.failure_reason or "")


def test_async_twins_share_one_client_per_loop_closed_by_its_last_user(
    ray_cluster: LocalRayCluster,
) -> None:
    import asyncio
    import gc

    from rl_provider.backends.ray import AsyncRayBackend
    from rl_provider.exceptions import JobNotFoundError

    def twin() -> AsyncRayBackend:
        return AsyncRayBackend(ray_cluster.dashboard_url, token=ray_cluster.token)

    async def two_triggers() -> None:
        first, second = twin(), twin()
        for backend in (first, second):
            with pytest.raises(JobNotFoundError):  # a real call through the shared client
                await backend.describe_training_job("ray-never-submitted")
        clients = AsyncRayBackend._loops[asyncio.get_running_loop()].clients
        (shared,) = clients.values()
        assert shared.users == 2
        await first.aclose()
        assert not shared.client.is_closed  # the second trigger still uses it
        await second.aclose()
        assert shared.client.is_closed
        assert clients == {}

    async def never_closed() -> Any:
        backend = twin()
        with pytest.raises(JobNotFoundError):
            await backend.describe_training_job("ray-never-submitted")
        (shared,) = AsyncRayBackend._loops[asyncio.get_running_loop()].clients.values()
        assert not shared.client.is_closed
        return shared

    loops = len(AsyncRayBackend._loops)
    asyncio.run(two_triggers())
    # A loop that ends with its client open (nobody called aclose) closes it on its way out.
    assert asyncio.run(never_closed()).client.is_closed
    gc.collect()
    assert len(AsyncRayBackend._loops) == loops  # and the ended loops are forgotten
