"""Headless Chromium driven over the Chrome DevTools Protocol: the Airflow UI as a person sees it.

Debian's ``chromium`` is started with ``--remote-debugging-port=0``; the port it picked is read from
``DevToolsActivePort`` in its profile directory, and one page target is driven through its websocket
(``websocket-client``, already installed as a dependency of the ``kubernetes`` client). Clicks and typing
are real input events at the element's position (``Input.dispatchMouseEvent`` / ``Input.insertText``),
not JavaScript ``click()``, so an element hidden under an overlay cannot be "clicked".
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import websocket

CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str | None:
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


class Page:
    """One browser tab: navigate, wait for the DOM, type, click, screenshot."""

    def __init__(self, ws_url: str, screenshots: Path) -> None:
        self._ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        self._id = 0
        self.screenshots = screenshots
        self.saved: list[Path] = []
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send(
            "Emulation.setDeviceMetricsOverride", width=1400, height=1000, deviceScaleFactor=1, mobile=False
        )

    def close(self) -> None:
        self._ws.close()

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        self._ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:  # events arrive between replies; skip them
            msg = json.loads(self._ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return dict(msg.get("result", {}))

    def eval(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def wait_for(self, expression: str, timeout: float = 60, what: str = "") -> Any:
        """Poll ``expression`` until it is truthy; fail with the page's text when it never is."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.eval(expression)
            except RuntimeError:
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                shot = self.screenshot("timeout")
                text = self.eval("document.body ? document.body.innerText.slice(0, 2000) : ''")
                raise AssertionError(
                    f"{what or expression} not seen within {timeout}s ({shot}); page:\n{text}"
                )
            time.sleep(0.5)

    def click(self, selector: str) -> None:
        """A left click at the element's centre, scrolled into view first (as a person would scroll)."""
        box = self.eval(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " e.scrollIntoView({block: 'center', inline: 'center'});"
            " const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    def type_into(self, selector: str, text: str) -> None:
        self.click(selector)
        self.send("Input.insertText", text=text)

    def screenshot(self, name: str) -> Path:
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path = self.screenshots / f"{len(self.saved) + 1:02d}-{name}.png"
        path.write_bytes(base64.b64decode(data))
        self.saved.append(path)
        return path


@contextmanager
def browser(screenshots: Path) -> Iterator[Page]:
    """A headless Chromium with a throwaway profile; killed and its profile removed afterwards."""
    binary = chromium_path()
    if binary is None:
        raise RuntimeError("chromium not found (Debian: apt-get install chromium)")
    screenshots.mkdir(parents=True, exist_ok=True)
    profile = Path(tempfile.mkdtemp(prefix="ck-chromium-"))
    proc = subprocess.Popen(
        [
            binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--no-default-browser-check", f"--user-data-dir={profile}",
            "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1", "about:blank",
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    page: Page | None = None
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chromium did not open its DevTools port (exit {proc.poll()})")
            time.sleep(0.2)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as resp:
            targets = json.load(resp)
        ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page")
        page = Page(ws_url, screenshots)
        yield page
    finally:
        if page is not None:
            page.close()
        proc.kill()
        proc.wait(timeout=30)
        shutil.rmtree(profile, ignore_errors=True)
