"""Configuration of the central MQTT cluster: NATS server nodes with MQTT and JetStream.

Why NATS and not RabbitMQ: docs/fleet.md. One file per node; every node has the same
accounts. Topics map to NATS subjects (`hearth/s1/state/power` -> `hearth.s1.state.power`),
so MQTT ACLs are subject permissions:

| account | publish | subscribe |
| --- | --- | --- |
| a site (its id) | `hearth.<id>.>` | `hearth.<id>.cmd.>` |
| `ingest` | nothing | `hearth.>` (+ `$MQTT.sub.>`, its QoS 1 deliveries) |
| `dispatch` | `hearth.*.cmd.dr_cap`, `hearth.*.cmd.dr_absorb` | `hearth.>` (+ `$MQTT.sub.>`) |

A site's publish outside its own id is dropped by the cluster, so no site can write (or
fake) another site's telemetry, ledger or answers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from controller.fleet.rows import SITE_ID


@dataclass(frozen=True)
class Node:
    name: str
    client_port: int      # NATS protocol (monitoring tools, JetStream API)
    cluster_port: int     # routes between the nodes
    mqtt_port: int        # the sites, ingest and dispatch
    store_dir: Path
    host: str = "127.0.0.1"


@dataclass(frozen=True)
class Tls:
    cert_file: Path
    key_file: Path


SERVICE_ACCOUNTS = ("ingest", "dispatch")
# NATS delivers an MQTT QoS 1 subscription from a JetStream consumer to this internal
# subject, which the subscriber must be allowed to read (found in tests: without it the
# subscription fails with "subscribe permission violation"). Sites subscribe with QoS 0.
MQTT_QOS1 = "$MQTT.sub.>"


def permissions(account: str) -> dict[str, object]:
    """The subject permissions of an account (see the module docstring)."""
    if account == "ingest":
        return {"publish": {"deny": [">"]},
                "subscribe": {"allow": ["hearth", "hearth.>", MQTT_QOS1]}}
    if account == "dispatch":
        return {"publish": {"allow": ["hearth.*.cmd.dr_cap", "hearth.*.cmd.dr_absorb"]},
                "subscribe": {"allow": ["hearth", "hearth.>", MQTT_QOS1]}}
    if not SITE_ID.match(account):
        raise ValueError(f"{account!r}: a site account is the site id ([a-z0-9_-], "
                         "1-64 characters)")
    return {"publish": {"allow": [f"hearth.{account}.>"]},
            "subscribe": {"allow": [f"hearth.{account}.cmd.>"]}}


def node_conf(node: Node, nodes: Sequence[Node], accounts: Mapping[str, str],
              tls: Tls | None = None, cluster_name: str = "hearth-fleet",
              max_ack_pending: int = 4096, ack_wait_s: int = 10) -> str:
    """The NATS server config of one node. `accounts`: name -> password (the sites by id,
    `ingest`, `dispatch`). JSON strings are valid NATS config strings."""
    q = json.dumps
    users = ",\n    ".join(
        f"{{user: {q(name)}, password: {q(pw)}, permissions: {q(permissions(name))}}}"
        for name, pw in sorted(accounts.items()))
    routes = ", ".join(q(f"nats-route://{n.host}:{n.cluster_port}") for n in nodes)
    tls_block = ""
    if tls is not None:
        tls_block = (f"\n  tls {{ cert_file: {q(str(tls.cert_file))}, "
                     f"key_file: {q(str(tls.key_file))} }}")
    return f"""# Hearth fleet cluster node {node.name} (controller/fleet/cluster.py)
server_name: {q(node.name)}
listen: {q(f"{node.host}:{node.client_port}")}
jetstream {{ store_dir: {q(str(node.store_dir))} }}
cluster {{
  name: {q(cluster_name)}
  listen: {q(f"{node.host}:{node.cluster_port}")}
  routes: [{routes}]
}}
mqtt {{
  listen: {q(f"{node.host}:{node.mqtt_port}")}
  # QoS 1 deliveries in flight per subscription (ingest acks after its commit)
  max_ack_pending: {max_ack_pending}
  # an unacknowledged QoS 1 delivery is sent again after this (ingest died mid-batch)
  ack_wait: "{ack_wait_s}s"{tls_block}
}}
authorization {{
  users: [
    {users}
  ]
}}
"""
