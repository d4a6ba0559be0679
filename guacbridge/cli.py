"""The ``guacbridge`` command: serve, demo, console, probe, sessions, rekey, keys.

Each subcommand is a thin shell over the same pieces the service uses; options become
Settings overrides, so ``GUACBRIDGE_*`` and the TOML file work here too.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import re
import secrets
import sys
import tempfile
from typing import Any

from . import __version__, config, logs

EXAMPLES = {
    "serve": "GUACBRIDGE_API_KEYS=portal:s3cret guacbridge serve --listen 127.0.0.1:8080",
    "demo": "guacbridge demo            # local guacd + demo desktop, prints a console URL",
    "console": "guacbridge console create --host 10.0.0.5 --port 5901 --password-file pw.txt",
    "probe": "guacbridge probe --host 10.0.0.5 --port 5901 --password-file pw.txt",
    "initdb": "GUACBRIDGE_MYSQL_URL=mysql://gb:pw@db:3306/guacbridge guacbridge initdb",
    "worker": "GUACBRIDGE_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2F guacbridge worker",
    "keys": "guacbridge keys new portal --scopes create,read,extend,revoke >> guacbridge.toml",
    "submit": "guacbridge submit --amqp-url amqp://127.0.0.1 --host 10.0.0.5 --port 5901"
              " --password-file pw.txt",
    "sessions": "guacbridge sessions --url https://console.example.net --key-file ops.key"
                " [--kill ID]",
    "newkey": "guacbridge newkey            # prints k20260101ab12:<base64>; put it first",
    "rekey": "GUACBRIDGE_SECRET_KEYS=k2:…,k1:… guacbridge rekey",
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = config.load(path=args.config)
    except config.ConfigError as e:
        print(f"guacbridge: configuration error: {e}", file=sys.stderr)
        return 2
    logs.setup(args.log_level or settings.log_level, args.log_format or settings.log_format)
    try:
        return args.func(args)
    except config.ConfigError as e:
        print(f"guacbridge: configuration error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="guacbridge", description="One-time browser consoles "
                                "through guacd (Apache Guacamole's proxy daemon).")
    p.add_argument("--version", action="version", version=f"guacbridge {__version__}")
    p.add_argument("--config", help="TOML config file (default: $GUACBRIDGE_CONFIG)")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"],
                   help="default: GUACBRIDGE_LOG_LEVEL or info")
    p.add_argument("--log-format", choices=["text", "json"],
                   help="json: one JSON object per line (default: GUACBRIDGE_LOG_FORMAT or text)")
    sub = p.add_subparsers(dest="command", required=True)

    def command(name: str, help_: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, description=help_,
                              epilog=f"example:\n  {EXAMPLES[name.split()[0]]}",
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    s = command("serve", "run the HTTP API, console page and tunnel")
    _server_options(s)
    s.set_defaults(func=_serve)

    d = command("demo", "run a local guacd, a demo desktop and the service; print a console URL")
    _server_options(d)
    d.set_defaults(func=_demo)

    c = command("console", "make a direct console from the command line and print its URL")
    csub = c.add_subparsers(dest="action", required=True)
    create = csub.add_parser("create", help="create a console", epilog=f"example:\n  "
                             f"{EXAMPLES['console']}",
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    _target_options(create)
    create.add_argument("--public-url", help="base URL put in the reply")
    create.add_argument("--data-dir", help="the grant store's folder (the server's)")
    create.add_argument("--user", help="the end user's name (shown to guacd)")
    create.add_argument("--ttl", type=int, help="seconds within which the URL must be opened")
    create.add_argument("--json", action="store_true", help="print the whole reply as JSON")
    create.set_defaults(func=_console_create)

    k = command("keys", "make an API key: print its secret once and the TOML block to paste")
    ksub = k.add_subparsers(dest="action", required=True)
    new = ksub.add_parser("new", help="a fresh random key", epilog=f"example:\n  "
                          f"{EXAMPLES['keys']}",
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    new.add_argument("name", help="the key's name: letters, digits, - and _ (the owner of"
                                  " the consoles it opens)")
    new.add_argument("--scopes", default="create,read,extend,revoke",
                     help="comma-separated, of: create, read, extend, revoke, admin"
                          " (default: all but admin)")
    new.set_defaults(func=_keys_new)
    hashed = ksub.add_parser("hash", help="the TOML block for a secret you have, read from"
                                          " stdin (e.g. one from GUACBRIDGE_API_KEYS)")
    hashed.add_argument("name")
    hashed.add_argument("--scopes", default="create,read,extend,revoke")
    hashed.set_defaults(func=_keys_hash)

    i = command("initdb", "create guacbridge's tables in the configured grant store")
    i.add_argument("--guacamole-schema", action="store_true",
                   help="also create a Guacamole-compatible schema in the (empty) database of"
                        " GUACBRIDGE_GUACAMOLE_DB_URL, for development and tests")
    i.set_defaults(func=_initdb)

    w = command("worker", "consume console jobs from RabbitMQ (GUACBRIDGE_AMQP_URL), no HTTP")
    w.add_argument("--data-dir", help="where the SQLite grant store lives (default ./var)")
    w.add_argument("--public-url", help="base URL put in replies")
    w.set_defaults(func=_worker)

    sb = command("submit", "publish a console job, wait for its reply, print the URL")
    sb.add_argument("--amqp-url", help="RabbitMQ URL (default: GUACBRIDGE_AMQP_URL)")
    sb.add_argument("--action", default="open", choices=["open", "extend", "close"])
    sb.add_argument("--console", help="the console id, for extend and close")
    sb.add_argument("--seconds", type=int, help="for extend")
    sb.add_argument("--agent", default="static", help="agent type = routing key")
    sb.add_argument("--protocol", default="vnc", choices=["vnc", "rdp", "ssh", "telnet"])
    sb.add_argument("--host", help="the console's address (static agent)")
    sb.add_argument("--port", type=int)
    sb.add_argument("--username")
    sb.add_argument("--password-file", help="file holding the password ('-' = stdin)")
    sb.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    sb.add_argument("--user", help="the end user's name")
    sb.add_argument("--sink", choices=["direct", "guacamole"])
    sb.add_argument("--job-id", help="default: a new random id")
    sb.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the reply")
    sb.add_argument("--json", action="store_true", help="print the whole reply")
    sb.set_defaults(func=_submit)

    se = command("sessions", "list the consoles in use now, on every instance (through the"
                             " API); --kill ends one, --events shows one's audit trail")
    se.add_argument("--url", help="the service's base URL (default: the configured public URL)")
    se.add_argument("--key-file", required=True,
                    help="file holding an API key with the read scope (revoke for --kill;"
                         " '-' = stdin)")
    what = se.add_mutually_exclusive_group()
    what.add_argument("--kill", metavar="ID", help="close this console; its tunnel ends at once")
    what.add_argument("--events", metavar="ID", help="print this console's events")
    se.add_argument("--json", action="store_true", help="print the API's JSON reply")
    se.set_defaults(func=_sessions)

    nk = command("newkey", "print a new key for secret_keys or secret_key_file (the key"
                           " that seals connection secrets in the grant store)")
    nk.add_argument("--id", help="the key's id (default: k<date><4 hex>)")
    nk.set_defaults(func=_newkey)

    rk = command("rekey", "seal every stored console's secrets with the first configured key"
                          " (after adding a new key first, before removing the old one)")
    rk.add_argument("--data-dir", help="where the SQLite grant store lives (default ./var)")
    rk.set_defaults(func=_rekey)

    pr = command("probe", "handshake with a target through guacd and report how it went")
    _target_options(pr)
    pr.add_argument("--guacd", help="guacd host:port (default: the first configured)")
    pr.add_argument("--timeout", type=float, default=15.0)
    pr.set_defaults(func=_probe)
    return p


def _server_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--listen", help="host:port (default 127.0.0.1:8080, 8443 with TLS)")
    p.add_argument("--public-url", help="base URL put in replies")
    p.add_argument("--data-dir", help="where the SQLite grant store lives (default ./var)")
    p.add_argument("--tls-cert", help="PEM certificate (chain): serve HTTPS and WSS")
    p.add_argument("--tls-key", help="its PEM private key (default: in the --tls-cert file)")


def _target_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--protocol", default="vnc", choices=["vnc", "rdp", "ssh", "telnet"])
    p.add_argument("--host", required=True, help="the console's address")
    p.add_argument("--port", type=int, help="the console's port (default per protocol)")
    p.add_argument("--username")
    p.add_argument("--password-file", help="file holding the password ('-' = stdin); "
                   "never pass a password on the command line")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="another guacd parameter, e.g. --param color-depth=16")


def _settings(args: argparse.Namespace, **extra: Any) -> config.Settings:
    options = {name: getattr(args, name, None)
               for name in ("listen", "public_url", "data_dir", "tls_cert", "tls_key")}
    options.update(extra)
    return config.load(path=args.config, **options)


def _target(args: argparse.Namespace) -> dict[str, Any]:
    target: dict[str, Any] = {"agent": "static", "protocol": args.protocol,
                              "hostname": args.host}
    if args.port:
        target["port"] = args.port
    if args.username:
        target["username"] = args.username
    if args.password_file:
        text = sys.stdin.read() if args.password_file == "-" else \
            pathlib.Path(args.password_file).read_text()
        target["password"] = text.rstrip("\r\n")
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"guacbridge: --param takes NAME=VALUE, not {item!r}")
        target[name] = value
    return target


def _serve(args: argparse.Namespace) -> int:
    from . import service
    asyncio.run(service.run(_settings(args)))
    return 0


def _worker(args: argparse.Namespace) -> int:
    from . import service
    settings = _settings(args)
    if not settings.amqp_url:
        print("guacbridge worker: set GUACBRIDGE_AMQP_URL", file=sys.stderr)
        return 2
    asyncio.run(service.run(settings, http=False))
    return 0


def _submit(args: argparse.Namespace) -> int:
    from .submit import SubmitFailed, submit
    settings = config.load(path=args.config)
    url = args.amqp_url or settings.amqp_url
    if not url:
        print("guacbridge submit: give --amqp-url or set GUACBRIDGE_AMQP_URL", file=sys.stderr)
        return 2
    job: dict[str, Any] = {"version": 1, "action": args.action,
                           "job_id": args.job_id or f"cli-{secrets.token_hex(8)}"}
    if args.action == "open":
        if not args.host and args.agent == "static":
            print("guacbridge submit: --host is needed to open a static console",
                  file=sys.stderr)
            return 2
        target = _target(args) if args.host else {}
        target["agent"] = args.agent
        job["target"] = target
        for name in ("user", "sink"):
            if getattr(args, name):
                job[name] = getattr(args, name)
    else:
        if not args.console:
            print(f"guacbridge submit: --console is needed to {args.action}", file=sys.stderr)
            return 2
        job["console_id"] = args.console
        if args.seconds:
            job["seconds"] = args.seconds
    try:
        reply = submit(url, args.agent, job, args.timeout)
    except SubmitFailed as e:
        print(f"guacbridge submit: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(reply, indent=2))
    elif reply.get("result"):
        print(reply.get("url") or reply.get("state"))
    else:
        print(f"guacbridge submit: {reply.get('details')}", file=sys.stderr)
    return 0 if reply.get("result") else 1


def _console_create(args: argparse.Namespace) -> int:
    from . import service
    from .consoles import ConsoleError
    settings = _settings(args)
    request: dict[str, Any] = {"target": _target(args), "user": args.user, "ttl": args.ttl}
    try:
        reply = asyncio.run(service.build(settings).open(
            {k: v for k, v in request.items() if v is not None}, owner="cli"))
    except ConsoleError as e:
        print(f"guacbridge: {e.details}", file=sys.stderr)
        return 1
    print(json.dumps(reply, indent=2) if args.json else reply["url"])
    return 0


def _key(args: argparse.Namespace, secret: str) -> Any:
    from . import apikeys
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", args.name):
        raise SystemExit("guacbridge keys: a key's name is 1 to 64 letters, digits, - or _")
    try:
        scopes = apikeys.parse_scopes(args.scopes, args.name)
    except ValueError as e:
        raise SystemExit(f"guacbridge keys: {e}") from None
    return apikeys.ApiKey(args.name, apikeys.digest(secret), scopes)


def _keys_new(args: argparse.Namespace) -> int:
    from . import apikeys
    secret = apikeys.new_secret()
    key = _key(args, secret)
    # The secret goes to stderr, once; stdout is the block, fit for appending to the file.
    print(f"API key {key.name}: give its holder this secret (it is shown only now):\n\n"
          f"    {secret}\n\nused as: Authorization: Bearer <secret>\n", file=sys.stderr)
    print(apikeys.toml_block(key), end="")
    return 0


def _keys_hash(args: argparse.Namespace) -> int:
    from . import apikeys
    secret = sys.stdin.readline().rstrip("\r\n")
    if not secret:
        raise SystemExit("guacbridge keys hash: give the secret on stdin")
    print(apikeys.toml_block(_key(args, secret)), end="")
    return 0


def _initdb(args: argparse.Namespace) -> int:
    from .store import open_grant_store, open_guacamole_db
    from .store.guacamole_db import SinkRefused
    from .store.mysql import MysqlGrantStore
    from .store.sql import StoreUnavailable
    settings = _settings(args)
    try:
        store = open_grant_store(settings, need_keys=False)   # SQLite makes its tables
        if isinstance(store, MysqlGrantStore):
            store.create_tables()
        print(f"guacbridge tables ready in {getattr(store, 'url', None) or store.path}")
        if args.guacamole_schema:
            guacamole = open_guacamole_db(settings)
            if guacamole is None:
                print("guacbridge: --guacamole-schema needs GUACBRIDGE_GUACAMOLE_DB_URL",
                      file=sys.stderr)
                return 2
            guacamole.create_schema()
            print(f"Guacamole schema created in {guacamole.url}")
    except (StoreUnavailable, SinkRefused) as e:
        print(f"guacbridge: {e}", file=sys.stderr)
        return 1
    return 0


def _sessions(args: argparse.Namespace) -> int:
    import requests
    settings = config.load(path=args.config)
    base = (args.url or settings.base_url).rstrip("/")
    # The settings hold keys only as digests, so the secret must come from the operator.
    key = (sys.stdin.read() if args.key_file == "-" else
           pathlib.Path(args.key_file).read_text()).strip()
    if not key:
        print(f"guacbridge sessions: {args.key_file} holds no API key", file=sys.stderr)
        return 2
    if args.kill:
        method, path = "DELETE", f"/api/v1/consoles/{args.kill}"
    elif args.events:
        method, path = "GET", f"/api/v1/consoles/{args.events}/events"
    else:
        method, path = "GET", "/api/v1/sessions"
    try:
        r = requests.request(method, base + path, timeout=30,
                             headers={"Authorization": f"Bearer {key}"})
        body = r.json()
    except (requests.RequestException, ValueError) as e:
        print(f"guacbridge sessions: {base} did not answer: {type(e).__name__}",
              file=sys.stderr)
        return 1
    if not body.get("result"):
        print(f"guacbridge sessions: {r.status_code}: {body.get('details')}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(body, indent=2))
    elif args.kill:
        print(f"{body['id']} {body['state']}: {body['close_reason']}")
    elif args.events:
        for e in body["events"]:
            facts = " ".join(f"{k}={v}" for k, v in e["data"].items() if v is not None)
            print(f"{e['at']}  {e['kind']:<15} {e['instance']:<24} {facts}")
    else:
        print(_sessions_table(body["sessions"]))
    return 0


def _sessions_table(sessions: list[dict[str, Any]]) -> str:
    rows = [("ID", "STATE", "USER", "TARGET", "SINCE", "DEADLINE", "CLIENT", "INSTANCE",
             "OUT/IN BYTES")]
    for s in sessions:
        t = s["tunnel"] or {}
        target = s["target"]
        rows.append((s["id"], s["state"] + (" (reconnecting)" if s["reconnecting"] else ""),
                     s["user"] or "-", f"{target['protocol']}://{target.get('hostname', '?')}",
                     s["started_at"] or "-", s["deadline"] or "-",
                     t.get("client_address") or "-", t.get("instance") or "-",
                     f"{t['bytes_to_browser']}/{t['bytes_from_browser']}" if t else "-"))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines + [f"{len(sessions)} console(s) in use"])


def _newkey(args: argparse.Namespace) -> int:
    from .keyring import new_key, parse_key
    try:
        line = new_key(args.id)
        parse_key(line)
    except ValueError as e:
        print(f"guacbridge newkey: {e}", file=sys.stderr)
        return 2
    print(line)
    return 0


def _rekey(args: argparse.Namespace) -> int:
    from .store import open_grant_store
    from .store.sql import StoreUnavailable
    settings = _settings(args)
    store = open_grant_store(settings)
    try:
        resealed, current, failed = store.rekey()
    except StoreUnavailable as e:
        print(f"guacbridge rekey: {e}", file=sys.stderr)
        return 1
    key = store.keys.current.id                        # type: ignore[attr-defined]
    print(f"sealed {resealed} console(s) with key {key}; {current} already were")
    if failed:
        print(f"guacbridge rekey: {len(failed)} console(s) open with no configured key, left"
              f" as they are: {', '.join(failed[:20])}", file=sys.stderr)
        return 1
    return 0


def _probe(args: argparse.Namespace) -> int:
    from . import parameters
    from .probe import probe
    settings = _settings(args)
    target = _target(args)
    protocol = target.pop("protocol")
    target.pop("agent")
    try:
        params = parameters.validate(protocol, target)
    except parameters.InvalidParameters as e:
        print(f"guacbridge: {e}", file=sys.stderr)
        return 2
    address = config.parse_address(args.guacd) if args.guacd else settings.guacd[0]
    result = probe(address, protocol, params, args.timeout)
    print(json.dumps({"ok": result.ok, "message": result.message, "status": result.status,
                      "ready_seconds": _round(result.ready_seconds),
                      "first_frame_seconds": _round(result.first_frame_seconds)}))
    return 0 if result.ok else 1


def _demo(args: argparse.Namespace) -> int:
    from . import demo, service
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="guacbridge-demo-"))
    parts: list[Any] = []
    try:
        guacd = demo.start_guacd(workdir / "guacd")
        parts.append(guacd)
        desktop = demo.start_desktop(workdir / "desktop", password=secrets.token_hex(4))
        parts.append(desktop)
        settings = _settings(args, guacd=[(guacd.host, guacd.port)],
                             data_dir=args.data_dir or str(workdir / "data"))
        consoles = service.build(settings)

        def announce(consoles: Any) -> None:
            asyncio.ensure_future(_announce(consoles, desktop))
        asyncio.run(service.run(settings, consoles, on_ready=announce))
    except (demo.PartMissing, demo.PartFailed) as e:
        print(f"guacbridge demo: {e}", file=sys.stderr)
        return 1
    finally:
        for part in reversed(parts):
            part.stop()
    return 0


async def _announce(consoles: Any, desktop: Any) -> None:
    password_file = desktop.workdir / "password.txt"
    password_file.touch(0o600)
    password_file.write_text(desktop.password)
    target = {"agent": "static", "protocol": "vnc", "hostname": desktop.host,
              "port": desktop.port, "password": desktop.password}
    reply = await consoles.open({"target": target, "user": "demo", "ttl": 3600}, owner="demo")
    settings = consoles.settings
    print(f"""
guacbridge demo is running (Ctrl-C stops it).

  Open this console URL in a browser; it works once, within an hour:

    {reply['url']}

  Another console for the same desktop:

    guacbridge console create --data-dir {settings.data_dir} --public-url {settings.base_url} \\
        --host {desktop.host} --port {desktop.port} --password-file {password_file}
""", flush=True)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


if __name__ == "__main__":
    sys.exit(main())
