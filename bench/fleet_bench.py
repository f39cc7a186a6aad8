"""Fleet bench: N light simulated sites through a NATS cluster into PostgreSQL, then one
fleet DR request. Prints messages/s, ingest rows/s (steady and draining a backlog),
dispatch latency percentiles, and what one more broker node changes.

    .venv/bin/python bench/fleet_bench.py [--sites 300] [--seconds 30] [--nodes 3 4]

Starts its own cluster (Debian's nats-server) and PostgreSQL (Debian's postgresql, as in
tests/fleet) on free loopback ports; the machine's running servers are never used.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "fleet")]

import sqlalchemy as sa  # noqa: E402
from fleetkit import NatsCluster, Postgres, wait  # noqa: E402

from controller.fleet import store  # noqa: E402
from controller.fleet.dispatch import DispatchService  # noqa: E402
from controller.fleet.ingest import Ingest  # noqa: E402
from controller.fleet.mqttlink import ClusterSettings  # noqa: E402
from hil.fleetsim import SimFleet  # noqa: E402


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def run(n_sites: int, n_nodes: int, seconds: float, pg: Postgres) -> dict[str, float]:
    url = pg.create_db()
    eng = sa.create_engine(url)
    pw = {s: f"pw-{s}" for s in SimFleet.site_ids(n_sites)} | {"ingest": "i", "dispatch": "d"}
    tmp = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    out: dict[str, float] = {}
    with NatsCluster(tmp, pw, size=n_nodes) as cl:
        nodes = tuple(("127.0.0.1", p) for p in cl.mqtt_ports)
        ing = Ingest(store.make_fleet_engine(url), ClusterSettings(nodes, "ingest", "i"))
        ing.start()
        assert ing.link.subscribed.wait(120), "ingest did not subscribe"
        sims = SimFleet(n_sites, nodes, pw, telemetry_s=5.0, ledger_every_s=3.0).start()
        t = time.monotonic()
        try:
            wait(lambda: sims.connected() == n_sites, 180, "sites connected")
        except TimeoutError:
            print(f"only {sims.connected()} of {n_sites} sites connected; node logs in {tmp}")
            raise
        out["connect_s"] = time.monotonic() - t
        m0, i0, t0 = sum(s.messages for s in sims.sites), ing.intervals_added, time.monotonic()
        time.sleep(seconds)
        m1, i1, t1 = sum(s.messages for s in sims.sites), ing.intervals_added, time.monotonic()
        out["msgs_per_s"] = (m1 - m0) / (t1 - t0)
        out["bytes_per_msg"] = (sum(s.bytes_out for s in sims.sites)
                                / max(sum(s.messages for s in sims.sites), 1))
        out["rows_per_s_steady"] = (i1 - i0) / (t1 - t0)
        # Backlog: ingest away for `seconds`/2, then how fast it catches up.
        ing.stop()
        time.sleep(seconds / 2)
        sims.pause_ledger()
        sent = sum(len(s.intervals_sent) for s in sims.sites)

        def stored() -> int:
            with eng.connect() as c:
                return int(c.execute(sa.text("SELECT count(*) FROM fleet_interval"))
                           .scalar_one())
        before = stored()
        ing = Ingest(store.make_fleet_engine(url), ClusterSettings(nodes, "ingest", "i"))
        t = time.monotonic()
        ing.start()
        wait(lambda: stored() >= sent, 300, "backlog drained")
        out["backlog_rows"] = sent - before
        out["rows_per_s_drain"] = (sent - before) / (time.monotonic() - t)
        # One DR request over every site with flexibility.
        svc = DispatchService(ClusterSettings(nodes, "dispatch", "d"), ack_timeout_s=10).start()
        wait(lambda: svc.fresh_sites() >= n_sites * 0.97, 60, "fresh telemetry")
        ev = svc.dispatcher.start(sum(s.power_w() for s in sims.sites) * 0.4, 600)
        wait(lambda: all(a.status == "acked" for a in ev.assignments.values()), 30, "acks")
        by_id = {s.site_id: s for s in sims.sites}
        rx = [by_id[a.site_id].command_rx_mono[a.command_id] - a.sent_mono
              for a in ev.assignments.values() if a.command_id in
              by_id[a.site_id].command_rx_mono]
        ack = [a.acked_mono - a.sent_mono for a in ev.assignments.values()
               if a.acked_mono is not None]
        out["dr_sites"] = len(ev.assignments)
        out["dr_within_2s_pct"] = 100 * sum(1 for x in rx if x <= 2) / len(ev.assignments)
        for p in (50, 95, 99):
            out[f"dr_rx_p{p}_ms"] = 1000 * pct(rx, p)
            out[f"dr_ack_p{p}_ms"] = 1000 * pct(ack, p)
        out["dr_rx_max_ms"] = 1000 * max(rx)
        svc.dispatcher.cancel()
        svc.stop()
        sims.stop()
        ing.stop()
    eng.dispose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", type=int, default=300)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--nodes", type=int, nargs="+", default=[3, 4])
    args = ap.parse_args()
    pg = Postgres.start()
    try:
        print(f"fleet bench: {args.sites} sites, {args.seconds:.0f} s steady, load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        results = {n: run(args.sites, n, args.seconds, pg) for n in args.nodes}
    finally:
        pg.stop()
    keys = list(next(iter(results.values())))
    print(f"{'figure':24}" + "".join(f"{f'{n} nodes':>14}" for n in results))
    for k in keys:
        print(f"{k:24}" + "".join(f"{results[n][k]:14.1f}" for n in results))
    if len(results) > 1:
        a, b = (results[n] for n in args.nodes[:2])
        print(f"one more node: msgs/s x{b['msgs_per_s'] / a['msgs_per_s']:.2f}, drain rows/s "
              f"x{b['rows_per_s_drain'] / a['rows_per_s_drain']:.2f}, DR p95 "
              f"{a['dr_rx_p95_ms']:.0f} -> {b['dr_rx_p95_ms']:.0f} ms")


if __name__ == "__main__":
    main()
