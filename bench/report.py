"""The manual's benchmark results from bench/results.json: RST tables, the targets, the chart.

Run: .venv/bin/python bench/report.py [RESULTS] [--png PATH] [--docs docs/performance.rst]
(prints RST, writes the PNG; with --docs, also puts the tables into that page).
"""
from __future__ import annotations

import argparse
import json
import pathlib

BENCH = pathlib.Path(__file__).resolve().parent
ORDER = ["bare_node", "bare", "guacbridge", "guacbridge_asyncio", "guacamole_lite", "guapy",
         "guacbridge_py"]
CEILING = "bare_node"          # the ratios' ceiling: the bare Node.js ws relay


def _v(stat: dict | None, digits: int = 1) -> str:
    if not stat:
        return "–"
    return f"{stat['median']:.{digits}f} ({stat['min']:.{digits}f}–{stat['max']:.{digits}f})"


def _relays(result: dict) -> list[str]:
    return [n for n in ORDER if n in result.get("relay", {}) or n in result.get("idle", {})]


def _steps(result: dict, name: str) -> dict[str, dict]:
    """The idle phase's measured steps of *name* (those where every console opened)."""
    steps = result.get("idle", {}).get(name, {}).get("steps", {})
    return {n: step for n, step in steps.items() if "cpu_percent" in step}


def _largest(result: dict, name: str) -> tuple[str, dict]:
    steps = _steps(result, name)
    if not steps:
        return "", {}
    n = max(steps, key=int)
    return n, steps[n]


def targets(result: dict) -> list[tuple[str, str, bool | None]]:
    """The relay's performance targets, each as (target, measured, met)."""
    relay = result.get("relay", {})
    out: list[tuple[str, str, bool | None]] = []

    def med(name: str, key: str) -> float | None:
        stat = relay.get(name, {}).get(key)
        return stat["median"] if stat else None

    ours, lite, ceiling = (med(n, "mb_per_s") for n in ("guacbridge", "guacamole_lite", CEILING))
    if ours and lite:
        out.append(("relay ≥ 4× guacamole-lite (MB/s)", f"{ours / lite:.1f}×", ours >= 4 * lite))
    if ours and ceiling:
        out.append(("relay ≥ 55 % of the bare Node.js relay (MB/s)",
                    f"{ours * 100 / ceiling:.0f} %", ours >= 0.55 * ceiling))
    first = med("guacbridge", "first_message")
    if first is not None:
        out.append(("connect → first message ≤ 5 ms", f"{first:.1f} ms", first <= 5))
    ping = med("guacbridge", "ping_p99_paced")
    if ping is not None:
        out.append(("ping p99 ≤ 2 ms at 1 MB/s", f"{ping:.1f} ms", ping <= 2))
    n, step = _largest(result, "guacbridge")
    top = _steps(result, CEILING).get(n)
    if step and top:
        ratio = step["cpu_percent"] / top["cpu_percent"]
        out.append((f"{n} idle consoles: CPU ≤ 1.5× the bare Node.js relay's",
                    f"{ratio:.2f}× ({step['cpu_percent']:.0f} % against "
                    f"{top['cpu_percent']:.0f} % of a core)", ratio <= 1.5))
    if step:
        out.append((f"{n} idle consoles: ≤ 16 KiB RSS per console",
                    f"{step['rss_kib_per_console']:.1f} KiB", step["rss_kib_per_console"] <= 16))
        out.append((f"{n} idle consoles: ping p99 ≤ 10 ms",
                    f"{step['ping_p99_ms']:.1f} ms", step["ping_p99_ms"] <= 10))
    stall = result.get("stalled", {}).get("guacbridge")
    if stall:
        out.append(("no growth beyond the buffer with a stalled browser",
                    f"{stall['rss_growth_mib']:.2f} MiB in {stall['seconds']} s",
                    stall["rss_growth_mib"] <= 1))
    prov = result.get("provisioning", {})
    for store, label in (("sqlite", "SQLite"), ("mysql", "MySQL")):
        if "p99_ms" in prov.get(store, {}):
            p99 = prov[store]["p99_ms"]
            out.append((f"POST /api/v1/consoles p99 ≤ 10 ms ({label})", f"{p99:.1f} ms",
                        p99 <= 10))
    if "jobs_per_s" in prov.get("broker", {}):
        b = prov["broker"]
        out.append((f"≥ 1,000 broker jobs/s with {b.get('consumers', 2)} consumers",
                    f"{b['jobs_per_s']:.0f}/s", b["jobs_per_s"] >= 1000))
    return out


def rst(result: dict) -> str:
    lines = []
    m = result.get("machine", {})
    lines.append(f"Machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, Python "
                 f"{m.get('python', '?')}, Node.js {m.get('node', '?')}; load average "
                 f"{m.get('load_average_at_start', '?')} at the start; run "
                 f"{result.get('started', '?')}. Medians over {result['parameters']['rounds']}"
                 " interleaved rounds, (min–max).")
    lines += ["", ".. list-table::", "   :header-rows: 1", "",
              "   * - relay", "     - MB/s", "     - instructions/s",
              "     - CPU s per 100 MB", "     - connect → first message, ms",
              "     - ping p50 / p99 at 1 MB/s, ms", "     - ping p99 saturated, ms",
              "     - stalled browser, MiB growth"]
    for name in _relays(result):
        r = result.get("relay", {}).get(name, {})
        stall = result.get("stalled", {}).get(name, {})
        ips = r.get("instructions_per_s")
        p50, p99 = r.get("ping_p50_paced"), r.get("ping_p99_paced")
        lines += [f"   * - {r.get('label', name)}", f"     - {_v(r.get('mb_per_s'))}",
                  f"     - {ips['median']:,.0f}" if ips else "     - –",
                  f"     - {_v(r.get('cpu_s_per_100mb'), 2)}",
                  f"     - {_v(r.get('first_message'))}",
                  f"     - {p50['median']:.1f} / {p99['median']:.1f}" if p50 and p99
                  else "     - –",
                  f"     - {_v(r.get('ping_p99_saturated'))}",
                  f"     - {stall['rss_growth_mib']:.1f} in {stall['seconds']} s" if stall
                  else "     - –"]
    lines += idle_table(result)
    prov = result.get("provisioning", {})
    if prov:
        lines += ["", ".. list-table::", "   :header-rows: 1", "",
                  "   * - provisioning", "     - p50, ms", "     - p99, ms", "     - rate"]
        for name, label in (("sqlite", "POST /api/v1/consoles, SQLite"),
                            ("mysql", "POST /api/v1/consoles, MySQL (MariaDB)")):
            p = prov.get(name, {})
            if "p50_ms" in p:
                lines += [f"   * - {label}", f"     - {p['p50_ms']:.1f}", f"     - {p['p99_ms']:.1f}",
                          f"     - {p['rate_per_s']}/s ({p['threads']} clients)"]
        b = prov.get("broker", {})
        if "jobs_per_s" in b:
            more = ""
            for n, rate in b.get("by_consumers", {}).items():
                if int(n) != b.get("consumers") and isinstance(rate, dict):
                    more += f"; {n} consumers: {rate['jobs_per_s']:.0f} jobs/s"
            cpu = f", worker CPU {b['worker_cpu_percent']:.0f} %" if "worker_cpu_percent" in b \
                else ""
            lines += ["   * - broker jobs → replies (RabbitMQ)", "     - –", "     - –",
                      f"     - {b['jobs_per_s']:.0f} jobs/s ({b.get('consumers', 2)} consumers"
                      f"{cpu}{more})"]
    lines += ["", ".. list-table::", "   :header-rows: 1", "",
              "   * - target", "     - measured", "     - met"]
    for target, measured, met in targets(result):
        lines += [f"   * - {target}", f"     - {measured}", f"     - {'yes' if met else 'no'}"]
    return "\n".join(lines)


def _label(result: dict, name: str) -> str:
    return result.get("relay", {}).get(name, {}).get("label") or \
        result.get("idle", {}).get(name, {}).get("label") or name


def idle_table(result: dict) -> list[str]:
    """Idle consoles: per relay and step, CPU (and its ratio to the ceiling's), RSS per
    console, the sample's ping echo p50/p99, every console's p99, the client's own lag."""
    names = [n for n in _relays(result) if _steps(result, n)]
    if not names:
        return []
    lines = ["", ".. list-table::", "   :header-rows: 1", "",
             "   * - idle consoles (a ping every 500 ms each)", "     - consoles",
             "     - CPU, % of a core", "     - × bare Node.js", "     - RSS per console, KiB",
             "     - ping p50 / p99 (sample), ms", "     - ping p99 (all), ms",
             "     - client send lag p99, ms"]
    for name in names:
        for n, step in sorted(_steps(result, name).items(), key=lambda item: int(item[0])):
            top = _steps(result, CEILING).get(n)
            ratio = f"{step['cpu_percent'] / top['cpu_percent']:.2f}" if top else "–"
            lines += [f"   * - {_label(result, name)}", f"     - {n}",
                      f"     - {step['cpu_percent']:.1f}", f"     - {ratio}",
                      f"     - {step['rss_kib_per_console']:.1f}",
                      f"     - {step['ping_p50_ms']:.1f} / {step['ping_p99_ms']:.1f}",
                      f"     - {step['ping_p99_all_ms']:.1f}",
                      f"     - {step['client']['send_lag_p99_ms']:.1f}"]
    failed = {n: s for n in names
              for s in result["idle"][n].get("steps", {}).values() if "failed" in s}
    for name, step in failed.items():
        lines += [f"   * - {_label(result, name)}", f"     - {step['opened']} opened, then"
                  f" failed", "     - –", "     - –", "     - –", "     - –", "     - –", "     - –"]
    return lines


def chart(result: dict, path: pathlib.Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = _relays(result)
    short = {"bare_node": "bare\nNode.js", "bare": "bare\nTornado", "guacbridge": "guacbridge",
             "guacbridge_asyncio": "guacbridge,\nasyncio loop",
             "guacamole_lite": "guacamole-\nlite", "guapy": "guapy",
             "guacbridge_py": "guacbridge,\nPython scan"}
    labels = [short.get(n, n) for n in names]
    colours = {"bare_node": "#666666", "bare": "#aaaaaa", "guacbridge": "#2a7ab0",
               "guacbridge_asyncio": "#b5d3ea", "guacamole_lite": "#d98c1f",
               "guapy": "#6a9f3b", "guacbridge_py": "#7fb3d9"}
    panels = [("MB/s (higher is better)", "mb_per_s"),
              ("relay CPU s per 100 MB", "cpu_s_per_100mb"),
              ("connect → first message, ms", "first_message"),
              ("ping p99 at 1 MB/s, ms", "ping_p99_paced")]
    fig, axes = plt.subplots(2, 4, figsize=(17, 7))
    for ax, (title, key) in zip(axes.flat, panels):
        stats = [result.get("relay", {}).get(n, {}).get(key) for n in names]
        values = [s["median"] if s else 0 for s in stats]
        low = [s["median"] - s["min"] if s else 0 for s in stats]
        high = [s["max"] - s["median"] if s else 0 for s in stats]
        ax.bar(labels, values, yerr=[low, high], capsize=4, color=[colours[n] for n in names])
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="x", labelsize=7)
    for ax, (title, key) in zip(list(axes.flat)[4:7], [
            ("idle consoles: CPU, % of a core", "cpu_percent"),
            ("idle consoles: RSS per console, KiB", "rss_kib_per_console"),
            ("idle consoles: ping p99 (sample), ms", "ping_p99_ms")]):
        for n, label in zip(names, labels):
            steps = _steps(result, n)
            if steps:
                xs = sorted(steps, key=int)
                ax.plot([int(x) for x in xs], [steps[x][key] for x in xs], "o-",
                        label=label.replace("\n", " "), color=colours[n])
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("idle consoles", fontsize=8)
        if key == "ping_p99_ms":
            ax.set_yscale("log")
        ax.legend(fontsize=6)
    ax = axes.flat[7]
    stalled = [n for n in names if n in result.get("stalled", {})]
    growth = [result["stalled"][n]["rss_growth_mib"] for n in stalled]
    ax.bar([short.get(n, n) for n in stalled], [max(g, 0.01) for g in growth],
           color=[colours[n] for n in stalled])
    ax.set_yscale("log")
    seconds = next(iter(result.get("stalled", {}).values()), {}).get("seconds", "?")
    ax.set_title(f"memory growth behind a stalled browser ({seconds} s), MiB", fontsize=10)
    ax.tick_params(axis="x", labelsize=7)
    m = result.get("machine", {})
    fig.suptitle(f"guacbridge relay benchmark — {m.get('cores', '?')} cores, "
                 f"{result.get('started', '')}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


BEGIN, END = ".. begin bench results", ".. end bench results"


def update_page(path: pathlib.Path, text: str) -> None:
    """Replace what stands between the page's two marker comments with *text*, so that the
    prose around the tables (what the numbers say) stays as written."""
    page = path.read_text()
    head, sep, rest = page.partition(BEGIN + "\n")
    _, sep2, tail = rest.partition(END + "\n")
    if not (sep and sep2):
        raise SystemExit(f"{path}: no '{BEGIN}' … '{END}' markers")
    path.write_text(f"{head}{BEGIN}\n\n{text}\n\n{END}\n{tail}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", nargs="?", type=pathlib.Path, default=BENCH / "results.json")
    p.add_argument("--png", type=pathlib.Path, default=BENCH / "results.png")
    p.add_argument("--docs", type=pathlib.Path, metavar="PAGE",
                   help="also put the tables into this page (docs/performance.rst), between "
                        "its marker comments")
    args = p.parse_args()
    result = json.loads(args.results.read_text())
    chart(result, args.png)
    text = rst(result)
    if args.docs:
        update_page(args.docs, text)
    print(text)


if __name__ == "__main__":
    main()
