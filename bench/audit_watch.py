"""What the audit loop costs an instance holding many live tunnels; prints one JSON object.

With ``--consoles`` live consoles (and as many closed long ago) in the grant store:

- closed_since_ms: the query the close watcher runs twice a second (consoles closed in the
  last 10 s, ``--recent`` of them), median of 50;
- report_ms: one report of every live tunnel's byte counts (the multi-row upsert that runs
  every 5 s when all of them moved), median of 5;
- sessions_ms: ``GET /api/v1/sessions``'s query and unsealing, median of 5;
- seal_us / open_us: one AES-GCM seal and open of a typical parameter set.

Run: .venv/bin/python bench/audit_watch.py [--consoles 5000] [--mysql-url mysql://…]
(SQLite in a temporary folder without --mysql-url.)
"""
from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from guacbridge import audit, grants  # noqa: E402
from guacbridge.grants import Grant, Target  # noqa: E402
from guacbridge.keyring import KeyRing, new_key, parse_key  # noqa: E402

PARAMS = {"hostname": "10.0.0.5", "port": "5901", "password": "a-vnc-password",
          "color-depth": "24"}


def timed(fn, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(samples), 3)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--consoles", type=int, default=5000)
    p.add_argument("--recent", type=int, default=20)
    p.add_argument("--mysql-url")
    args = p.parse_args()
    keys = KeyRing([parse_key(new_key("bench"))], "bench")
    if args.mysql_url:
        from guacbridge.store.mysql import MysqlGrantStore
        store = MysqlGrantStore(args.mysql_url, keys)
        store.create_tables()
    else:
        from guacbridge.store.sqlite import SqliteGrantStore
        store = SqliteGrantStore(pathlib.Path(tempfile.mkdtemp()) / "guacbridge.sqlite3", keys)
    now = time.time()
    live = []
    for i in range(2 * args.consoles + args.recent):
        grant = Grant(id=grants.new_id(), target=Target("vnc", PARAMS), owner="bench",
                      user=f"u{i}", created_at=now, use_by=now + 600, duration=7200,
                      max_duration=7200)
        token = grants.new_token()
        store.issue(grant, grants.hash_token(token), None)
        tunnel_id = grants.new_id()
        store.consume(grants.hash_token(token), None, now, tunnel_id=tunnel_id)
        if i < args.consoles:
            live.append((tunnel_id, grant.id))
        else:   # closed long ago, and the last few just now
            recent = i >= 2 * args.consoles
            store.close(grant.id, "bench", time.time() if recent else now - 86400)
    rows = [(t, c, "bench", "192.0.2.1", "bench/1.0", now, n, n, now)
            for n, (t, c) in enumerate(live)]
    store.report_tunnels(rows)
    sealed = keys.seal("x", PARAMS)
    bumped = [(*r[:6], r[6] + 1, r[7] + 1, r[8]) for r in rows]
    print(json.dumps({
        "store": "mysql" if args.mysql_url else "sqlite",
        "live_consoles": args.consoles,
        "closed_since_ms": timed(lambda: store.closed_since(time.time() - audit.LOOK_BACK), 50),
        "closed_recently": len(store.closed_since(time.time() - audit.LOOK_BACK)),
        "report_ms": timed(lambda: store.report_tunnels(bumped), 5),
        "sessions_ms": timed(store.sessions, 5),
        "seal_us": round(timed(lambda: keys.seal("x", PARAMS), 1000) * 1000, 1),
        "open_us": round(timed(lambda: keys.open("x", sealed), 1000) * 1000, 1),
    }))


if __name__ == "__main__":
    main()
