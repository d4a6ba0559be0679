"""Provisioning: how fast guacbridge hands out consoles, through its API and its broker.

- ``POST /api/v1/consoles`` one after another (p50/p99 latency) and from 8 threads at once
  (rate), with the SQLite grant store and with the MySQL one (a real MariaDB on loopback);
- broker jobs: ``guacbridge worker`` against a real RabbitMQ node, jobs published in one
  burst, jobs per second from the first publish to the last reply, with the default two
  consumers and with eight (BENCH_PROFILE_WORKER=FILE: py-spy's samples of the worker).

The real parts are started the way the test suite starts them (tests/*_fixtures.py), and the
broker phase holds /tmp/guacbridge-fixed.lock like the suite's broker tests.
"""
from __future__ import annotations

import concurrent.futures
import fcntl
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time
import uuid

import requests

BENCH = pathlib.Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import relays  # noqa: E402

LOCK_WAIT = 300.0     # seconds to wait for the machine-wide lock before giving the broker up
TARGET = {"agent": "static", "protocol": "vnc", "hostname": "10.0.0.5", "port": 5901,
          "password": "bench-secret"}


def api(workdir: pathlib.Path, sequential: int, threads: int, per_thread: int,
        **env: str) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    service = relays.Guacbridge(workdir, relays.free_port(), **env)
    try:
        def post(session: requests.Session) -> float:
            t0 = time.perf_counter()
            r = session.post(service.base_url + "/api/v1/consoles", json={"target": TARGET},
                             timeout=30)
            if r.status_code != 201:
                raise RuntimeError(f"POST /api/v1/consoles: {r.status_code} {r.text[:300]}")
            return time.perf_counter() - t0

        for _ in range(20):                       # warm up: connections, caches, JIT-less paths
            post(service.http)
        latencies = [post(service.http) for _ in range(sequential)]

        def worker(_: int) -> int:
            with requests.Session() as s:
                s.headers.update(service.http.headers)
                for _ in range(per_thread):
                    post(s)
            return per_thread

        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            done = sum(pool.map(worker, range(threads)))
        elapsed = time.perf_counter() - t0
    finally:
        service.stop()
    latencies.sort()
    return {"p50_ms": round(statistics.median(latencies) * 1000, 2),
            "p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))] * 1000, 2),
            "sequential": len(latencies),
            "rate_per_s": round(done / elapsed), "threads": threads}


def mysql(workdir: pathlib.Path, sequential: int, threads: int, per_thread: int) -> dict:
    from db_fixtures import MariaDB
    workdir.mkdir(parents=True, exist_ok=True)
    db = MariaDB(workdir)
    db.start()
    try:
        url = db.create_database("bench")
        env = {**os.environ, "GUACBRIDGE_MYSQL_URL": url}
        subprocess.run([sys.executable, "-m", "guacbridge.cli", "initdb"], env=env, cwd=ROOT,
                       check=True, capture_output=True, timeout=60)
        from guacbridge.keyring import new_key
        return api(workdir, sequential, threads, per_thread, GUACBRIDGE_MYSQL_URL=url,
                   GUACBRIDGE_SECRET_KEYS=new_key("bench"))
    finally:
        db.stop()


def broker(workdir: pathlib.Path, jobs: int, consumers: tuple[int, ...] = (2, 8),
           prefetch: int | None = None) -> dict:
    """Jobs per second with the default consumers per agent type (2), and with more: each
    consumer has up to *prefetch* jobs in flight (None: the worker's default,
    ``broker.prefetch``), each acknowledged once its reply is confirmed."""
    from broker_fixtures import RabbitMQ
    workdir.mkdir(parents=True, exist_ok=True)
    rates = {}
    with open("/tmp/guacbridge-fixed.lock", "w") as lock:
        waited = time.monotonic() + LOCK_WAIT
        while True:                 # the test suite's broker tests hold it while they run
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > waited:
                    raise RuntimeError(f"/tmp/guacbridge-fixed.lock was held for more than"
                                       f" {LOCK_WAIT:.0f} s (a test run using RabbitMQ?)")
                time.sleep(1)
        node = RabbitMQ(workdir)
        node.start()
        try:
            for n in consumers:
                rates[n] = _broker(workdir / f"c{n}", node.new_vhost(), jobs, n, prefetch)
        finally:
            node.stop()
            subprocess.run(["epmd", "-kill"], capture_output=True)
    return {**rates[consumers[0]], "consumers": consumers[0],
            "by_consumers": {str(n): rates[n] for n in consumers}}


def _broker(workdir: pathlib.Path, url: str, jobs: int, consumers: int,
            prefetch: int | None = None) -> dict:
    import pika
    workdir.mkdir(parents=True, exist_ok=True)
    worker = None
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GUACBRIDGE_")}
        config = workdir / "guacbridge.toml"
        config.write_text(f"[broker]\nconcurrency = {consumers}\n"
                          + (f"prefetch = {prefetch}\n" if prefetch else ""))
        env.update({"GUACBRIDGE_AMQP_URL": url, "PYTHONPATH": str(ROOT),
                    "GUACBRIDGE_DATA_DIR": str(workdir / "data"),
                    "GUACBRIDGE_CONFIG": str(config)})
        with (workdir / "worker.log").open("wb") as log:
            worker = subprocess.Popen([sys.executable, "-m", "guacbridge.cli", "worker"],
                                      env=env, cwd=ROOT, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        connection = pika.BlockingConnection(pika.URLParameters(url))
        login = pika.URLParameters(url).credentials.username
        channel = connection.channel()
        replies = channel.queue_declare("", exclusive=True).method.queue
        deadline = time.monotonic() + 30
        while True:                                   # the worker declares its topology
            try:
                channel.queue_declare("guacbridge.jobs.static", passive=True)
                break
            except pika.exceptions.ChannelClosedByBroker:
                if time.monotonic() > deadline:
                    raise RuntimeError((workdir / "worker.log").read_text()[-2000:])
                channel = connection.channel()
                replies = channel.queue_declare("", exclusive=True).method.queue
                time.sleep(0.2)
        got: list[bool] = []
        channel.basic_consume(replies, lambda ch, m, p, body: got.append(
            json.loads(body).get("result") is True), auto_ack=True)
        spy = None
        if os.environ.get("BENCH_PROFILE_WORKER"):
            spy = subprocess.Popen(
                [str(pathlib.Path(sys.executable).parent / "py-spy"), "record", "--pid",
                 str(worker.pid), "--rate", "200", "--format", "raw", "--output",
                 os.environ["BENCH_PROFILE_WORKER"], "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1)
        cpu0 = _cpu_seconds(worker.pid)
        t0 = time.perf_counter()
        for _ in range(jobs):
            job_id = f"bench-{uuid.uuid4().hex[:12]}"
            channel.basic_publish("guacbridge.jobs", "static", json.dumps(
                {"version": 1, "job_id": job_id, "action": "open", "target": TARGET}),
                pika.BasicProperties(delivery_mode=2, reply_to=replies,
                                     correlation_id=job_id, user_id=login,   # the owner
                                     content_type="application/json"))
        deadline = time.monotonic() + 120
        while len(got) < jobs and time.monotonic() < deadline:
            connection.process_data_events(0.1)
        elapsed = time.perf_counter() - t0
        cpu = _cpu_seconds(worker.pid) - cpu0
        if spy is not None:
            spy.send_signal(2)
            spy.wait(30)
        connection.close()
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(30)
    return {"jobs": jobs, "replies": len(got), "ok": sum(got),
            "jobs_per_s": round(len(got) / elapsed, 1),
            "worker_cpu_percent": round(cpu / elapsed * 100, 1)}


def _cpu_seconds(pid: int) -> float:
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(workdir: pathlib.Path, quick: bool) -> dict:
    sequential, threads, per_thread, jobs = (100, 4, 25, 200) if quick else (500, 8, 100, 1000)
    out: dict = {}
    for name, measure in (
            ("sqlite", lambda: api(workdir / "sqlite", sequential, threads, per_thread)),
            ("mysql", lambda: mysql(workdir / "mysql", sequential, threads, per_thread)),
            ("broker", lambda: broker(workdir / "broker", jobs))):
        try:
            out[name] = measure()
        except Exception as e:         # a missing part is reported, the rest still runs
            out[name] = {"error": f"{type(e).__name__}: {e}"[:1500]}
        print(f"provisioning {name}: {out[name]}", file=sys.stderr, flush=True)
    return out


if __name__ == "__main__":
    import tempfile
    print(json.dumps(run(pathlib.Path(tempfile.mkdtemp(prefix="guacbridge-prov-")),
                         "--quick" in sys.argv), indent=2))
