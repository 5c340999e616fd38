"""bench/results.json and docs/benchmarks.md from a run's rows: the targets of the scenario files evaluated per
synchronous_commit value, one table per scenario, in the prose of bench/report.md and bench/notes.md."""
import json
import os
import re
import statistics

from .config import BENCH_DIR


def ratio(a, b):
    if a is None or b in (None, 0):
        return None
    return a / b


def fmt(v, digits):
    if v is None:
        return "–"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def median_rounds(settings, runs):
    """One run per contender, sync and sweep value: of the rounds measured, the one with the median throughput
    (the higher middle one of an even count), whole, so its p50 and p99 stay those of one run; `rounds_tps` keeps
    every round's throughput in the order they ran. Runs without a round (a results.json) pass through."""
    sweep = {sc.id: sc.sweep.key for sc in settings.scenarios if sc.sweep}
    groups = {}  # in the order first seen
    for i, r in enumerate(runs):
        key = (r["scenario"], r["contender"], r["sync"], r.get(sweep.get(r["scenario"], ""))) if "round" in r else i
        groups.setdefault(key, []).append(r)
    out = []
    for group in groups.values():
        if "round" not in group[0]:
            out.append(group[0])
            continue
        ranked = sorted(group, key=lambda r: r.get("tps") or 0)
        out.append(dict({k: v for k, v in ranked[len(ranked) // 2].items() if k != "round"},
                        rounds_tps=[r.get("tps") for r in group]))
    return out


class Report:
    def __init__(self, settings, runs, machine):
        self.s = settings
        self.runs = median_rounds(settings, runs)
        self.machine = machine
        self.syncs = [x for x in ("on", "off") if any(r["sync"] == x for r in runs)]

    def get(self, scenario, contender, sync, at):
        for r in self.runs:
            if (r["scenario"], r["contender"], r["sync"]) == (scenario, contender, sync) and all(
                    r.get(k) == v for k, v in at.items()):
                return r
        return None

    def biggest(self, sc):
        key = sc.sweep.key if sc.sweep else None
        return max([r.get(key, 0) for r in self.runs if r["scenario"] == sc.id] or [0])

    def term(self, sc, term, sync):
        at = {k: (self.biggest(sc) if v == "max" else v) for k, v in term.at.items()}
        r = self.get(sc.id, term.contender, sync, at)
        return r.get(term.metric) if r else None

    def round_ratios(self, sc, t, sync):
        """The per-round values of a target that is a ratio of two throughputs, or None. Rounds are interleaved,
        so round k of both contenders ran minutes apart at most, under the same disk and the same noise; the
        median rounds of two contenders may come from different rounds when the machine drifts."""
        if len(t.terms) != 2 or any(term.metric != "tps" for term in t.terms):
            return None
        runs = []
        for term in t.terms:
            at = {k: (self.biggest(sc) if v == "max" else v) for k, v in term.at.items()}
            runs.append(self.get(sc.id, term.contender, sync, at))
        if None in runs:
            return None
        a, b = (r.get("rounds_tps") or [] for r in runs)
        if len(a) < 2 or len(a) != len(b) or None in a + b or 0 in b:
            return None
        return [x / y for x, y in zip(a, b)]

    def targets(self):
        """[(scenario, target, {sync: {value, met[, rounds]}})] for every target of every scenario the run
        measured. A ratio of two throughputs measured in rounds is the median of its per-round ratios (`rounds`);
        any other target is taken from the median round of each contender."""
        out = []
        for sc in self.s.scenarios:
            if not any(r["scenario"] == sc.id for r in self.runs):
                continue
            for t in sc.targets:
                by_sync = {}
                for sync in self.syncs:
                    rounds = self.round_ratios(sc, t, sync)
                    if rounds:
                        v = statistics.median(rounds)
                        by_sync[sync] = {"value": v, "met": t.met(v), "rounds": rounds}
                        continue
                    vals = [self.term(sc, term, sync) for term in t.terms]
                    v = vals[0] if len(vals) == 1 else ratio(*vals)
                    by_sync[sync] = {"value": v, "met": t.met(v) if v is not None else None}
                out.append((sc, t, by_sync))
        return out

    def results(self):
        return {
            "generated_by": "make bench (scripts/bench.sh, bench/bench.py, bench/scenarios/*.toml)",
            "machine": self.machine,
            "targets": [{"key": t.key, "title": t.title.format(max=self.biggest(sc)), "goal": t.goal,
                         "by_sync": v} for sc, t, v in self.targets()],
            "runs": self.runs,
        }

    def ratio_cell(self, sc, c, r):
        if r.get("of_saturation"):
            return f"{r['of_saturation']:.2f} of saturation"
        if c is None:
            return ""
        sweep = {sc.sweep.key: r.get(sc.sweep.key)} if sc.sweep else {}
        parts = []
        for rt in c.ratios:
            base = self.get(sc.id, rt.to, r["sync"], dict(sweep, **rt.at))
            q = ratio(r.get(rt.metric), base.get(rt.metric)) if base and base is not r else None
            if q is None:
                continue
            text = rt.text.format(ratio=q) if rt.text else f"{q:.2f}"
            parts.append(text if not parts else f" ({rt.label} {text})")
        return "".join(parts)

    def scenario_section(self, sc):
        rows = [r for r in self.runs if r["scenario"] == sc.id]
        if not rows:
            return []
        by_name = {c.name: c for c in sc.contenders}
        L = [f"## {sc.title}", ""]
        head = "| Contender | " + (f"{sc.sweep.label} | " if sc.sweep else "") + \
            "sync commit | Clients | Throughput (/s) | p50 (ms) | p99 (ms) | Ratio (to the floor, two stores, ...) |"
        L += [head, "|" + "---|" * (head.count("|") - 1)]
        for r in rows:
            c = by_name.get(r["contender"])
            cells = [c.label if c else r["contender"]]
            if sc.sweep:
                cells.append(f"{r.get(sc.sweep.key, 0):,}")
            tput = f"{r['tps']:,.0f}" if r.get("tps") is not None else "–"
            if len(r.get("rounds_tps") or []) > 1 and None not in r["rounds_tps"]:
                tput += f" ({min(r['rounds_tps']):,.0f}-{max(r['rounds_tps']):,.0f})"
            cells += [r["sync"], str(r.get("clients", "")), tput, fmt(r.get("p50_ms"), 2), fmt(r.get("p99_ms"), 2),
                      self.ratio_cell(sc, c, r)]
            L.append("| " + " | ".join(cells) + " |")
        L.append("")
        notes = []
        if sc.sweep:
            notes += [f"- {r[sc.sweep.key]:,} {sc.sweep.label.lower()}: database size {r['db_size']}."
                      for r in rows if r.get("db_size") and r["sync"] == self.syncs[0]]
        notes += [f"- API memory (sync {r['sync']}, {r['contender']}): RSS {r['rss_idle_kb'] / 1024:.1f} MiB "
                  f"once started, peak {r['rss_peak_kb'] / 1024:.1f} MiB under load." for r in rows
                  if r.get("rss_idle_kb")]
        return L + (notes + [""] if notes else [])

    def markdown(self, template, notes):
        m = self.machine
        mode = "quick run (`BENCH_QUICK=1`)" if m.get("quick") else "full run"
        machine = ["| | |", "|---|---|"]
        for k, label in [("cpu", "CPU"), ("nproc", "nproc"), ("memory", "Memory"), ("kernel", "Kernel"),
                         ("postgres", "PostgreSQL"), ("pgbench", "pgbench"), ("redis", "Redis"), ("wrk", "wrk"),
                         ("aiquota_commit", "API built from commit"), ("extension_build", "Extension library")]:
            if m.get(k) is not None:
                machine.append(f"| {label} | {m[k]} |")
        targets = ["| Target | Goal | " + " | ".join(f"synchronous_commit={x}" for x in self.syncs) + " |",
                   "|---|---|" + "---|" * len(self.syncs)]
        for sc, t, by_sync in self.targets():
            cells = ["–" if v["value"] is None else f"{t.show(v['value'])} {'✅' if v['met'] else '❌'}"
                     + (f" ({min(v['rounds']):.2f}-{max(v['rounds']):.2f})" if v.get("rounds") else "")
                     for v in (by_sync[x] for x in self.syncs)]
            targets.append(f"| {t.title.format(max=self.biggest(sc))} | {t.goal} | " + " | ".join(cells) + " |")
        scenarios = []
        for sc in self.s.scenarios:
            scenarios += self.scenario_section(sc)
        parts = {
            "run": f"{mode}, {m.get('date')}, {m.get('duration_s')} s measured per run after {m.get('warmup_s')} s "
                   f"of warm-up" + (f", every contender {m['rounds']} times in interleaved rounds: the tables show the "
                                    f"round of median throughput, the range of all rounds in parentheses; a target that is a ratio of "
                                    f"two throughputs is the median of its per-round ratios, their range in "
                                    f"parentheses."
                                    if m.get("rounds", 1) > 1 else "."),
            "machine": "\n".join(machine),
            "settings": "\n".join(["```text", *m.get("settings", []), "```"]),
            "targets": "\n".join(targets),
            "scenarios": "\n".join(scenarios).rstrip(),
            "notes": notes.rstrip(),
        }
        return re.sub(r"\{\{(\w+)\}\}", lambda x: parts[x.group(1)], template).rstrip() + "\n"


def write(settings, runs, machine, results_path, md_path):
    """Writes results.json (when a path is given) and the markdown."""
    rep = Report(settings, runs, machine)
    if results_path:
        with open(results_path, "w") as f:
            json.dump(rep.results(), f, indent=2)
            f.write("\n")
    with open(os.path.join(BENCH_DIR, "report.md")) as f:
        template = f.read()
    with open(os.path.join(BENCH_DIR, "notes.md")) as f:
        notes = f.read()
    with open(md_path, "w") as f:
        f.write(rep.markdown(template, notes))
