"""The detached supervisor of one local training job.

``python -m rl_provider.backends.local.runner HOME JOB [--detach]``. It prepares the container
contract (code, configs, channels, requirements), runs the entry point in its own process group
(``supervisor.py``: every log line and metric captured, stop and ``MaxRuntimeInSeconds``
enforced), packages the artifacts atomically and records the end state. ``--detach`` forks once
and prints the supervisor's pid, so the supervisor is nobody's child (no zombie, survives the
caller).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time
import traceback
from pathlib import Path
from typing import IO, Any

from rl_provider.backends.local import container, files, transfer
from rl_provider.backends.local.common import enter_detached_process
from rl_provider.backends.local.store import LocalStore
from rl_provider.backends.local.supervisor import MetricPoint, supervise
from rl_provider.core.enums import SecondaryStatus, TrainingJobStatus
from rl_provider.core.metrics import MetricExtractor
from rl_provider.exceptions import BackendError, RLProviderError

# How long a runner that cannot record the job's end (full disk) waits for space, and how often
# it tries; at most this many metric points wait for the database meanwhile.
_FULL_DISK_WAIT_SECONDS = 6 * 3600.0
_FULL_DISK_POLL_SECONDS = 1.0
_MAX_PENDING_METRICS = 10_000


def job_dir(home: Path, name: str) -> Path:
    return home / "jobs" / name


def log_path(home: Path, name: str) -> Path:
    return job_dir(home, name) / "logs" / f"{container.CURRENT_HOST}.log"


# A Ray the entry point starts itself (``ray.init()`` / ``ray.init(address="local")``) listens on
# loopback only, on free ports (docs/DESIGN.md, "Local Ray on loopback"). Measured with Ray 2.60:
# by default GCS, raylet, workers and the agents listen on all interfaces, and the dashboard and
# autoscaler start Prometheus servers on 0.0.0.0:44227 and 0.0.0.0:44217, which a second
# concurrent job cannot bind. ``_node_ip_address="127.0.0.1"`` is no cure: ``ray.init`` swaps it
# for the machine's IP (``services.resolve_ip_for_localhost``). Ray's own single-node switch is:
# ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` (read on every platform, ``ray_constants``) off makes
# ``services.get_node_ip_address`` return 127.0.0.1, and every server then binds to it; the
# metrics servers read their ports from these variables (0: a free port).
LOCAL_RAY_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "DASHBOARD_METRIC_PORT": "0",
    "AUTOSCALER_METRIC_PORT": "0",
}


def local_ray_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` with ``LOCAL_RAY_ENV`` added where the job sets none of its own. Not when the job
    joins an existing Ray (``RAY_ADDRESS``): its driver must then register the node's real IP."""
    if (env.get("RAY_ADDRESS") or "local") != "local":
        return env
    return {**LOCAL_RAY_ENV, **env}


class _PrepareError(RLProviderError):
    """The job could not be set up (SageMaker reports these as ClientError)."""


# Set by SIGTERM/SIGINT: `stop_training_job` signals the runner to wake it at once (the stop
# itself is recorded in the store, which the runner also polls).
_STOP_SIGNAL = threading.Event()


def _catch_stop_signals() -> None:
    signal.signal(signal.SIGTERM, lambda *_: _STOP_SIGNAL.set())
    signal.signal(signal.SIGINT, lambda *_: _STOP_SIGNAL.set())


class Runner:
    def __init__(self, store: LocalStore, name: str) -> None:
        self.store = store
        self.name = name
        row = store.get_job(name)
        self.request: dict[str, Any] = row.request
        self.stop_grace = row.stop_grace
        self.dir = job_dir(store.home, name)
        self.paths = container.ContainerPaths(self.dir / "opt_ml")
        self.log_file = log_path(store.home, name)
        self.stop_signal = _STOP_SIGNAL
        self.python = sys.executable
        self.started = time.monotonic()
        self.max_runtime = float(self.request["StoppingCondition"]["MaxRuntimeInSeconds"])
        # Set when a write failed for lack of space: the job's FailureReason then says so.
        self.out_of_space: BaseException | None = None
        self.log: IO[str] = open(os.devnull, "w")  # noqa: SIM115 (replaced by run())

    # ------------------------------------------------------------------------------ phases
    def run(self) -> int:
        _catch_stop_signals()
        try:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            log = open(self.log_file, "a", encoding="utf-8")  # noqa: SIM115 (closed below)
        except OSError as err:
            # No log to write to (a full disk, above all): the reason still says why.
            self._end(SecondaryStatus.FAILED, TrainingJobStatus.FAILED, self._reason(err))
            return 1
        self.log.close()  # the placeholder
        self.log = log
        try:
            return self._run()
        except BaseException as err:
            self.write(f"rl_provider runner error: {traceback.format_exc()}")
            self._end(
                SecondaryStatus.FAILED,
                TrainingJobStatus.FAILED,
                self._reason(
                    err, f"InternalServerError: the local runner failed: {type(err).__name__}"
                ),
            )
            raise
        finally:
            with contextlib.suppress(OSError):
                self.log.close()

    def _run(self) -> int:
        self.paths.create()
        # Each step forward is refused once a stop was accepted (Stopping is past both): the
        # entry point of a job stopped before it started never starts.
        if not self.store.transition(
            self.name, SecondaryStatus.DOWNLOADING, "Downloading input data"
        ):
            return self._finish(stopped=SecondaryStatus.STOPPED, exit_code=None, tail=[])
        try:
            self._prepare()
        except (RLProviderError, OSError, subprocess.SubprocessError) as err:
            self._end(SecondaryStatus.FAILED, TrainingJobStatus.FAILED, self._reason(err))
            return 1
        if self.stop_requested() or not self.store.transition(
            self.name,
            SecondaryStatus.TRAINING,
            "Training image download completed. Training in progress.",
        ):
            return self._finish(stopped=SecondaryStatus.STOPPED, exit_code=None, tail=[])
        exit_code, stopped, tail = self._train()
        return self._finish(stopped=stopped, exit_code=exit_code, tail=tail)

    def _prepare(self) -> None:
        self.paths.create()
        container.stage_job(self.paths, self.request, self.dir / "download")
        files.make_private(self.paths.code)
        requirements = self.paths.code / "requirements.txt"
        if requirements.is_file():
            self.python = self._requirements_env(requirements)

    def _requirements_env(self, requirements: Path) -> str:
        """A venv per requirements.txt hash, layered over ours, built once and reused."""
        digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
        envs = self.store.home / "envs"
        envs.mkdir(parents=True, exist_ok=True)
        env_dir = envs / digest
        with open(envs / f"{digest}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent jobs with the same file build it once
            if (env_dir / ".complete").exists():
                self.write(f"Using the cached environment {env_dir} for requirements.txt")
            else:
                shutil.rmtree(env_dir, ignore_errors=True)
                self.write(f"Installing requirements.txt into {env_dir}")
                # requirements.txt runs setup.py/build backends: user code, so no credentials.
                env = container.scrubbed_env()
                subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True, env=env)
                python = env_dir / "bin" / "python"
                site = subprocess.run(
                    [
                        str(python),
                        "-c",
                        "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                    env=env,
                ).stdout.strip()
                # Our packages (ray, torch, ...) stay importable beneath the job's own.
                Path(site, "_rl_provider_parent.pth").write_text(
                    sysconfig.get_paths()["purelib"] + "\n"
                )
                pip = subprocess.run(
                    [
                        str(python),
                        "-m",
                        "pip",
                        "install",
                        "--disable-pip-version-check",
                        "-r",
                        str(requirements),
                    ],
                    cwd=self.paths.code,
                    capture_output=True,
                    text=True,
                    env=env,
                )
                for line in (pip.stdout + pip.stderr).splitlines():
                    self.write(line)
                if pip.returncode != 0:
                    tail = " ".join(pip.stderr.strip().splitlines()[-3:])
                    raise _PrepareError(f"pip install -r requirements.txt failed: {tail}")
                (env_dir / ".complete").touch()
        return str(env_dir / "bin" / "python")

    def _train(self) -> tuple[int | None, SecondaryStatus | None, list[str]]:
        user, framework = container.split_hyperparameters(self.request.get("HyperParameters", {}))
        env = local_ray_env(
            container.process_env(
                container.training_env(self.paths, self.request, num_cpus=os.cpu_count() or 1),
                self.paths.code,
            )
        )
        command = [self.python, str(self.paths.code / str(framework["sagemaker_program"]))]
        command += container.cli_args(user)
        definitions = self.request["AlgorithmSpecification"].get("MetricDefinitions", [])
        return supervise(self, command, self.paths.code, env, MetricExtractor(definitions))

    def _finish(
        self, *, stopped: SecondaryStatus | None, exit_code: int | None, tail: list[str]
    ) -> int:
        try:
            self.store.transition(
                self.name, SecondaryStatus.UPLOADING, "Uploading generated training model"
            )
        except BackendError as err:
            if not files.is_out_of_space(err, self.store.home):
                raise
            self.out_of_space = err  # the artifacts may still fit at the output path
        artifacts: list[str] = []
        try:
            self._package(artifacts)
        except (RLProviderError, OSError) as err:
            # A model.tar.gz that was published stays referenced (output.tar.gz may not fit).
            self._end(
                SecondaryStatus.FAILED,
                TrainingJobStatus.FAILED,
                self._reason(err, "ClientError: packaging failed"),
                artifacts[0] if artifacts else None,
            )
            return 1
        if stopped is not None:
            self._end(stopped, TrainingJobStatus.STOPPED, None, artifacts[0])
            return 0
        if exit_code == 0:
            (self.paths.output / "success").touch()
            self._end(SecondaryStatus.COMPLETED, TrainingJobStatus.COMPLETED, None, artifacts[0])
            return 0
        self._end(
            SecondaryStatus.FAILED,
            TrainingJobStatus.FAILED,
            self._failure_reason(exit_code, tail),
            artifacts[0],
        )
        return 1

    def _package(self, published: list[str]) -> None:
        """``model.tar.gz`` then ``output.tar.gz`` at ``<output_path>/<job>/output/``, each URI
        appended to ``published`` once it is there.

        One copy of the model remains: the archive is written in place at a file:// location
        (only an s3:// upload needs a local archive, deleted after), and the packed directory is
        emptied once its archive is published (a 200 MB model took 600 MB, three copies).
        """
        output = self.request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        prefix = f"{output}/{self.name}/output"
        for source, artifact in (
            (self.paths.model, "model.tar.gz"),
            (self.paths.output_data, "output.tar.gz"),
        ):
            uri = f"{prefix}/{artifact}"
            transfer.publish_directory(source, uri, self.dir / "download")
            published.append(uri)
            for entry in source.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()

    def _failure_reason(self, exit_code: int | None, tail: list[str]) -> str:
        note = None
        if self.out_of_space is not None:
            note = files.out_of_space_message(self.store.home, self.out_of_space)
        return container.failure_reason(self.paths, exit_code, tail, note)

    def _reason(self, err: BaseException, context: str = "ClientError") -> str:
        """The FailureReason for ``err``: out of space says so, whatever the step."""
        if files.is_out_of_space(err, self.store.home):
            return f"ClientError: {files.out_of_space_message(self.store.home, err)}"
        return f"{context}: {err}"

    # ----------------------------------------------------------------------------- helpers
    def _end(
        self,
        secondary: SecondaryStatus,
        status: TrainingJobStatus,
        reason: str | None,
        artifacts: str | None = None,
    ) -> None:
        messages = {
            SecondaryStatus.COMPLETED: "Training job completed",
            SecondaryStatus.FAILED: "Training job failed",
            SecondaryStatus.STOPPED: "Training job stopped",
            SecondaryStatus.MAX_RUNTIME_EXCEEDED: "Job stopped: MaxRuntimeInSeconds reached",
        }
        # The end state must be recorded: on a full disk the database cannot take it, and a
        # runner that died then read "killed, or the machine restarted" once space was freed.
        # Wait for space instead (the reaper sees a live runner meanwhile).
        deadline = time.monotonic() + _FULL_DISK_WAIT_SECONDS
        while True:
            try:
                self.store.transition(
                    self.name,
                    secondary,
                    messages.get(secondary, secondary.value),
                    status=status,
                    failure_reason=reason,
                    model_artifacts=artifacts,
                )
                return
            except BackendError as err:
                if not files.is_out_of_space(err, self.store.home):
                    raise
                if time.monotonic() > deadline:
                    raise
                time.sleep(_FULL_DISK_POLL_SECONDS)

    def record_entry_pid(self, pid: int | None) -> None:
        self.store.set_entry_pid(self.name, pid)

    def stop_at_max_runtime(self) -> bool:
        if time.monotonic() - self.started <= self.max_runtime:
            return False
        self.store.transition(
            self.name,
            SecondaryStatus.STOPPING,
            "Stopping the training job: MaxRuntimeInSeconds reached",
            status=TrainingJobStatus.STOPPING,
        )
        return True

    def stop_requested(self) -> bool:
        if self.stop_signal.is_set():
            return True
        return self.store.get_job(self.name).status is TrainingJobStatus.STOPPING

    def flush(self, pending: list[MetricPoint]) -> None:
        try:
            self.log.flush()
        except OSError as err:
            self._lost_log(err)
        if pending:
            try:
                self.store.add_metrics(self.name, pending)
            except BackendError as err:
                if not files.is_out_of_space(err, self.store.home):
                    raise
                self.out_of_space = err
                del pending[:-_MAX_PENDING_METRICS]  # kept for the next flush, within bounds
                return
            pending.clear()

    def write(self, line: str) -> None:
        """One log line (buffered; flushed by the supervision loop and at the end)."""
        try:
            self.log.write(line.rstrip("\n") + "\n")
        except OSError as err:
            self._lost_log(err)

    def _lost_log(self, err: OSError) -> None:
        """A log write failed (disk full): start a fresh buffer; the job's reason will say so."""
        if not files.is_out_of_space(err):
            raise err
        self.out_of_space = err
        with contextlib.suppress(OSError):
            self.log.close()
        self.log = open(self.log_file, "a", encoding="utf-8")  # noqa: SIM115 (closed by run)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    home, name = (a for a in args if a != "--detach")
    # Before the fork: the pid the parent prints is recorded and may be sent SIGTERM at once (a
    # stop right after create); the default action would kill the runner before it starts.
    _catch_stop_signals()
    enter_detached_process("--detach" in args, job_dir(Path(home), name) / "runner.log")
    return Runner(LocalStore(Path(home)), name).run()


if __name__ == "__main__":
    sys.exit(main())
