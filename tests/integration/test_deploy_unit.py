"""Item 7 of issue 17: the Pi install. deploy/install.sh installs into a throw-away root
(`--root`), the installed unit passes `systemd-analyze verify`, and the installed
`hearth run` — as an unprivileged uid, with the installed owners and modes, in a mount
namespace where only the unit's ReadWritePaths are writable (ProtectSystem=strict) —
talks to a real Mosquitto and saves a config pushed with `hearth installer push`."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import brokerkit
import pytest
import simkit

from controller.bridge import tomldoc
from hil.rig.broker import free_port

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "deploy" / "systemd" / "hearth.service"
INSTALL = REPO / "deploy" / "install.sh"
USERS = {"hearth": "pw-hearth", "installer": "pw-installer"}
UID = GID = 47_213  # a throw-away uid and gid, in no passwd or group file


def _values(text: str, key: str) -> list[str]:
    out: list[str] = []
    for line in text.splitlines():
        if line.startswith(f"{key}="):
            out += line.split("=", 1)[1].split()
    return out


def test_the_unit_names_the_paths_the_service_writes() -> None:
    text = UNIT.read_text()
    # provisioning writes site.toml.new/.prev/.last-good beside /etc/hearth/site.toml
    assert sorted(_values(text, "ReadWritePaths")) == ["/etc/hearth", "/var/lib/hearth"]
    assert "ProtectSystem=strict" in text
    # nothing to be reached through exits 2: no restart loop under systemd
    assert "2" in _values(text, "RestartPreventExitStatus")


def _verify(unit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, timeout=60)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="no systemd-analyze (make system-deps installs Debian's systemd)")
def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    hearth = Path(sys.executable).parent / "hearth"
    unit = tmp_path / "hearth.service"
    unit.write_text(UNIT.read_text().replace("/opt/hearth/venv/bin/hearth", str(hearth)))
    r = _verify(unit)
    assert r.returncode == 0 and "hearth.service" not in r.stdout + r.stderr, \
        r.stdout + r.stderr
    # and it can fail: a unit with a typo is reported
    unit.write_text(unit.read_text().replace("ProtectSystem=strict", "ProtectSystm=strict"))
    r = _verify(unit)
    assert "ProtectSystm" in r.stdout + r.stderr


def _mode(p: Path) -> tuple[int, int, int]:
    st = p.stat()
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


_NEEDS = [t for t in ("setpriv", "unshare", "rsync", "systemd-analyze") if not shutil.which(t)]


@pytest.mark.slow(100)  # pip installs the whole app into a venv
@pytest.mark.skipif(os.geteuid() != 0 or bool(_NEEDS),
                    reason=f"needs root (chown, a mount namespace) and {_NEEDS or 'tools'}")
def test_the_installed_service_runs_unprivileged_and_saves_its_config(
        tmp_path: Path) -> None:
    # A throw-away root every uid can traverse (pytest's tmp_path is 0700 root).
    root = Path(tempfile.mkdtemp(prefix="hearth-root-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        root.chmod(0o755)
        with brokerkit.Broker(tmp_path, users=USERS,
                              acl=(REPO / "deploy" / "mosquitto" / "acl").read_text()
                              ) as broker:
            doc = simkit.site_dict()
            hmi_port = free_port()
            doc["mqtt"] = {"host": "127.0.0.1", "port": broker.port, "username": "hearth",
                           "password_file": "hearth.pw", "reconnect_max_s": 2}
            doc["hmi"] = {"listen_host": "127.0.0.1", "listen_port": hmi_port}
            doc["service"] = {"data_dir": str(root / "var/lib/hearth"),
                              "start_delay_max_s": 0}
            doc["ledger"] = {"data_dir": str(root / "var/lib/hearth")}
            doc["control"] = {**doc.get("control", {}), "tick_s": 0.5}
            site = tmp_path / "site.toml"
            site.write_text("# the installer's comment survives a save\n"
                            + tomldoc.dumps(doc))

            r = subprocess.run(
                ["bash", str(INSTALL), "--root", str(root), "--no-mosquitto", str(site)],
                capture_output=True, text=True, timeout=900,
                env={**os.environ, "HEARTH_USER": str(UID), "HEARTH_GROUP": str(GID),
                     "PYTHON": shutil.which("python3") or "python3"})
            assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
            # it ends by telling where the HMI is and how to find the setup code
            tail = r.stdout.strip().splitlines()[-2:]
            assert f":{hmi_port}/" in tail[0] and "/installer" in tail[0], r.stdout
            assert "setup code" in tail[1] and "journalctl -u hearth" in tail[1], r.stdout

            conf, data = root / "etc/hearth", root / "var/lib/hearth"
            assert _mode(conf) == (0, GID, 0o770)
            assert _mode(conf / "site.toml") == (0, GID, 0o660)
            assert _mode(data) == (UID, GID, 0o750)
            assert _mode(root / "opt/hearth") == (0, 0, 0o755)
            unit = root / "etc/systemd/system/hearth.service"
            # The installed unit, its ExecStart pointed into the throw-away root (verify
            # checks that the binary exists; --root would lack the system's own units).
            check = tmp_path / "hearth.service"
            check.write_text(unit.read_text().replace("/opt/hearth/", f"{root}/opt/hearth/"))
            v = _verify(check)
            assert v.returncode == 0 and "hearth.service" not in v.stdout + v.stderr, \
                v.stdout + v.stderr

            pw = conf / "hearth.pw"  # as install.sh says: the service's own, 0600
            pw.write_text(USERS["hearth"] + "\n")
            os.chown(pw, UID, GID)
            pw.chmod(0o600)

            # ProtectSystem=strict + ReadWritePaths, as the unit says, in a mount namespace;
            # then the service's uid and gid, no other group, no new privileges.
            writable = [str(root) + p for p in _values(unit.read_text(), "ReadWritePaths")]
            binds = "".join(f'mount --bind "{w}" "{w}"\n' for w in writable)
            script = ("set -e\nmount --make-rprivate /\n" + binds
                      + "mount -o remount,bind,ro /\n"
                      + f'exec setpriv --reuid={UID} --regid={GID} --clear-groups '
                        '--no-new-privs -- "$@"\n')
            hearth = root / "opt/hearth/venv/bin/hearth"
            log_path = tmp_path / "run.log"
            proc = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                 str(hearth), "--log-level", "INFO", "run", "--config",
                 str(conf / "site.toml")],
                stdout=log_path.open("wb"), stderr=subprocess.STDOUT, cwd=data,
                env={"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1", "HOME": str(data)})

            (tmp_path / "installer.pw").write_text(USERS["installer"] + "\n")
            patch = tmp_path / "patch.toml"
            patch.write_text('[site]\nname = "saved by the installed service"\n')
            push = [str(hearth), "installer", "push", str(patch), "--patch", "--broker",
                    f"127.0.0.1:{broker.port}", "--site", doc["site"]["id"], "--username",
                    "installer", "--password-file", str(tmp_path / "installer.pw"),
                    "--timeout", "5"]
            deadline = time.monotonic() + 120
            while True:
                p = subprocess.run(push, capture_output=True, text=True, timeout=60)
                if p.returncode != 1 or time.monotonic() > deadline or proc.poll() is not None:
                    break  # 1 = no answer yet (still starting)
                time.sleep(1)
            assert p.returncode == 0, p.stdout + p.stderr + log_path.read_text()[-3000:]

            saved = (conf / "site.toml").read_text()
            assert 'name = "saved by the installed service"' in saved
            assert saved.startswith("# the installer's comment survives a save")
            assert _mode(conf / "site.toml")[1:] == (GID, 0o660)
            assert (conf / "site.toml.prev").exists()
            assert (conf / "site.toml.last-good").exists()  # kept at the normal start
            assert not (conf / "site.toml.new").exists()
            assert proc.poll() is None, log_path.read_text()[-3000:]
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0, log_path.read_text()[-3000:]
            out = log_path.read_text()
            assert "setup code" in out and "Read-only file system" not in out, out[-3000:]
            assert "Permission denied" not in out and "readable by other" not in out, \
                out[-3000:]
            # the state (and the ledger) went to the data directory, owned by the service
            assert (data / "state.json").exists()
            assert all(p.stat().st_uid == UID for p in data.iterdir())
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(30)
        shutil.rmtree(root, ignore_errors=True)
