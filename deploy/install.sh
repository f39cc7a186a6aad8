#!/usr/bin/env bash
# Install Hearth on Raspberry Pi OS (Debian bookworm) as a systemd service.
#   sudo deploy/install.sh [SITE.toml]
# Creates the `hearth` system user, a venv in /opt/hearth/venv, config in /etc/hearth/,
# data in /var/lib/hearth/, and enables hearth.service. Safe to run again to upgrade:
# the config is never overwritten and the state and ledger are kept.
set -euo pipefail

SRC="$(cd "$(dirname "$0")/.." && pwd)"
SITE="${1:-}"
PREFIX=/opt/hearth
CONF=/etc/hearth
DATA=/var/lib/hearth

if [ "$(id -u)" != 0 ]; then
  echo "run as root: sudo $0 $*" >&2
  exit 1
fi

echo "== packages"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || {
  echo "Hearth needs Python 3.11 or newer (Raspberry Pi OS bookworm has 3.11)" >&2
  exit 1
}
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv python3-dev \
  gcc rsync mosquitto-clients

echo "== user and directories"
id -u hearth >/dev/null 2>&1 || useradd --system --home-dir "$DATA" --shell /usr/sbin/nologin \
  --groups dialout hearth
install -d -o root -g root -m 0755 "$PREFIX"
# The service rewrites its site file (MQTT provisioning, the HMI) through site.toml.new and
# keeps site.toml.prev: the directory and the file are writable by its group.
install -d -o root -g hearth -m 0770 "$CONF"
install -d -o hearth -g hearth -m 0750 "$DATA"

echo "== application"
rsync -a --delete --exclude .git --exclude .venv --exclude 'firmware/node_modules' \
  "$SRC"/ "$PREFIX"/src/
[ -x "$PREFIX/venv/bin/python" ] || python3 -m venv "$PREFIX/venv"
"$PREFIX/venv/bin/pip" install --quiet --upgrade pip
"$PREFIX/venv/bin/pip" install --quiet "$PREFIX/src"
ln -sf "$PREFIX/src/README.md" "$PREFIX/README.md"

echo "== configuration"
if [ ! -f "$CONF/site.toml" ]; then
  if [ -n "$SITE" ]; then
    install -o root -g hearth -m 0660 "$SITE" "$CONF/site.toml"
  else
    install -o root -g hearth -m 0660 "$PREFIX/src/hil/sites/house-10kwp.toml" "$CONF/site.toml"
    echo "   NOTE: $CONF/site.toml is the example house: edit it for this site"
  fi
fi
"$PREFIX/venv/bin/hearth" config check "$CONF/site.toml"

echo "== service"
install -m 0644 "$PREFIX/src/deploy/systemd/hearth.service" /etc/systemd/system/hearth.service
systemctl daemon-reload
systemctl enable hearth.service
systemctl restart hearth.service
if ! dpkg -s mosquitto >/dev/null 2>&1; then
  echo "   NOTE: no MQTT broker on this Pi. For Home Assistant and remote provisioning:"
  echo "         sudo apt-get install mosquitto, then deploy/mosquitto/ (accounts, ACL, TLS)"
fi
PORT=$("$PREFIX/venv/bin/python" - "$CONF/site.toml" <<'PY' 2>/dev/null || echo 8080
import sys, tomllib
print(tomllib.load(open(sys.argv[1], "rb")).get("hmi", {}).get("listen_port", 8080))
PY
)
echo "done: 'systemctl status hearth', 'journalctl -u hearth -f', 'hearth doctor --config $CONF/site.toml'"
echo "HMI: http://$(hostname -I 2>/dev/null | awk '{print $1}'):$PORT/ (installer pages at /installer)"
echo "First start: the one-time setup code is in the log: journalctl -u hearth | grep 'setup code'"
