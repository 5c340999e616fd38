#!/usr/bin/env python3
"""Helpers of scripts/bench.sh (standard library only).

  bench.py pgbench STDOUT LOGDIR         -> JSON: tps, tx, failed, p50_ms, p99_ms (from pgbench --log files)
  bench.py wrk STDOUT                    -> JSON: tps, tx, p50_ms, p99_ms, non2xx (from consume.lua's RESULT line)
  bench.py append RUNS META_JSON RESULT_JSON   appends one run (META merged with RESULT) to RUNS (JSON lines)
  bench.py report RUNS MACHINE NOTES RESULTS_JSON MARKDOWN   writes bench/results.json and docs/benchmarks.md
"""
import glob
import json
import math
import os
import re
import sys


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    i = int(round(p / 100.0 * (len(sorted_values) - 1)))
    return sorted_values[min(i, len(sorted_values) - 1)]


def cmd_pgbench(stdout_path, logdir):
    text = open(stdout_path).read()
    tps = re.search(r"^tps = ([0-9.]+) \(without initial connection time\)", text, re.M)
    tx = re.search(r"^number of transactions actually processed: (\d+)", text, re.M)
    failed = re.search(r"^number of failed transactions: (\d+)", text, re.M)
    lat = []
    for path in glob.glob(os.path.join(logdir, "pgbench_log.*")):
        with open(path) as f:
            for line in f:
                parts = line.split()
                # client_id transaction_no time script_no time_epoch time_us [...]; time is the latency in us
                if len(parts) >= 3 and parts[2].isdigit():
                    lat.append(int(parts[2]))
    lat.sort()
    out = {
        "tps": float(tps.group(1)) if tps else None,
        "tx": int(tx.group(1)) if tx else None,
        "failed": int(failed.group(1)) if failed else 0,
        "p50_ms": round(percentile(lat, 50) / 1000.0, 3) if lat else None,
        "p99_ms": round(percentile(lat, 99) / 1000.0, 3) if lat else None,
        "latency_samples": len(lat),
    }
    print(json.dumps(out))


def cmd_wrk(stdout_path):
    text = open(stdout_path).read()
    m = re.search(r"^RESULT (\{.*\})$", text, re.M)
    if not m:
        sys.exit("no RESULT line in wrk output:\n" + text)
    r = json.loads(m.group(1))
    print(json.dumps({"tps": r["rps"], "tx": r["requests"], "p50_ms": round(r["p50_ms"], 3),
                      "p99_ms": round(r["p99_ms"], 3), "non2xx": r["non2xx"], "socket_errors": r["socket_errors"]}))


def cmd_append(runs, meta, result):
    row = json.loads(meta)
    row.update(json.loads(result))
    with open(runs, "a") as f:
        f.write(json.dumps(row) + "\n")


# ---------------------------------------------------------------------------------------------------- report

def fmt(v, digits=1):
    if v is None:
        return "–"
    if isinstance(v, float) and math.isnan(v):
        return "–"
    if isinstance(v, (int, float)) and abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def ratio(a, b):
    if a is None or b in (None, 0):
        return None
    return a / b


SCENARIOS = [
    ("s1", "1. Engine vs the physical floor (10k distinct users)"),
    ("s2", "2. Hot user: one shared team budget"),
    ("s3", "3. Cost as history grows"),
    ("s4", "4. One store vs two"),
    ("s5", "5. HTTP API vs SQL"),
    ("s6", "6. Reserve/commit pairs"),
]

CONTENDERS = {
    "consume": "`quota.consume`",
    "floor": "plain `UPDATE counters SET used = used + 1` (floor)",
    "limiter": "hand-written PL/pgSQL limiter (FOR UPDATE, lazy reset, check, UPDATE, ledger INSERT)",
    "limiter_definer": "the same limiter, SECURITY DEFINER + pinned search_path",
    "consume_8": "`quota.consume`, 8 clients",
    "limiter_8": "hand-written limiter, 8 clients",
    "check": "`quota.check` (reads only)",
    "status": "`quota.status` (reads only)",
    "one_store_limiter": "one store with the hand-written limiter: BEGIN; limiter; INSERT job; COMMIT",
    "minimal_writes": "for scale: consume's three writes in one small statement (fast-path sketch)",
    "count_today": "seed design: `COUNT(*)` today's ledger rows + INSERT",
    "one_store": "one store: BEGIN; consume; INSERT job; COMMIT",
    "one_store_cte": "one store, one statement (CTE: consume + INSERT job)",
    "two_store": "two stores: Redis Lua counter, then INSERT job",
    "api": "HTTP `POST /v1/quota/consume` (wrk)",
    "api_half": "HTTP at ~half of saturation (wrk, think time)",
    "sql": "same decision over SQL (pgbench)",
    "reserve_commit": "`quota.reserve` + `quota.commit` (one pair)",
}


def cmd_report(runs_path, machine_path, notes_path, results_path, md_path):
    runs = [json.loads(l) for l in open(runs_path) if l.strip()]
    machine = json.load(open(machine_path))
    notes = open(notes_path).read() if os.path.exists(notes_path) else ""

    def get(scenario, contender, sync, **kw):
        for r in runs:
            if r["scenario"] == scenario and r["contender"] == contender and r["sync"] == sync and all(
                    r.get(k) == v for k, v in kw.items()):
                return r
        return None

    syncs = [s for s in ("on", "off") if any(r["sync"] == s for r in runs)]
    targets = []

    def target(key, title, goal, values, met_fn, fmt_fn):
        row = {"key": key, "title": title, "goal": goal, "by_sync": {}}
        for s in syncs:
            v = values(s)
            row["by_sync"][s] = {"value": v, "met": (met_fn(v) if v is not None else None)}
        targets.append((row, fmt_fn))

    def tps(sc, c, s, **kw):
        r = get(sc, c, s, **kw)
        return r["tps"] if r else None

    def p50(sc, c, s, **kw):
        r = get(sc, c, s, **kw)
        return r["p50_ms"] if r else None

    target("consume_vs_limiter", "1. consume / hand-written limiter throughput (10k users)", "≥ 1.00",
           lambda s: ratio(tps("s1", "consume", s), tps("s1", "limiter", s)), lambda v: v >= 1.0,
           lambda v: f"{v:.2f}")
    target("consume_vs_limiter_definer", "1. consume / hand-written SECURITY DEFINER limiter", "≥ 1.00",
           lambda s: ratio(tps("s1", "consume", s), tps("s1", "limiter_definer", s)), lambda v: v >= 1.0,
           lambda v: f"{v:.2f}")
    target("consume_vs_floor", "1. consume / floor throughput (10k users)", "≥ 0.50",
           lambda s: ratio(tps("s1", "consume", s), tps("s1", "floor", s)), lambda v: v >= 0.5,
           lambda v: f"{v:.2f}")
    target("hot_vs_limiter", "2. hot-user consume / hand-written limiter on one row (32 clients)", "≥ 1.00",
           lambda s: ratio(tps("s2", "consume", s), tps("s2", "limiter", s)), lambda v: v >= 1.0,
           lambda v: f"{v:.2f}")
    target("hot_vs_limiter_8", "2. hot-user consume / hand-written limiter on one row (8 clients)", "≥ 1.00",
           lambda s: ratio(tps("s2", "consume_8", s), tps("s2", "limiter_8", s)), lambda v: v >= 1.0,
           lambda v: f"{v:.2f}")
    big = max([r.get("ledger_rows", 0) for r in runs if r["scenario"] == "s3"] or [0])
    target("history", f"3. consume p50 at {big:,} ledger rows / at 0", "≤ 1.10",
           lambda s: ratio(p50("s3", "consume", s, ledger_rows=big), p50("s3", "consume", s, ledger_rows=0)),
           lambda v: v <= 1.10, lambda v: f"{v:.2f}")
    target("one_vs_two", "4. one-store / two-store throughput", "≥ 0.80",
           lambda s: ratio(tps("s4", "one_store", s), tps("s4", "two_store", s)), lambda v: v >= 0.8,
           lambda v: f"{v:.2f}")
    target("one_vs_limiter", "4. one store: consume / hand-written limiter", "≥ 1.00",
           lambda s: ratio(tps("s4", "one_store", s), tps("s4", "one_store_limiter", s)), lambda v: v >= 1.0,
           lambda v: f"{v:.2f}")
    target("pair_vs_consume", "6. reserve + commit pair / one consume throughput", "≥ 0.50",
           lambda s: ratio(tps("s6", "reserve_commit", s), tps("s6", "consume", s)), lambda v: v >= 0.5,
           lambda v: f"{v:.2f}")
    target("api_vs_sql", "5. API / direct SQL throughput", "≥ 0.60",
           lambda s: ratio(tps("s5", "api", s), tps("s5", "sql", s)), lambda v: v >= 0.6, lambda v: f"{v:.2f}")

    def half_p99(s):
        r = get("s5", "api_half", s)
        return r["p99_ms"] if r else None

    target("api_p99_half", "5. API p99 at ~half of saturation", "< 10 ms", half_p99, lambda v: v < 10.0,
           lambda v: f"{v:.2f} ms")

    results = {
        "generated_by": "make bench (scripts/bench.sh)",
        "machine": machine,
        "targets": [t for t, _ in targets],
        "runs": runs,
    }
    with open(results_path, "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")

    L = []
    L.append("# Benchmarks")
    L.append("")
    L.append("Generated by `make bench` (`scripts/bench.sh`); the machine-readable twin is "
             "[`bench/results.json`](../bench/results.json). Every number below comes from **one run** on the machine "
             "described here, every contender side by side on the same cluster with the same settings. They are "
             "measurements of that run on a small, noisy machine, not guarantees: compare the ratios, not the "
             "absolute numbers, and re-run `make bench` on your own hardware.")
    L.append("")
    mode = "quick run (`BENCH_QUICK=1`)" if machine.get("quick") else "full run"
    L.append(f"**This run:** {mode}, {machine.get('date')}, {machine.get('duration_s')} s measured per run after "
             f"{machine.get('warmup_s')} s of warm-up.")
    L.append("")
    L.append("## Machine")
    L.append("")
    L.append("| | |")
    L.append("|---|---|")
    for k, label in [("cpu", "CPU"), ("nproc", "nproc"), ("memory", "Memory"), ("kernel", "Kernel"),
                     ("postgres", "PostgreSQL"), ("pgbench", "pgbench"), ("redis", "Redis"), ("wrk", "wrk"),
                     ("aiquota_commit", "API built from commit"), ("extension_build", "Extension library")]:
        if machine.get(k) is not None:
            L.append(f"| {label} | {machine[k]} |")
    L.append("")
    if machine.get("settings"):
        L.append("PostgreSQL settings of the bench cluster (`bench/postgresql.bench.conf`, identical for every "
                 "contender; `synchronous_commit` is switched per run for every contender alike):")
        L.append("")
        L.append("```text")
        L.extend(machine["settings"])
        L.append("```")
        L.append("")
    L.append("## Targets")
    L.append("")
    L.append("Goals to aim for, not assertions. ✅ met, ❌ missed (see [Why targets are missed](#why-targets-are-missed)).")
    L.append("")
    L.append("| Target | Goal | " + " | ".join(f"synchronous_commit={s}" for s in syncs) + " |")
    L.append("|---|---|" + "---|" * len(syncs))
    for row, f in targets:
        cells = []
        for s in syncs:
            v = row["by_sync"][s]
            if v["value"] is None:
                cells.append("–")
            else:
                cells.append(f"{f(v['value'])} {'✅' if v['met'] else '❌'}")
        L.append(f"| {row['title']} | {row['goal']} | " + " | ".join(cells) + " |")
    L.append("")

    for sc, title in SCENARIOS:
        rows = [r for r in runs if r["scenario"] == sc]
        if not rows:
            continue
        L.append(f"## {title}")
        L.append("")
        extra_col = sc == "s3"
        head = "| Contender | " + ("Ledger rows | " if extra_col else "") + \
            "sync commit | Clients | Throughput (/s) | p50 (ms) | p99 (ms) | Ratio (to the floor, two stores, ...) |"
        L.append(head)
        L.append("|" + "---|" * (head.count("|") - 1))
        for r in rows:
            base, lim = None, None
            if sc in ("s1", "s2") and r["contender"] != "floor":
                base = get(sc, "floor", r["sync"])
                lim = get(sc, "limiter_8" if r["contender"].endswith("_8") else "limiter", r["sync"])
            elif sc == "s3" and r["contender"] == "consume" and r.get("ledger_rows"):
                base = get("s3", "consume", r["sync"], ledger_rows=0)
            elif sc == "s4" and r["contender"] != "two_store":
                base = get("s4", "two_store", r["sync"])
            elif sc == "s5" and r["contender"] == "api":
                base = get("s5", "sql", r["sync"])
            rt = ""
            if base:
                if sc == "s3":
                    rt = f"p50 {r['p50_ms'] / base['p50_ms']:.2f}× of 0 rows" if base.get("p50_ms") else ""
                else:
                    q = ratio(r["tps"], base["tps"])
                    rt = f"{q:.2f}" if q is not None else ""
                    if sc in ("s1", "s2") and lim and not r["contender"].startswith("limiter"):
                        ql = ratio(r["tps"], lim["tps"])
                        rt += f" (limiter {ql:.2f})" if ql is not None else ""
            name = CONTENDERS.get(r["contender"], r["contender"])
            cells = [name]
            if extra_col:
                cells.append(f"{r.get('ledger_rows', 0):,}")
            if r.get("of_saturation"):
                rt = f"{r['of_saturation']:.2f} of saturation"
            tput = f"{r['tps']:,.0f}" if r.get("tps") is not None else "–"
            cells += [r["sync"], str(r.get("clients", "")), tput, fmt(r.get("p50_ms"), 2),
                      fmt(r.get("p99_ms"), 2), rt]
            L.append("| " + " | ".join(cells) + " |")
        L.append("")
        if sc == "s3":
            for r in rows:
                if r["contender"] == "consume" and r.get("db_size") and r["sync"] == syncs[0]:
                    L.append(f"- {r['ledger_rows']:,} ledger rows: database size {r['db_size']}.")
            L.append("")
        if sc == "s5":
            for r in rows:
                if r.get("rss_idle_kb"):
                    L.append(f"- API memory (sync {r['sync']}, {r['contender']}): RSS {r['rss_idle_kb'] / 1024:.1f} MiB "
                             f"once started, peak {r['rss_peak_kb'] / 1024:.1f} MiB under load.")
            L.append("")

    if notes:
        L.append(notes.rstrip())
        L.append("")
    with open(md_path, "w") as f:
        f.write("\n".join(L))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    {"pgbench": cmd_pgbench, "wrk": cmd_wrk, "append": cmd_append, "report": cmd_report}[cmd](*args)


if __name__ == "__main__":
    main()
