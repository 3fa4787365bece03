"""Is the process we recorded still running? (pid + start time, so a reused pid is not it.)

The runner, the model servers and the backend that reaps them all record a detached process as
its pid and start time and ask this module about it later.
"""

from __future__ import annotations


def process_start(pid: int) -> float | None:
    """Start time of ``pid`` (seconds since the epoch), None if it is gone or a zombie."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return float(process.create_time())
    except psutil.Error:
        return None


def same_process(pid: int, started: float | None) -> bool:
    """Whether ``pid`` still runs and is the process started at ``started`` (not a reused pid);
    a falsy ``started`` (not recorded) accepts any process with that pid."""
    now = process_start(pid)
    return now is not None and (not started or abs(now - float(started)) < 1.0)
