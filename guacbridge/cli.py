"""The ``guacbridge`` command line: its options, subcommands and examples, and the dispatch
to what each subcommand does (commands.py). Configuration errors end it with status 2 and
one line, never a traceback.
"""
from __future__ import annotations

import argparse
import sys

from . import __version__, commands, config, logs

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
    "screenshot": "guacbridge screenshot 5f0c2d1e-7a3b-4c5d-9e8f-0a1b2c3d4e5f -o shot.png"
                  " --width 640 --key-file portal.key",
    "newkey": "guacbridge newkey            # prints k20260101ab12:<base64>; put it first",
    "rekey": "GUACBRIDGE_SECRET_KEYS=k2:…,k1:… guacbridge rekey",
}


def main(argv: list[str] | None = None) -> int:
    """The ``guacbridge`` console script (setup.py's entry point); returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        settings = config.load(path=args.config)
        logs.setup(args.log_level or settings.log_level,
                   args.log_format or settings.log_format)
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
        return _subcommand(sub, name, help_, EXAMPLES[name])

    s = command("serve", "run the HTTP API, console page and tunnel")
    _server_options(s)
    s.set_defaults(func=commands.serve)

    d = command("demo", "run a local guacd, a demo desktop and the service; print a console URL")
    _server_options(d)
    d.set_defaults(func=commands.run_demo)

    c = command("console", "make a direct console from the command line and print its URL")
    csub = c.add_subparsers(dest="action", required=True)
    create = _subcommand(csub, "create", "create a console", EXAMPLES["console"])
    _target_options(create)
    create.add_argument("--public-url", help="base URL put in the reply")
    create.add_argument("--data-dir", help="the grant store's folder (the server's)")
    create.add_argument("--user", help="the end user's name (shown to guacd)")
    create.add_argument("--ttl", type=int, help="seconds within which the URL must be opened")
    create.add_argument("--json", action="store_true", help="print the whole reply as JSON")
    create.add_argument("--allow", action="append", metavar="NETWORK[:PORTS]",
                        help="policy.allow for this command: a target refused by default"
                             " (loopback, ...) that may be used, e.g. 127.0.0.1:5901")
    create.set_defaults(func=commands.console_create)

    k = command("keys", "make an API key: print its secret once and the TOML block to paste")
    ksub = k.add_subparsers(dest="action", required=True)
    new = _subcommand(ksub, "new", "a fresh random key", EXAMPLES["keys"])
    new.add_argument("name", help="the key's name: letters, digits, - and _ (the owner of"
                                  " the consoles it opens)")
    new.add_argument("--scopes", default="create,read,extend,revoke",
                     help="comma-separated, of: create, read, extend, revoke, admin"
                          " (default: all but admin)")
    new.set_defaults(func=commands.keys_new)
    hashed = ksub.add_parser("hash", help="the TOML block for a secret you have, read from"
                                          " stdin (e.g. one from GUACBRIDGE_API_KEYS)")
    hashed.add_argument("name")
    hashed.add_argument("--scopes", default="create,read,extend,revoke")
    hashed.set_defaults(func=commands.keys_hash)

    i = command("initdb", "create guacbridge's tables in the configured grant store")
    i.add_argument("--guacamole-schema", action="store_true",
                   help="also create a Guacamole-compatible schema in the (empty) database of"
                        " GUACBRIDGE_GUACAMOLE_DB_URL, for development and tests")
    i.set_defaults(func=commands.initdb)

    w = command("worker", "consume console jobs from RabbitMQ (GUACBRIDGE_AMQP_URL), no HTTP")
    w.add_argument("--data-dir", help="where the SQLite grant store lives (default ./var)")
    w.add_argument("--public-url", help="base URL put in replies")
    w.set_defaults(func=commands.worker)

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
    sb.set_defaults(func=commands.submit_job)

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
    se.set_defaults(func=commands.list_sessions)

    sh = command("screenshot", "save a console's screen now as a PNG (through the API: it joins"
                               " the live connection read-only, or connects without the token)")
    sh.add_argument("console", metavar="CONSOLE_ID", help="the console's id")
    sh.add_argument("-o", "--output", required=True,
                    help="the PNG file to write ('-' = stdout)")
    sh.add_argument("--width", type=int, help="scale down to this many pixels wide")
    sh.add_argument("--url", help="the service's base URL (default: the configured public URL)")
    sh.add_argument("--key-file", required=True,
                    help="file holding an API key with the read scope ('-' = stdin)")
    sh.set_defaults(func=commands.screenshot)

    nk = command("newkey", "print a new key for secret_keys or secret_key_file (the key"
                           " that seals connection secrets in the grant store)")
    nk.add_argument("--id", help="the key's id (default: k<date><4 hex>)")
    nk.set_defaults(func=commands.newkey)

    rk = command("rekey", "seal every stored console's secrets with the first configured key"
                          " (after adding a new key first, before removing the old one)")
    rk.add_argument("--data-dir", help="where the SQLite grant store lives (default ./var)")
    rk.set_defaults(func=commands.rekey)

    pr = command("probe", "handshake with a target through guacd and report how it went")
    _target_options(pr)
    pr.add_argument("--guacd", help="guacd host:port (default: the first configured)")
    pr.add_argument("--timeout", type=float, default=15.0)
    pr.set_defaults(func=commands.probe_target)
    return p


def _subcommand(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
                help_: str, example: str) -> argparse.ArgumentParser:
    """A subcommand whose --help says what it does and ends with an example."""
    return sub.add_parser(name, help=help_, description=help_,
                          epilog=f"example:\n  {example}",
                          formatter_class=argparse.RawDescriptionHelpFormatter)


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


if __name__ == "__main__":
    sys.exit(main())
