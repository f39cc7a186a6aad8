#!/usr/bin/env bash
# Install Hearth on Raspberry Pi OS (Debian bookworm) as a systemd service.
#   sudo deploy/install.sh [--mosquitto | --no-mosquitto] [--root DIR] [SITE.toml]
# Creates the `hearth` system user, a venv in /opt/hearth/venv, config in /etc/hearth/,
# data in /var/lib/hearth/, and enables hearth.service. Safe to run again to upgrade:
# the config is never overwritten and the state and ledger are kept.
#
# Paths the service writes (and nothing else: the unit has ProtectSystem=strict with
# ReadWritePaths= exactly these two):
#   /etc/hearth      site.toml (root:hearth 0660) is rewritten by provisioning (MQTT
#                    config/set, the HMI's save) through site.toml.new, keeping site.toml.prev;
#                    each normal start keeps site.toml.last-good (safe mode's fallback).
#                    The directory is root:hearth 0770 so the service can create those.
#   /var/lib/hearth  state.json, the ledger, the HMI's logins (hearth:hearth 0750).
# The broker password file that [mqtt] password_file names: hearth:hearth 0600.
#
# --mosquitto / --no-mosquitto: install the Mosquitto broker (Home Assistant, remote
#   provisioning) or not; without either, asked when run from a terminal.
# --root DIR (or DESTDIR=DIR): install everything under DIR instead of / — for tests and
#   staging: no packages, no user, no systemctl; the owner is $HEARTH_USER:$HEARTH_GROUP
#   (names or numeric ids, default hearth:hearth, which must exist). The venv's scripts
#   point into DIR, so that tree runs from where it is.
set -euo pipefail

SRC="$(cd "$(dirname "$0")/.." && pwd)"
ROOT="${DESTDIR:-}"
MOSQUITTO=ask
SITE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT="${2:?--root needs a directory}"; shift 2 ;;
    --root=*) ROOT="${1#--root=}"; shift ;;
    --mosquitto) MOSQUITTO=yes; shift ;;
    --no-mosquitto) MOSQUITTO=no; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    *) SITE="$1"; shift ;;
  esac
done
ROOT="${ROOT%/}"
OWNER="${HEARTH_USER:-hearth}"
GROUP="${HEARTH_GROUP:-hearth}"
PREFIX="$ROOT/opt/hearth"
CONF="$ROOT/etc/hearth"
DATA="$ROOT/var/lib/hearth"
UNITDIR="$ROOT/etc/systemd/system"

if [ "$(id -u)" != 0 ]; then
  echo "run as root: sudo $0 $*" >&2
  exit 1
fi
if [ -n "$SITE" ] && [ ! -r "$SITE" ]; then
  echo "cannot read the site file $SITE" >&2
  exit 2
fi
PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || {
  echo "Hearth needs Python 3.11 or newer ($PY is $("$PY" -V 2>&1 || echo missing));" \
       "Raspberry Pi OS bookworm has 3.11" >&2
  exit 1
}

if [ -z "$ROOT" ]; then
  echo "== packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv python3-dev \
    gcc rsync mosquitto-clients
  echo "== user"
  id -u "$OWNER" >/dev/null 2>&1 || useradd --system --home-dir /var/lib/hearth \
    --shell /usr/sbin/nologin --groups dialout "$OWNER"
else
  echo "== installing under $ROOT (no packages, user or systemctl)"
fi

echo "== directories"
install -d -o root -g root -m 0755 "$PREFIX"
install -d -o root -g "$GROUP" -m 0770 "$CONF"
install -d -o "$OWNER" -g "$GROUP" -m 0750 "$DATA"

echo "== application"
rsync -a --delete --exclude .git --exclude .venv --exclude node_modules \
  --exclude .typings --exclude .typings-rp2 --exclude __pycache__ --exclude '*.egg-info' \
  --exclude .mypy_cache --exclude .ruff_cache --exclude .pytest_cache --exclude .hypothesis \
  "$SRC"/ "$PREFIX"/src/
[ -x "$PREFIX/venv/bin/python" ] || "$PY" -m venv "$PREFIX/venv"
"$PREFIX/venv/bin/pip" install --quiet "$PREFIX/src"
ln -sf "$PREFIX/src/README.md" "$PREFIX/README.md"

echo "== configuration"
if [ ! -f "$CONF/site.toml" ]; then
  if [ -n "$SITE" ]; then
    install -o root -g "$GROUP" -m 0660 "$SITE" "$CONF/site.toml"
  else
    install -o root -g "$GROUP" -m 0660 "$PREFIX/src/hil/sites/house-10kwp.toml" \
      "$CONF/site.toml"
    echo "   NOTE: $CONF/site.toml is the example house: edit it for this site"
  fi
fi
# An upgrade fixes the modes of an older install (the service must be able to save).
chgrp "$GROUP" "$CONF" "$CONF/site.toml"
chmod 0770 "$CONF"
chmod 0660 "$CONF/site.toml"
"$PREFIX/venv/bin/hearth" config check "$CONF/site.toml"

echo "== service"
install -d -m 0755 "$UNITDIR"
install -m 0644 "$PREFIX/src/deploy/systemd/hearth.service" "$UNITDIR/hearth.service"
if [ -z "$ROOT" ]; then
  systemctl daemon-reload
  systemctl enable hearth.service
  systemctl restart hearth.service
fi

echo "== MQTT broker"
if [ -n "$ROOT" ]; then
  echo "   (--root: the target's broker is not checked; see deploy/mosquitto/)"
elif dpkg -s mosquitto >/dev/null 2>&1; then
  echo "   Mosquitto is installed: accounts, ACL and TLS as in $PREFIX/src/deploy/mosquitto/"
else
  if [ "$MOSQUITTO" = ask ] && [ -t 0 ]; then
    read -r -p "   Install the Mosquitto MQTT broker on this Pi (Home Assistant, remote setup)? [y/N] " a
    case "$a" in [yY]*) MOSQUITTO=yes ;; *) MOSQUITTO=no ;; esac
  fi
  if [ "$MOSQUITTO" = yes ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto
    install -m 0644 "$PREFIX/src/deploy/mosquitto/acl" /etc/mosquitto/hearth.acl
    echo "   Mosquitto installed. Accounts and TLS: see the top of"
    echo "   $PREFIX/src/deploy/mosquitto/mosquitto.conf (then copy it to /etc/mosquitto/conf.d/)"
  else
    echo "   No MQTT broker here. For Home Assistant and remote provisioning:"
    echo "   sudo $0 --mosquitto, or any broker set up as in deploy/mosquitto/"
  fi
fi

PORT=$("$PREFIX/venv/bin/python" - "$CONF/site.toml" <<'PY' 2>/dev/null || echo 8080
import sys, tomllib
print(tomllib.load(open(sys.argv[1], "rb")).get("hmi", {}).get("listen_port", 8080))
PY
)
SCHEME=$("$PREFIX/venv/bin/python" - "$CONF/site.toml" <<'PY' 2>/dev/null || echo http
import sys, tomllib
print("https" if tomllib.load(open(sys.argv[1], "rb")).get("hmi", {}).get("tls_cert_file")
      else "http")
PY
)
HOST=$(hostname -I 2>/dev/null | awk '{print $1}')
echo "done: 'systemctl status hearth', 'journalctl -u hearth -f', 'hearth doctor --config /etc/hearth/site.toml'"
echo "HMI: $SCHEME://${HOST:-$(hostname)}:$PORT/ (installer pages at /installer)"
echo "First start: the one-time setup code is in the log: journalctl -u hearth | grep 'setup code'"
