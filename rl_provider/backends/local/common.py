"""Helpers shared by the local backend's training and serving halves."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

from rl_provider.backends.local import container, files, transfer
from rl_provider.backends.local.endpoint_state import Server
from rl_provider.backends.local.processes import process_start, same_process


def arn(kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:local:000000000000:{kind}/{name}"


def utc(ts: float | None) -> dt.datetime | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, tz=dt.UTC)


def spawn_detached(
    module: str, args: list[str], home: Path, cwd: Path, uris: list[str]
) -> tuple[int, float]:
    """Start ``python -m module HOME ARGS --detach``; return the detached process's pid/start.

    The process gets the scrubbed environment and a private umask; if ``uris`` include s3://
    locations it gets the caller's AWS credentials on stdin (kept in its memory, never in an
    environment user code can read).
    """
    spawned = subprocess.run(
        [sys.executable, "-m", module, str(home), *args, "--detach"],
        input=transfer.credentials_for(uris) + "\n",
        capture_output=True,
        text=True,
        cwd=cwd,
        env=container.scrubbed_env(),
        umask=files.PRIVATE_UMASK,
    )
    if spawned.returncode != 0 or not spawned.stdout.strip().isdigit():
        raise OSError(spawned.stderr.strip() or f"{module} exited {spawned.returncode}")
    pid = int(spawned.stdout.strip())
    started = process_start(pid)
    return pid, started if started is not None else 0.0


def enter_detached_process(detach: bool, log_file: Path) -> None:
    """The start of a process ``spawn_detached`` started (runner, model server): no secrets, a
    private umask and, with ``--detach``, the credentials read from stdin, then a fork whose
    parent prints the child's pid and exits; the child leads its own session and writes its
    output to ``log_file``."""
    container.drop_secrets()  # spawned with a scrubbed environment; run by hand, drop them here
    os.umask(files.PRIVATE_UMASK)
    if not detach:
        return
    transfer.receive_credentials(sys.stdin.readline())
    pid = os.fork()
    if pid:
        print(pid, flush=True)
        os._exit(0)
    os.setsid()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    log_fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, files.PRIVATE_FILE_MODE)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)


def alive(server: Server | None) -> bool:
    """Whether the model server's recorded process (pid + start time) still runs."""
    if server is None or not server.pid:
        return False
    return same_process(server.pid, server.started)


def signal_server(server: Server, sig: signal.Signals) -> None:
    """Send ``sig`` to the server's process (SIGTERM: it stops accepting, finishes the requests
    in flight and exits); nothing if it is gone."""
    if server.pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(server.pid, sig)
