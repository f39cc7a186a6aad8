"""The same firmware cases under real MicroPython: the WebAssembly port in Node
(npm package @micropython/micropython-webassembly-pyscript, installed by
`npm ci --prefix firmware`), with the fakes written in MicroPython on its filesystem.

This catches what CPython forgives: modules MicroPython lacks (typing, __future__,
logging on the ESP32 build), `isinstance(True, int)` being False there, dict order, ...
"""

from __future__ import annotations

import fwkit
import pytest

# one MicroPython run in Node serves the whole module: its tests stay on one worker
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("micropython")]


@pytest.fixture(scope="module")
def mp_results() -> dict[str, dict[str, object]]:
    return fwkit.run_micropython_cases()


def test_micropython_ran_every_case(mp_results: dict[str, dict[str, object]]) -> None:
    assert sorted(mp_results) == fwkit.case_ids()


@pytest.mark.parametrize("case_id", fwkit.case_ids())
def test_firmware_case_under_micropython(
    case_id: str, mp_results: dict[str, dict[str, object]]
) -> None:
    rec = mp_results.get(case_id)
    assert rec is not None, f"{case_id} did not run under MicroPython"
    assert rec["ok"], f"{case_id} failed under MicroPython:\n{rec.get('error')}"


def test_the_interpreter_in_node_is_micropython() -> None:
    """What the package loads is MicroPython itself, not a Python that forgives more."""
    import subprocess

    script = (
        'import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";'
        'const out = []; const mp = await loadMicroPython({stdout: (l) => out.push(l)});'
        'mp.runPython("import sys; print(sys.implementation.name)");'
        "console.log(out.join(''));"
    )
    proc = subprocess.run(["node", "--input-type=module", "-e", script], cwd=fwkit.FIRMWARE,
                          capture_output=True, text=True, timeout=60, check=True)
    assert proc.stdout.strip() == "micropython"
