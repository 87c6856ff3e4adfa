"""``python -m brokers.gateway``: run the gateway, or make a key.

    python -m brokers.gateway keygen --key-id backoffice-1 --out gateway-key.json
    python -m brokers.gateway --client universal_client --client-config client.json \\
        --key-file gateway-key.json --host 0.0.0.0 --port 8430 \\
        --certfile gateway.crt --keyfile gateway.key --journal gateway-journal.sqlite3

``--client`` is an easytrader broker name (``universal_client``, ``ths``, ``ht_client``,
``gj_client``, ``miniqmt``, ...) or ``package.module:factory`` for any object with easytrader's
client API. ``--client-config`` is a JSON file of the keyword arguments of the client's log-in
call; its ``"login"`` entry picks the call: ``"prepare"`` (log in with user and password, the
default for GUI clients), ``"connect"`` (attach to a client already logged in; the default for
miniqmt, whose ``connect`` takes ``miniqmt_path`` and ``stock_account``) or ``"none"``.
See docs/brokers/gateway.md.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from brokers.gateway import signing
from brokers.gateway.journal import Journal
from brokers.gateway.server import ClientHost, GatewayApp, GatewayServer, is_loopback, logger, tls_context


def build_client(name: str, config: dict[str, Any]) -> tuple[Any, Callable[[Any], None] | None]:
    """The client object, easytrader's (imported here, on the Windows host) or a factory's,
    logged in; and its log-in call, which the gateway repeats after the client failed."""
    config = dict(config)
    mode = config.pop("login", "connect" if name == "miniqmt" else "prepare")
    if mode not in ("prepare", "connect", "none"):
        raise SystemExit(f"client config: login is prepare, connect or none, not {mode!r}")
    if ":" in name:
        module_name, _, attribute = name.partition(":")
        client = getattr(importlib.import_module(module_name), attribute)()
    else:
        import easytrader  # the Windows host's package; absent from the gateway's own needs otherwise

        client = easytrader.use(name)
    if mode == "none":
        return client, None

    def login(target: Any) -> None:
        getattr(target, mode)(**config)

    login(client)
    return client, login


def _keygen(args: argparse.Namespace) -> int:
    text = signing.key_to_json([signing.new_key(args.key_id)])
    if args.out == "-":
        sys.stdout.write(text)
        return 0
    out = Path(args.out)
    if out.exists():
        print(f"{out} exists; not overwritten", file=sys.stderr)
        return 1
    out.write_text(text, encoding="utf-8")
    try:
        out.chmod(0o600)
    except OSError:  # Windows: restrict the file with icacls (docs/brokers/gateway.md)
        pass
    print(f"wrote key {args.key_id!r} to {out}")
    return 0


def make_server(args: argparse.Namespace, client: Any, login: Callable[[Any], None] | None = None) -> GatewayServer:
    keys = signing.load_keys(args.key_file)
    tls = tls_context(args.certfile, args.keyfile) if args.certfile else None
    if tls is None and not is_loopback(args.host) and not args.allow_plain_http:
        raise SystemExit("refusing to serve plain HTTP beyond this machine: give --certfile/--keyfile "
                         "(or --allow-plain-http inside a tunnel)")
    journal = Journal(args.journal)
    forgotten = journal.prune(before=time.time() - args.keep_days * 86400)
    if forgotten:
        logger.info("journal: forgot %s submissions older than %s days", forgotten, args.keep_days)
    app = GatewayApp(ClientHost(client, name=args.client, login=login), journal, keys, window=args.window)
    return GatewayServer((args.host, args.port), app, tls=tls)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m brokers.gateway", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command")
    keygen = sub.add_parser("keygen", help="write a new key file")
    keygen.add_argument("--key-id", required=True)
    keygen.add_argument("--out", default="-", help="the file to write (default: standard output)")
    p.add_argument("--client", help="easytrader broker name, or module:factory")
    p.add_argument("--client-config", help="JSON file: the log-in call's arguments")
    p.add_argument("--key-file", help="JSON key file (keygen makes one)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8430)
    p.add_argument("--certfile", help="PEM certificate: serve HTTPS")
    p.add_argument("--keyfile", help="PEM private key of --certfile (if not inside it)")
    p.add_argument("--journal", default="gateway-journal.sqlite3")
    p.add_argument("--keep-days", type=int, default=60, help="days the journal keeps submissions and events")
    p.add_argument("--window", type=int, default=signing.DEFAULT_WINDOW, help="seconds a signed request stays valid")
    p.add_argument("--allow-plain-http", action="store_true", help="serve HTTP on a non-loopback address")
    p.add_argument("--log-level", default="INFO")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.command == "keygen":
        return _keygen(args)
    if not args.client or not args.key_file:
        parser().error("--client and --key-file are required to serve")
    config = json.loads(Path(args.client_config).read_text(encoding="utf-8")) if args.client_config else {}
    client, login = build_client(args.client, config)
    server = make_server(args, client, login)
    logger.info("gateway for %s on %s://%s:%s", args.client, "https" if server.tls else "http", args.host, server.port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.app.journal.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
