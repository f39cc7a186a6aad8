"""MQTT bridge figures against a real Mosquitto on loopback (prints numbers; asserts nothing).

1. What one tick pays: `Bridge.publish_state()` while the bridge is connected and
   publishing, and while the broker is down, against the baseline of an empty function
   call.
2. The publisher's work per snapshot (payloads + JSON for the example house).
3. Command round trip (client -> broker -> bridge validates, hands over, answers ->
   client), against the baseline of a plain broker echo (publish to a topic the same
   client subscribes).
4. Telemetry messages actually sent for 1000 ticks of changing values at 100 Hz (the
   rate limit at work), against the baseline of one message per topic per tick.

Run: .venv/bin/python bench/mqtt_bench.py [--requests 300]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "bridge")]

import brokerkit  # noqa: E402
from mqtt_testkit import ACL_TEXT, SITE, USERS, RunningBridge, client  # noqa: E402

from controller.bridge import MinerStatus, StateSnapshot  # noqa: E402
from controller.bridge.messages import encode  # noqa: E402
from controller.bridge.telemetry import state_payloads  # noqa: E402


def us(xs: list[float]) -> str:
    xs = sorted(xs)
    p99 = xs[min(len(xs) - 1, int(0.99 * len(xs)))]
    return (f"median {statistics.median(xs) * 1e6:8.2f} µs   p99 {p99 * 1e6:8.2f} µs   "
            f"max {xs[-1] * 1e6:9.2f} µs")


def ms(xs: list[float]) -> str:
    xs = sorted(xs)
    p95 = xs[min(len(xs) - 1, int(0.95 * len(xs)))]
    return f"median {statistics.median(xs) * 1e3:7.2f} ms   p95 {p95 * 1e3:7.2f} ms"


def snap(i: int) -> StateSnapshot:
    return StateSnapshot(
        grid_power_w=-500.0 - i % 50, pv_power_w=3000.0 + i % 7, battery_power_w=100.0,
        soc_pct=60.0, tank_temp_c=50.0 + (i % 10) / 10, mode="grid", limiter="grid",
        total_target_w=900.0,
        miners={"s9": MinerStatus(power_w=900.0 + i % 20, hashrate_ths=10.7,
                                  state="running"),
                "bitaxe-1": MinerStatus(power_w=15.0, hashrate_ths=0.9, state="running")},
    )


def timed_calls(fn: object, n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(snap(i)) if fn is not None else None  # type: ignore[operator]
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--ticks", type=int, default=20_000)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    snaps = [snap(i) for i in range(args.ticks)]

    with tempfile.TemporaryDirectory() as d, \
            brokerkit.Broker(Path(d), users=USERS, acl=ACL_TEXT) as broker, \
            RunningBridge(Path(d) / "site", broker) as rb:
        bridge = rb.bridge

        def noop(s: StateSnapshot) -> None:
            return None

        print("1. one tick's cost of handing the state to the bridge")
        base = []
        for s in snaps:
            t0 = time.perf_counter()
            noop(s)
            base.append(time.perf_counter() - t0)
        live = []
        for s in snaps:
            t0 = time.perf_counter()
            bridge.publish_state(s)
            live.append(time.perf_counter() - t0)
        print(f"   baseline (empty call)      {us(base)}")
        print(f"   publish_state, connected   {us(live)}")
        broker.stop()
        brokerkit.wait_until(lambda: not bridge.connected, 10, "disconnect")
        down = []
        for s in snaps:
            t0 = time.perf_counter()
            bridge.publish_state(s)
            down.append(time.perf_counter() - t0)
        print(f"   publish_state, broker down {us(down)}")
        broker.start()
        brokerkit.wait_until(lambda: bridge.connected, 15, "reconnect")

        print("2. publisher work per snapshot (all state topics of the house, JSON)")
        cfg = bridge.config
        t0 = time.perf_counter()
        n_msgs = 0
        for s in snaps[:5000]:
            for body in state_payloads(s, cfg).values():
                encode(body)
                n_msgs += 1
        per = (time.perf_counter() - t0) / 5000
        print(f"   {per * 1e6:8.1f} µs per snapshot ({n_msgs // 5000} topics)")

        print("3. command round trip over the broker")
        ha = client(broker, "homeassistant")
        base_topic = f"hearth/{SITE}/reply/homeassistant/bench-echo"
        reply = f"hearth/{SITE}/reply/homeassistant/bench"
        ha.subscribe(reply)
        echo_c = client(broker, "hearth")
        echo_c.subscribe(base_topic)
        echo_rt, cmd_rt = [], []
        for i in range(args.requests):
            mark = echo_c.mark()
            t0 = time.perf_counter()
            echo_c.publish(base_topic, b"x", qos=1)
            echo_c.wait_for(base_topic, after=mark)
            echo_rt.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            ha.request(f"hearth/{SITE}/cmd/tank_target",
                       json.dumps({"target_c": 50 + i % 10}).encode(), reply, str(i).encode())
            cmd_rt.append(time.perf_counter() - t0)
        print(f"   baseline (broker echo)     {ms(echo_rt)}")
        print(f"   command answered           {ms(cmd_rt)}")
        ha.close()
        echo_c.close()

        print("4. telemetry messages for 1000 ticks at 100 Hz of changing values")
        watch = client(broker, "homeassistant")
        watch.subscribe(f"hearth/{SITE}/state/#")
        mark = watch.mark()
        t0 = time.perf_counter()
        for i in range(1000):
            bridge.publish_state(snaps[i])
            time.sleep(0.01)
        elapsed = time.perf_counter() - t0
        time.sleep(0.5)
        sent = watch.mark() - mark
        topics = len(state_payloads(snaps[0], cfg))
        print(f"   baseline (every topic every tick) {1000 * topics} messages")
        print(f"   rate-limited ({cfg.mqtt.telemetry_interval_s if cfg.mqtt else '?'} s) "
              f"{sent} messages in {elapsed:.1f} s")
        watch.close()


if __name__ == "__main__":
    main()
