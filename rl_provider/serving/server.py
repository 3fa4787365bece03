"""The local model server: SageMaker's container HTTP contract on 127.0.0.1.

``GET /ping`` answers 200 once the model is loaded; ``POST /invocations`` runs the handler.
Every bad request gets a 4xx with a plain-text message and the server keeps serving.

HTTP stack: an ``asyncio.Protocol`` on the httptools parser (llhttp, Node's parser, in C), on
uvloop when installed; both come with Airflow 3's API server. Why not uvicorn, which we used
before: it writes each response's head and body in two socket writes and goes through the ASGI
message layer, which cost 1.5x the server CPU of a bare asyncio server running the same handler
(``bench/endpoint_latency.py`` measures both side by side; ours is ~1.0x). What uvicorn gave us
is here, plus what it lacked (issue 11):

- one write per response; the handler runs inline on the event loop (a policy forward pass is
  tens of microseconds, a thread hop would cost as much); pipelined requests are answered in
  order with one write per batch;
- limits on every connection: the request head must arrive within ``HEAD_SECONDS`` of its first
  byte and be at most ``MAX_HEAD_BYTES``, the body within ``BODY_SECONDS`` after the head and at
  most ``MAX_BODY_BYTES`` (SageMaker's 6 MB, answered 413), an idle keep-alive connection is
  closed after ``KEEP_ALIVE_SECONDS``; one timer sweeps all connections each second, so the
  common path only stores a deadline;
- a bound on concurrent connections, well below the open-files limit (whose soft value is raised
  to the hard one at start): at the bound a new connection closes the one that made progress
  least recently, so clients that hold connections without sending requests cannot shut out
  ``/ping`` or real requests;
- a graceful SIGTERM: stop listening, close idle connections, answer requests already started
  (``Connection: close``), then exit; after ``GRACEFUL_SHUTDOWN_SECONDS`` whatever is left is
  dropped. That is what lets ``update_endpoint`` switch servers without failing a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Callable
from typing import cast

import httptools

from rl_provider.serving.handler import InferenceHandler, InvocationError
from rl_provider.serving.protocol import (
    BODY,
    BODY_SECONDS,
    GRACEFUL_SHUTDOWN_SECONDS,
    HEAD,
    HEAD_SECONDS,
    IDLE,
    KEEP_ALIVE_SECONDS,
    MAX_BODY_BYTES,
    MAX_CONNECTIONS,
    MAX_HEAD_BYTES,
    Limits,
    ServerState,
    bind_loopback,
    connection_bound,
    loop_factory,
    ping,
    raise_open_files_limit,
    response,
)

__all__ = [
    # Re-exported: the limits and the socket are part of this module's interface.
    "BODY_SECONDS",
    "GRACEFUL_SHUTDOWN_SECONDS",
    "HEAD_SECONDS",
    "KEEP_ALIVE_SECONDS",
    "MAX_BODY_BYTES",
    "MAX_CONNECTIONS",
    "MAX_HEAD_BYTES",
    "Limits",
    "bind_loopback",
    "serve",
]

log = logging.getLogger(__name__)


class Connection(asyncio.Protocol):
    """One client connection: parse with httptools, answer each request with one write."""

    def __init__(self, server: ServerState) -> None:
        self.server = server
        self.loop = server.loop
        self.handler = server.handler
        self.limits = server.limits
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.phase = IDLE
        self.deadline = 0.0
        self.head_bytes = 0
        self.head_size = 0
        self.url = b""
        self.content_type = b""
        self.accept = b""
        self.expect = b""
        self.body: list[bytes] = []
        self.body_bytes = 0
        self.too_large = False
        self.answered = False
        self.upgrade = False
        self.close_after = False
        self.closing = False
        self.out: list[bytes] = []

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A TCP transport (uvloop's do not subclass asyncio.Transport, so no isinstance check).
        self.transport = cast(asyncio.Transport, transport)
        self.deadline = self.loop.time() + self.limits.keep_alive_seconds
        self.server.admit(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.server.forget(self)

    def pause_writing(self) -> None:
        # The client does not read its answers: stop reading its requests until it does.
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None:
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.phase != BODY:
            self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # answered 400 at on_message_complete; the connection closes after it
        except httptools.HttpParserCallbackError as err:  # a bug of ours, not the client's
            log.error("Answering a request failed", exc_info=err.__context__ or err)
            self._fail(500, "Internal server error: see the server log.\n")
            return
        except httptools.HttpParserError as err:
            self._fail(400, f"Malformed HTTP request: {err}. Send HTTP/1.1.\n")
            return
        if self.phase == HEAD and self.head_bytes > self.limits.max_head_bytes:
            self._fail(431, self._head_too_large_message())  # still arriving: stop buffering it
            return
        if self.out:
            self._flush()

    # httptools callbacks

    def on_message_begin(self) -> None:
        self.phase = HEAD
        self.deadline = self.loop.time() + self.limits.head_seconds
        self.url = self.content_type = self.accept = self.expect = b""
        self.body = []
        self.body_bytes = 0
        self.too_large = self.answered = False
        self.head_size = 0

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_size += len(name) + len(value) + 4
        name = name.lower()
        if name == b"content-type":
            self.content_type = value
        elif name == b"accept":
            self.accept = value
        elif name == b"content-length":
            # A declared body over the limit is answered without keeping it (read and dropped,
            # so a client that writes its whole body before reading is not reset).
            if value.isdigit() and int(value) > self.limits.max_body_bytes:
                self.too_large = True
        elif name == b"expect":
            self.expect = value.lower()

    def on_headers_complete(self) -> None:
        self.phase = BODY
        self.head_bytes = 0
        self.deadline = self.loop.time() + self.limits.body_seconds
        self.upgrade = self.parser.should_upgrade()
        if self.head_size > self.limits.max_head_bytes:
            self.answered = True  # a head that arrived whole, but too large
            self._fail(431, self._head_too_large_message())
            return
        if self.expect == b"100-continue" and self.transport is not None and not self.closing:
            if self.too_large:
                # The client waits for our word before sending: refuse now, and close, since it
                # may send the body anyway.
                self.answered = True
                self._fail(413, self._too_large_message())
            else:
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        if self.too_large:
            return
        self.body_bytes += len(body)
        if self.body_bytes > self.limits.max_body_bytes:
            self.too_large = True
            self.body = []
            return
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.close_after:
            return  # pipelined after a request that closes the connection: not answered
        if not self.parser.should_keep_alive() or self.server.draining:
            self.close_after = True
        if self.upgrade:
            self.close_after = True
            self._answer(
                400,
                "This server speaks HTTP/1.1 only (no WebSocket or other protocol upgrade): "
                "send POST /invocations.\n",
            )
        elif not self.answered:
            self._route()
        self.phase = IDLE
        self.deadline = self.loop.time() + self.limits.keep_alive_seconds
        self.server.progressed(self)

    # Requests

    def _head_too_large_message(self) -> str:
        return f"The request head is larger than {self.limits.max_head_bytes} bytes.\n"

    def _too_large_message(self) -> str:
        return (
            f"The body is larger than {self.limits.max_body_bytes} bytes, SageMaker's "
            "InvokeEndpoint limit: send fewer observations per request.\n"
        )

    def _route(self) -> None:
        path = self.url.partition(b"?")[0]
        method = self.parser.get_method()
        if path == b"/invocations":
            if method != b"POST":
                self._answer(405, "Use POST /invocations.\n")
            elif self.too_large:
                self._answer(413, self._too_large_message())
            else:
                self._invoke()
        elif path == b"/ping":
            if method in (b"GET", b"HEAD"):
                self.out.append(response(200, b"", close=self.close_after))
            else:
                self._answer(405, "Use GET /ping.\n")
        else:
            shown = path[:200].decode("latin-1")
            self._answer(404, f"No route {shown!r}: use POST /invocations.\n")

    def _invoke(self) -> None:
        body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        self.body = []
        try:
            payload, produced = self.handler.invoke(
                body, self.content_type.decode("latin-1"), self.accept.decode("latin-1")
            )
        except InvocationError as err:
            self._answer(err.status_code, f"{err.message}\n")
            return
        # The content type is the handler's text: a line break in it would split the head.
        if "\r" in produced or "\n" in produced or not produced.isascii():
            self._answer(
                500,
                f"ModelError: the handler's content type {produced!r} is not a valid header "
                "value.\n",
            )
            return
        self.out.append(response(200, payload, produced.encode("ascii"), self.close_after))

    def _answer(self, status: int, message: str) -> None:
        self.out.append(response(status, message.encode("utf-8"), close=self.close_after))

    def _flush(self) -> None:
        out = self.out
        self.out = []
        transport = self.transport
        if transport is None or self.closing:
            return  # whatever the client pipelined after a closing answer is not answered
        transport.write(out[0] if len(out) == 1 else b"".join(out))
        if self.close_after:
            transport.close()
            self.closing = True

    def _fail(self, status: int, message: str) -> None:
        """Answer a request that cannot go on, then close (the parser cannot resync)."""
        self.close_after = True
        self._answer(status, message)
        self._flush()

    # Limits

    def timed_out(self) -> None:
        if self.closing:
            self.drop()  # closed, but its client does not read the last answer: stop waiting
        elif self.phase == HEAD:
            self._fail(
                408, f"The request head did not arrive within {self.limits.head_seconds} s.\n"
            )
        elif self.phase == BODY:
            self._fail(
                408, f"The request body did not arrive within {self.limits.body_seconds} s.\n"
            )
        else:
            self.drop()

    def drop(self, flush: bool = False) -> None:
        """Close without an answer (idle, evicted, timed out, or shutting down).

        ``flush``: answers already written still go out first, and the connection counts until
        it is closed (a draining server waits for that); otherwise it stops counting now and
        unsent answers are dropped (a client that does not read them is not waited for).
        """
        transport = self.transport
        if transport is not None and flush:
            transport.close()
            self.closing = True
            return
        self.server.forget(self)
        if transport is None:
            return
        if transport.get_write_buffer_size():
            transport.abort()
        else:
            transport.close()


def serve(
    handler: InferenceHandler,
    sock: socket.socket,
    on_ready: Callable[[], bool] | None = None,
    limits: Limits | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT (graceful) or until ``on_ready`` returns False.

    ``on_ready`` runs in a worker thread once ``/ping`` answers on ``sock``; returning False
    means the server is no longer wanted (its endpoint was deleted or updated meanwhile).
    """
    limits = limits or Limits()
    bound = connection_bound(limits, raise_open_files_limit())
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(_main(handler, sock, on_ready, limits, bound))


async def _main(
    handler: InferenceHandler,
    sock: socket.socket,
    on_ready: Callable[[], bool] | None,
    limits: Limits,
    bound: int,
) -> None:
    loop = asyncio.get_running_loop()
    state = ServerState(handler, limits, bound)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    listener = await loop.create_server(lambda: Connection(state), sock=sock, backlog=1024)
    port = int(sock.getsockname()[1])
    log.info("Serving on 127.0.0.1:%s, at most %s connections", port, bound)

    sweeper: list[asyncio.TimerHandle] = []

    def schedule_sweep() -> None:
        due = loop.time() + 1.0
        sweeper[:] = [loop.call_at(due, sweep, due)]

    def sweep(due: float) -> None:
        state.sweep(due)
        schedule_sweep()

    schedule_sweep()
    try:
        if not await ping(port):
            log.error("The server does not answer GET /ping on 127.0.0.1:%s", port)
            return
        if on_ready is not None:
            # Not awaited directly: a SIGTERM during the check must still be noticed.
            ready = asyncio.ensure_future(asyncio.to_thread(on_ready))
            waiting = asyncio.ensure_future(stop.wait())
            await asyncio.wait((ready, waiting), return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
            if ready.done() and not ready.result():
                log.info("No longer wanted: shutting down")
                return
        await stop.wait()
        log.info("Shutting down: finishing requests already started")
    finally:
        listener.close()
        state.drain()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.drained.wait(), limits.graceful_shutdown_seconds)
        if state.connections:
            log.warning(
                "Dropping %s requests still open after %s s",
                len(state.connections),
                limits.graceful_shutdown_seconds,
            )
        for connection in list(state.connections):
            connection.drop()
        sweeper[0].cancel()
