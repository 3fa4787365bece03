"""The local model server: SageMaker's container HTTP contract on 127.0.0.1.

``GET /ping`` answers 200 once the model is loaded; ``POST /invocations`` runs the handler.
Every bad request gets a 4xx with a plain-text message and the server keeps serving.

HTTP stack: uvicorn (httptools parser, uvloop event loop when installed; all three come with
Airflow 3's API server, so no new dependency) running a bare ASGI callable. Why:

- latency: parsing in C and no framework layer; the handler runs inline on the event loop (a
  policy forward pass is tens of microseconds, a thread hop would cost as much), and keep-alive
  connections stay open for a minute, so a client pays no TCP handshake per request;
- robustness: a production server (request-size limits, header validation, keep-alive
  timeouts) and a graceful SIGTERM: it stops accepting, finishes in-flight requests, then exits.
  That is what lets ``update_endpoint`` switch servers without failing a request.

``bench/endpoint_latency.py`` measures the result; ``docs/SERVING.md`` has the figures.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from rl_provider.serving.handler import InferenceHandler, InvocationError

log = logging.getLogger(__name__)

# SageMaker's InvokeEndpoint payload limit (6 MB), enforced on the raw body.
MAX_BODY_BYTES = 6 * 1024 * 1024
# SageMaker keeps endpoint connections open about as long (Elastic Load Balancing's default).
KEEP_ALIVE_SECONDS = 60
# A SIGTERM'd server waits this long for in-flight requests before cancelling them.
GRACEFUL_SHUTDOWN_SECONDS = 30

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_TEXT = [(b"content-type", b"text/plain; charset=utf-8")]


def bind_loopback(port: int = 0) -> socket.socket:
    """A listening TCP socket on 127.0.0.1 (a free port by default): never another interface."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*(headers or _TEXT), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive, declared: bytes) -> bytes | None:
    """The request body, or None once it passes ``MAX_BODY_BYTES`` (declared or received).

    After an early answer uvicorn reads and drops the rest of the body and keeps the connection:
    closing it instead would reset a client that writes its whole body before reading (most do).
    """
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionResetError("the client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def make_app(handler: InferenceHandler) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The ASGI application serving ``handler``."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan is off; websockets are refused by the server
        path, method = scope["path"], scope["method"]
        if path == "/ping":
            if method not in ("GET", "HEAD"):
                await _respond(send, 405, b"Use GET /ping.\n")
                return
            await _respond(send, 200, b"")
            return
        if path != "/invocations":
            await _respond(send, 404, f"No route {path}: use POST /invocations.\n".encode())
            return
        if method != "POST":
            await _respond(send, 405, b"Use POST /invocations.\n")
            return
        # One pass over the headers (uvicorn lower-cases their names).
        declared = content_type = accept = b""
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
            elif name == b"content-type":
                content_type = value
            elif name == b"accept":
                accept = value
        try:
            body = await _read_body(receive, declared)
        except ConnectionResetError:
            return
        if body is None:
            await _respond(
                send,
                413,
                f"The body is larger than {MAX_BODY_BYTES} bytes, SageMaker's InvokeEndpoint "
                "limit: send fewer observations per request.\n".encode(),
            )
            return
        try:
            payload, produced = handler.invoke(
                body, content_type.decode("latin-1"), accept.decode("latin-1")
            )
        except InvocationError as err:
            await _respond(send, err.status_code, f"{err.message}\n".encode())
            return
        await _respond(send, 200, payload, [(b"content-type", produced.encode("latin-1"))])

    return app


async def _ping(port: int, timeout: float = 10.0) -> bool:
    """Whether ``GET /ping`` on our own port answers 200: the check SageMaker makes."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
        writer.write(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        status_line = await asyncio.wait_for(reader.readline(), timeout)
        writer.close()
        return status_line.split(b" ")[1:2] == [b"200"]
    except (OSError, TimeoutError, IndexError):
        return False


def serve(
    handler: InferenceHandler,
    sock: socket.socket,
    on_ready: Callable[[], bool] | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT (graceful) or until ``on_ready`` returns False.

    ``on_ready`` runs in a worker thread once ``/ping`` answers on ``sock``; returning False
    means the server is no longer wanted (its endpoint was deleted or updated meanwhile).
    """
    import uvicorn

    config = uvicorn.Config(
        make_app(handler),
        lifespan="off",
        access_log=False,
        # Only our own clients connect, on 127.0.0.1: no X-Forwarded-* rewriting per request.
        proxy_headers=False,
        log_level="warning",
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        server_header=False,
        date_header=False,
    )
    server = uvicorn.Server(config)
    port = int(sock.getsockname()[1])

    async def main() -> None:
        serving = asyncio.ensure_future(server.serve(sockets=[sock]))
        while not server.started and not serving.done():
            await asyncio.sleep(0.005)
        if not serving.done():
            if not await _ping(port):
                log.error("The server does not answer GET /ping on 127.0.0.1:%s", port)
                server.should_exit = True
            elif on_ready is not None and not await asyncio.to_thread(on_ready):
                log.info("No longer wanted: shutting down")
                server.should_exit = True
        await serving

    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        runner.run(main())
