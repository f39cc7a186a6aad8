"""Shared helpers for the firmware tests: paths, case discovery, the MicroPython runner.

The firmware cases (fw_cases/fwcase_*.py) are plain functions named `case_*` that run on
both CPython and MicroPython; this module finds them by reading the files, so the CPython
and the MicroPython test lists are the same list by construction.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FIRMWARE = REPO / "firmware"
FAKES = HERE / "fw_fakes"
CASES = HERE / "fw_cases"
RUNNER = FIRMWARE / "tools" / "run-cases.mjs"
NODE_PACKAGE = FIRMWARE / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"


def case_ids() -> list[str]:
    """'module.case_name' for every case, sorted like the MicroPython runner sorts them."""
    ids = []
    for path in sorted(CASES.glob("fwcase_*.py")):
        names = re.findall(r"^def (case_\w+)\(", path.read_text(), flags=re.M)
        ids += [f"{path.stem}.{name}" for name in sorted(names)]
    return ids


def use_fakes() -> None:
    """Put the fake board modules, the firmware and the cases first on sys.path."""
    for p in (CASES, FIRMWARE, FAKES):
        if str(p) not in sys.path:
            sys.path.insert(0, str(p))


def run_micropython_cases(timeout_s: float = 300.0) -> dict[str, dict[str, object]]:
    """Run every case under MicroPython in Node; results by case id."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not installed (Debian package 'nodejs')")
    if not NODE_PACKAGE.exists():
        raise RuntimeError(f"{NODE_PACKAGE} is missing: run `npm ci --prefix firmware`")
    proc = subprocess.run(
        [node, str(RUNNER), "--dir", f"{FIRMWARE / 'hsat'}:/lib/hsat",
         "--dir", f"{FAKES}:/lib", "--dir", f"{CASES}:/cases"],
        capture_output=True, text=True, timeout=timeout_s, check=False, cwd=FIRMWARE,
    )
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"MicroPython runner failed ({proc.returncode}):\n{proc.stdout}\n"
                           f"{proc.stderr}")
    results: dict[str, dict[str, object]] = {}
    for line in proc.stdout.splitlines():
        if line.startswith("@@CASE "):
            rec = json.loads(line[len("@@CASE "):])
            results[rec["case"]] = rec
    return results


SITE_TOML = """\
# A minimal site for the satellite tests (values from hil/sites/house-10kwp.toml).
[site]
id = "demo"
grid_import_limit_w = 17000
grid_export_limit_w = 10000
main_fuse_a = 25

[pv]
peak_w = 10000
inverter_max_w = 10000

[tank]
volume_l = 500
target_c = 55
min_c = 40
max_c = 70

[[miners]]
name = "s9"
kind = "antminer-s9-relay"
actuation = "relay"
min_power_w = 1400
max_power_w = 1400
efficiency = [{{ power_w = 1400, j_per_th = 98 }}]

[mqtt]
host = "127.0.0.1"
port = {port}
username = "controller"
password_file = "controller.pw"

[satellite]
{satellite}
"""


def write_site(directory: Path, port: int, password: str, satellite: str) -> Path:
    """A site file with [mqtt] and [satellite]; the password file beside it (mode 600)."""
    directory.mkdir(parents=True, exist_ok=True)
    pw = directory / "controller.pw"
    pw.write_text(password + "\n")
    pw.chmod(0o600)
    site = directory / "site.toml"
    site.write_text(SITE_TOML.format(port=port, satellite=satellite))
    return site
