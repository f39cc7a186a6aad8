"""`hearth hmi ...`: the demo site with its wall page, and the installer's way back in.

    hearth hmi demo [--port 8080] [--data-dir DIR] [--tick-real-s 1]
    hearth hmi reset-password --config SITE.toml   (or --auth-store PATH)
    hearth hmi cert --config SITE.toml [--name pi.local ...] [--ip 192.168.1.20 ...]

`register(subparsers)` adds the group to the main `hearth` parser; handlers return the exit
code and let `InputError` through (exit 2).
"""

from __future__ import annotations

import argparse
from typing import Any

from controller.errors import InputError, Problem


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("hmi", help="the wall-tablet HMI: demo site, password reset")
    sub = p.add_subparsers(dest="hmi_command", required=True)

    from hmi.demo import add_arguments, run_from_args

    demo = sub.add_parser("demo", help="serve the HMI for the demo site (real controller "
                                       "against the plant model, a real-data day sped up)")
    add_arguments(demo)
    demo.set_defaults(func=run_from_args)

    reset = sub.add_parser("reset-password",
                           help="forget the installer password and every login; the service "
                                "prints a new setup code at its next start")
    reset.add_argument("--config", help="site TOML (its [hmi] / [service] sections say where "
                                        "the auth store is)")
    reset.add_argument("--auth-store", help="path of the auth store instead")
    reset.set_defaults(func=_reset)

    cert = sub.add_parser("cert", help="make a self-signed HTTPS certificate for the HMI on "
                                       "the LAN (the Pi's .local name and addresses)")
    cert.add_argument("--config", help="site TOML: the files go into its service.data_dir")
    cert.add_argument("--out", help="folder for hmi-cert.pem and hmi-key.pem instead")
    cert.add_argument("--name", action="append", help="a name the tablet uses (repeatable; "
                                                      "default: <hostname>.local, hostname)")
    cert.add_argument("--ip", action="append", help="an address the tablet uses (repeatable; "
                                                    "default: this machine's LAN address)")
    cert.add_argument("--days", type=int, default=825, help="validity (Apple: 825 at most)")
    cert.set_defaults(func=_cert)


def _reset(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hmi.auth import AuthStore

    if (args.config is None) == (args.auth_store is None):
        raise InputError("hearth hmi reset-password", [Problem(
            "--config/--auth-store", "give exactly one of them")])
    if args.config is not None:
        from controller.config import load_site
        from hmi.app import hmi_settings

        cfg = load_site(args.config)
        path = Path(hmi_settings(cfg).auth_store(cfg.service.data_dir))
    else:
        path = Path(args.auth_store)
    if not path.exists():
        raise InputError(str(path), [Problem("", "no auth store here: nothing to reset (the "
                                                 "HMI prints a setup code at its first start)")])
    store = AuthStore(path)
    store.reset_installer()
    print(f"{path}: installer password and all logins removed. Restart the Hearth service; "
          "it prints a new one-time setup code to its log.")
    return 0


def _cert(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hmi.tls import make_cert

    if (args.config is None) == (args.out is None):
        raise InputError("hearth hmi cert", [Problem("--config/--out",
                                                     "give exactly one of them")])
    if not 1 <= args.days <= 3650:
        raise InputError("hearth hmi cert", [Problem("--days", "must be 1 to 3650")])
    if args.config is not None:
        from controller.config import load_site

        out = Path(load_site(args.config).service.data_dir)
    else:
        out = Path(args.out)
    c = make_cert(out.resolve(), args.name, args.ip, args.days)
    print(f"HMI certificate for {', '.join(c.names + c.addresses)} ({args.days} days, "
          f"made with {c.tool}):\n  {c.cert}\n  {c.key} (private key, mode 0600)\n"
          f"SHA-256 fingerprint: {c.sha256}\n\n"
          f"Add to the site file and restart the service:\n\n[hmi]\n"
          f'tls_cert_file = "{c.cert}"\ntls_key_file = "{c.key}"\n\n'
          f"Then the wall page is https://{c.names[0]}:8080/ - each tablet must trust "
          f"{c.cert.name} once (docs/hmi.md, 'HTTPS on the LAN').")
    return 0
