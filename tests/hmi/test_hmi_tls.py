"""HTTPS on the LAN: `hearth hmi cert` makes a self-signed certificate for the Pi's names;
with `[hmi] tls_cert_file/tls_key_file` the HMI of `hearth run` serves HTTPS only, a client
that trusts that certificate logs in over it, and the login cookie is Secure."""

from __future__ import annotations

import asyncio
import ssl
import stat
import subprocess
import tomllib
from pathlib import Path

import httpx
import pytest
from hmi_testkit import PASSWORD, wait_for
from test_hmi_runtime import HOUSE, Fleet, LivePlant, _free_port

from controller.bridge import tomldoc
from controller.config.load import parse_site
from controller.errors import InputError
from controller.runtime.service import Service
from controller.sim.plant import Plant
from hmi.runtime import HmiRuntime
from hmi.tls import make_cert


@pytest.mark.parametrize("tool", ["cryptography", "openssl"])
def test_cert_names_the_pi_is_its_own_ca_and_keeps_its_key_private(tmp_path: Path,
                                                                    tool: str) -> None:
    c = make_cert(tmp_path, ["hearth-pi.local", "hearth-pi"], ["192.168.1.20"], 30, tool)
    assert stat.S_IMODE(c.key.stat().st_mode) == 0o600
    text = subprocess.run(["openssl", "x509", "-in", str(c.cert), "-noout", "-text",
                           "-fingerprint", "-sha256"], capture_output=True, text=True,
                          check=True).stdout
    assert "DNS:hearth-pi.local" in text and "IP Address:192.168.1.20" in text
    assert "CA:TRUE" in text and "TLS Web Server Authentication" in text
    assert f"Fingerprint={c.sha256}" in text.replace("sha256 Fingerprint", "Fingerprint")


def test_cert_refuses_a_bad_address(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--ip"):
        make_cert(tmp_path, ["pi.local"], ["192.168.1.300"])


def test_tls_settings_come_in_pairs_and_are_absolute() -> None:
    with HOUSE.open("rb") as f:
        doc = tomllib.load(f)
    with pytest.raises(InputError, match="both or neither"):
        parse_site({**doc, "hmi": {"tls_cert_file": "/etc/hearth/c.pem"}})
    with pytest.raises(InputError, match="absolute"):
        parse_site({**doc, "hmi": {"tls_cert_file": "c.pem", "tls_key_file": "/k.pem"}})


async def test_hearth_run_serves_https_when_a_certificate_is_configured(tmp_path: Path
                                                                         ) -> None:
    c = make_cert(tmp_path / "tls", ["localhost"], ["127.0.0.1"], 30)
    with HOUSE.open("rb") as f:
        doc = tomllib.load(f)
    doc["control"]["tick_s"] = 0.05
    doc["service"] = {"data_dir": str(tmp_path), "start_delay_max_s": 0}
    doc["ledger"] = {"enabled": False}
    doc["hmi"] = {"tls_cert_file": str(c.cert), "tls_key_file": str(c.key)}
    site = tmp_path / "site.toml"
    site.write_text(tomldoc.dumps(doc))
    cfg = parse_site(doc)
    ports = LivePlant(Plant(cfg))
    hmi = HmiRuntime(cfg, config_path=site)
    service = Service(cfg, [ports], Fleet(ports), [hmi.publisher])
    run = asyncio.create_task(service.run())
    port = _free_port()
    server = await hmi.start(service, host="127.0.0.1", port=port)
    try:
        assert server.url == f"https://127.0.0.1:{port}"
        trust = ssl.create_default_context(cafile=str(c.cert))
        async with httpx.AsyncClient(base_url=f"https://localhost:{port}", verify=trust,
                                     timeout=10) as cl:
            await wait_for(lambda: hmi.publisher.seq >= 2, 10, "ticks")
            assert (await cl.get("/api/state")).json()["available"]
            assert hmi.context is not None
            csrf = (await cl.get("/api/auth/session")).json()["csrf_token"]
            r = await cl.post("/api/auth/setup", json={
                "setup_code": hmi.context.auth.setup_code, "password": PASSWORD},
                headers={"X-CSRF-Token": csrf})
            assert r.status_code == 200, r.text
            sid = [h for h in r.headers.get_list("set-cookie") if h.startswith("hearth_sid=")]
            assert sid and "Secure" in sid[0]
        # A client that does not trust the certificate is refused; plain HTTP gets nothing.
        async with httpx.AsyncClient(base_url=f"https://localhost:{port}", timeout=5) as cl:
            with pytest.raises(httpx.ConnectError):
                await cl.get("/api/state")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as cl:
            with pytest.raises(httpx.HTTPError):
                await cl.get("/api/state")
    finally:
        service.stop()
        await asyncio.wait_for(run, 10)
        await hmi.stop()
