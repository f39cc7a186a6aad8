"""The VEN over TLS with a client certificate and signed messages, against an openleadr
VTN that requires both (certificates from a throw-away CA made with openssl). A VEN whose
certificate the VTN's CA did not sign never registers, nor does one whose certificate is
from the right CA but not the one the VTN knows for that venID (fingerprint)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import brokerkit
import pytest
import simkit
from openleadr import OpenADRServer
from openleadr.service.vtn_service import VTNService
from openleadr.utils import certificate_fingerprint

from controller.config import parse_site
from controller.runtime.dr import DrSchedule
from controller.runtime.openadr import Ven


@pytest.fixture
def no_ven_lookup_leak() -> Iterator[None]:
    """openleadr keeps `ven_lookup` on the VTNService class: do not leak it to other tests."""
    yield
    if "ven_lookup" in VTNService.__dict__:
        delattr(VTNService, "ven_lookup")


@pytest.mark.slow
async def test_dr_openadr_over_tls_with_signed_messages(tmp_path: Path,
                                                        no_ven_lookup_leak: None) -> None:
    pki = brokerkit.Pki.create(tmp_path / "pki")
    ven_cert, ven_key = pki.client_cert("ven-house")
    ven_fp = certificate_fingerprint(ven_cert.read_bytes())
    vtn_fp = certificate_fingerprint(pki.server_cert.read_bytes())

    def ven_lookup(ven_id: str) -> dict[str, Any]:
        if ven_id != "ven-house":
            return {}
        return {"ven_id": "ven-house", "ven_name": "demo-house", "fingerprint": ven_fp,
                "registration_id": "reg-1"}

    registered: list[dict[str, Any]] = []

    async def on_register(info: dict[str, Any]) -> tuple[str, str]:
        registered.append(info)
        return "ven-house", "reg-1"

    port = brokerkit.free_port()
    vtn = OpenADRServer(vtn_id="TEST_VTN", http_port=port, http_host="127.0.0.1",
                        cert=str(pki.server_cert), key=str(pki.server_key),
                        http_cert=str(pki.server_cert), http_key=str(pki.server_key),
                        http_ca_file=str(pki.ca_file), ven_lookup=ven_lookup,
                        requested_poll_freq=timedelta(seconds=1),
                        show_fingerprint=False, show_server_cert_domain=False)
    vtn.add_handler("on_create_party_registration", on_register)
    await vtn.run_async()

    def site(cert: Path, key: Path) -> Any:
        d = simkit.site_dict()
        d["openadr"] = {"vtn_url": f"https://127.0.0.1:{port}/OpenADR2/Simple/2.0b",
                        "ven_name": "demo-house", "ven_id": "ven-house",
                        "cert_file": str(cert), "key_file": str(key),
                        "ca_file": str(pki.ca_file), "vtn_fingerprint": vtn_fp,
                        "poll_interval_s": 0.2, "reconnect_s": 0.5,
                        "simple_level_cap_w": [500, 200, 0]}
        return parse_site(d, str(tmp_path / "site.toml"))

    sched = DrSchedule()
    ven = Ven(site(ven_cert, ven_key), sched, tmp_path)
    stranger_pki = brokerkit.Pki.create(tmp_path / "other")
    s_cert, s_key = stranger_pki.client_cert("ven-house")
    stranger = Ven(site(s_cert, s_key), DrSchedule(), tmp_path)
    # Same CA (TLS passes) but not the certificate the VTN knows for ven-house: refused
    # by the VTN's fingerprint check (OpenADR error 463).
    i_cert, i_key = pki.client_cert("imposter")
    imposter = Ven(site(i_cert, i_key), DrSchedule(), tmp_path)
    await ven.start()
    await stranger.start()
    await imposter.start()
    try:
        await asyncio.wait_for(ven.registered.wait(), 20)
        assert registered and registered[0]["ven_name"] == "demo-house"
        vtn.add_event(ven_id="ven-house", signal_name="SIMPLE", signal_type="level",
                      intervals=[{"dtstart": datetime.now(UTC), "duration": timedelta(minutes=5),
                                  "signal_payload": 1.0}], event_id="ev-tls")
        for _ in range(100):
            if sched.events():
                break
            await asyncio.sleep(0.05)
        (ev,) = sched.events()
        assert (ev.event_id, ev.kind, ev.power_w) == ("ev-tls", "reduce", 500.0)
        # The stranger's certificate is not from the VTN's CA: the TLS handshake fails.
        await asyncio.sleep(1.0)
        assert not stranger.registered.is_set()
        assert not imposter.registered.is_set()
        assert len(registered) == 1
    finally:
        await ven.stop()
        await stranger.stop()
        await imposter.stop()
        await vtn.stop()
