"""A throw-away Ray cluster on this machine: a head and worker nodes, each a ``ray start
--block`` in its own process group, every port free, token auth on, temp dirs and HOME of its
own.

Used by the tests (``tests/backends/conftest.py``), ``tools/ray_cluster_demo.py`` and
``bench/ray_overhead.py``. Never ``ray stop``: that kills every Ray process of the user, other
clusters included; ``stop()`` kills this cluster's process groups only.

Ray replaces 127.0.0.1 with the machine's address for node IPs, so nodes get their own loopback
addresses (127.0.0.2, 127.0.0.3, ...); the dashboard (job server) listens on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

_HEAD_IP = "127.0.0.2"
_WORKER_PORTS = 60  # each node's worker port range (workers, drivers, actors)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _free_range(size: int) -> int:
    """The first of ``size`` consecutive ports that are free now (best effort, like port 0)."""
    for _ in range(200):
        base = random.randrange(20000, 60000 - size)
        try:
            for port in range(base, base + size):
                with socket.socket() as sock:
                    sock.bind(("0.0.0.0", port))
        except OSError:
            continue
        return base
    raise OSError("no free range of ports")


def _node_ports() -> list[str]:
    base = _free_range(_WORKER_PORTS)
    return [
        f"--node-manager-port={free_port()}",
        f"--object-manager-port={free_port()}",
        f"--metrics-export-port={free_port()}",
        f"--dashboard-agent-listen-port={free_port()}",
        f"--dashboard-agent-grpc-port={free_port()}",
        f"--runtime-env-agent-port={free_port()}",
        f"--min-worker-port={base}",
        f"--max-worker-port={base + _WORKER_PORTS - 1}",
    ]


@dataclass
class LocalRayCluster:
    """A running cluster: ``dashboard_url`` (the Jobs API), ``gcs_address``, ``token``."""

    root: Path
    token: str
    #: More environment for every node, e.g. ``RAY_health_check_period_ms`` (Ray's system
    #: config read from ``RAY_<name>``).
    extra_env: dict[str, str] = field(default_factory=dict)
    dashboard_url: str = ""
    gcs_address: str = ""
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        """The environment of a process that talks to this cluster (``ray`` CLI, ray.init)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        env.update(
            HOME=str(self.root / "home"),  # keeps ~/.ray/auth_token of the user out
            RAY_AUTH_MODE="token",
            RAY_AUTH_TOKEN_PATH=str(self.root / "token"),
            RAY_ADDRESS=self.gcs_address,
            RAY_USAGE_STATS_ENABLED="0",
            # Jobs' entrypoints run `python`: this interpreter, with Ray installed.
            PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        )
        env.update(self.extra_env)
        return env

    def start(
        self,
        nodes: int = 2,
        cpus_per_node: int = 2,
        timeout: float = 90.0,
        head_cpus: int | None = None,
    ) -> None:
        """``head_cpus=0`` keeps jobs' drivers off the head: Ray places a job that asks for
        entrypoint resources on any node that has them (see ``_share_logs``)."""
        (self.root / "home").mkdir(parents=True, exist_ok=True)

        token_file = self.root / "token"
        token_file.write_text(self.token)
        token_file.chmod(0o600)
        dashboard_port = free_port()
        gcs_port = free_port(_HEAD_IP)
        self.gcs_address = f"{_HEAD_IP}:{gcs_port}"
        self.dashboard_url = f"http://127.0.0.1:{dashboard_port}"
        ray = str(Path(sys.executable).with_name("ray"))
        head = [
            ray,
            "start",
            "--head",
            "--block",
            f"--node-ip-address={_HEAD_IP}",
            f"--port={gcs_port}",
            "--include-dashboard=true",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={dashboard_port}",
            f"--ray-client-server-port={free_port()}",
            f"--temp-dir={self.root / 'head'}",
            f"--num-cpus={cpus_per_node if head_cpus is None else head_cpus}",
            "--disable-usage-stats",
            *_node_ports(),
        ]
        self._spawn(head, "head")
        self._wait_dashboard(timeout)
        for i in range(1, nodes):
            self._share_logs(f"w{i}")
            worker = [
                ray,
                "start",
                "--block",
                f"--address={self.gcs_address}",
                f"--node-ip-address=127.0.0.{2 + i}",
                f"--temp-dir={self.root / f'w{i}'}",
                f"--num-cpus={cpus_per_node}",
                "--disable-usage-stats",
                *_node_ports(),
            ]
            self._spawn(worker, f"worker{i}")
        self._wait_nodes(nodes, timeout)

    def _share_logs(self, node: str) -> None:
        """Give the worker temp dir ``node`` the head session's ``logs`` directory.

        Each node keeps a temp dir of its own (not the default /tmp/ray, shared with every other
        cluster on the machine and their cleanups; nor the head's: nodes sharing one share its
        ``runtime_resources``, and one node's runtime-env agent re-extracts a ``working_dir``
        another node's driver runs in). But a worker's dashboard agent reads a job's log under
        the *head's* session path (what the GCS tells it), so a driver running on a worker must
        write its log there: on real machines the paths are the same, each on its own disk.
        """
        session = (self.root / "head" / "session_latest").resolve()
        logs = self.root / node / session.name / "logs"
        logs.parent.mkdir(parents=True, exist_ok=True)
        if not logs.is_symlink():
            logs.symlink_to(session / "logs", target_is_directory=True)

    def _spawn(self, command: list[str], name: str) -> None:
        log = open(self.root / f"{name}.log", "wb")  # noqa: SIM115 (the child keeps it)
        with log:
            self.processes.append(
                subprocess.Popen(
                    command,
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # stopped by its group (stop())
                )
            )

    def _get(self, path: str) -> bytes:
        request = urllib.request.Request(
            self.dashboard_url + path, headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return bytes(response.read())

    def _check_alive(self) -> None:
        for process in self.processes:
            if process.poll() is not None:
                logs = "\n".join(
                    p.read_text(errors="replace")[-3000:] for p in self.root.glob("*.log")
                )
                raise RuntimeError(f"ray start exited {process.returncode}:\n{logs}")

    def _wait_dashboard(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            with contextlib.suppress(OSError, urllib.error.URLError):
                self._get("/api/version")
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the Ray dashboard at {self.dashboard_url} did not start")
            time.sleep(0.5)

    def _wait_nodes(self, count: int, timeout: float) -> None:
        import json

        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
                body = json.loads(self._get("/nodes?view=summary"))
                alive = [
                    n
                    for n in body["data"]["summary"]
                    if n.get("raylet", {}).get("state") == "ALIVE"
                ]
                if len(alive) >= count:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{count} Ray nodes did not join within {timeout:g}s")
            time.sleep(0.5)

    def kill_node(self, index: int) -> None:
        """SIGKILL node ``index``'s process group (0 is the head): the node dies as with a power
        cut, without telling the cluster (processes that left the group, e.g. a job's
        entrypoint in its own session, live on)."""
        process = self.processes[index]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def stop(self) -> None:
        """SIGTERM each node's process group, SIGKILL what is left after 3 s."""
        for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
            for process in self.processes:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, sig)
            deadline = time.monotonic() + wait
            for process in self.processes:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(max(0.0, deadline - time.monotonic()))
            # Ray's own children (raylet, gcs, workers) share the group; make sure none is left.
            if all(not _group_alive(p.pid) for p in self.processes):
                break
        shutil.rmtree(self.root, ignore_errors=True)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def start_cluster(
    nodes: int = 2,
    cpus_per_node: int = 2,
    *,
    head_cpus: int | None = None,
    extra_env: dict[str, str] | None = None,
) -> LocalRayCluster:
    """Start a cluster under a short temp dir (Ray limits its socket paths' length).

    Ray takes its ports as numbers, so another process may bind one between our check that it
    is free and Ray's bind; a node that exits at start (``RuntimeError``) is retried once with
    new ports.
    """
    retries = 1
    while True:
        root = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))
        os.chmod(root, 0o700)
        cluster = LocalRayCluster(
            root=root, token=secrets.token_hex(16), extra_env=dict(extra_env or {})
        )
        try:
            cluster.start(nodes=nodes, cpus_per_node=cpus_per_node, head_cpus=head_cpus)
        except RuntimeError:
            cluster.stop()
            if retries == 0:
                raise
            retries -= 1
            continue
        except BaseException:
            cluster.stop()
            raise
        return cluster
