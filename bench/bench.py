#!/usr/bin/env python3
"""aiquota's benchmarks (standard library only): runs the scenarios of bench/scenarios/*.toml on the bench cluster
scripts/bench.sh started, and writes bench/results.json and docs/benchmarks.md.

  bench.py run                  every scenario of BENCH_SCENARIOS, then the report (called by scripts/bench.sh)
  bench.py report               re-renders the report of the last run (.data/bench/runs.jsonl, machine.json)
  bench.py render RESULTS MD    renders MD from a results.json's runs and machine (e.g. after editing notes.md)
  bench.py check                validates bench.toml and every scenario file, and lists what a run would do
"""
import json
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the checkout
from runner import config, env as envmod, report  # noqa: E402
from runner.cluster import log  # noqa: E402
from runner.measure import MeasureError  # noqa: E402

BENCH_DIR = config.BENCH_DIR
ROOT = os.path.dirname(BENCH_DIR)
RESULTS = os.path.join(BENCH_DIR, "results.json")
MARKDOWN = os.path.join(ROOT, "docs", "benchmarks.md")


def cmd_check(settings):
    for sc in settings.scenarios:
        chosen = "" if sc in settings.chosen() else "  (not chosen by BENCH_SCENARIOS)"
        sweep = f", {sc.sweep.key} in {sc.sweep.values}" if sc.sweep else ""
        syncs = " ".join(sc.syncs_of(settings.syncs))
        print(f"{sc.id}: {sc.title} [{sc.database}, {sc.clients} clients, {sc.users} users{sweep}, "
              f"synchronous_commit {syncs}]{chosen}")
        for c in sc.contenders:
            needs = f" needs {','.join(c.needs)}" if c.needs else ""
            print(f"    {c.name:18} {c.kind} {c.script} ({c.clients} clients){needs}")
        for t in sc.targets:
            value = " / ".join(f"{x.metric}({x.contender}{''.join(f', {k}={v}' for k, v in x.at.items())})"
                               for x in t.terms)
            print(f"    target {t.key}: {value} {t.goal}")
    runs = sum(len(sc.contenders) * len(sc.sweep.values if sc.sweep else [0]) * len(sc.syncs_of(settings.syncs))
               for sc in settings.chosen()) * settings.rounds
    print(f"{runs} measured runs of {settings.duration} s after {settings.warmup} s of warm-up "
          f"({settings.rounds} interleaved round(s), synchronous_commit {' '.join(settings.syncs)})")


def cmd_run(settings):
    from runner.run import Runner
    runs, machine = Runner(envmod.from_environ(), settings).run()
    report.write(settings, runs, machine, RESULTS, MARKDOWN)
    log("wrote bench/results.json and docs/benchmarks.md")


def cmd_report(settings):
    work = envmod.from_environ().work
    with open(os.path.join(work, "runs.jsonl")) as f:
        runs = [json.loads(line) for line in f if line.strip()]
    with open(os.path.join(work, "machine.json")) as f:
        machine = json.load(f)
    report.write(settings, runs, machine, RESULTS, MARKDOWN)
    log("wrote bench/results.json and docs/benchmarks.md")


def cmd_render(settings, results_path, md_path):
    with open(results_path) as f:
        results = json.load(f)
    report.write(settings, results["runs"], results["machine"], None, md_path)


def main():
    commands = {"run": cmd_run, "report": cmd_report, "render": cmd_render, "check": cmd_check}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    try:
        settings = config.load()
        commands[sys.argv[1]](settings, *sys.argv[2:])
    except (config.ConfigError, MeasureError) as e:
        sys.exit(f"bench: {e}")


if __name__ == "__main__":
    main()
