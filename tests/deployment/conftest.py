"""A real Airflow deployment for the session: scheduler, triggerer, dag-processor, api-server.

Each component is its own process (own process group, stopped by group), LocalExecutor, SQLite,
an own ``AIRFLOW_HOME`` in a temp dir, free ports, the venv's ``bin`` first on PATH (Airflow
starts helpers by name). The DAG files of ``tests/deployment/dags`` are copied into the DAGs
folder, with the tiny entry point of ``tests/airflow/dagkit.py`` next to them. Tests drive the
deployment through the REST API ``/api/v2`` with a JWT of the simple auth manager's ``admin``.

Starting it costs ~20-30 s, paid once per session (``deployment`` is session-scoped).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.airflow.dagkit import ENTRY_POINT

DAGS_SOURCE = Path(__file__).parent / "dags"
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], Any], what: str, timeout: float = 120, step: float = 0.5) -> Any:
    """Poll ``check`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)


class Deployment:
    """The running components and a small REST client."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.dags = home / "dags"
        self.rl_home = home / "rl_home"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._token: str | None = None
        venv_bin = str(Path(sys.executable).parent)
        secret = os.urandom(16).hex()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
            "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(home),
            "RL_PROVIDER_HOME": str(self.rl_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__FERNET_KEY": _fernet_key(),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__DATABASE__LOAD_DEFAULT_CONNECTIONS": "False",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": f"{self.url}/",
            "AIRFLOW__API_AUTH__JWT_SECRET": secret,
            "AIRFLOW__API__SECRET_KEY": secret,
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "False",
        }

    # ------------------------------------------------------------------ processes
    def start(self, component: str) -> None:
        args = ["airflow", component]
        if component == "api-server":
            args += ["--port", str(self.port), "--host", "127.0.0.1", "--workers", "1"]
        log = (self.home / f"{component}.out").open("ab")
        self.processes[component] = subprocess.Popen(
            args,
            env=self.env,
            cwd=self.home,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped (with its children) by it
        )
        log.close()

    def stop(self, component: str, timeout: float = 30) -> None:
        process = self.processes.pop(component, None)
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        self._reap(process, timeout)

    def stop_all(self) -> None:
        """Signal every component first, then wait: they shut down side by side."""
        processes = list(self.processes.values())
        self.processes.clear()
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            self._reap(process, 30)

    @staticmethod
    def _reap(process: subprocess.Popen[bytes], timeout: float) -> None:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        # Children that outlived their leader (task runners) go with the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    def log_of(self, component: str) -> str:
        path = self.home / f"{component}.out"
        return path.read_text(errors="replace") if path.exists() else ""

    # ------------------------------------------------------------------ REST API
    def token(self) -> str:
        if self._token is None:
            passwords = json.loads(
                (self.home / "simple_auth_manager_passwords.json.generated").read_text()
            )
            body = self._http(
                "POST",
                "/auth/token",
                {"username": "admin", "password": passwords["admin"]},
                auth=False,
            )
            self._token = str(body["access_token"])
        return self._token

    def api(self, method: str, path: str, body: Any = None) -> Any:
        return self._http(method, f"/api/v2{path}", body)

    def _http(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        request.add_header("Accept", "application/json")
        if auth:
            request.add_header("Authorization", f"Bearer {self.token()}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
        except urllib.error.HTTPError as err:
            raise AssertionError(
                f"{method} {path} -> {err.code}: {err.read().decode(errors='replace')}"
            ) from err
        return json.loads(raw) if raw else None

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/api/v2/monitor/health", timeout=5) as r:
                health = json.loads(r.read())
        except (OSError, ValueError):
            return False
        return all(
            health.get(part, {}).get("status") == "healthy"
            for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
        )

    # ------------------------------------------------------------------ helpers for tests
    def trigger(self, dag_id: str) -> str:
        wait_until(lambda: self._dag_exists(dag_id), f"DAG {dag_id} parsed", timeout=120)
        run = self.api("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None})
        return str(run["dag_run_id"])

    def _dag_exists(self, dag_id: str) -> bool:
        dags = self.api("GET", f"/dags?dag_id_pattern={dag_id}")["dags"]
        return any(d["dag_id"] == dag_id for d in dags)

    def task(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        ti: dict[str, Any] = self.api(
            "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
        )
        return ti

    def wait_task_state(
        self, dag_id: str, run_id: str, task_id: str, state: str, timeout: float = 120
    ) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            try:
                ti = self.task(dag_id, run_id, task_id)
            except AssertionError as err:  # the scheduler has not created the TI yet (404)
                if "-> 404" in str(err):
                    return None
                raise
            return ti if ti["state"] == state else None

        result: dict[str, Any] = wait_until(
            reached,
            f"{dag_id}.{task_id} {state}",
            timeout=timeout,
        )
        return result

    def wait_run_done(self, dag_id: str, run_id: str, timeout: float = 240) -> str:
        state: str = wait_until(
            lambda: (
                (s := self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"])
                in ("success", "failed")
                and s
            ),
            f"run {dag_id}/{run_id} done",
            timeout=timeout,
        )
        return state

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        """The try's whole log as Airflow serves it (worker and triggerer parts), one event a
        line."""
        body = self.api(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
            "?full_content=true",
        )
        lines = []
        for entry in body["content"]:
            lines.append(entry.get("event", "") if isinstance(entry, dict) else str(entry))
        return "\n".join(lines)

    def job_processes(self) -> list[psutil.Process]:
        """Live processes working in the local backend's home (entry points, runners)."""
        found = []
        for process in psutil.process_iter(["cwd", "cmdline", "status"]):
            cwd = process.info["cwd"] or ""
            cmdline = " ".join(process.info["cmdline"] or [])
            if process.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if cwd.startswith(str(self.rl_home)) or str(self.rl_home / "jobs") in cmdline:
                found.append(process)
        return found


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


@pytest.fixture(scope="session")
def deployment() -> Iterator[Deployment]:
    home = Path(tempfile.mkdtemp(prefix="rl-deploy-test-"))
    shutil.copytree(DAGS_SOURCE, home / "dags", ignore=shutil.ignore_patterns("__pycache__"))
    src = home / "dags" / "deploy_src"
    src.mkdir()
    (src / "train.py").write_text(ENTRY_POINT)
    (home / "dags" / ".airflowignore").write_text("deploy_src/\ndeploy_serve/\n")
    deployment = Deployment(home)
    migrate = subprocess.run(
        ["airflow", "db", "migrate"],
        env=deployment.env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    try:
        for component in COMPONENTS:
            deployment.start(component)
        wait_until(deployment.healthy, "a healthy deployment", timeout=180)
        yield deployment
    finally:
        deployment.stop_all()
        for process in deployment.job_processes():  # nothing may outlive the session
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        if os.environ.get("RL_KEEP_DEPLOYMENT"):
            print(f"deployment kept in {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)
