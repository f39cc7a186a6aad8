"""Helpers for the browser tests: the demo as a separate process (a Pi that can be
restarted), Debian's headless Chromium driven by Selenium through Debian's chromedriver,
screenshots into out/screenshots/ (git-ignored)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "out" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def browser_available() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        return "Debian's chromium and chromium-driver are not installed (apt-get install " \
               "chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed in this venv"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


class DemoProcess:
    """`python -m hmi.demo` on a fixed port and data directory; stop() and start() again
    is a Pi restart."""

    def __init__(self, data_dir: Path, port: int, tick_real_s: float = 0.2) -> None:
        self.data_dir = data_dir
        self.port = port
        self.tick_real_s = tick_real_s
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / f"demo-{port}.log"
        self.url = f"http://127.0.0.1:{port}"
        self.starts = 0

    def start(self, timeout_s: float = 60.0) -> None:
        self.starts += 1
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hmi.demo", "--port", str(self.port), "--data-dir",
                 str(self.data_dir), "--tick-real-s", str(self.tick_real_s), "--start", "07:00"],
                cwd=REPO, stdout=out, stderr=out, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        marker = "Hearth demo:"
        wait_until(lambda: self.log.read_text(errors="replace").count(marker) >= self.starts
                   or self.proc is None or self.proc.poll() is not None, timeout_s,
                   "the demo to start")
        if self.proc.poll() is not None:
            raise RuntimeError(f"demo exited: {self.log.read_text(errors='replace')[-3000:]}")

    def setup_code(self) -> str:
        codes = re.findall(r"One-time setup code: ([A-Z0-9]{5}-[A-Z0-9]{5})",
                           self.log.read_text(errors="replace"))
        assert codes, "no setup code in the demo's log"
        return codes[-1]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


def wait_until(cond: Callable[[], Any], timeout_s: float = 15.0, what: str = "condition",
               poll_s: float = 0.05) -> Any:
    t0 = time.monotonic()
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() - t0 > timeout_s:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(poll_s)


def make_driver() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
              "--disable-background-networking", "--disable-dev-shm-usage",
              "--hide-scrollbars", "--force-device-scale-factor=1", "--lang=en-GB",
              # The network is cut off: every name resolves to nothing but loopback.
              "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
              "--window-size=1280,800"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def viewport(driver: Any, width: int, height: int) -> None:
    """The exact CSS viewport of the wall display (the window adds no chrome here)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})


def shot(driver: Any, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def requested_urls(driver: Any) -> list[str]:
    """Every URL the page asked for since the last call (Chrome's performance log)."""
    import json

    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    return urls
