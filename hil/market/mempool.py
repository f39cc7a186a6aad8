"""An emulated mempool.space REST API: real HTTP on loopback, recorded replies, and faults.

Serves the three endpoints the market feed reads (controller/runtime/mempool.py) with the
responses recorded in `recorded/` (origin in recorded/SOURCES.md), and on demand what a
public API does on a bad day: 5xx, 429 with Retry-After, a body that is not JSON, JSON of
the wrong shape, negative or absurd values, a zero difficulty (the real server's answer
when its Bitcoin node is down), and hangs (the connection is accepted, nothing comes back).

    with MempoolEmulator() as api:          # http://127.0.0.1:<free port>/api
        api.fault("prices", "http_503")      # one endpoint, or "*" for all
        api.set_reply("prices", {...})       # a different (valid) reply
        api.clear()                          # back to the recordings

A threaded stdlib server: the feed's requests come from a worker thread, as in `hearth run`.
"""

from __future__ import annotations

import copy
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

RECORDED = Path(__file__).parent / "recorded"
PATHS = {
    "hashrate": "/api/v1/mining/hashrate/3d",
    "rewards": "/api/v1/mining/blocks/rewards/24h",
    "prices": "/api/v1/prices",
}
FILES = {"hashrate": "hashrate-3d.json", "rewards": "rewards-24h.json", "prices": "prices.json"}
Endpoint = Literal["hashrate", "rewards", "prices"]
Fault = Literal["http_500", "http_503", "http_429", "not_json", "truncated", "wrong_shape",
                "negative", "huge", "string_number", "zero_difficulty", "missing_field",
                "hang"]
FAULTS: tuple[Fault, ...] = ("http_500", "http_503", "http_429", "not_json", "truncated",
                             "wrong_shape", "negative", "huge", "string_number",
                             "zero_difficulty", "missing_field", "hang")


def recorded(endpoint: Endpoint) -> Any:
    return json.loads((RECORDED / FILES[endpoint]).read_text(encoding="utf-8"))


def _bad_value(endpoint: str, doc: Any, fault: str) -> Any:
    """The recorded reply with its one figure the feed uses made wrong."""
    d = copy.deepcopy(doc)
    value = {"negative": -1, "huge": 10**30, "string_number": "str"}[fault]
    if endpoint == "hashrate":
        d["currentDifficulty"] = (str(d["currentDifficulty"]) if value == "str"
                                  else value * abs(d["currentDifficulty"]))
    elif endpoint == "rewards":
        r = d[-1]["avgRewards"]
        d[-1]["avgRewards"] = str(r) if value == "str" else value * r
    else:
        p = d["EUR"]
        for cur in ("USD", "EUR", "GBP", "CAD", "CHF", "AUD", "JPY"):
            d[cur] = str(p) if value == "str" else value * d[cur]
    return d


class MempoolEmulator:
    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 retry_after_s: int = 120) -> None:
        self.replies: dict[str, Any] = {k: recorded(k) for k in PATHS}  # type: ignore[arg-type]
        self.faults: dict[str, Fault] = {}
        self.hits: dict[str, int] = dict.fromkeys(PATHS, 0)
        self.retry_after_s = retry_after_s
        self._release = threading.Event()  # ends every hang (on stop, or by a test)
        self._lock = threading.Lock()
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                emulator._serve(self)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- control ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/api"

    def fault(self, endpoint: Endpoint | Literal["*"], fault: Fault) -> None:
        with self._lock:
            for k in PATHS if endpoint == "*" else (endpoint,):
                self.faults[k] = fault
        self._release.clear()

    def set_reply(self, endpoint: Endpoint, doc: Any) -> None:
        with self._lock:
            self.replies[endpoint] = doc

    def clear(self) -> None:
        """No faults, the recorded replies again; pending hangs are released."""
        with self._lock:
            self.faults.clear()
            self.replies = {k: recorded(k) for k in PATHS}  # type: ignore[arg-type]
        self._release.set()

    def start(self) -> MempoolEmulator:
        # serve_forever polls for shutdown every 0.5 s by default: every stop (each test's
        # fixture) waited that long. 0.05 s of idle polling costs nothing measurable.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name="mempool-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> MempoolEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- serving ----------------------------------------------------------------------------

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        endpoint = next((k for k, p in PATHS.items() if h.path.split("?")[0] == p), None)
        if endpoint is None:
            self._send(h, 404, b"Not Found", "text/plain")
            return
        with self._lock:
            self.hits[endpoint] += 1
            fault = self.faults.get(endpoint)
            doc = self.replies[endpoint]
        if fault is None:
            self._send(h, 200, json.dumps(doc).encode())
        elif fault == "hang":
            self._release.wait(60)
            h.close_connection = True
        elif fault.startswith("http_"):
            code = int(fault[5:])
            extra = {"Retry-After": str(self.retry_after_s)} if code in (429, 503) else {}
            self._send(h, code, b"<html><body>Too busy</body></html>", "text/html", extra)
        elif fault == "not_json":
            self._send(h, 200, b"<html><head><title>502 Bad Gateway</title></head></html>",
                       "text/html")
        elif fault == "truncated":
            self._send(h, 200, json.dumps(doc).encode()[:40])
        elif fault == "wrong_shape":
            shape: Any = {"hashrates": []} if endpoint == "rewards" else [doc]
            self._send(h, 200, json.dumps(shape).encode())
        elif fault == "zero_difficulty":
            d = copy.deepcopy(doc)
            if endpoint == "hashrate":
                d["currentHashrate"], d["currentDifficulty"] = 0, 0
            self._send(h, 200, json.dumps(d).encode())
        elif fault == "missing_field":
            d = copy.deepcopy(doc)
            if endpoint == "hashrate":
                del d["currentDifficulty"]
            elif endpoint == "rewards":
                del d[0]["avgRewards"]
            else:
                del d["EUR"]
            self._send(h, 200, json.dumps(d).encode())
        else:
            self._send(h, 200, json.dumps(_bad_value(endpoint, doc, fault)).encode())

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, code: int, body: bytes,
              ctype: str = "application/json", headers: dict[str, str] | None = None) -> None:
        try:
            h.send_response(code)
            h.send_header("Content-Type", ctype)
            h.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(body)
        except OSError:  # the client gave up (a timeout): nothing to answer
            return
