"""The entry point's process group, as the runner supervises it.

``supervise()`` starts the entry point in its own process group (killed if the runner dies),
pumps its stdout/stderr line by line into the job's log and metrics, stops it on request or at
``MaxRuntimeInSeconds`` (SIGTERM to the entry point, SIGKILL to its group after the grace period),
and kills whatever it left behind. What the job records (log, metrics, state) is the runner's
(``runner.py``), reached through ``Supervised``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import signal
import subprocess
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO, Protocol, cast

from rl_provider.core.enums import SecondaryStatus
from rl_provider.core.metrics import MetricExtractor

_PR_SET_PDEATHSIG = 1
_FLUSH_SECONDS = 0.25
_STREAM_DRAIN_SECONDS = 2.0
_STOP_POLL_SECONDS = 1.0
_STDERR_TAIL = 20
_GUARD_POLL_SECONDS = 0.5
_CHILD_POLL_SECONDS = 0.05

# (metric name, value, timestamp) waiting to be stored
MetricPoint = tuple[str, float, float]


class Supervised(Protocol):
    """The job as the supervision loop sees it (``runner.Runner``)."""

    stop_grace: float
    stop_signal: threading.Event

    def write(self, line: str) -> None:
        """One line into the job's log (buffered until ``flush``)."""

    def flush(self, pending: list[MetricPoint]) -> None:
        """Flush the log and store ``pending`` (emptied once stored)."""

    def record_entry_pid(self, pid: int | None) -> None:
        """The entry point's pid (its process group) for the reaper; None once it ended."""

    def stop_requested(self) -> bool:
        """Whether a stop was asked for (``stop_training_job``)."""

    def stop_at_max_runtime(self) -> bool:
        """True (and Stopping recorded) once ``MaxRuntimeInSeconds`` has passed."""


def supervise(
    job: Supervised, command: list[str], cwd: Path, env: dict[str, str], metrics: MetricExtractor
) -> tuple[int | None, SecondaryStatus | None, list[str]]:
    """Run ``command`` to its end: (exit code, Stopped/MaxRuntimeExceeded or None, the last
    stderr lines)."""
    child = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    guardian = _guard_group(child.pid)
    job.record_entry_pid(child.pid)
    lines: queue.Queue[tuple[str, float, str] | None] = queue.Queue()
    streams = (cast(IO[bytes], child.stdout), cast(IO[bytes], child.stderr))
    for stream, label in zip(streams, ("stdout", "stderr"), strict=True):
        threading.Thread(target=_pump, args=(stream, label, lines), daemon=True).start()

    tail: deque[str] = deque(maxlen=_STDERR_TAIL)
    pending: list[MetricPoint] = []
    open_streams, last_flush, last_stop_poll = 2, time.monotonic(), 0.0
    last_line = last_child_poll = 0.0
    stopped: SecondaryStatus | None = None
    stop_sent = exited_at = None
    killed = False
    while True:
        arrived = False
        try:
            item = lines.get(timeout=0.1)
        except queue.Empty:
            pass
        else:
            if item is None:
                open_streams -= 1
            else:
                arrived = True
                label, stamp, text = item
                job.write(text)
                if label == "stderr":
                    tail.append(text)
                pending += [(m.name, m.value, stamp) for m in metrics.match(text)]
        now = time.monotonic()
        if arrived:
            last_line = now
        if now - last_flush >= _FLUSH_SECONDS or len(pending) >= 500:
            job.flush(pending)
            last_flush = now
        # A waitpid per line cost as much as the line; every _CHILD_POLL_SECONDS is enough.
        if exited_at is None and now - last_child_poll >= _CHILD_POLL_SECONDS:
            last_child_poll = now
            if child.poll() is not None:
                exited_at = now
        if exited_at is not None:
            # Streams end when every process holding them exits. Lines still arriving are
            # drained (a fast writer is far ahead of us: stopping 2 s after its exit lost
            # half of 400,000 lines); only a silent straggler holding a pipe is not waited on.
            if open_streams == 0 or now - max(exited_at, last_line) > _STREAM_DRAIN_SECONDS:
                break
            continue
        if stopped is None:
            if now - last_stop_poll >= _STOP_POLL_SECONDS or job.stop_signal.is_set():
                last_stop_poll = now
                if job.stop_requested():
                    stopped = SecondaryStatus.STOPPED
            if stopped is None and job.stop_at_max_runtime():
                stopped = SecondaryStatus.MAX_RUNTIME_EXCEEDED
            if stopped is not None:
                job.write(f"rl_provider: sending SIGTERM to the entry point ({stopped.value})")
                # The entry point only, as `docker stop` signals a container's main process: its
                # helpers keep running while it saves. Ray's GCS, raylet and agents share its
                # group and exit on SIGTERM; the driver then lost its object store mid-save and
                # was terminated by Ray ("connection to the plasma store is failed"), leaving a
                # model.tar.gz without policy.json. The group is SIGKILLed once it exits.
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(signal.SIGTERM)
                stop_sent = now
        elif not killed and stop_sent is not None and now - stop_sent > job.stop_grace:
            job.write(f"rl_provider: grace period of {job.stop_grace:g}s over, sending SIGKILL")
            _signal_group(child.pid, signal.SIGKILL)
            killed = True
    _signal_group(child.pid, signal.SIGKILL)  # whatever the entry point left behind
    with contextlib.suppress(ProcessLookupError):
        os.kill(guardian, signal.SIGKILL)
    os.waitpid(guardian, 0)
    job.flush(pending)
    job.record_entry_pid(None)
    return child.returncode, stopped, list(tail)


def _die_with_parent() -> None:
    """Runs in the entry point's process: it gets SIGKILL if the supervisor dies (kill -9)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _pump(stream: IO[bytes], label: str, lines: queue.Queue[tuple[str, float, str] | None]) -> None:
    with stream:
        for raw in stream:
            # A line is what the program wrote before "\n"; a "\r" in it (or at its end) stays.
            text = raw[:-1] if raw.endswith(b"\n") else raw
            lines.put((label, time.time(), text.decode("utf-8", errors="replace")))
    lines.put(None)


def _guard_group(pgid: int) -> int:
    """Fork a guardian that SIGKILLs the entry point's process group once this runner is gone.

    PR_SET_PDEATHSIG reaches the entry point only, not its children (Ray workers, a subprocess
    the script started): they used to live on after a kill -9 of the runner until something
    described the job. The guardian is forked before any thread starts and holds no descriptor
    of ours, so it keeps no pipe open; the runner kills it when the job ends normally.
    """
    runner = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    try:
        os.closerange(0, os.sysconf("SC_OPEN_MAX"))
        os.setsid()  # a kill of the runner's process group must not take the guardian with it
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a stop is the runner's business
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        while os.getppid() == runner:
            time.sleep(_GUARD_POLL_SECONDS)
        os.killpg(pgid, signal.SIGKILL)
    finally:
        os._exit(0)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
