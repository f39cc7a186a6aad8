"""Fleet DR: the split (pure), and the dispatcher against simulated sites on the cluster."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fleetkit import NatsCluster, wait
from hypothesis import given
from hypothesis import strategies as st

from controller.fleet.dispatch import Dispatcher, DispatchService, split
from controller.fleet.mqttlink import ClusterSettings
from controller.fleet.view import FleetView
from hil.fleetsim import SimFleet


@given(st.floats(1, 1e6), st.dictionaries(st.text("ab", min_size=1, max_size=3),
                                          st.floats(0, 1e5), max_size=8))
def test_split_never_exceeds_a_site_or_the_request(request_w: float,
                                                   flex: dict[str, float]) -> None:
    shares = split(request_w, flex)
    assert all(0 < shares[k] <= flex[k] * (1 + 1e-9) for k in shares)
    assert sum(shares.values()) <= request_w * (1 + 1e-9)
    total = sum(v for v in flex.values() if v > 0)
    assert sum(shares.values()) == pytest.approx(min(request_w, total), rel=1e-9)


def _view(now: float, sites: dict[str, float]) -> FleetView:
    v = FleetView()
    for sid, w in sites.items():
        v.feed(f"hearth/{sid}/state/power", json.dumps({"miner_power_w": w}).encode(),
               False, now)
    return v


def test_dispatcher_splits_replaces_a_refusal_and_a_silent_site() -> None:
    t = [1000.0]
    sent: list[tuple[str, dict[str, object]]] = []
    v = _view(t[0], {"a": 2000, "b": 1000, "c": 1000, "d": 500})
    d = Dispatcher(v, lambda topic, p: sent.append((topic, json.loads(p))),
                   clock=lambda: t[0], mono=lambda: t[0], ack_timeout_s=3)
    ev = d.start(2250, 1800, event_id="ev-1")
    assert {k: round(a.share_w) for k, a in ev.assignments.items()} == \
        {"a": 1000, "b": 500, "c": 500, "d": 250}
    cap = dict(sent)["hearth/a/cmd/dr_cap"]
    assert cap["cap_w"] == 1000 and cap["duration_s"] == 1800 and cap["event_id"] == "ev-1"
    for topic, body in sent:
        site = topic.split("/")[1]
        ok = site != "b"
        if site != "c":  # c never answers
            d.on_answer(site, json.dumps({"ok": ok, "id": body["id"]}).encode())
    t[0] += 4
    for sid, w in {"a": 2000, "b": 1000, "c": 1000, "d": 500}.items():
        v.feed(f"hearth/{sid}/state/power", json.dumps({"miner_power_w": w}).encode(),
               False, t[0])
    sent.clear()
    summary = d.check()
    assert summary is not None
    assert summary["sites"]["b"]["status"] == "dropped"
    assert "refused" in summary["sites"]["b"]["reason"]
    assert summary["sites"]["c"]["reason"].startswith("no answer")
    # b's and c's 1000 W go to a and d, up to what they have
    assert {topic.split("/")[1] for topic, _ in sent} == {"a", "d"}
    assert summary["assigned_w"] == pytest.approx(2250)
    assert ev.assignments["d"].share_w <= 500


@pytest.fixture
def fleet_cluster(tmp_path: Path) -> Iterator[tuple[NatsCluster, dict[str, str]]]:
    pw = {s: f"pw-{s}" for s in SimFleet.site_ids(20)} | {"dispatch": "pw-d"}
    with NatsCluster(tmp_path, pw) as cl:
        yield cl, pw


def test_fleet_dr_reaches_sites_measures_delivery_and_replaces_a_dead_site(
        fleet_cluster: tuple[NatsCluster, dict[str, str]]) -> None:
    cl, pw = fleet_cluster
    nodes = tuple(("127.0.0.1", p) for p in cl.mqtt_ports)
    sims = SimFleet(20, nodes, pw, telemetry_s=1.0, ledger_every_s=1e9).start()
    svc = DispatchService(ClusterSettings(nodes, "dispatch", "pw-d"), ack_timeout_s=2).start()
    try:
        wait(lambda: sims.connected() == 20, 30, "20 simulated sites")
        wait(lambda: svc.fresh_sites() == 20, 15, "fresh telemetry from every site")
        flex = sum(s.power_w() for s in sims.sites)
        ev = svc.dispatcher.start(flex * 0.5, 600, event_id="fleet-t1")
        asked = set(ev.assignments)
        wait(lambda: all(a.status == "acked" for a in ev.assignments.values()), 5,
             "every site's answer")
        wait(lambda: ev.delivered_w(svc.view) >= flex * 0.5 * 0.99, 5,
             "delivered (measured) close to requested")
        # One asked site dies: its share goes to others, and delivery recovers.
        victim = next(s for s in sims.sites if s.site_id in asked)
        victim.die()
        wait(lambda: (svc.dispatcher.check() or {}).get("sites", {}).get(
            victim.site_id, {}).get("status") == "dropped", 10, "the dead site dropped")
        summary = svc.dispatcher.check()
        assert summary is not None and summary["assigned_w"] == pytest.approx(flex * 0.5)
        alive = [s for s in sims.sites if s.alive]
        wait(lambda: sum(s.power_w() for s in alive) <= flex * 0.5 + 1, 10,
             "the other sites shed the dead site's share")
        svc.dispatcher.cancel()
        wait(lambda: all(s.cap_w is None for s in alive), 5, "caps cleared on cancel")
    finally:
        svc.stop()
        sims.stop()
