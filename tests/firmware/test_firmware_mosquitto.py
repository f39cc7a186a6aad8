"""The firmware's logic as the satellite against a real Mosquitto, and the controller side
(`hearth satellite run`) as a separate process that the test kills.

What is real: the broker (its own config, passwords and ACL), TCP on 127.0.0.1, MQTT on
both sides, time, the controller process. What is fake: the board's pins and 1-Wire bus
(fw_fakes), and umqtt's socket code (paho under umqtt's interface, fw_paho_umqtt).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import brokerkit
import fwkit
import pytest
from fw_live_sat import LiveSatellite

pytestmark = pytest.mark.slow

HEARTBEAT_TIMEOUT_S = 2.0
ACL = """\
user controller
topic readwrite hearth/#

user sat-tank1
topic write hearth/demo/sat/tank1/availability
topic write hearth/demo/sat/tank1/telemetry
topic write hearth/demo/sat/tank1/event
topic write hearth/demo/sat/tank1/ack
topic read hearth/demo/sat/tank1/cmd/#
"""
SATELLITE = f"""\
id = "tank1"
heartbeat_timeout_s = {HEARTBEAT_TIMEOUT_S}
heartbeat_interval_s = 0.5
telemetry_period_s = 0.5
hysteresis_c = 5
"""


class Controller:
    """`hearth satellite run` as a child process, its output collected."""

    def __init__(self, site: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "controller.cli", "--log-level", "INFO", "satellite", "run",
             "--config", str(site), "--contactor", "on", "--pump", "on"],
            cwd=fwkit.REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.out: list[str] = []
        self.err: list[str] = []
        for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._drain, args=(stream, sink), daemon=True).start()

    @staticmethod
    def _drain(stream: object, sink: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            sink.append(line.rstrip("\n"))

    def said(self, text: str) -> list[str]:
        return [line for line in self.out + self.err if text in line]

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=15)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[brokerkit.Broker]:
    with brokerkit.Broker(tmp_path, users={"controller": "c-pw", "sat-tank1": "s-pw"},
                          acl=ACL) as b:
        yield b


def _diagnose(broker: brokerkit.Broker, ctl: Controller, sat: LiveSatellite) -> str:
    return ("\n--- controller ---\n" + "\n".join(ctl.out + ctl.err)
            + "\n--- satellite ---\n" + "\n".join(sat.lines)
            + "\n--- broker ---\n" + broker.log_text()[-4000:])


@pytest.mark.slow(15)
def test_killing_the_controller_puts_the_contactor_in_the_safe_state(
    broker: brokerkit.Broker, tmp_path: Path
) -> None:
    site = fwkit.write_site(tmp_path / "site", broker.port, "c-pw", SATELLITE)
    with LiveSatellite(tmp_path / "flash", broker.host, broker.port, "sat-tank1", "s-pw",
                       heartbeat_timeout_s=30.0) as sat:
        ctl = Controller(site)
        try:
            brokerkit.wait_until(lambda: sat.sat.relays.contactor, 20,
                                 "the controller to switch the contactor on")
            # The controller pushed its settings: the board's own timeout is now 2 s.
            brokerkit.wait_until(
                lambda: sat.sat.settings["heartbeat_timeout_s"] == HEARTBEAT_TIMEOUT_S, 10,
                "the pushed heartbeat timeout")
            assert sat.sat.settings["tank_max_c"] == 72.0  # tank.max_c + 2
            brokerkit.wait_until(lambda: ctl.said("tank1 boot 1") and ctl.said("top 50.00"),
                                 10, "telemetry printed by the controller")
            # The boot notice reached the controller and was acknowledged.
            brokerkit.wait_until(lambda: not [e for e in sat.sat.pending
                                              if e["code"] == "boot"], 10, "boot notice ack")
            time.sleep(1.0)  # steady state: several heartbeats

            ctl.kill()
            killed_at = time.monotonic()
            brokerkit.wait_until(lambda: not sat.sat.relays.contactor, 10,
                                 "the safe state after the controller died")
            off_at = sat.contactor_changes[-1][0]
            assert sat.contactor_changes[-1][1] is False
            delay = off_at - killed_at
            # The last heartbeat came at most one interval (0.5 s) before the kill.
            print(f"contactor off {delay:.3f} s after the controller was killed")
            assert HEARTBEAT_TIMEOUT_S - 0.6 <= delay <= HEARTBEAT_TIMEOUT_S + 0.5, delay
            assert sat.sat.relays.pump is True  # safe_pump_on
            trips = [e for e in sat.sat.pending if e["code"] == "heartbeat_lost"]
            assert trips and trips[0]["type"] == "trip"
            assert f"timeout {HEARTBEAT_TIMEOUT_S} s" in trips[0]["reason"]
            assert sat.logged("trip heartbeat_lost")

            # A new controller: it receives the trip with its reason, acknowledges it, and
            # only its relay command (not its heartbeat) switches the contactor back on.
            ctl2 = Controller(site)
            try:
                brokerkit.wait_until(lambda: ctl2.said("satellite tank1 trip heartbeat_lost: "
                                                       "no heartbeat from the controller"),
                                     15, "the trip reported to the new controller")
                brokerkit.wait_until(lambda: sat.sat.relays.contactor, 15, "contactor on")
                brokerkit.wait_until(lambda: not sat.sat.pending, 10, "events acknowledged")
                # A clean stop switches the contactor off at once, not after the timeout.
                stopped_at = time.monotonic()
                assert ctl2.terminate() == 0
                brokerkit.wait_until(lambda: not sat.sat.relays.contactor, 5, "clean stop")
                assert sat.contactor_changes[-1][0] - stopped_at < HEARTBEAT_TIMEOUT_S
            finally:
                ctl2.close()
        except BaseException:
            print(_diagnose(broker, ctl, sat))
            raise
        finally:
            ctl.close()
        assert sat.error is None


def test_trips_during_a_broker_outage_are_reported_when_it_is_back(
    broker: brokerkit.Broker, tmp_path: Path
) -> None:
    site = fwkit.write_site(tmp_path / "site", broker.port, "c-pw", SATELLITE)
    with LiveSatellite(tmp_path / "flash", broker.host, broker.port, "sat-tank1", "s-pw",
                       temps={"top": 60.0}) as sat:
        ctl = Controller(site)
        try:
            brokerkit.wait_until(lambda: sat.sat.relays.contactor, 20, "contactor on")
            # The controller's settings (tank_max_c 72, from tank.max_c + 2) reach the board
            # after it switched the contactor on: on a busy machine the broker was killed in
            # between and the board tripped on its boot default (90 °C).
            brokerkit.wait_until(lambda: sat.sat.settings["tank_max_c"] == 72.0, 10,
                                 "the pushed settings")
            broker.kill()
            sat.sensor("top").temp_c = 95.0  # the tank overheats while nobody can hear
            brokerkit.wait_until(lambda: not sat.sat.relays.contactor, 5,
                                 "the local cut-off without any link")
            assert sat.sat.relays.pump is True
            brokerkit.wait_until(lambda: sat.sat.safety.heartbeat_lost, 5, "heartbeat lost")
            codes = [e["code"] for e in sat.sat.pending]
            assert "overtemp" in codes and "heartbeat_lost" in codes
            broker.start()
            brokerkit.wait_until(
                lambda: ctl.said("satellite tank1 trip overtemp: tank top 95.0 °C >= "
                                 "tank_max_c 72.0 °C"), 30, "the overtemp trip, once back")
            assert ctl.said("satellite tank1 trip heartbeat_lost")
            # Still hot: the controller's command is held by the board.
            time.sleep(1.0)
            assert sat.sat.relays.contactor is False
            sat.sensor("top").temp_c = 60.0
            brokerkit.wait_until(lambda: sat.sat.relays.contactor, 15,
                                 "contactor on after cooling below 67 °C")
            brokerkit.wait_until(lambda: ctl.said("satellite tank1 release overtemp"), 10,
                                 "the release reported")
            assert sat.logged("mqtt: link lost")
            assert sat.logged("mqtt: connected to 127.0.0.1")
        except BaseException:
            print(_diagnose(broker, ctl, sat))
            raise
        finally:
            ctl.close()
        assert sat.error is None
