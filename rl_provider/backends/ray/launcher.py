"""The driver of one training job on a Ray cluster: the SageMaker container contract around the
entry point, in the job's own process.

``python -m rl_provider.backends.ray.launcher request.json`` runs as the Ray job's entrypoint.
It travels with the job (``runtime_env`` ``working_dir``, staged by ``RayBackend``) together with
the stdlib-only modules it imports (``submission.shipped_modules()`` follows its imports): the
cluster needs nothing of ours
installed, and each rule of the contract stays in one place. Standard library only (boto3 when a
location is on S3 and the cluster has it).

What it reports, it writes to its stdout, which Ray keeps as the job's log: the entry point's
lines verbatim, and marker lines (``MARKER`` + JSON) for status transitions, metric points,
the artifacts and the end state. A line of the entry point that starts like a marker is written
with ``ESCAPE`` in front, so user text can never forge a state (``logs.py`` reads both back).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import deque
from pathlib import Path
from typing import IO, Any

from rl_provider.backends.local import container, transfer
from rl_provider.core.metrics import MetricExtractor

MARKER = "::rl_provider:: "
ESCAPE = "\\"
# Where job directories go on the node running the driver (overridable by the cluster's admin).
JOB_ROOT_ENV = "RL_PROVIDER_RAY_JOB_ROOT"
# The variables the entry point's ray.init() needs to join the cluster with token auth; the
# scrubbed environment would drop them ("TOKEN").
_RAY_AUTH_KEPT = ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE")
_PR_SET_PDEATHSIG = 1
_TAIL = 20
_DRAIN_SECONDS = 2.0

_stdout_lock = threading.Lock()


def emit(kind: str, **fields: Any) -> None:
    """One marker line (status, metric, artifacts, end)."""
    _print(MARKER + json.dumps({"kind": kind, "time": time.time(), **fields}, sort_keys=True))


def _print(line: str) -> None:
    with _stdout_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def user_line(text: str) -> str:
    """A line of the entry point as written to the log (escaped when it could pass for a marker
    or for an escaped line)."""
    return ESCAPE + text if text.startswith((MARKER, ESCAPE)) else text


def _die_with_parent() -> None:
    """In the entry point: SIGKILL when the launcher dies (SIGKILL of the driver, node loss)."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _proc_stat(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` from its 3rd field on (state, ppid, ...), None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _supervisor() -> tuple[int, str] | None:
    """(pid, start time) of the process that started this job's session: Ray's job supervisor
    (it runs the entrypoint under ``sh -c`` in a session of its own). None when unknown."""
    session = os.getsid(0)
    pid = os.getppid()
    while pid > 1 and (stat := _proc_stat(pid)) is not None:
        with contextlib.suppress(ProcessLookupError):
            if os.getsid(pid) != session:
                return pid, stat[19]  # field 22: the start time, against pid reuse
        pid = int(stat[1])
    return None


def _alive(process: tuple[int, str]) -> bool:
    stat = _proc_stat(process[0])
    return stat is not None and stat[0] != "Z" and stat[19] == process[1]


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class _SupervisorGone(Exception):
    """Ray's job supervisor died under the launcher."""


class Launcher:
    def __init__(self, request: dict[str, Any], stop_grace: float, num_cpus: int, num_gpus: int):
        self.request = request
        self.name = str(request["TrainingJobName"])
        self.stop_grace = stop_grace
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        root = Path(os.environ.get(JOB_ROOT_ENV) or Path(tempfile.gettempdir(), "rl_provider_ray"))
        root.mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix=f"{self.name}-", dir=root))
        self.paths = container.ContainerPaths(self.dir / "opt_ml")
        self.started = time.monotonic()
        self.max_runtime = float(request["StoppingCondition"]["MaxRuntimeInSeconds"])
        self.stop = threading.Event()
        self.python = sys.executable
        self.extra_path: list[str] = []
        # Ray's supervisor kills this session when it stops the job; when the supervisor itself
        # dies (its node's raylet killed, the node lost), nobody would: the launcher watches it.
        self.supervisor = _supervisor()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: self.stop.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop.set())
        try:
            return self._run()
        except _SupervisorGone:
            return 1  # no artifacts, no end marker: nobody collects them any more
        except BaseException as err:
            traceback.print_exc(file=sys.stdout)
            emit("end", status="Failed", secondary="Failed", reason=f"ClientError: {err}")
            return 1
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _run(self) -> int:
        emit("status", status="Downloading", message="Downloading input data")
        self.paths.create()
        try:
            self._prepare()
        except (OSError, subprocess.SubprocessError, ValueError) as err:
            emit("end", status="Failed", secondary="Failed", reason=f"ClientError: {err}")
            return 1
        if self.stop.is_set():
            return self._finish(stopped="Stopped", exit_code=None, tail=[])
        emit(
            "status",
            status="Training",
            message="Training image download completed. Training in progress.",
        )
        exit_code, stopped, tail = self._train()
        return self._finish(stopped=stopped, exit_code=exit_code, tail=tail)

    def _prepare(self) -> None:
        container.stage_job(self.paths, self.request, self.dir / "download")
        requirements = self.paths.code / "requirements.txt"
        if requirements.is_file():
            target = self.dir / "requirements"
            _print(f"Installing requirements.txt into {target}")
            pip = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--target",
                    str(target),
                    "-r",
                    str(requirements),
                ],
                cwd=self.paths.code,
                capture_output=True,
                text=True,
                env=container.scrubbed_env(),
            )
            for line in (pip.stdout + pip.stderr).splitlines():
                _print(user_line(line))
            if pip.returncode != 0:
                tail = " ".join(pip.stderr.strip().splitlines()[-3:])
                raise ValueError(f"pip install -r requirements.txt failed: {tail}")
            self.extra_path.append(str(target))

    def _env(self) -> dict[str, str]:
        contract = container.training_env(
            self.paths, self.request, num_cpus=self.num_cpus, num_gpus=self.num_gpus
        )
        env = container.process_env(contract, self.paths.code)
        # The launcher's working_dir (our modules) is not the entry point's business.
        here = str(Path(__file__).resolve().parents[3])
        paths = [p for p in env["PYTHONPATH"].split(os.pathsep) if p and p != here]
        env["PYTHONPATH"] = os.pathsep.join([paths[0], *self.extra_path, *paths[1:]])
        env.update({k: os.environ[k] for k in _RAY_AUTH_KEPT if k in os.environ})
        return env

    def _train(self) -> tuple[int | None, str | None, list[str]]:
        user, framework = container.split_hyperparameters(self.request.get("HyperParameters", {}))
        command = [self.python, str(self.paths.code / str(framework["sagemaker_program"]))]
        child = subprocess.Popen(
            command + container.cli_args(user),
            cwd=self.paths.code,
            env=self._env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        extractor = MetricExtractor(
            self.request["AlgorithmSpecification"].get("MetricDefinitions", [])
        )
        tail: deque[str] = deque(maxlen=_TAIL)
        pumps = [
            threading.Thread(target=self._pump, args=(stream, extractor, keep), daemon=True)
            for stream, keep in ((child.stdout, None), (child.stderr, tail))
        ]
        for pump in pumps:
            pump.start()
        stopped: str | None = None
        stop_sent: float | None = None
        killed = False
        while child.poll() is None:
            time.sleep(0.1)
            now = time.monotonic()
            if self.supervisor is not None and not _alive(self.supervisor):
                # Ray has lost the job (it reports it Failed): leave no process behind.
                _print("rl_provider: the Ray job supervisor is gone: killing the entry point")
                _signal_group(child.pid, signal.SIGKILL)
                raise _SupervisorGone
            if stopped is None:
                if self.stop.is_set():
                    stopped = "Stopped"
                elif now - self.started > self.max_runtime:
                    stopped = "MaxRuntimeExceeded"
                    emit(
                        "status",
                        status="Stopping",
                        message="Stopping the training job: MaxRuntimeInSeconds reached",
                    )
                if stopped is not None:
                    _print(f"rl_provider: sending SIGTERM to the entry point ({stopped})")
                    _signal_group(child.pid, signal.SIGTERM)
                    stop_sent = now
            elif not killed and stop_sent is not None and now - stop_sent > self.stop_grace:
                _print(f"rl_provider: grace period of {self.stop_grace:g}s over, sending SIGKILL")
                _signal_group(child.pid, signal.SIGKILL)
                killed = True
        _signal_group(child.pid, signal.SIGKILL)  # whatever the entry point left behind
        for pump in pumps:
            pump.join(_DRAIN_SECONDS)
        return child.returncode, stopped, list(tail)

    def _pump(self, stream: IO[bytes], extractor: MetricExtractor, tail: deque[str] | None) -> None:
        for raw in iter(stream.readline, b""):
            text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            _print(user_line(text))
            if tail is not None:
                tail.append(text)
            points = [[m.name, m.value] for m in extractor.match(text)]
            if points:
                emit("metrics", points=points)

    def _finish(self, *, stopped: str | None, exit_code: int | None, tail: list[str]) -> int:
        emit("status", status="Uploading", message="Uploading generated training model")
        output = str(self.request["OutputDataConfig"]["S3OutputPath"]).rstrip("/")
        prefix = f"{output}/{self.name}/output"
        model = f"{prefix}/model.tar.gz"
        try:
            for source, uri in (
                (self.paths.model, model),
                (self.paths.output_data, f"{prefix}/output.tar.gz"),
            ):
                transfer.publish_directory(source, uri, self.dir / "download")
        except (OSError, ValueError) as err:
            reason = f"ClientError: packaging failed: {err}"
            emit("end", status="Failed", secondary="Failed", reason=reason)
            return 1
        if stopped is not None:
            emit("end", status="Stopped", secondary=stopped, artifacts=model)
            return 0
        if exit_code == 0:
            emit("end", status="Completed", secondary="Completed", artifacts=model)
            return 0
        emit(
            "end",
            status="Failed",
            secondary="Failed",
            reason=container.failure_reason(self.paths, exit_code, tail),
            artifacts=model,
        )
        return 1


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(args[0]).read_text())
    launcher = Launcher(
        spec["request"],
        stop_grace=float(spec["stop_grace"]),
        num_cpus=int(spec["num_cpus"]),
        num_gpus=int(spec["num_gpus"]),
    )
    return launcher.run()


if __name__ == "__main__":
    sys.exit(main())
