"""Schemathesis against the app's own OpenAPI document, over a real socket: generated
requests (valid and invalid) to every operation, anonymous and with an installer token
(examples, fuzzing and the stateful phase, which chains operations through their links),
must never get a 5xx nor an answer that breaks its documented schema or content type
(issue 17). The live feed (/api/events, an endless stream) is left out; its
behaviour is tested in test_hmi_api.py."""

from __future__ import annotations

import asyncio
import re
import socket
import sys
import tomllib
from pathlib import Path

import pytest
from hmi_testkit import installer_client, live_demo, post

from controller.bridge import tomldoc

pytestmark = pytest.mark.slow

ST = Path(sys.executable).parent / "st"
HOUSE = Path(__file__).resolve().parents[2] / "hil" / "sites" / "house-10kwp.toml"


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def _schemathesis(url: str, *extra: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        str(ST), "run", f"{url}/api/openapi.json", "--checks",
        "not_a_server_error,response_schema_conformance,content_type_conformance",
        "--max-examples", "15", "--seed", "8", "--no-shrink", "--generation-database", "none",
        "--workers", "1", "--phases", "examples,fuzzing,stateful",
        "--generation-with-security-parameters", "false", "--exclude-path", "/api/events",
        "--request-timeout", "10", "--no-color", *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 400)  # a loaded 2-core CI box
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


@pytest.mark.skipif(not ST.exists(), reason="schemathesis is not installed in this venv")
async def test_no_request_gets_a_server_error(tmp_path: Path) -> None:
    with HOUSE.open("rb") as f:
        doc = tomllib.load(f)
    for m in doc["miners"]:  # the fuzzer may find the miners' test button: answer fast
        m["driver"] = {**m["driver"], "host": "127.0.0.1", "port": _dead_port(),
                       "timeout_s": 0.5}
    site = tmp_path / "site-src.toml"
    site.write_text(tomldoc.dumps(doc))
    async with live_demo(tmp_path / "data", ticks=30, site_path=site) as live:
        async with installer_client(live) as c:
            r = await post(c, "/api/tokens", {"name": "fuzz", "role": "installer"})
            token = r.json()["token"]
        # anonymous and as the installer, side by side
        runs = await asyncio.gather(_schemathesis(live.url),
                                    _schemathesis(live.url, "-H", f"Authorization: Bearer {token}"))
        for rc, out in runs:
            done = re.search(r"(\d+) generated, (\d+) passed", out)
            assert rc == 0 and done is not None, out[-4000:]
            assert done[1] == done[2] and int(done[1]) > 300, out[-2000:]
        # the app still works afterwards
        async with live.client() as c:
            assert (await c.get("/api/state")).status_code == 200
