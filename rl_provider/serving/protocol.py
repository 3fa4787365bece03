"""The model server's connection side: limits, the connection table, whole responses.

``rl_provider.serving.server`` parses and answers requests (``Connection``); this module holds
what does not depend on a request: the limits every connection is held to (docs/RELIABILITY.md),
the table of open connections that enforces them (the bound, least-recent eviction, the
once-a-second deadline sweep, the graceful drain), how a response is written (head and body in
one buffer), the listening socket (loopback only) and the ``/ping`` check SageMaker makes.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rl_provider.serving.handler import InferenceHandler
    from rl_provider.serving.server import Connection

log = logging.getLogger(__name__)

# SageMaker's InvokeEndpoint payload limit (6 MB), enforced on the raw body.
MAX_BODY_BYTES = 6 * 1024 * 1024
# Request line and headers; our client sends about 150 bytes.
MAX_HEAD_BYTES = 64 * 1024
# SageMaker keeps endpoint connections open about as long (Elastic Load Balancing's default).
KEEP_ALIVE_SECONDS = 60.0
# Clients are on this machine: a head or body that takes longer is a stuck or hostile client.
HEAD_SECONDS = 5.0
BODY_SECONDS = 10.0
# A SIGTERM'd server waits this long for requests already started before dropping them.
GRACEFUL_SHUTDOWN_SECONDS = 30.0
MAX_CONNECTIONS = 1000
# File descriptors kept free of connections: the model's own files, torch's, logging.
RESERVED_FDS = 128

TEXT = b"text/plain; charset=utf-8"
# Connection phases; each has its own deadline.
IDLE, HEAD, BODY = 0, 1, 2


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """The server's limits; the defaults are the module's constants (docs/RELIABILITY.md)."""

    max_connections: int = MAX_CONNECTIONS
    keep_alive_seconds: float = KEEP_ALIVE_SECONDS
    head_seconds: float = HEAD_SECONDS
    body_seconds: float = BODY_SECONDS
    max_head_bytes: int = MAX_HEAD_BYTES
    max_body_bytes: int = MAX_BODY_BYTES
    graceful_shutdown_seconds: float = GRACEFUL_SHUTDOWN_SECONDS


def _status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:  # a handler's own status_code, e.g. 499
        phrase = "Client Error" if status < 500 else "Server Error"
    return f"HTTP/1.1 {status} {phrase}\r\n".encode("latin-1")


_STATUS_LINES = {status.value: _status_line(status.value) for status in HTTPStatus}


def response(status: int, body: bytes, content_type: bytes = TEXT, close: bool = False) -> bytes:
    """One whole HTTP/1.1 response: head and body in one buffer, written with one call."""
    line = _STATUS_LINES.get(status) or _status_line(status)
    return b"%scontent-type: %s\r\ncontent-length: %d\r\n%s\r\n%s" % (
        line,
        content_type,
        len(body),
        b"connection: close\r\n" if close else b"",
        body,
    )


def raise_open_files_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard one; return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as err:  # a container may forbid it: keep the soft one
            log.warning("Could not raise the open-files limit from %s to %s: %s", soft, hard, err)
    return int(soft)


def connection_bound(limits: Limits, open_files: int) -> int:
    """At most ``limits.max_connections``, and always below the open-files limit."""
    return max(1, min(limits.max_connections, open_files - RESERVED_FDS))


class ServerState:
    """State shared by the connections of one listening socket."""

    def __init__(self, handler: InferenceHandler, limits: Limits, max_connections: int) -> None:
        self.handler = handler
        self.limits = limits
        self.max_connections = max_connections
        # Insertion order is least recent progress first: a connection moves to the end when it
        # connects and after each response, so the first one is the one to close at the bound.
        self.connections: dict[Connection, None] = {}
        self.draining = False
        self.drained = asyncio.Event()
        self.quiet_until = 0.0
        self.loop = asyncio.get_running_loop()

    def admit(self, connection: Connection) -> None:
        if len(self.connections) >= self.max_connections:
            now = self.loop.time()
            if now >= self.quiet_until:  # a flood of connections must not flood the log too
                self.quiet_until = now + 60.0
                log.warning(
                    "%s connections open, the bound: closing the least recently active ones",
                    len(self.connections),
                )
            while len(self.connections) >= self.max_connections:
                next(iter(self.connections)).drop()
        self.connections[connection] = None

    def progressed(self, connection: Connection) -> None:
        connections = self.connections
        if connection in connections:
            del connections[connection]
            connections[connection] = None

    def forget(self, connection: Connection) -> None:
        self.connections.pop(connection, None)
        if self.draining and not self.connections:
            self.drained.set()

    def sweep(self, due: float) -> None:
        """Close the connections whose deadline passed (runs once a second, ``due`` is when)."""
        now = self.loop.time()
        if now - due > 0.5:
            # The loop was blocked (a slow handler): uvloop runs timers before reading sockets,
            # so requests that arrived meanwhile are unread yet. Judge at the next sweep.
            return
        for connection in [c for c in self.connections if c.deadline < now]:
            connection.timed_out()

    def drain(self) -> None:
        """Stop taking requests: idle connections close now, started requests get answered."""
        self.draining = True
        for connection in list(self.connections):
            if connection.phase == IDLE:
                connection.drop(flush=True)
        if not self.connections:
            self.drained.set()


async def ping(port: int, timeout: float = 10.0) -> bool:
    """Whether ``GET /ping`` on our own port answers 200: the check SageMaker makes."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
        writer.write(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        status_line = await asyncio.wait_for(reader.readline(), timeout)
        writer.close()
        return status_line.split(b" ")[1:2] == [b"200"]
    except (OSError, TimeoutError, IndexError):
        return False


def bind_loopback(port: int = 0) -> socket.socket:
    """A listening TCP socket on 127.0.0.1 (a free port by default): never another interface."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when installed (as uvicorn used), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
