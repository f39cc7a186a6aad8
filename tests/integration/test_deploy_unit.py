"""Item 7 of issue 17: the systemd unit and install.sh give the service every path it
writes (the site file's directory for `site.toml.new`/`.prev`, its data directory), and
the unit passes `systemd-analyze verify`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "deploy" / "systemd" / "hearth.service"
INSTALL = REPO / "deploy" / "install.sh"


def _values(key: str) -> list[str]:
    out: list[str] = []
    for line in UNIT.read_text().splitlines():
        if line.startswith(f"{key}="):
            out += line.split("=", 1)[1].split()
    return out


def test_the_unit_lets_the_service_write_its_config_and_data() -> None:
    writable = _values("ReadWritePaths")
    # provisioning writes <site>.new and <site>.prev beside /etc/hearth/site.toml
    assert "/etc/hearth" in writable and "/var/lib/hearth" in writable
    assert "ProtectSystem=strict" in UNIT.read_text()
    # a site file that does not even parse exits 2: no restart loop under systemd
    assert "2" in _values("RestartPreventExitStatus")
    # and install.sh makes /etc/hearth writable by the service's group
    text = INSTALL.read_text()
    assert re.search(r'install -d -o root -g hearth -m 07[07]0 "\$CONF"', text), text
    assert re.search(r"-m 0660 .*site\.toml", text)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    hearth = Path(sys.executable).parent / "hearth"
    unit = tmp_path / "hearth.service"
    unit.write_text(UNIT.read_text().replace("/opt/hearth/venv/bin/hearth", str(hearth)))
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and "hearth.service" not in r.stdout + r.stderr, \
        r.stdout + r.stderr


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root to lay out the install and setpriv to drop it")
def test_an_unprivileged_service_saves_its_config_in_the_installed_layout() -> None:
    text = INSTALL.read_text()
    dir_mode = re.search(r'install -d -o root -g hearth -m (0\d+) "\$CONF"', text)
    file_mode = re.search(r'install -o root -g hearth -m (0\d+) "\$SITE"', text)
    assert dir_mode and file_mode
    nobody, nogroup = 65534, 65534  # stand-ins for the hearth user and group
    base = Path(tempfile.mkdtemp(prefix="hearth-root-"))  # a throw-away root prefix
    try:
        base.chmod(0o755)
        conf = base / "etc" / "hearth"
        conf.mkdir(parents=True)
        (base / "etc").chmod(0o755)
        os.chown(conf, 0, nogroup)
        conf.chmod(int(dir_mode[1], 8))
        site = conf / "site.toml"
        shutil.copy(REPO / "hil" / "sites" / "house-10kwp.toml", site)
        os.chown(site, 0, nogroup)
        site.chmod(int(file_mode[1], 8))
        code = ("import sys; from controller.bridge.provisioning import ConfigStore; "
                "s = ConfigStore(sys.argv[1]); "
                "s.commit(s.propose(patch={'site': {'name': 'saved by the service'}}))")
        r = subprocess.run(["setpriv", f"--reuid={nobody}", f"--regid={nogroup}",
                            "--clear-groups", sys.executable, "-c", code, str(site)],
                           capture_output=True, text=True, timeout=120, cwd=base,
                           env={"PATH": os.environ.get("PATH", ""),
                                "PYTHONDONTWRITEBYTECODE": "1"})
        assert r.returncode == 0, r.stderr[-2000:]
        assert 'name = "saved by the service"' in site.read_text()
        assert (conf / "site.toml.prev").exists()
    finally:
        shutil.rmtree(base)
