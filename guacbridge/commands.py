"""What each ``guacbridge`` subcommand does (cli.py parses the command line and calls one).

Each is a thin shell over the pieces the service uses: its options become Settings
overrides, so ``GUACBRIDGE_*`` and the TOML file work here too. The heavier modules are
imported by the command that needs them.
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

from . import config
from .errors import ConsoleError


def settings_from(args: argparse.Namespace, **extra: Any) -> config.Settings:
    options = {name: getattr(args, name, None)
               for name in ("listen", "public_url", "data_dir", "tls_cert", "tls_key")}
    options.update(extra)
    return config.load(path=args.config, **options)


def target_from(args: argparse.Namespace) -> dict[str, Any]:
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


def serve(args: argparse.Namespace) -> int:
    from . import loops, service
    settings = settings_from(args)
    loops.run(service.run(settings), settings.event_loop)
    return 0


def worker(args: argparse.Namespace) -> int:
    from . import service
    settings = settings_from(args)
    if not settings.amqp_url:
        print("guacbridge worker: set GUACBRIDGE_AMQP_URL", file=sys.stderr)
        return 2
    from . import loops
    loops.run(service.run(settings, http=False), settings.event_loop)
    return 0


def submit_job(args: argparse.Namespace) -> int:
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
        target = target_from(args) if args.host else {}
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


def console_create(args: argparse.Namespace) -> int:
    from . import service
    settings = settings_from(args, policy_allow=args.allow)
    request: dict[str, Any] = {"target": target_from(args), "user": args.user, "ttl": args.ttl}
    try:
        reply = asyncio.run(service.build(settings).consoles.open(
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


def keys_new(args: argparse.Namespace) -> int:
    from . import apikeys
    secret = apikeys.new_secret()
    key = _key(args, secret)
    # The secret goes to stderr, once; stdout is the block, fit for appending to the file.
    print(f"API key {key.name}: give its holder this secret (it is shown only now):\n\n"
          f"    {secret}\n\nused as: Authorization: Bearer <secret>\n", file=sys.stderr)
    print(apikeys.toml_block(key), end="")
    return 0


def keys_hash(args: argparse.Namespace) -> int:
    from . import apikeys
    secret = sys.stdin.readline().rstrip("\r\n")
    if not secret:
        raise SystemExit("guacbridge keys hash: give the secret on stdin")
    print(apikeys.toml_block(_key(args, secret)), end="")
    return 0


def initdb(args: argparse.Namespace) -> int:
    from .store import open_grant_store, open_guacamole_db
    from .store.guacamole_db import SinkRefused
    from .store.mysql import MysqlGrantStore
    from .store.sql import StoreUnavailable
    settings = settings_from(args)
    try:
        store = open_grant_store(settings, need_keys=False)   # SQLite makes its tables
        if isinstance(store, MysqlGrantStore):
            store.create_tables()
            where = str(store.url)
        else:
            where = str(settings.sqlite_path)
        print(f"guacbridge tables ready in {where}")
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


def _api_key(args: argparse.Namespace) -> str:
    """The operator's API key from --key-file: the settings hold keys only as digests, so
    the secret must come from the operator."""
    return (sys.stdin.read() if args.key_file == "-" else
            pathlib.Path(args.key_file).read_text()).strip()


def _service(args: argparse.Namespace, command: str) -> tuple[str, str] | None:
    """The service's base URL and the operator's API key for a command that calls the API
    as any API caller does; None (said on stderr) when the key file holds no key."""
    settings = config.load(path=args.config)
    key = _api_key(args)
    if not key:
        print(f"guacbridge {command}: {args.key_file} holds no API key", file=sys.stderr)
        return None
    return (args.url or settings.base_url).rstrip("/"), key


def list_sessions(args: argparse.Namespace) -> int:
    import requests
    service = _service(args, "sessions")
    if service is None:
        return 2
    base, key = service
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
        for event in body["events"]:
            facts = " ".join(f"{k}={v}" for k, v in event["data"].items() if v is not None)
            print(f"{event['at']}  {event['kind']:<15} {event['instance']:<24} {facts}")
    else:
        print(_sessions_table(body["sessions"]))
    return 0


def screenshot(args: argparse.Namespace) -> int:
    """``GET /api/v1/consoles/{id}/screenshot`` saved to a file: the same path as any API
    caller's, so the command line sees what the portal would."""
    import requests
    service = _service(args, "screenshot")
    if service is None:
        return 2
    base, key = service
    query = {} if args.width is None else {"width": args.width}
    try:
        # the service waits up to screenshots.timeout for a frame; a little longer here
        r = requests.get(f"{base}/api/v1/consoles/{args.console}/screenshot", params=query,
                         headers={"Authorization": f"Bearer {key}"}, timeout=120)
    except requests.RequestException as e:
        print(f"guacbridge screenshot: {base} did not answer: {type(e).__name__}",
              file=sys.stderr)
        return 1
    if r.status_code != 200 or r.headers.get("Content-Type") != "image/png":
        try:
            details = r.json().get("details")
        except ValueError:
            details = r.text[:200]
        print(f"guacbridge screenshot: {r.status_code}: {details}", file=sys.stderr)
        return 1
    if args.output == "-":
        sys.stdout.buffer.write(r.content)
    else:
        pathlib.Path(args.output).write_bytes(r.content)
        print(f"{args.output}: {len(r.content)} bytes")
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
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    return "\n".join([*lines, f"{len(sessions)} console(s) in use"])


def newkey(args: argparse.Namespace) -> int:
    from .keyring import new_key, parse_key
    try:
        line = new_key(args.id)
        parse_key(line)
    except ValueError as e:
        print(f"guacbridge newkey: {e}", file=sys.stderr)
        return 2
    print(line)
    return 0


def rekey(args: argparse.Namespace) -> int:
    from .store import open_grant_store
    from .store.sql import StoreUnavailable
    settings = settings_from(args)
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


def probe_target(args: argparse.Namespace) -> int:
    from . import parameters
    from .probe import probe
    settings = settings_from(args)
    target = target_from(args)
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


def run_demo(args: argparse.Namespace) -> int:
    from . import demo, loops, service
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="guacbridge-demo-"))
    parts: list[Any] = []
    try:
        guacd = demo.start_guacd(workdir / "guacd")
        parts.append(guacd)
        desktop = demo.start_desktop(workdir / "desktop", password=secrets.token_hex(4))
        parts.append(desktop)
        # The demo desktop is on loopback, which the target policy refuses unless allowed:
        # the demo allows exactly its own desktop, nothing else on this machine.
        settings = settings_from(args, guacd=[(guacd.host, guacd.port)],
                                 data_dir=args.data_dir or str(workdir / "data"),
                                 policy_allow=[f"{desktop.host}:{desktop.port}"])
        built = service.build(settings)
        announcing: list[asyncio.Future[None]] = []     # held, so the task is not collected

        def announce(consoles: Any) -> None:
            announcing.append(asyncio.ensure_future(_announce(consoles, desktop)))
        loops.run(service.run(settings, built, on_ready=announce), settings.event_loop)
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
        --host {desktop.host} --port {desktop.port} --allow {desktop.host}:{desktop.port} \\
        --password-file {password_file}
""", flush=True)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
