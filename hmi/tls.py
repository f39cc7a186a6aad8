"""`hearth hmi cert`: a self-signed certificate for the HMI on the LAN.

The installer password and the resident PIN must not cross the LAN in clear, and a Pi on a
home network has no public name a public CA would certify. So the Pi makes its own
certificate for the names a tablet uses to reach it (`<hostname>.local` by mDNS, the
hostname, its LAN addresses), and each tablet is told once to trust it (docs/hmi.md).
It is its own CA (basicConstraints CA:TRUE): Android and iPadOS install only CA
certificates as "trusted". The key never leaves the Pi (mode 0600).

Uses the `cryptography` package when it is installed, else the `openssl` command.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from controller.errors import InputError, Problem

DAYS = 825  # the longest validity Apple accepts for a TLS server certificate


@dataclass(frozen=True)
class CertFiles:
    cert: Path
    key: Path
    names: tuple[str, ...]
    addresses: tuple[str, ...]
    sha256: str  # fingerprint, as a tablet's warning page shows it (AA:BB:...)
    tool: str  # "cryptography" or "openssl"


def lan_names() -> tuple[list[str], list[str]]:
    """The names and addresses a tablet may use for this machine: `<host>.local`, the host
    name, localhost; the address of the interface with the default route and loopback."""
    host = socket.gethostname().split(".")[0] or "hearth"
    names = [f"{host}.local", host, "localhost"]
    addrs = ["127.0.0.1"]
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # TEST-NET: no packet is sent, only a route is chosen
        ip = s.getsockname()[0]
        if ip not in addrs:
            addrs.insert(0, ip)
    return names, addrs


def _fingerprint(pem: bytes) -> str:
    import base64

    body = b"".join(line for line in pem.splitlines() if line and not line.startswith(b"-----"))
    digest = hashlib.sha256(base64.b64decode(body)).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def _with_cryptography(names: list[str], addrs: list[str], days: int) -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Hearth HMI")])
    now = datetime.now(UTC)
    san = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(a))
                                              for a in addrs]
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _with_openssl(names: list[str], addrs: list[str], days: int) -> tuple[bytes, bytes]:
    san = ",".join([f"DNS:{n}" for n in names] + [f"IP:{a}" for a in addrs])
    with tempfile.TemporaryDirectory() as d:
        key, crt = Path(d) / "key.pem", Path(d) / "cert.pem"
        r = subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-days", str(days), "-subj", f"/CN={names[0]}/O=Hearth HMI",
             "-addext", f"subjectAltName={san}",
             "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
             "-addext", "keyUsage=critical,digitalSignature,keyCertSign",
             "-addext", "extendedKeyUsage=serverAuth",
             "-keyout", str(key), "-out", str(crt)],
            capture_output=True, text=True, check=False)
        if r.returncode != 0:
            raise InputError("hearth hmi cert", [Problem("openssl", r.stderr.strip())])
        return crt.read_bytes(), key.read_bytes()


def make_cert(out_dir: Path, names: list[str] | None = None, addrs: list[str] | None = None,
              days: int = DAYS, tool: str | None = None) -> CertFiles:
    """Write `hmi-cert.pem` and `hmi-key.pem` (0600) into `out_dir`."""
    auto_names, auto_addrs = lan_names()
    names = names or auto_names
    addrs = addrs or auto_addrs
    problems = []
    for a in addrs:
        try:
            ipaddress.ip_address(a)
        except ValueError:
            problems.append(Problem("--ip", f"{a!r} is not an IP address"))
    if problems:
        raise InputError("hearth hmi cert", problems)
    if tool is None:
        try:
            import cryptography  # noqa: F401
            tool = "cryptography"
        except ImportError:
            tool = "openssl"
    make = _with_cryptography if tool == "cryptography" else _with_openssl
    cert_pem, key_pem = make(names, addrs, days)
    out_dir.mkdir(parents=True, exist_ok=True)
    cert, key = out_dir / "hmi-cert.pem", out_dir / "hmi-key.pem"
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_pem)
    os.chmod(key, 0o600)
    cert.write_bytes(cert_pem)
    return CertFiles(cert, key, tuple(names), tuple(addrs), _fingerprint(cert_pem), tool)
