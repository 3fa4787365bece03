"""A small Chrome DevTools Protocol client: Debian's chromium, headless, driven over a websocket.

``Browser.launch()`` starts chromium in its own process group with a fresh profile and
``--remote-debugging-port=0`` (it writes the port it picked to ``DevToolsActivePort``);
``page.evaluate(js)`` runs JavaScript in the page and returns its JSON value; JavaScript dialogs
(``confirm()``) are accepted as they open; ``screenshot(path)`` saves a PNG.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

VIEWPORT = (1280, 1000)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Page:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        call_id = next(self.ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            if message.get("method") == "Page.javascriptDialogOpening":
                # A confirm() blocks the page (and our pending call) until it is answered.
                self.ws.send(
                    json.dumps(
                        {
                            "id": next(self.ids),
                            "method": "Page.handleJavaScriptDialog",
                            "params": {"accept": True},
                        }
                    )
                )
            if "method" in message:
                self.events.append(message)

    def evaluate(self, expression: str, timeout: float = 30.0) -> Any:
        result = self.send(
            "Runtime.evaluate",
            timeout=timeout,
            expression=expression,
            returnByValue=True,
            awaitPromise=True,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} raised {result['exceptionDetails']}")
        return result["result"].get("value")

    def goto(self, url: str, timeout: float = 30.0) -> None:
        self.send("Page.navigate", url=url)
        self.wait_for(
            "document.readyState === 'complete' && location.href !== 'about:blank'", timeout
        )

    def wait_for(self, condition: str, timeout: float = 30.0) -> Any:
        """Poll a JavaScript expression until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            with contextlib.suppress(RuntimeError):
                last = self.evaluate(
                    f"(() => {{ try {{ return {condition}; }} catch (e) {{ return null; }} }})()"
                )
                if last:
                    return last
            time.sleep(0.1)
        url = self.evaluate("location.href")
        raise AssertionError(f"Timed out after {timeout}s waiting for {condition!r} on {url}")

    def type_into(self, selector: str, text: str) -> None:
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.send("Input.insertText", text=text)

    def screenshot(self, path: Path) -> Path:
        """The whole page: the viewport is made as tall as the page for the capture."""
        height = int(self.evaluate("document.documentElement.scrollHeight") or VIEWPORT[1])
        self._viewport(VIEWPORT[0], min(max(height, VIEWPORT[1]), 6000))
        try:
            data = self.send("Page.captureScreenshot", format="png")["data"]
        finally:
            self._viewport(*VIEWPORT)
        path.write_bytes(base64.b64decode(data))
        return path

    def _viewport(self, width: int, height: int) -> None:
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )


class Browser:
    def __init__(
        self,
        process: subprocess.Popen[bytes],
        profile: str,
        page: Page,
        connection: contextlib.ExitStack,
    ) -> None:
        self.process = process
        self.profile = profile
        self.page = page
        self.connection = connection

    @classmethod
    def launch(cls, executable: str, timeout: float = 30.0) -> Browser:
        profile = tempfile.mkdtemp(prefix="rl-chromium-")
        process = subprocess.Popen(
            [
                executable,
                *FLAGS,
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopped as one below
        )
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + timeout
            while not (port_file.exists() and port_file.read_text().strip()):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"chromium did not start (exit {process.poll()})")
                time.sleep(0.05)
            port = int(port_file.read_text().split()[0])
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                targets = json.load(r)
            ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            connection = contextlib.ExitStack()
            page = Page(connection.enter_context(connect(ws_url, max_size=None, open_timeout=10)))
            page.send("Page.enable")
            page.send("Runtime.enable")
            page._viewport(*VIEWPORT)  # a desktop viewport, whatever the headless window says
        except BaseException:
            _stop_group(process)
            shutil.rmtree(profile, ignore_errors=True)
            raise
        return cls(process, profile, page, connection)

    def close(self) -> None:
        with contextlib.suppress(OSError, WebSocketException):
            self.connection.close()
        _stop_group(self.process)
        shutil.rmtree(self.profile, ignore_errors=True)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # renderers that outlived the browser: none left
