"""A real browser for the tests: headless Chromium (Debian's ``chromium``) driven over the
DevTools protocol with aiohttp's websocket client. It loads a page, evaluates JavaScript
in it, collects every console error and uncaught exception, and takes screenshots."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

__all__ = ["Browser", "chromium", "open_browser"]

_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise FileNotFoundError("no chromium: deploy/install.sh installs Debian's chromium")


class Browser:
    """One page of a headless Chromium."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.errors: list[str] = []
        "Console errors, uncaught exceptions and failed loads the page reported."
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self._ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            body = json.loads(message.data)
            if "id" in body:
                future = self._waiting.pop(body["id"], None)
                if future is not None and not future.done():
                    future.set_result(body)
                continue
            self._event(body.get("method", ""), body.get("params") or {})

    def _event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = params.get("args") or []
            self.errors.append(
                "console: " + " ".join(str(a.get("value", a.get("description"))) for a in args)
            )
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails") or {}
            exception = details.get("exception") or {}
            self.errors.append(f"exception: {exception.get('description') or details.get('text')}")
        elif method == "Log.entryAdded":
            entry = params.get("entry") or {}
            if entry.get("level") == "error":
                self.errors.append(f"log: {entry.get('text')} {entry.get('url', '')}".strip())

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[ident] = future
        await self._ws.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        body = await asyncio.wait_for(future, 60)
        if "error" in body:
            raise RuntimeError(f"{method}: {body['error']}")
        return dict(body.get("result") or {})

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", url=url)

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (awaited if it is a promise)."""
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:60]}…: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    async def wait_for(self, expression: str, what: str, limit: float = 120.0) -> Any:
        """Poll ``expression`` until it is truthy; the limit is a hang guard."""
        deadline = time.monotonic() + limit
        while True:
            try:
                value = await self.evaluate(expression)
            except RuntimeError as exc:  # the page is still loading (no body yet)
                value, problem = None, exc
            else:
                problem = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"the page never showed {what} ({problem or value!r})")
            await asyncio.sleep(0.5)

    async def screenshot(self, path: Path) -> Path:
        """The whole page, not only the window."""
        metrics = await self.send("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        shot = await self.send(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
        )
        await asyncio.to_thread(path.write_bytes, base64.b64decode(shot["data"]))
        return path


@contextlib.asynccontextmanager
async def open_browser(width: int = 1400, height: int = 1000) -> AsyncIterator[Browser]:
    """A headless Chromium with one blank page, gone afterwards."""
    profile = tempfile.mkdtemp(prefix="hubwatch-chromium-")
    process = await asyncio.to_thread(_launch, profile, width, height)
    try:
        endpoint = await asyncio.to_thread(_endpoint, process)
        port = endpoint.split(":")[2].split("/")[0]
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                targets = await response.json()
            page = next(t for t in targets if t.get("type") == "page")
            async with session.ws_connect(
                page["webSocketDebuggerUrl"], max_msg_size=0, timeout=aiohttp.ClientWSTimeout()
            ) as ws:
                browser = Browser(ws)
                for domain in ("Page", "Runtime", "Log"):
                    await browser.send(f"{domain}.enable")
                try:
                    yield browser
                finally:
                    browser._reader.cancel()
    finally:
        await asyncio.to_thread(_close, process, profile)


def _launch(profile: str, width: int, height: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            chromium(),
            "--headless=new",
            "--no-sandbox",  # root in CI
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _endpoint(process: subprocess.Popen[str], timeout: float = 60.0) -> str:
    """The DevTools websocket address Chromium prints on stderr once it listens."""
    assert process.stderr is not None
    deadline = time.monotonic() + timeout
    seen = []
    for line in process.stderr:
        seen.append(line)
        match = _LISTENING.search(line)
        if match:
            _drain(process)  # so Chromium never blocks on a full pipe
            return match.group(1)
        if time.monotonic() > deadline:
            break
    raise RuntimeError("chromium did not start:\n" + "".join(seen[-20:]))


def _drain(process: subprocess.Popen[str]) -> None:
    def read() -> None:
        assert process.stderr is not None
        for _ in process.stderr:
            pass

    threading.Thread(target=read, daemon=True).start()


def _close(process: subprocess.Popen[str], profile: str) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    shutil.rmtree(profile, ignore_errors=True)
