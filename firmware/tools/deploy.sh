#!/usr/bin/env bash
# Install the satellite firmware on a board with mpremote (MicroPython already flashed).
#
#   firmware/tools/deploy.sh PORT [CONFIG] [BOARD]      (make firmware-deploy PORT=...)
#     PORT    serial port of the board, e.g. /dev/ttyUSB0 (ESP32) or /dev/ttyACM0 (Pico W)
#     CONFIG  the board's config.json (hearth satellite provision); kept if not given
#     BOARD   esp32 (default) or rp2
#   MPREMOTE and PYTHON name the tools (default: mpremote, python3); DRY_RUN=1 only prints.
#
# The running firmware feeds a hardware watchdog that cannot be stopped, so it is first
# told to reboot into maintenance mode (relays safe, no watchdog, REPL free); the files
# are copied; then the flag is removed and the board reset into the new firmware.
set -euo pipefail

PORT=${1:?usage: deploy.sh PORT [CONFIG] [BOARD]}
CONFIG=${2:-}
BOARD=${3:-esp32}
MPREMOTE=${MPREMOTE:-mpremote}
PYTHON=${PYTHON:-python3}

absolute() {  # paths given relative to where make runs, before the cd below
  case "$1" in
    */*) echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")" ;;
    *) echo "$1" ;;
  esac
}
MPREMOTE=$(absolute "$MPREMOTE")
PYTHON=$(absolute "$PYTHON")
if [ -n "$CONFIG" ]; then
  [ -f "$CONFIG" ] || { echo "deploy: $CONFIG not found" >&2; exit 2; }
  CONFIG=$(absolute "$CONFIG")
fi
cd "$(dirname "$0")/.."

run() {
  if [ -n "${DRY_RUN:-}" ]; then printf '%q ' "$@"; echo; else "$@"; fi
}

case "$BOARD" in
  esp32|rp2) ;;
  *) echo "deploy: BOARD must be esp32 or rp2, not '$BOARD'" >&2; exit 2 ;;
esac

if [ -n "$CONFIG" ]; then
  # The firmware's own validation, run on this machine before anything is copied.
  "$PYTHON" - "$CONFIG" "$BOARD" <<'PY'
import json, sys
sys.path.insert(0, ".")
from hsat.config import Config, ConfigError
try:
    with open(sys.argv[1]) as f:
        Config(json.load(f), "rp2" if sys.argv[2] == "rp2" else "esp32")
except (OSError, ValueError) as err:
    sys.exit(f"{sys.argv[1]}: {err}")
except ConfigError as err:
    sys.exit("\n".join(f"{sys.argv[1]}: {p}" for p in err.problems))
PY
fi

echo "deploy: rebooting the board on $PORT into maintenance mode"
run "$MPREMOTE" connect "$PORT" exec "open('maintenance', 'w').close()" + reset || true
[ -n "${DRY_RUN:-}" ] || sleep 3

args=(connect "$PORT" exec $'import os\ntry:\n    os.mkdir("hsat")\nexcept OSError:\n    pass')
for f in hsat/*.py; do
  args+=(+ fs cp "$f" ":$f")
done
args+=(+ fs cp main.py :main.py + fs cp boards.json :boards.json)
if [ -n "$CONFIG" ]; then
  args+=(+ fs cp "$CONFIG" :config.json)
fi
echo "deploy: copying the firmware"
run "$MPREMOTE" "${args[@]}"

if [ "$BOARD" = rp2 ]; then
  # The Pico W firmware freezes onewire and ds18x20 but not umqtt.
  run "$MPREMOTE" connect "$PORT" mip install umqtt.simple
fi

echo "deploy: leaving maintenance mode and starting"
run "$MPREMOTE" connect "$PORT" fs rm :maintenance + reset
