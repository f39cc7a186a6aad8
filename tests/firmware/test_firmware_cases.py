"""The firmware cases on CPython, with fakes of machine, onewire, ds18x20, network, umqtt.

The same cases run under MicroPython in test_firmware_micropython.py.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import fwkit
import pytest

fwkit.use_fakes()
# Plain asserts in the shared cases get pytest's detailed messages on CPython.
pytest.register_assert_rewrite("fwharness", *{i.split(".")[0] for i in fwkit.case_ids()})


@pytest.mark.parametrize("case_id", fwkit.case_ids())
def test_firmware_case(case_id: str, tmp_path: Path) -> None:
    import fwharness

    module_name, func_name = case_id.split(".")
    module = importlib.import_module(module_name)
    fwharness.ROOT = str(tmp_path)
    getattr(module, func_name)()


def test_firmware_cases_exist() -> None:
    ids = fwkit.case_ids()
    assert len(ids) >= 30
    for topic in ("sensors", "safety", "heat", "link"):
        assert any(i.startswith(f"fwcase_{topic}.") for i in ids), topic
