"""Deploy tooling (dry run: no board here) and what the firmware may import on a board."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import fwkit

DEPLOY = fwkit.FIRMWARE / "tools" / "deploy.sh"
# Modules the ESP32 GENERIC and RPI_PICO_W MicroPython builds have (built in or frozen),
# plus umqtt.simple, which deploy installs on the Pico W. typing is only imported inside
# try/except ImportError, for the type checker.
ON_BOARD = {"json", "os", "sys", "time", "machine", "network", "onewire", "ds18x20",
            "umqtt.simple", "typing"}


def _deploy(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DRY_RUN": "1", "PYTHON": sys.executable, "MPREMOTE": "mpremote"}
    return subprocess.run(["bash", str(DEPLOY), *args], capture_output=True, text=True,
                          env=env, timeout=60, check=False)


def test_deploy_copies_every_module_and_the_config() -> None:
    proc = _deploy("/dev/ttyUSB0", str(fwkit.FIRMWARE / "config.example.json"), "esp32")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for module in sorted((fwkit.FIRMWARE / "hsat").glob("*.py")):
        assert f"fs cp hsat/{module.name} :hsat/{module.name}" in out, module.name
    assert "fs cp main.py :main.py" in out and "fs cp boards.json :boards.json" in out
    assert ":config.json" in out
    lines = [line for line in out.splitlines() if line.startswith("mpremote")]
    assert "maintenance" in lines[0] and "reset" in lines[0]
    assert lines[-1].endswith("fs rm :maintenance + reset ")
    assert "mip install" not in out  # ESP32 freezes umqtt


def test_deploy_on_pico_w_installs_umqtt() -> None:
    proc = _deploy("/dev/ttyACM0", "", "rp2")
    assert proc.returncode == 0, proc.stderr
    assert "mpremote connect /dev/ttyACM0 mip install umqtt.simple" in proc.stdout
    assert ":config.json" not in proc.stdout


def test_deploy_refuses_a_bad_config_before_touching_the_board(tmp_path: Path) -> None:
    bad = fwkit.FIRMWARE / "config.example.json"
    text = bad.read_text().replace('"top": "28ff641e0f000034"', '"top": "28ff641e0f000035"')
    target = tmp_path / "config.json"
    target.write_text(text)
    proc = _deploy("/dev/ttyUSB0", str(target))
    assert proc.returncode != 0
    assert "sensors.top: CRC of the ROM code does not match" in proc.stderr
    assert "mpremote" not in proc.stdout


def test_deploy_refuses_an_unknown_board() -> None:
    proc = _deploy("/dev/ttyUSB0", "", "esp8266")
    assert proc.returncode == 2 and "BOARD must be esp32 or rp2" in proc.stderr


def test_firmware_imports_only_what_micropython_has() -> None:
    for path in [*sorted((fwkit.FIRMWARE / "hsat").glob("*.py")), fwkit.FIRMWARE / "main.py"]:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name == "hsat" or name.startswith("hsat."):
                    continue
                assert name in ON_BOARD, f"{path.name} imports {name}"
