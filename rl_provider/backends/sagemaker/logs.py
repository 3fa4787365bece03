"""CloudWatch log tailing for training jobs, written once for the sync and the async backend.

SageMaker writes a training job's output to the log group ``/aws/sagemaker/TrainingJobs``, one
stream per instance named ``<job>/algo-<n>-<epoch>``. ``tail()`` is a generator that yields the
CloudWatch Logs calls it needs and receives their responses, so the blocking backend (boto3) and
the async one (aiobotocore) drive the same code.

The cursor is JSON (``{"streams": {stream name: nextForwardToken}}``): it travels through XCom
and trigger events, so a poll after a reschedule or a deferral starts where the last one ended
and no line is printed twice. Lines from different instances are interleaved by timestamp and
prefixed with the instance (``[algo-2] ...``).
"""

from __future__ import annotations

import re
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

from rl_provider.exceptions import RLConfigError

__all__ = ["ABSENT", "LOG_GROUP", "LogCursor", "LogEvent", "Steps", "format_lines", "tail"]

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
# Pages (up to 10,000 events / 1 MB each, CloudWatch's limit) read per stream in one poll, so a
# poll stays short; the rest is read by the next poll from the cursor.
MAX_PAGES_PER_STREAM = 10
_EPOCH_SUFFIX = re.compile(r"-\d{9,}$")

# (operation, kwargs) -> the response, or None when the log group or stream does not exist yet.
Request = tuple[str, dict[str, Any]]
# The error code of a call on a log group or stream that does not exist (yet): answered None.
ABSENT = frozenset({"ResourceNotFoundException"})


@dataclass(slots=True)
class LogCursor:
    """Where each stream was left: CloudWatch's ``nextForwardToken`` per stream name."""

    tokens: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, cursor: object) -> LogCursor:
        if cursor is None:
            return cls()
        if isinstance(cursor, Mapping) and isinstance(cursor.get("streams"), Mapping):
            return cls({str(k): str(v) for k, v in cursor["streams"].items()})
        raise RLConfigError(
            f"Log cursor {cursor!r} is not a SageMaker log cursor ({{'streams': {{...}}}}): pass "
            "None to read from the start, or the cursor the previous read_logs() returned."
        )

    def to_json(self) -> dict[str, Any]:
        return {"streams": dict(self.tokens)}


@dataclass(frozen=True, slots=True)
class LogEvent:
    timestamp: int  # milliseconds since the epoch (CloudWatch)
    stream: str
    message: str


def host_of(job_name: str, stream: str) -> str:
    """``<job>/algo-2-1700000000`` -> ``algo-2``."""
    host = stream[len(job_name) + 1 :] if stream.startswith(f"{job_name}/") else stream
    return _EPOCH_SUFFIX.sub("", host)


def format_lines(job_name: str, events: list[LogEvent]) -> list[str]:
    """One printable line per message line, prefixed with its instance."""
    lines = []
    for event in events:
        host = host_of(job_name, event.stream)
        for line in event.message.rstrip("\n").split("\n"):
            lines.append(f"[{host}] {line}")
    return lines


def _discover(job_name: str) -> Generator[Request, dict[str, Any] | None, list[str] | None]:
    """The job's stream names (DescribeLogStreams, every page); None without a log group."""
    streams: list[str] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"logGroupName": LOG_GROUP, "logStreamNamePrefix": f"{job_name}/"}
        if token:
            kwargs["nextToken"] = token
        response = yield ("describe_log_streams", kwargs)
        if response is None:
            return None
        streams.extend(s["logStreamName"] for s in response.get("logStreams", []))
        token = response.get("nextToken")
        if not token:
            return streams


def tail(
    job_name: str, cursor: LogCursor, *, discover: bool = True, pages: int = MAX_PAGES_PER_STREAM
) -> Generator[Request, dict[str, Any] | None, list[LogEvent]]:
    """Yield CloudWatch calls; return the new events of every stream, ordered by timestamp.

    ``cursor`` is updated in place as pages are read. ``discover=False`` reads only the streams
    the cursor knows (no DescribeLogStreams; a cursor that knows none discovers anyway).
    ``pages``: at most this many GetLogEvents per stream; CloudWatch only says a stream has
    nothing newer by answering the token it was given, which costs a call after every page
    with events, so a follower that reads again later asks for one page (the rest comes next
    time, from the cursor).
    """
    streams: list[str] | None = list(cursor.tokens)
    if discover or not streams:
        streams = yield from _discover(job_name)
        if streams is None:  # no job has logged in this account/region yet
            return []
    events: list[LogEvent] = []
    for stream in sorted(set(streams)):
        position = cursor.tokens.get(stream)
        for _ in range(pages):
            kwargs = {"logGroupName": LOG_GROUP, "logStreamName": stream, "startFromHead": True}
            if position:
                kwargs["nextToken"] = position
            response = yield ("get_log_events", kwargs)
            if response is None:
                break
            page = response.get("events", [])
            events.extend(LogEvent(int(e["timestamp"]), stream, str(e["message"])) for e in page)
            following = response.get("nextForwardToken")
            # CloudWatch returns the token it was given once the stream has nothing newer.
            done = not page or not following or following == position
            position = following or position
            if done:
                break
        if position:
            cursor.tokens[stream] = position
    # sorted() is stable: events of one stream keep their order when timestamps tie.
    return sorted(events, key=lambda event: event.timestamp)


class Steps:
    """Drives a ``tail()`` generator: iterating yields its calls, ``response`` is the answer to
    the last one (set it before the next step), ``events`` the result once iteration ends.

    The blocking and the async backend loop over it alike, calling AWS their own way.
    """

    def __init__(self, tailer: Generator[Request, dict[str, Any] | None, list[LogEvent]]) -> None:
        self._tailer = tailer
        self.response: dict[str, Any] | None = None
        self.events: list[LogEvent] = []

    def __iter__(self) -> Steps:
        return self

    def __next__(self) -> Request:
        try:
            # The first send(None) starts the generator, as next() would.
            return self._tailer.send(self.response)
        except StopIteration as stop:
            self.events = stop.value
            raise
