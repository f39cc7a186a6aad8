"""The site side of the fleet link: a Mosquitto `connection` block, made from the site file.

The site's own Mosquitto forwards the site's subtree to the fleet cluster and keeps what it
could not send while the link is down (clean session off, a queue), so a night without
internet costs nothing but delay. Only the site's own `hearth/<site>/` subtrees go out —
state, availability, closed ledger rows, the fleet info, command answers — and only the DR
commands come in; installer traffic (`config/`) and requests never leave the house.

Commands come in, and answers go out, at QoS 0 on purpose: the cluster keeps no queue of
commands for a site that is away (a demand-response request applied an hour late is
wrong), and the fleet's dispatcher matches every answer to its request, sends again when
none comes and replaces a site that stays silent (docs/fleet.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from controller.fleet.rows import SITE_ID

# (subtree under hearth/<site>/, direction, QoS)
FORWARDED: tuple[tuple[str, str, int], ...] = (
    ("state/#", "out", 0),          # latest telemetry (retained at the site)
    ("availability", "out", 1),     # the site's Last Will: online/offline
    ("ledger/#", "out", 1),         # closed intervals and telemetry steps: never lost
    ("fleet/#", "out", 1),          # the site's fleet info (capacity, wall-page link)
    ("cmd/+/result", "out", 0),     # answers to the fleet's commands (it resends)
    ("cmd/dr_cap", "in", 0),        # the fleet's demand response
    ("cmd/dr_absorb", "in", 0),
)


@dataclass(frozen=True)
class BridgeSettings:
    site_id: str
    nodes: Sequence[tuple[str, int]]
    username: str
    password: str
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    max_queued_messages: int = 200_000  # a few weeks of ledger rows


def bridge_conf(s: BridgeSettings) -> str:
    """The text of a Mosquitto config snippet (for /etc/mosquitto/conf.d/)."""
    if not SITE_ID.match(s.site_id):
        raise ValueError(f"site id {s.site_id!r} is not a valid site id")
    if not s.nodes:
        raise ValueError("--cluster: no node given")
    if any(c in s.password for c in "\n\r"):
        raise ValueError("password: must be one line")
    if (s.cert_file is None) != (s.key_file is None):
        raise ValueError("--cert-file and --key-file go together")
    prefix = f"hearth/{s.site_id}/"
    lines = [
        f"# Hearth fleet bridge of site {s.site_id} (made by `hearth fleet bridge-config`).",
        "# Holds the site's cluster password: keep it readable by mosquitto only (0600).",
        "# Global: the queue for the link while it is down (per client, the bridge included).",
        f"max_queued_messages {s.max_queued_messages}",
        "",
        f"connection hearth-fleet-{s.site_id}",
        "address " + " ".join(f"{h}:{p}" for h, p in s.nodes),
        "round_robin false",              # first node preferred, the others on failure
        "bridge_protocol_version mqttv311",
        "try_private false",              # NATS is not Mosquitto: no private bridge flag
        # The cluster keeps no retained copies: every retained message would be a write
        # to a replicated JetStream stream, ~500/s for 300 sites; the fleet stores the
        # latest state itself (fleet_site).
        "bridge_outgoing_retain false",
        "cleansession false",             # the session (and the queue) survive outages
        f"remote_clientid hearth-fleet-{s.site_id}",
        f"local_clientid hearth-fleet-bridge-{s.site_id}",
        f"remote_username {s.username}",
        f"remote_password {s.password}",
        "keepalive_interval 20",
        "restart_timeout 2 30",
        "start_type automatic",
        "notifications true",
        "notifications_local_only false",
        f"notification_topic {prefix}bridge/state",
    ]
    if s.ca_file is not None:
        lines += [f"bridge_cafile {s.ca_file}", "bridge_insecure false",
                  "bridge_tls_version tlsv1.2"]
    if s.cert_file is not None and s.key_file is not None:
        lines += [f"bridge_certfile {s.cert_file}", f"bridge_keyfile {s.key_file}"]
    for pattern, direction, qos in FORWARDED:
        lines.append(f"topic {pattern} {direction} {qos} {prefix} {prefix}")
    return "\n".join(lines) + "\n"
