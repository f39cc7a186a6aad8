"""Item 6 of issue 17: a config saved from MQTT or the HMI keeps the installer's comments,
key order and layout (tomlkit round trip), and changes only what was changed."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import simkit

from controller.bridge.provisioning import ConfigStore


def _store(tmp_path: Path) -> ConfigStore:
    path = tmp_path / "site.toml"
    shutil.copy(simkit.HOUSE, path)  # the example: comments, blank lines, inline tables
    return ConfigStore(path)


def test_a_patch_keeps_comments_order_and_layout(tmp_path: Path) -> None:
    store = _store(tmp_path)
    before = store.path.read_text()
    store.commit(store.propose(patch={"tank": {"target_c": 57}, "site": {"name": "Renamed"}}))
    after = store.path.read_text()
    comments = [ln for ln in before.splitlines() if ln.lstrip().startswith("#")]
    assert comments and all(c in after.splitlines() for c in comments)
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True)
               if a != b]
    assert len(changed) == 2, changed  # the two values, nothing else moved
    assert tomllib.loads(after)["tank"]["target_c"] == 57
    assert tomllib.loads(after)["site"]["name"] == "Renamed"


def test_a_whole_document_keeps_comments_and_removes_what_it_leaves_out(tmp_path: Path) -> None:
    store = _store(tmp_path)
    doc = dict(store.raw)
    doc["miners"] = [dict(m) for m in doc["miners"][:2]]  # the second Bitaxe removed
    doc["miners"][1]["driver"] = {**doc["miners"][1]["driver"], "host": "192.0.2.99"}
    store.commit(store.propose(document=doc))
    after = store.path.read_text()
    assert tomllib.loads(after) == doc
    assert "# " in after and after.index("[site]") < after.index("[pv]")
    assert "bitaxe-2" not in after and "192.0.2.99" in after
