"""Dependencies point one way: the rig (`hil/`) may import the product, never the reverse.
The plant model lives beside the simulator (`controller/sim/plant`); the rig's commands
reach `hearth` as entry points. Checked on the source (every import statement), and on a
running `hearth run`-style parser build (no `hil` module loaded)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return out


def test_the_product_never_imports_the_rig() -> None:
    bad = [f"{p.relative_to(ROOT)}:{line}: {mod}"
           for pkg in ("controller", "hmi") for p in sorted((ROOT / pkg).rglob("*.py"))
           for line, mod in _imports(p) if mod == "hil" or mod.startswith("hil.")]
    assert not bad, "product modules importing hil/:\n" + "\n".join(bad)


def test_building_the_run_command_loads_no_rig_module() -> None:
    code = ("import sys; from controller.cli import build_parser; build_parser('run'); "
            "print(sorted(m for m in sys.modules if m == 'hil' or m.startswith('hil.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.strip()
    assert out == "[]"


def test_the_rig_commands_are_registered_as_entry_points() -> None:
    from controller.cli import build_parser

    for words in (["demo", "--help"], ["hil", "--help"], ["emulate", "--help"]):
        try:
            build_parser(words[0]).parse_args(words)
        except SystemExit as e:  # --help exits 0 after printing
            assert e.code == 0, words
