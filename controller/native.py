"""The control core compiled to C with mypyc, used only while it matches the sources.

`Controller.step` runs every second on the Pi (where Python is fast enough) but half a
million times for a simulated year of minutes (`hearth sim`, `hearth compare`, the
benches), where the interpreter is most of the cost. mypyc compiles the same typed
modules of `controller/control/` to C extension modules: the same code, the same float
arithmetic, several times fewer instructions per step.

Safety against a stale build: the compiled modules live apart from the sources (in
`controller/control/_native/`, never beside the `.py` files, where Python would prefer
them), stamped with a digest of every source they were compiled from and of what they
import from the project. `controller/control/__init__.py` puts that folder ahead of the
sources on the package's `__path__` only when the stamp matches the files on disk now;
an edited source, another Python, or `HEARTH_NATIVE=0` falls back to the interpreted
modules. `python -m controller.native status` says which runs and why.

Build: `make native` (`python -m controller.native build`); it needs mypy (the `dev`
extra) and a C compiler, and is optional: everything works without it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent  # controller/
CONTROL_DIR = PACKAGE_DIR / "control"
NATIVE_DIR = CONTROL_DIR / "_native"
STAMP = "SOURCES.sha256"
# The modules compiled: every module of controller/control except its __init__ (which
# chooses between the compiled and the interpreted modules).
COMPILED = ("allocator", "battery", "controller", "evcc", "loops", "overrides", "schedule",
            "supervisor", "threshold", "types")
# What the compiled modules import from the project (their types are compiled in), so a
# change there invalidates the build as well.
DEPENDS = ("config/models.py", "economics/breakeven.py", "economics/hashprice.py",
           "economics/__init__.py", "errors.py")
ENV_SWITCH = "HEARTH_NATIVE"  # "0": always the interpreted modules
ENV_DIR = "HEARTH_NATIVE_DIR"  # another build folder (tests build into a temporary one)


def sources() -> list[Path]:
    """The files a build depends on, in a fixed order."""
    return [CONTROL_DIR / f"{m}.py" for m in COMPILED] + [PACKAGE_DIR / d for d in DEPENDS]


def digest() -> str:
    """A digest of the sources as they are now and of the interpreter's ABI."""
    h = hashlib.sha256(sys.implementation.cache_tag.encode())
    for p in sources():
        h.update(p.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0")
        h.update(p.read_bytes() if p.exists() else b"<missing>")
        h.update(b"\0")
    return h.hexdigest()


def native_dir() -> Path:
    where = os.environ.get(ENV_DIR)
    return Path(where) if where else NATIVE_DIR


def state() -> tuple[Path | None, str]:
    """(folder of a usable build or None, why in words)."""
    if os.environ.get(ENV_SWITCH, "1") == "0":
        return None, f"interpreted ({ENV_SWITCH}=0)"
    folder = native_dir()
    stamp = folder / STAMP
    try:
        built = stamp.read_text(encoding="ascii").strip()
    except OSError:
        return None, "interpreted (no compiled build: `make native`)"
    if built != digest():
        return None, "interpreted (the compiled build is stale: the sources changed " \
                     "since; `make native`)"
    return folder, f"compiled ({folder})"


def build(out: Path | None = None, jobs: int | None = None, quiet: bool = True) -> Path:
    """Compile the control core with mypyc into `out` (default `controller/control/
    _native/`), replacing what was there only once the new build is complete."""
    from mypyc.build import mypycify  # dev tools: imported only to build
    from setuptools import Distribution  # type: ignore[import-untyped]

    out = out or native_dir()
    stamp = digest()
    root = PACKAGE_DIR.parent
    with tempfile.TemporaryDirectory(prefix="hearth-native-") as tmp:
        tmpdir = Path(tmp)
        cwd = os.getcwd()
        os.chdir(root)
        # Only the compiled modules and what they import are type-checked (the project's
        # own settings would check every package); pydantic's plugin types the config.
        ini = tmpdir / "mypy.ini"
        ini.write_text("[mypy]\nplugins = pydantic.mypy\nfollow_imports = silent\n"
                       f"ignore_missing_imports = True\ncache_dir = {tmpdir / 'cache'}\n",
                       encoding="ascii")
        try:
            rel = [str((CONTROL_DIR / f"{m}.py").relative_to(root)) for m in COMPILED]
            exts = mypycify(["--config-file", str(ini), *rel], opt_level="3",
                            target_dir=str(tmpdir / "c"), group_name="controller.control.core",
                            verbose=not quiet)
            dist = Distribution({"name": "hearth-native", "ext_modules": exts})
            cmd = dist.get_command_obj("build_ext")
            cmd.build_lib = str(tmpdir / "lib")
            cmd.build_temp = str(tmpdir / "tmp")
            cmd.parallel = jobs or os.cpu_count() or 1
            dist.run_command("build_ext")
        finally:
            os.chdir(cwd)
        built = tmpdir / "lib" / "controller" / "control"
        (built / STAMP).write_text(stamp + "\n", encoding="ascii")
        staged = out.with_name(out.name + ".new")
        shutil.rmtree(staged, ignore_errors=True)
        shutil.copytree(built, staged)
        shutil.rmtree(out, ignore_errors=True)
        staged.rename(out)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m controller.native",
                                 description="compile the control core with mypyc")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="compile (skipped when the build is up to date)")
    b.add_argument("--out", type=Path, help="build folder (default: controller/control/"
                                            "_native)")
    b.add_argument("--force", action="store_true", help="compile even when up to date")
    b.add_argument("--jobs", type=int, help="parallel C compilers (default: CPUs)")
    sub.add_parser("status", help="say whether the compiled or the interpreted core runs")
    args = ap.parse_args(argv)
    if args.cmd == "status":
        import controller.control as control

        print(control.NATIVE_STATE)
        return 0
    if args.out is not None:
        os.environ[ENV_DIR] = str(args.out)
    if not args.force and state()[0] is not None:
        print(f"control core: already compiled for these sources ({native_dir()})")
        return 0
    out = build(args.out, args.jobs, quiet=True)
    print(f"control core compiled into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
