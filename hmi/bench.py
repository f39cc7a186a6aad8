"""HMI figures: what the HMI costs the control tick, how fast the live feed is, how much
memory the 24 h chart holds. Printed against a baseline measured in the same run.

    .venv/bin/python -m hmi.bench

1. HmiPublisher.publish() (0, 1 and 20 live feeds) against Service.tick() on the demo
   site without publishers (real controller + plant): the HMI's share of the tick.
2. Live-feed latency: 20 browsers' worth of SSE clients over real loopback HTTP, time from
   tick to the state arriving at the last of them.
3. Memory of the 24 h history (one point a minute) and of the latest state.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import httpx

from controller.config.models import SiteConfig
from controller.runtime.ports import TickRecord
from hmi.app import create_app
from hmi.demo import build_demo
from hmi.publisher import HmiPublisher
from hmi.server import HmiServer, bind


def _records(n: int) -> tuple[list[TickRecord], float, SiteConfig]:
    """n ticks of the demo site, and the best mean µs of a Service.tick() without any
    publisher (the controller + plant work the HMI is compared with)."""
    site = build_demo(Path(tempfile.mkdtemp(prefix="hmi-bench-")), ledger=False)
    site.service.publishers = []
    out: list[TickRecord] = []
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n // 3):
            site.tick()
            assert site.service.last is not None
            out.append(site.service.last)
        best = min(best, (time.perf_counter() - t0) / (n // 3) * 1e6)
    return out, best, site.cfg


def _publish_cost(records: list[TickRecord], cfg: SiteConfig, feeds: int) -> float:
    """Best mean µs of HmiPublisher.publish() over the records, inside the event loop (as
    in `hearth run`) with `feeds` live feeds open."""

    async def run() -> float:
        best = float("inf")
        for _ in range(3):
            pub = HmiPublisher(cfg)
            subs = [pub.subscribe() for _ in range(feeds)]
            t0 = time.perf_counter()
            for rec in records:
                pub.publish(rec)
            best = min(best, (time.perf_counter() - t0) / len(records) * 1e6)
            for sub in subs:
                sub.close()
        return best

    return asyncio.run(run())


async def _feed_latency(clients: int, ticks: int) -> tuple[float, float]:
    site = build_demo(Path(tempfile.mkdtemp(prefix="hmi-bench-")), ledger=False)
    server = HmiServer(create_app(site.context), sock=bind())
    await server.start()
    got: list[dict[int, float]] = [{} for _ in range(clients)]

    async def listen(i: int, c: httpx.AsyncClient) -> None:
        async with c.stream("GET", "/api/events") as r:
            async for line in r.aiter_lines():
                if line.startswith('data: {"available"'):
                    seq = int(line.split('"seq":', 1)[1].split(",", 1)[0])
                    got[i][seq] = time.perf_counter()
                    if seq >= ticks:
                        return

    async with httpx.AsyncClient(base_url=server.url, timeout=30,
                                 limits=httpx.Limits(max_connections=clients + 5)) as c:
        tasks = [asyncio.create_task(listen(i, c)) for i in range(clients)]
        while site.publisher.subscribers < clients:
            await asyncio.sleep(0.01)
        sent: dict[int, float] = {}
        for _ in range(ticks):
            site.tick()
            sent[site.publisher.seq] = time.perf_counter()
            await asyncio.sleep(0.02)
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
    await server.stop()
    lat = [max(g[s] for g in got) - sent[s] for s in sent]
    return statistics.median(lat) * 1e3, max(lat) * 1e3


def _memory() -> tuple[float, int, float]:
    """KiB the HmiPublisher holds after a day of ticks (its 24 h ring full)."""
    site = build_demo(Path(tempfile.mkdtemp(prefix="hmi-bench-")), ledger=False)
    records = []
    site.service.publishers = []
    for _ in range(1441):  # a day at one tick a minute
        site.tick()
        assert site.service.last is not None
        records.append(site.service.last)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    pub = HmiPublisher(site.cfg, history_step_s=60)
    for rec in records:
        pub.publish(rec)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return held / 1024, len(pub.history()), len(pub.state_json) / 1024


def main() -> None:
    records, base, cfg = _records(3000)
    print("Per control tick on the demo site (best mean of 3 runs):")
    print(f"  Service.tick() without publishers (baseline)  {base:7.1f} µs")
    for feeds in (0, 1, 20):
        cost = _publish_cost(records, cfg, feeds)
        print(f"  HmiPublisher.publish(), {feeds:2d} live feed(s)       {cost:7.1f} µs "
              f"({100 * cost / base:.0f} % of the tick)")
    med, worst = asyncio.run(_feed_latency(20, 100))
    print("Live feed, 20 SSE clients over loopback HTTP, 100 ticks:")
    print(f"  tick -> last client          median {med:.1f} ms, worst {worst:.1f} ms")
    held_kib, points, state_kib = _memory()
    print("Memory of the HmiPublisher after a day of ticks:")
    print(f"  {held_kib:.0f} KiB for {points} chart points + the latest state "
          f"({held_kib * 1024 / max(points, 1):.0f} B a point)")
    print(f"  one state message: {state_kib:.1f} KiB of JSON")


if __name__ == "__main__":
    main()
