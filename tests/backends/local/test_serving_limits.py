"""The model server under hostile and broken clients (issue 11, points 11 and 12).

Real endpoints on the local backend, real sockets: slow and idle clients, more connections than
the server admits, malformed HTTP, and JSON that is not RFC 8259 or not an observation.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import resource
import socket
import time
from pathlib import Path

import psutil
import pytest

from rl_provider.backends.local import LocalBackend
from rl_provider.core.model import wait_for_endpoint
from rl_provider.exceptions import EndpointNotFoundError
from rl_provider.serving import server

ECHO_HANDLER = """
import math

def model_fn(model_dir):
    return "echo"

class Refused(Exception):
    status_code = 499  # not in http.HTTPStatus


def predict_fn(data, model):
    if data == "nan please":
        return {"value": math.nan}
    if data == "refuse please":
        raise Refused("refused as asked")
    return {"echo": data}
"""


def tarball(path: Path, files: dict[str, bytes]) -> str:
    import tarfile

    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path.as_uri()


@contextlib.contextmanager
def open_files_limit(soft: int):
    """This process's soft RLIMIT_NOFILE lowered to ``soft`` (what children inherit)."""
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, before[0]), before[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, before)


def deploy(local: LocalBackend, name: str, container: dict) -> int:
    local.create_model(ModelName=name, PrimaryContainer=container)
    local.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {"ModelName": name, "InitialInstanceCount": 1, "InstanceType": "local"}
        ],
    )
    # Started under the usual 1024 open-files limit, as the server was: it raises it.
    with open_files_limit(1024):
        local.create_endpoint(EndpointName=name, EndpointConfigName=name)
    wait_for_endpoint(local, name, timeout=120)
    return int(local.describe_endpoint(name).extra["Url"].rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """A backend serving two endpoints, "echo" and "policy", stopped when the module ends."""
    backend = LocalBackend(tmp_path_factory.mktemp("limits") / "home")
    try:
        yield backend
    finally:
        for name in ("echo", "policy", "drained"):
            with contextlib.suppress(EndpointNotFoundError):
                backend.delete_endpoint(name)


@pytest.fixture(scope="module")
def echo_container(tmp_path_factory):
    root = tmp_path_factory.mktemp("echo")
    code = tarball(root / "code.tar.gz", {"echo.py": ECHO_HANDLER.encode()})
    return {
        "Image": "rl-provider/handler-test:1",
        "ModelDataUrl": tarball(root / "model.tar.gz", {"empty.txt": b""}),
        "Environment": {"SAGEMAKER_PROGRAM": "echo.py", "SAGEMAKER_SUBMIT_DIRECTORY": code},
    }


@pytest.fixture(scope="module")
def echo(local, echo_container):
    """An endpoint with the default JSON input_fn/output_fn; returns its port."""
    return deploy(local, "echo", echo_container)


@pytest.fixture(scope="module")
def policy(local, tmp_path_factory):
    """A TorchScript policy (4 observations -> 2 logits): the built-in policy wire format."""
    import warnings

    import torch

    net = torch.nn.Linear(4, 2)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated in 2.13
        torch.jit.save(torch.jit.script(net), buffer)
    root = tmp_path_factory.mktemp("policy")
    model = tarball(root / "model.tar.gz", {"model.pt": buffer.getvalue()})
    return deploy(local, "policy", {"Image": "rl-provider/torchscript:1", "ModelDataUrl": model})


def call(port: int, method: str, path: str, body: bytes | None = None, **headers: str):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(
            method, path, body=body, headers={"Content-Type": "application/json", **headers}
        )
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def strict_json(data: bytes):
    """Parse as RFC 8259 JSON: Python's json would accept bare NaN and Infinity."""

    def refuse(name: str):
        raise ValueError(f"{name} is not JSON")

    return json.loads(data, parse_constant=refuse)


def raw(port: int, data: bytes, timeout: float = 30.0) -> bytes:
    """Send ``data`` on a fresh connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def read_until_closed(sock: socket.socket, deadline: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and when it closed (monotonic)."""
    received = b""
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise AssertionError(f"still open at the deadline; received {received!r}") from None
        if not chunk:
            return received, time.monotonic()
        received += chunk


DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (DEEP, "nested too deeply"),
        (b"[NaN]", "NaN is not a JSON value"),
        (b'{"x": -Infinity}', "-Infinity is not a JSON value"),
        (b"[1e400]", "out of the range"),
        (b"[1.0, 2.0", "not valid JSON"),
    ],
)
def test_default_json_input_refuses_what_rfc_8259_does_not_allow(echo, body, message):
    status, text = call(echo, "POST", "/invocations", body)
    assert (status, message in text.decode()) == (400, True), text
    assert call(echo, "GET", "/ping")[0] == 200


def test_default_json_output_is_rfc_8259(echo):
    # Python's json writes NaN bare by default: the server refuses to send that.
    status, text = call(echo, "POST", "/invocations", b'"nan please"')
    assert status == 500
    assert b"NaN or Infinity" in text
    # Integers of any size are JSON numbers and come back exactly.
    huge = "1" * 400
    status, text = call(echo, "POST", "/invocations", f"[{huge}, null]".encode())
    assert status == 200
    assert strict_json(text) == {"echo": [int(huge), None]}


def test_a_handler_status_outside_http_status_is_kept(echo):
    assert call(echo, "POST", "/invocations", b'"refuse please"') == (499, b"refused as asked\n")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (DEEP, "nested too deeply"),
        (b"[NaN, 0, 0, 0]", "NaN is not a JSON value"),
        (b"[Infinity, 0, 0, 0]", "Infinity is not a JSON value"),
        (b"[1e400, 0, 0, 0]", "finite numbers"),
        (b"[1e39, 0, 0, 0]", "finite numbers"),
        (b"[null, 0, 0, 0]", "finite numbers"),
        (f"[{'9' * 400}, 0, 0, 0]".encode(), "rectangular"),
        (b'{"observations": [[0, 0, 0, 0], [null, 0, 0, 0]]}', "finite numbers"),
    ],
)
def test_observations_that_are_not_finite_numbers_get_400(policy, body, message):
    status, text = call(policy, "POST", "/invocations", body)
    assert (status, message in text.decode()) == (400, True), text
    status, text = call(policy, "POST", "/invocations", b"[0.5, 0, 0, 1e30]")
    assert status == 200
    assert set(strict_json(text)) == {"action"}


@pytest.mark.parametrize(
    ("request_bytes", "status", "message"),
    [
        (
            b"GET /invocations HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            400,
            b"no WebSocket",
        ),
        (b"BREW /ping HTTP/1.1\r\n\r\n", 400, b"Malformed HTTP request"),
        (b"GET /ping HTTP/1.1\r\nBad Header\r\n\r\n", 400, b"Malformed HTTP request"),
        (
            b"GET /ping HTTP/1.1\r\nX-Big: " + b"a" * (server.MAX_HEAD_BYTES + 1) + b"\r\n\r\n",
            431,
            b"request head is larger",
        ),
    ],
)
def test_bad_http_gets_4xx_and_the_connection_closes(echo, request_bytes, status, message):
    answer = raw(echo, request_bytes)
    assert answer.startswith(b"HTTP/1.1 %d " % status), answer
    assert message in answer
    assert call(echo, "GET", "/ping")[0] == 200


def read_responses(sock: socket.socket, count: int) -> list[tuple[int, bytes]]:
    """``count`` responses (status, body) from a keep-alive connection, by Content-Length."""
    buffer, answers = b"", []
    while len(answers) < count:
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            assert chunk, f"closed after {answers}"
            buffer += chunk
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        fields = dict(line.lower().split(": ", 1) for line in lines[1:])
        length = int(fields["content-length"])
        while len(buffer) < length:
            buffer += sock.recv(65536)
        answers.append((int(lines[0].split()[1]), buffer[:length]))
        buffer = buffer[length:]
    return answers


def test_pipelined_and_expect_continue_requests(echo):
    one = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
    bodies = [b"1", b'"two"', b"[3]"]
    with socket.create_connection(("127.0.0.1", echo), timeout=30) as sock:
        sock.sendall(b"".join(one % (len(b), b) for b in bodies))
        answers = read_responses(sock, 3)
        assert [(status, strict_json(body)["echo"]) for status, body in answers] == [
            (200, 1),
            (200, "two"),
            (200, [3]),
        ]
        # curl sends Expect: 100-continue before a large body and waits for the go-ahead.
        sock.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: 4\r\n\r\n"
        )
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"[42]")
        assert read_responses(sock, 1) == [(200, b'{"echo": [42]}')]
        # Over the body limit: refused before the body is sent, and the connection closes.
        sock.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: %d\r\n\r\n" % (server.MAX_BODY_BYTES + 1)
        )
        answer, _ = read_until_closed(sock, time.monotonic() + 10)
        assert answer.startswith(b"HTTP/1.1 413 ")
        assert b"InvokeEndpoint limit" in answer


@pytest.mark.slow  # waits out the head and body timeouts (~11 s)
def test_slow_clients_are_closed_within_the_timeouts_and_ping_still_answers(echo):
    head = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
    partial_heads, partial_bodies, idle = [], [], []
    try:
        started = time.monotonic()
        for _ in range(100):
            sock = socket.create_connection(("127.0.0.1", echo), timeout=30)
            sock.sendall(head)  # no blank line: the head never ends
            partial_heads.append(sock)
            sock = socket.create_connection(("127.0.0.1", echo), timeout=30)
            sock.sendall(head + b"\r\n" + b"[" * 10)  # 10 of 100 body bytes
            partial_bodies.append(sock)
            idle.append(socket.create_connection(("127.0.0.1", echo), timeout=30))
        assert call(echo, "GET", "/ping")[0] == 200
        # The server sweeps once a second: closed within the timeout plus that and slack for load.
        for sock in partial_heads:
            answer, closed = read_until_closed(sock, started + server.HEAD_SECONDS + 4)
            assert answer.startswith(b"HTTP/1.1 408 "), answer
            assert b"head did not arrive" in answer
        assert closed - started >= server.HEAD_SECONDS - 0.5
        for sock in partial_bodies:
            answer, closed = read_until_closed(sock, started + server.BODY_SECONDS + 4)
            assert answer.startswith(b"HTTP/1.1 408 "), answer
            assert b"body did not arrive" in answer
        # An idle keep-alive connection may stay (KEEP_ALIVE_SECONDS), and is still usable.
        sock = idle[0]
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(1000).startswith(b"HTTP/1.1 200 ")
        assert call(echo, "POST", "/invocations", b"[1]") == (200, b'{"echo": [1]}')
    finally:
        for sock in partial_heads + partial_bodies + idle:
            sock.close()


def test_more_idle_connections_than_the_bound_do_not_shut_out_requests(local, echo):
    pid = local.describe_endpoint("echo").extra["ServerPid"]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # This test holds more than 1,100 sockets itself.
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < server.MAX_CONNECTIONS + 200:
        pytest.skip(f"this machine's hard open-files limit ({hard}) is too low for the test")
    held = []
    try:
        # More than the server admits, and more than the 1024 the server could open.
        for _ in range(server.MAX_CONNECTIONS + 100):
            held.append(socket.create_connection(("127.0.0.1", echo), timeout=30))
        assert call(echo, "GET", "/ping")[0] == 200
        answer = local.invoke_endpoint(EndpointName="echo", Body=b'"still here"')
        assert json.loads(answer["Body"].read()) == {"echo": "still here"}
        established = [
            c for c in psutil.Process(pid).net_connections("tcp") if c.status == "ESTABLISHED"
        ]
        assert len(established) <= server.MAX_CONNECTIONS
        # The server was started with a soft limit of 1024 and raised it to the hard one.
        assert psutil.Process(pid).rlimit(psutil.RLIMIT_NOFILE) == (hard, hard)
        assert len(psutil.Process(pid).open_files()) < 100
    finally:
        for sock in held:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def eventually(condition, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def gone(pid: int) -> bool:
    """Exited (a zombie counts: this sandbox's init reaps orphans late)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_sigterm_answers_started_requests_closes_idle_ones_and_exits(local, echo_container):
    port = deploy(local, "drained", echo_container)
    pid = local.describe_endpoint("drained").extra["ServerPid"]
    with (
        socket.create_connection(("127.0.0.1", port), timeout=30) as idle,
        socket.create_connection(("127.0.0.1", port), timeout=30) as started,
    ):
        idle.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_responses(idle, 1) == [(200, b"")]
        started.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n[1, ")
        time.sleep(0.2)  # the head is read before the signal
        psutil.Process(pid).terminate()
        # The idle connection and the listening socket close; the started request completes.
        assert read_until_closed(idle, time.monotonic() + 10)[0] == b""
        eventually(lambda: refuses_connections(port), "the listening socket to close")
        assert not gone(pid)
        started.sendall(b"2, 3]")
        answer, _ = read_until_closed(started, time.monotonic() + 10)
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert b"connection: close" in answer
        assert answer.endswith(b'{"echo": [1, 2, 3]}')
    eventually(lambda: gone(pid), "the server to exit")


SMALL_SERVER = """
from rl_provider.serving.handler import InferenceHandler
from rl_provider.serving.server import Limits, bind_loopback, serve

sock = bind_loopback()
print(sock.getsockname()[1], flush=True)
handler = InferenceHandler(model=len, source="len")


def ready():
    print("ready", flush=True)  # after the server's own GET /ping: its connection is gone
    return True


serve(handler, sock, ready, Limits(max_connections=5, keep_alive_seconds=2.0))
"""


@pytest.fixture
def small_server():
    """``serve()`` in its own process with 5 connections at most and 2 s keep-alive."""
    import os
    import signal
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-c", SMALL_SERVER], stdout=subprocess.PIPE, start_new_session=True
    )
    try:
        port = int(process.stdout.readline())
        assert process.stdout.readline() == b"ready\n"
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def test_idle_connections_time_out_and_the_least_recently_active_make_room(small_server):
    port = small_server
    started = time.monotonic()
    held = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(5)]
    try:
        # One request on each, the first connection last: the second is the least recently
        # active (the server orders connections by when it accepted or answered them).
        for sock in [*held[1:], held[0]]:
            sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_responses(sock, 1) == [(200, b"")]
        assert call(port, "POST", "/invocations", b"[1, 2, 3]") == (200, b"3")
        # Closed by the sixth connection, not by its keep-alive timeout: the others are open.
        assert read_until_closed(held[1], time.monotonic() + 0.5)[0] == b""
        for sock in [held[0], *held[2:]]:
            sock.settimeout(0.01)
            with pytest.raises(TimeoutError):
                sock.recv(1)
        # Idle connections close after the keep-alive timeout (and the sweep's second).
        for sock in [held[0], *held[2:]]:
            assert read_until_closed(sock, started + 2 + 2)[0] == b""
    finally:
        for sock in held:
            sock.close()
