"""The detached supervisor of one local training job.

``python -m rl_provider.backends.local.runner HOME JOB [--detach]``. It prepares the container
contract (code, configs, channels, requirements), runs the entry point in its own process group,
captures every log line and metric, enforces stop and ``MaxRuntimeInSeconds``, packages the
artifacts atomically and records the end state. ``--detach`` forks once and prints the
supervisor's pid, so the supervisor is nobody's child (no zombie, survives the caller).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import os
import queue
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time
import traceback
from collections import deque
from pathlib import Path
from typing import IO, Any, cast

from rl_provider.backends.local import container, files, transfer
from rl_provider.backends.local.store import LocalStore
from rl_provider.core.enums import SecondaryStatus, TrainingJobStatus
from rl_provider.core.metrics import MetricExtractor
from rl_provider.core.packaging import pack_directory, safe_extract
from rl_provider.exceptions import RLProviderError

_PR_SET_PDEATHSIG = 1
_FLUSH_SECONDS = 0.25
_STREAM_DRAIN_SECONDS = 2.0
_STOP_POLL_SECONDS = 1.0
_STDERR_TAIL = 20


def job_dir(home: Path, name: str) -> Path:
    return home / "jobs" / name


def log_path(home: Path, name: str) -> Path:
    return job_dir(home, name) / "logs" / f"{container.CURRENT_HOST}.log"


def _die_with_parent() -> None:
    """Runs in the entry point's process: it gets SIGKILL if the supervisor dies (kill -9)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


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

    # ------------------------------------------------------------------------------ phases
    def run(self) -> int:
        _catch_stop_signals()
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "a", encoding="utf-8") as log:
            self.log = log
            try:
                return self._run()
            except BaseException as err:
                self._write(f"rl_provider runner error: {traceback.format_exc()}")
                self._end(
                    SecondaryStatus.FAILED,
                    TrainingJobStatus.FAILED,
                    f"InternalServerError: the local runner failed: {err!r}",
                )
                raise

    def _run(self) -> int:
        self.store.transition(self.name, SecondaryStatus.DOWNLOADING, "Downloading input data")
        try:
            self._prepare()
        except (RLProviderError, OSError, subprocess.SubprocessError) as err:
            self._end(SecondaryStatus.FAILED, TrainingJobStatus.FAILED, f"ClientError: {err}")
            return 1
        if self._stop_requested():
            return self._finish(stopped=SecondaryStatus.STOPPED, exit_code=None, tail=[])
        self.store.transition(
            self.name,
            SecondaryStatus.TRAINING,
            "Training image download completed. Training in progress.",
        )
        exit_code, stopped, tail = self._train()
        return self._finish(stopped=stopped, exit_code=exit_code, tail=tail)

    def _prepare(self) -> None:
        self.paths.create()
        hyperparameters = self.request.get("HyperParameters", {})
        _, framework = container.split_hyperparameters(hyperparameters)
        submit = framework.get("sagemaker_submit_directory")
        if submit:
            with transfer.local_copy(str(submit), self.dir / "download") as archive:
                safe_extract(archive, self.paths.code)
        program = self.paths.code / str(framework.get("sagemaker_program", ""))
        if not program.is_file():
            raise _PrepareError(
                f"The entry point {framework.get('sagemaker_program')!r} is not in the code "
                f"archive {submit!r}."
            )
        container.write_configs(self.paths, self.request)
        for channel in self.request.get("InputDataConfig", []):
            uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
            transfer.stage(uri, self.paths.channel(channel["ChannelName"]))
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
                self._write(f"Using the cached environment {env_dir} for requirements.txt")
            else:
                shutil.rmtree(env_dir, ignore_errors=True)
                self._write(f"Installing requirements.txt into {env_dir}")
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
                    self._write(line)
                if pip.returncode != 0:
                    tail = " ".join(pip.stderr.strip().splitlines()[-3:])
                    raise _PrepareError(f"pip install -r requirements.txt failed: {tail}")
                (env_dir / ".complete").touch()
        return str(env_dir / "bin" / "python")

    def _train(self) -> tuple[int | None, SecondaryStatus | None, list[str]]:
        hyperparameters = self.request.get("HyperParameters", {})
        user, framework = container.split_hyperparameters(hyperparameters)
        env = container.process_env(
            container.training_env(self.paths, self.request, num_cpus=os.cpu_count() or 1),
            self.paths.code,
        )
        command = [self.python, str(self.paths.code / str(framework["sagemaker_program"]))]
        command += container.cli_args(user)
        child = subprocess.Popen(
            command,
            cwd=self.paths.code,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.store.set_entry_pid(self.name, child.pid)
        lines: queue.Queue[tuple[str, float, str] | None] = queue.Queue()
        streams = (cast(IO[bytes], child.stdout), cast(IO[bytes], child.stderr))
        for stream, label in zip(streams, ("stdout", "stderr"), strict=True):
            threading.Thread(target=_pump, args=(stream, label, lines), daemon=True).start()

        extractor = MetricExtractor(
            self.request["AlgorithmSpecification"].get("MetricDefinitions", [])
        )
        tail: deque[str] = deque(maxlen=_STDERR_TAIL)
        pending: list[tuple[str, float, float]] = []
        open_streams, last_flush, last_stop_poll = 2, time.monotonic(), 0.0
        stopped: SecondaryStatus | None = None
        stop_sent = exited_at = None
        killed = False
        while True:
            try:
                item = lines.get(timeout=0.1)
            except queue.Empty:
                pass
            else:
                if item is None:
                    open_streams -= 1
                else:
                    label, stamp, text = item
                    self.log.write(text + "\n")
                    if label == "stderr":
                        tail.append(text)
                    pending += [(m.name, m.value, stamp) for m in extractor.match(text)]
            now = time.monotonic()
            if now - last_flush >= _FLUSH_SECONDS or len(pending) >= 500:
                self._flush(pending)
                last_flush = now
            if child.poll() is not None:
                exited_at = exited_at or now
                # Streams end when every process holding them exits; do not wait on stragglers.
                if open_streams == 0 or now - exited_at > _STREAM_DRAIN_SECONDS:
                    break
                continue
            if stopped is None:
                if now - last_stop_poll >= _STOP_POLL_SECONDS or self.stop_signal.is_set():
                    last_stop_poll = now
                    if self._stop_requested():
                        stopped = SecondaryStatus.STOPPED
                if stopped is None and now - self.started > self.max_runtime:
                    stopped = SecondaryStatus.MAX_RUNTIME_EXCEEDED
                    self.store.transition(
                        self.name,
                        SecondaryStatus.STOPPING,
                        "Stopping the training job: MaxRuntimeInSeconds reached",
                        status=TrainingJobStatus.STOPPING,
                    )
                if stopped is not None:
                    self._write(
                        f"rl_provider: sending SIGTERM to the entry point ({stopped.value})"
                    )
                    _signal_group(child.pid, signal.SIGTERM)
                    stop_sent = now
            elif not killed and stop_sent is not None and now - stop_sent > self.stop_grace:
                self._write(
                    f"rl_provider: grace period of {self.stop_grace:g}s over, sending SIGKILL"
                )
                _signal_group(child.pid, signal.SIGKILL)
                killed = True
        _signal_group(child.pid, signal.SIGKILL)  # whatever the entry point left behind
        self._flush(pending)
        self.store.set_entry_pid(self.name, None)
        return child.returncode, stopped, list(tail)

    def _finish(
        self, *, stopped: SecondaryStatus | None, exit_code: int | None, tail: list[str]
    ) -> int:
        self.store.transition(
            self.name, SecondaryStatus.UPLOADING, "Uploading generated training model"
        )
        try:
            artifacts = self._package()
        except (RLProviderError, OSError) as err:
            self._end(
                SecondaryStatus.FAILED,
                TrainingJobStatus.FAILED,
                f"ClientError: packaging failed: {err}",
            )
            return 1
        if stopped is not None:
            self._end(stopped, TrainingJobStatus.STOPPED, None, artifacts)
            return 0
        if exit_code == 0:
            (self.paths.output / "success").touch()
            self._end(SecondaryStatus.COMPLETED, TrainingJobStatus.COMPLETED, None, artifacts)
            return 0
        self._end(
            SecondaryStatus.FAILED,
            TrainingJobStatus.FAILED,
            self._failure_reason(exit_code, tail),
            artifacts,
        )
        return 1

    def _package(self) -> str:
        """``model.tar.gz`` and ``output.tar.gz`` at ``<output_path>/<job>/output/``."""
        output = self.request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        prefix = f"{output}/{self.name}/output"
        staging = self.dir / "packaged"
        staging.mkdir(exist_ok=True)
        pack_directory(self.paths.model, staging / "model.tar.gz")
        pack_directory(self.paths.output_data, staging / "output.tar.gz")
        for artifact in ("model.tar.gz", "output.tar.gz"):
            transfer.publish(staging / artifact, f"{prefix}/{artifact}")
        return f"{prefix}/model.tar.gz"

    def _failure_reason(self, exit_code: int | None, tail: list[str]) -> str:
        failure = self.paths.output / "failure"
        if failure.is_file() and failure.read_text(errors="replace").strip():
            return failure.read_text(errors="replace").strip()
        if exit_code is not None and exit_code < 0:
            how = f"killed by signal {signal.Signals(-exit_code).name}"
        else:
            how = f"ExitCode {exit_code}"
        last = "\n".join(tail[-10:]).strip()
        return f"AlgorithmError: {how}" + (f"\n{last}" if last else "")

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
        self.store.transition(
            self.name,
            secondary,
            messages.get(secondary, secondary.value),
            status=status,
            failure_reason=reason,
            model_artifacts=artifacts,
        )

    def _stop_requested(self) -> bool:
        if self.stop_signal.is_set():
            return True
        return self.store.get_job(self.name).status is TrainingJobStatus.STOPPING

    def _flush(self, pending: list[tuple[str, float, float]]) -> None:
        self.log.flush()
        if pending:
            self.store.add_metrics(self.name, pending)
            pending.clear()

    def _write(self, line: str) -> None:
        self.log.write(line.rstrip("\n") + "\n")
        self.log.flush()


def _pump(stream: IO[bytes], label: str, lines: queue.Queue[tuple[str, float, str] | None]) -> None:
    with stream:
        for raw in stream:
            lines.put((label, time.time(), raw.decode("utf-8", errors="replace").rstrip("\r\n")))
    lines.put(None)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    detach = "--detach" in args
    home, name = (a for a in args if a != "--detach")
    # Before the fork: the pid the parent prints is recorded and may be sent SIGTERM at once (a
    # stop right after create); the default action would kill the runner before it starts.
    _catch_stop_signals()
    container.drop_secrets()  # spawned with a scrubbed environment; run by hand, drop them here
    os.umask(files.PRIVATE_UMASK)
    if detach:
        transfer.receive_credentials(sys.stdin.readline())
        pid = os.fork()
        if pid:
            print(pid, flush=True)
            os._exit(0)
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        runner_log = os.open(
            job_dir(Path(home), name) / "runner.log",
            os.O_WRONLY | os.O_CREAT | os.O_APPEND,
            files.PRIVATE_FILE_MODE,
        )
        os.dup2(runner_log, 1)
        os.dup2(runner_log, 2)
    return Runner(LocalStore(Path(home)), name).run()


if __name__ == "__main__":
    sys.exit(main())
