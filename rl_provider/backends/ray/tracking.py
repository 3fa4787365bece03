"""What both Ray twins read from the job server, and what they remember of each job (no I/O).

The Jobs API returns a job's whole log on every ``GET /api/jobs/<id>/logs`` (Ray 2.60 has no
offset; its websocket tail restarts from the top), so the twins fetch it as little as the state
allows: once per poll (the log a describe fetched serves the ``read_logs`` that follows it), and
never again for a job whose log was read after Ray called it ended (the state is then final).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from typing import Any

import httpx

from rl_provider.backends.ray.logs import ParsedLog, split_log
from rl_provider.backends.ray.state import REQUEST_KEY, TERMINAL, describe
from rl_provider.core.jobs import TrainingJobDescription
from rl_provider.exceptions import BackendError, JobNotFoundError, RLConfigError

log = logging.getLogger(__name__)


def http_error(response: httpx.Response, what: str) -> BackendError:
    text = response.text.strip()[:500]
    if response.status_code in (401, 403):
        return BackendError(
            f"{what}: the Ray job server refused the token (HTTP {response.status_code}): pass "
            "the cluster's token (RayBackend(token=...), the connection's password)."
        )
    return BackendError(f"{what}: HTTP {response.status_code} from the Ray job server: {text}")


class JobTracker:
    """The address and headers of one job server, each job's parsed log, the stops asked."""

    def __init__(self, address: str, token: str | None, headers: Mapping[str, str] | None):
        if not isinstance(address, str) or not address.startswith(("http://", "https://")):
            raise RLConfigError(
                f"Ray address {address!r}: pass the job server's URL, e.g. "
                "'http://head-node:8265' (the dashboard's address)."
            )
        self.address = address.rstrip("/")
        self.headers = dict(headers or {})
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.parsed: dict[str, ParsedLog] = {}
        self.stopping: set[str] = set()
        self.lock = threading.Lock()
        # (job, log text) a describe fetched, for the read_logs that follows it (once).
        self._recent: tuple[str, str] | None = None

    def info(self, name: str, response: httpx.Response) -> dict[str, Any]:
        if response.status_code == 404:
            raise JobNotFoundError(
                f"Training job {name!r} is not on the Ray cluster at {self.address} (if it was "
                "submitted there, the cluster lost it: a head restarted without GCS fault "
                "tolerance keeps no jobs)."
            )
        if response.status_code != 200:
            raise http_error(response, f"Describing training job {name!r}")
        info: dict[str, Any] = response.json()
        raw = (info.get("metadata") or {}).get(REQUEST_KEY)
        info["_request"] = json.loads(raw) if raw else {}
        return info

    def wants_log(self, name: str) -> bool:
        """Whether a describe of ``name`` needs its log (no: the job's whole log is parsed)."""
        parsed = self.parsed.get(name)
        return parsed is None or not parsed.complete

    def log(self, name: str, response: httpx.Response) -> str | None:
        """The log's text; None when the job server cannot reach the node holding it (HTTP
        5xx: the driver's node died, and the log with it)."""
        if response.status_code == 404:
            raise JobNotFoundError(f"Training job {name!r} is not on the Ray cluster.")
        if response.status_code >= 500:
            return None
        if response.status_code != 200:
            raise http_error(response, f"Reading the logs of training job {name!r}")
        return str(response.json().get("logs") or "")

    def describe(self, name: str, info: dict[str, Any], text: str | None) -> TrainingJobDescription:
        """``info`` and the log ``text`` fetched after it (None: not fetched, or unreachable:
        the state stands on Ray's word and the log read so far)."""
        with self.lock:
            parsed = self.parsed.setdefault(name, ParsedLog())
            if text is not None:
                parsed.feed(text)
                # Fetched after Ray said the job ended: nothing more will be written.
                parsed.complete = str(info.get("status")) in TERMINAL
                self._recent = (name, text)
            return describe(name, info, parsed, stop_requested=name in self.stopping)

    def recent(self, name: str) -> str | None:
        """The log the last describe of ``name`` fetched, once (None: fetch it)."""
        with self.lock:
            recent, self._recent = self._recent, None
        return recent[1] if recent is not None and recent[0] == name else None

    def lines(self, name: str, text: str | None, cursor: Any) -> tuple[list[str], Any]:
        """``read_logs``: the lines of ``text`` after ``cursor``. Without a text (the node of
        the job's driver is unreachable) no lines and the same cursor: the state comes from
        describe (which says Failed once Ray has called the node dead), and lines not read yet
        are read if the log comes back."""
        if text is None:
            log.warning("The log of training job %s is unreachable (its node is down?).", name)
            return [], cursor
        lines, _markers, offset = split_log(text, int(cursor or 0))
        return lines, offset

    def metrics(self, name: str, text: str | None) -> dict[str, list[tuple[float, float]]]:
        with self.lock:
            parsed = self.parsed.setdefault(name, ParsedLog())
            parsed.feed(text or "")
            return {k: list(v) for k, v in parsed.metrics.items()}
