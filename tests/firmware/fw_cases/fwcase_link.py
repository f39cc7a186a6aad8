"""Heartbeat loss and return, MQTT availability (Last Will), reconnect, commands and acks,
trip events re-sent until acknowledged, settings changed over MQTT."""

import network
from fwharness import Rig, config


def case_heartbeat_loss_and_return():
    rig = Rig()
    rig.command(contactor=True, pump=False)
    for seq in range(1, 6):  # the controller beats every second
        rig.heartbeat(seq)
        rig.run(1000)
    assert rig.contactor() is True
    # The controller dies: no more heartbeats. Timeout is 5 s.
    took = rig.run_until(lambda: not rig.contactor(), 7000)
    assert 4000 <= took <= 5100, took
    assert rig.pump() is True  # safe_pump_on
    trip = rig.events("heartbeat_lost")[-1]
    assert trip["type"] == "trip" and "timeout 5.0 s" in trip["reason"]
    assert rig.logged("trip heartbeat_lost")
    rig.run(1500)
    assert rig.telemetry()["safe"] == ["heartbeat_lost"]
    # It comes back: the heartbeat alone does not switch the contactor on again.
    rig.heartbeat(100)
    rig.run(1000)
    assert rig.contactor() is False
    release = rig.events("heartbeat_lost")[-1]
    assert release["type"] == "release" and "back after" in release["reason"]
    assert rig.telemetry()["safe"] == ["waiting_for_command"]
    rig.command(contactor=True, pump=False, id="again")
    rig.run(100)
    assert rig.contactor() is True and rig.pump() is False


def case_availability_and_last_will():
    rig = Rig()
    rig.run(200)
    client = rig.broker.clients[0]
    assert client.lw_topic == rig.base + "availability"
    assert client.lw_msg == b"offline" and client.lw_retain is True
    assert client.connect_timeout == 5
    assert rig.broker.retained[rig.base + "availability"] == b"online"
    assert rig.base + "cmd/#" in client.subs
    # The link breaks without a DISCONNECT: the broker publishes the will.
    rig.broker.drop_all()
    assert rig.broker.retained[rig.base + "availability"] == b"offline"
    rig.run_until(lambda: rig.broker.retained[rig.base + "availability"] == b"online", 3000)
    assert rig.logged("mqtt: link lost")


def case_reconnect_with_backoff_and_trips_reported_when_back():
    rig = Rig()
    rig.command(contactor=True)
    rig.run(1000)
    rig.broker.up = False
    rig.broker.drop_all()
    rig.set_temp("top", 95.0)
    rig.run(2000)
    assert rig.contactor() is False  # local safety needs no link
    # Not one connect per tick: 1 s, 2 s, 4 s, ... apart.
    rig.run(12000)
    assert 3 <= rig.broker.refused <= 5, rig.broker.refused
    assert rig.logged("mqtt: connect to 127.0.0.1:1883 failed")
    trips_sent = len(rig.events("overtemp"))
    assert trips_sent == 0
    rig.broker.up = True
    rig.run_until(lambda: rig.events("overtemp"), 20000)
    trip = rig.events("overtemp")[0]
    assert trip["type"] == "trip" and "95.0" in trip["reason"]
    assert trip["boot"] == 1 and trip["id"] > 0


def case_events_resent_until_acknowledged():
    rig = Rig()
    rig.run(500)
    first = len(rig.events("boot"))
    assert first == 1
    rig.run(10500)
    assert len(rig.events("boot")) == 2  # not acknowledged: sent again
    last_id = rig.events()[-1]["id"]
    rig.send("trip_ack", {"upto": last_id})
    rig.run(100)
    ack = rig.acks("trip_ack")[-1]
    assert ack["ok"] is True and ack["pending"] == 0
    rig.run(12000)
    assert len(rig.events("boot")) == 2
    assert [e for e in rig.sat.pending if e["code"] == "boot"] == []


def case_pending_events_survive_reboot():
    rig = Rig(temps={"top": 95.0})
    rig.broker.up = False
    rig.run(3000)
    assert rig.sat.safety.overtemp
    root = rig.root
    again = Rig(root=root, temps={"top": 50.0})
    again.run(1000)
    codes = [e["code"] for e in again.events()]
    assert "overtemp" in codes and codes.count("boot") == 2
    assert [e["boot"] for e in again.events("boot")] == [1, 2]


def case_bad_commands_are_refused_with_reasons():
    rig = Rig()
    rig.run(200)
    cases = [
        ("relays", b"{not json", "payload: not valid JSON"),
        ("relays", b"[1, 2]", "payload: must be a JSON object"),
        ("relays", {"contactor": "yes"}, "contactor: must be true or false"),
        ("relays", {"id": "x"}, "give at least one"),
        ("relays", {"contactor": True, "fan": True}, "fan: unknown field"),
        ("relays", {"id": 1.5, "contactor": True}, "id: must be a string or an integer"),
        ("heartbeat", {"seq": "1"}, "seq: must be an integer"),
        ("trip_ack", {"upto": True}, "upto: must be an integer"),
        ("reboot", {}, "unknown command"),
    ]
    for cmd, payload, words in cases:
        before = len(rig.acks())
        rig.send(cmd, payload)
        rig.run(100)
        ack = rig.acks()[before]
        assert ack["ok"] is False and words in ack["error"], (cmd, payload, ack)
        assert rig.logged(f"refused cmd/{cmd}: ", words), (cmd, words)
    # None of it counted as the controller being there, or switched anything.
    assert rig.sat.safety.last_contact_ms is None and rig.contactor() is False


def case_config_command_all_or_nothing_and_persisted():
    rig = Rig()
    rig.run(200)
    rig.send("config", {"id": 7, "settings": {"tank_max_c": 80.0, "hysteresis_c": 99}})
    rig.run(100)
    ack = rig.acks("config")[-1]
    assert ack["ok"] is False and ack["id"] == 7
    assert "settings.hysteresis_c: 99 is outside" in ack["error"]
    assert rig.sat.settings["tank_max_c"] == 90.0  # nothing half-applied
    rig.send("config", {"id": 8, "settings": {"wifi": {"ssid": "x"}}})
    rig.run(100)
    assert "settings.wifi: not a setting" in rig.acks("config")[-1]["error"]
    rig.send("config", {"id": 9, "settings": {"tank_max_c": 80.0, "heartbeat_timeout_s": 8}})
    rig.run(100)
    ack = rig.acks("config")[-1]
    assert ack["ok"] is True and ack["settings"]["tank_max_c"] == 80.0
    rig.set_temp("top", 81.0)
    rig.command(contactor=True)
    rig.run(2000)
    assert rig.contactor() is False and rig.sat.safety.overtemp  # the new limit acts
    again = Rig(root=rig.root)
    assert again.sat.settings["tank_max_c"] == 80.0
    assert again.sat.settings["heartbeat_timeout_s"] == 8.0


def case_wifi_down_keeps_safety_and_reconnects():
    rig = Rig()
    rig.command(contactor=True)
    rig.heartbeat()
    rig.run(500)
    network.state["up"] = False
    rig.run(500)
    # The session is dropped without DISCONNECT, so the broker announces us offline.
    assert rig.logged("mqtt: link lost", "network down")
    assert rig.broker.retained[rig.base + "availability"] == b"offline"
    rig.run(7500)
    assert rig.contactor() is False  # heartbeat timeout: the controller cannot reach us
    assert rig.logged("wifi: down")
    network.state["up"] = True
    rig.run_until(lambda: rig.sat.link.connected, 40000, step=200)
    assert network.state["connects"] >= 1


def case_invalid_config_lists_every_problem():
    from hsat.config import Config, ConfigError

    bad = config(tank_max_c=200, cutoff_sensors=["attic"])
    bad["site_id"] = "Bad Site"
    bad["mqtt"]["port"] = 70000
    bad["sensors"]["top"] = "28ff641e0f000035"
    bad["colour"] = "red"
    try:
        Config(bad)
    except ConfigError as err:
        text = "\n".join(err.problems)
    else:
        raise AssertionError("accepted a bad config")
    for words in ("site_id: must be", "mqtt.port: must be an integer 1..65535",
                  "sensors.top: CRC of the ROM code", "colour: unknown key",
                  "settings.tank_max_c: 200 is outside", "settings.cutoff_sensors: ['attic']"):
        assert words in text, (words, text)
