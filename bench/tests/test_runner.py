"""The benchmark runner's own tests: the scenario files load and reference what exists, targets and ratios are
computed as the files say, and the committed page is what the committed results render to.

Run: make bench-check, or python3 -B -m unittest discover -s bench/tests (no cluster needed)
"""
import json
import os
import sys
import tempfile
import unittest

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, BENCH)
sys.dont_write_bytecode = True  # no __pycache__ in the checkout

from runner import config, report  # noqa: E402
from runner.measure import parse_pgbench  # noqa: E402

SETTINGS = config.load()


def scenario_file(text):
    f = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
    f.write(text)
    f.close()
    return f.name


def load_one(text):
    path = scenario_file(text)
    try:
        return config.load_scenario(path, 10000, SETTINGS.clients, SETTINGS.databases)
    finally:
        os.unlink(path)


SMALL = '''
id = "s9"
title = "9. test"
database = "main"
[[contender]]
name = "a"
label = "A"
pgbench = "consume.sql"
ratios = ["b"]
[[contender]]
name = "b"
label = "B"
pgbench = "floor.sql"
[[target]]
key = "a_vs_b"
title = "a / b"
value = "tps(a) / tps(b)"
goal = "≥ 0.50"
'''


class Files(unittest.TestCase):
    def test_the_six_scenarios_of_make_bench(self):
        self.assertEqual([s.id for s in SETTINGS.scenarios], ["s1", "s2", "s3", "s4", "s5", "s6"])
        for sc in SETTINGS.scenarios:
            self.assertTrue(sc.contenders, sc.id)
            self.assertTrue(sc.targets, sc.id)

    def test_every_committed_run_has_a_contender_in_its_scenario_file(self):
        with open(os.path.join(BENCH, "results.json")) as f:
            runs = json.load(f)["runs"]
        names = {(sc.id, c.name) for sc in SETTINGS.scenarios for c in sc.contenders}
        self.assertEqual({(r["scenario"], r["contender"]) for r in runs} - names, set())

    def test_a_ratio_to_an_unknown_contender_is_refused(self):
        with self.assertRaisesRegex(config.ConfigError, "ratio to 'c'"):
            load_one(SMALL.replace('ratios = ["b"]', 'ratios = ["c"]'))

    def test_a_target_of_an_unknown_contender_is_refused(self):
        with self.assertRaisesRegex(config.ConfigError, "target a_vs_b"):
            load_one(SMALL.replace("tps(b)", "tps(nobody)"))

    def test_a_goal_without_a_comparison_is_refused(self):
        with self.assertRaisesRegex(config.ConfigError, "goal"):
            load_one(SMALL.replace('"≥ 0.50"', '"about 0.5"'))

    def test_a_missing_script_is_refused(self):
        with self.assertRaisesRegex(config.ConfigError, "no bench/pgbench/nope.sql"):
            load_one(SMALL.replace('"floor.sql"', '"nope.sql"'))

    def test_a_contender_with_two_kinds_is_refused(self):
        with self.assertRaisesRegex(config.ConfigError, "exactly one of"):
            load_one(SMALL.replace('pgbench = "floor.sql"', 'pgbench = "floor.sql"\ndriver = "two-store"'))

    def test_an_unknown_scenario_number_is_refused(self):
        os.environ["BENCH_SCENARIOS"] = "1 7"
        try:
            with self.assertRaisesRegex(config.ConfigError, r"\['7'\]"):
                config.load()
        finally:
            del os.environ["BENCH_SCENARIOS"]

    def test_a_scenario_may_run_with_fewer_synchronous_commit_values(self):
        self.assertEqual(load_one(SMALL).syncs_of(["on", "off"]), ["on", "off"])
        self.assertEqual(load_one('sync = ["off"]\n' + SMALL).syncs_of(["on", "off"]), ["off"])
        with self.assertRaisesRegex(config.ConfigError, "synchronous_commit values"):
            load_one('sync = ["local"]\n' + SMALL)

    def test_knobs_come_from_the_environment(self):
        os.environ["BENCH_CLIENTS"] = "3"
        try:
            self.assertEqual(config.load().clients["default"], 3)
        finally:
            del os.environ["BENCH_CLIENTS"]


def run(scenario, contender, sync, tps, p50=1.0, **kw):
    return dict(scenario=scenario, contender=contender, sync=sync, clients=8, tps=tps, p50_ms=p50, p99_ms=2 * p50,
                **kw)


class Targets(unittest.TestCase):
    def test_ratio_target_per_sync_and_its_goal(self):
        sc = load_one(SMALL)
        s = config.Settings(1, 0, 1, ["on", "off"], ["9"], 42, 10000, SETTINGS.clients, SETTINGS.databases, [sc])
        runs = [run("s9", "a", "on", 60.0), run("s9", "b", "on", 100.0), run("s9", "a", "off", 40.0),
                run("s9", "b", "off", 100.0)]
        (_, t, by_sync), = report.Report(s, runs, {}).targets()
        self.assertAlmostEqual(by_sync["on"]["value"], 0.6)
        self.assertEqual((by_sync["on"]["met"], by_sync["off"]["met"]), (True, False))

    def test_a_missing_run_leaves_the_target_open(self):
        sc = load_one(SMALL)
        s = config.Settings(1, 0, 1, ["off"], ["9"], 42, 10000, SETTINGS.clients, SETTINGS.databases, [sc])
        (_, _, by_sync), = report.Report(s, [run("s9", "a", "off", 60.0)], {}).targets()
        self.assertEqual(by_sync["off"], {"value": None, "met": None})

    def test_history_target_compares_the_largest_sweep_value_with_zero(self):
        s3 = next(sc for sc in SETTINGS.scenarios if sc.id == "s3")
        runs = [run("s3", "consume", "off", 1.0, p50=1.0, ledger_rows=0),
                run("s3", "consume", "off", 1.0, p50=1.2, ledger_rows=1000),
                run("s3", "consume", "off", 1.0, p50=1.05, ledger_rows=5000)]
        rep = report.Report(SETTINGS, runs, {})
        (sc, t, by_sync), = rep.targets()
        self.assertAlmostEqual(by_sync["off"]["value"], 1.05)
        self.assertTrue(by_sync["off"]["met"])
        self.assertEqual(t.title.format(max=rep.biggest(sc)), "3. consume p50 at 5,000 ledger rows / at 0")
        consume = s3.contenders[0]
        self.assertEqual(rep.ratio_cell(s3, consume, runs[0]), "")  # not a ratio to itself
        self.assertEqual(rep.ratio_cell(s3, consume, runs[1]), "p50 1.20× of 0 rows")

    def test_ratio_cell_labels_the_second_ratio(self):
        s1 = next(sc for sc in SETTINGS.scenarios if sc.id == "s1")
        runs = [run("s1", "consume", "off", 50.0), run("s1", "floor", "off", 100.0), run("s1", "limiter", "off", 80.0)]
        rep = report.Report(SETTINGS, runs, {})
        self.assertEqual(rep.ratio_cell(s1, s1.contenders[0], runs[0]), "0.50 (limiter 0.62)")


class Rounds(unittest.TestCase):
    def test_the_round_of_median_throughput_is_reported_whole(self):
        runs = [run("s1", "consume", "off", 60.0, p50=3.0, round=0), run("s1", "limiter", "off", 80.0, round=0),
                run("s1", "consume", "off", 90.0, p50=1.0, round=1), run("s1", "limiter", "off", 70.0, round=1),
                run("s1", "consume", "off", 70.0, p50=2.0, round=2), run("s1", "limiter", "off", 75.0, round=2)]
        consume, limiter = report.median_rounds(SETTINGS, runs)
        self.assertEqual((consume["tps"], consume["p50_ms"], consume["rounds_tps"]), (70.0, 2.0, [60.0, 90.0, 70.0]))
        self.assertNotIn("round", consume)
        self.assertEqual(limiter["tps"], 75.0)
        (_, t, by_sync), = [x for x in report.Report(SETTINGS, runs, {}).targets() if x[1].key == "consume_vs_limiter"]
        self.assertAlmostEqual(by_sync["off"]["value"], 70.0 / 75.0)

    def test_a_throughput_ratio_target_is_the_median_of_its_per_round_ratios(self):
        # The median rounds (20 and 20) would say 1.00; round by round consume ran at 3.0, 0.5 and 0.5 of the
        # limiter: the machine drifted between rounds, and only contenders of the same round compare.
        runs = [run("s1", c, "off", tps, round=k)
                for k, pair in enumerate(((30.0, 10.0), (10.0, 20.0), (20.0, 40.0)))
                for c, tps in zip(("consume", "limiter"), pair)]
        rep = report.Report(SETTINGS, runs, {})
        (_, t, by_sync), = [x for x in rep.targets() if x[1].key == "consume_vs_limiter"]
        self.assertEqual(by_sync["off"], {"value": 0.5, "met": False, "rounds": [3.0, 0.5, 0.5]})
        self.assertIn("| 0.50 ❌ (0.50-3.00) |", rep.markdown("{{targets}}", ""))
        # A target of one metric, or a contender measured once, keeps the median round's value.
        (_, t, by_sync), = [x for x in report.Report(SETTINGS, runs[:2], {}).targets()
                            if x[1].key == "consume_vs_limiter"]
        self.assertEqual(by_sync["off"], {"value": 3.0, "met": True})

    def test_sweep_values_and_syncs_are_kept_apart(self):
        runs = [run("s3", "consume", s, tps, ledger_rows=rows, round=k)
                for k in range(2) for s in ("on", "off") for rows, tps in ((0, 10.0 + k), (1000, 20.0 + k))]
        picked = report.median_rounds(SETTINGS, runs)
        self.assertEqual([(r["sync"], r["ledger_rows"], r["tps"]) for r in picked],
                         [("on", 0, 11.0), ("on", 1000, 21.0), ("off", 0, 11.0), ("off", 1000, 21.0)])

    def test_runs_without_rounds_pass_through_and_the_table_shows_the_range(self):
        plain = [run("s1", "consume", "off", 50.0)]
        self.assertEqual(report.median_rounds(SETTINGS, plain), plain)
        s1 = next(sc for sc in SETTINGS.scenarios if sc.id == "s1")
        rounds = [run("s1", "consume", "off", tps, round=k) for k, tps in enumerate((50.0, 40.0, 60.0))]
        table = "\n".join(report.Report(SETTINGS, rounds, {}).scenario_section(s1))
        self.assertIn("| 50 (40-60) |", table)

    def test_rounds_must_be_positive(self):
        os.environ["BENCH_ROUNDS"] = "0"
        try:
            with self.assertRaisesRegex(config.ConfigError, "rounds"):
                config.load()
        finally:
            del os.environ["BENCH_ROUNDS"]


class Rendering(unittest.TestCase):
    def test_the_committed_page_is_what_the_committed_results_render_to(self):
        with open(os.path.join(BENCH, "results.json")) as f:
            results = json.load(f)
        with tempfile.NamedTemporaryFile("r", suffix=".md") as out:
            report.write(SETTINGS, results["runs"], results["machine"], None, out.name)
            rendered = out.read()
        with open(os.path.join(os.path.dirname(BENCH), "docs", "benchmarks.md")) as f:
            committed = f.read()
        self.assertEqual(rendered.splitlines(), committed.splitlines(),
                         "docs/benchmarks.md is stale: scripts/bench.sh report (or bench.py render) re-renders it")

    def test_parse_pgbench(self):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "pgbench_log.1"), "w") as f:
                f.write("".join(f"0 {i} {1000 * i} 0 1700000000 0\n" for i in range(1, 101)))
            text = ("number of transactions actually processed: 100\nnumber of failed transactions: 0 (0.000%)\n"
                    "tps = 1234.5 (without initial connection time)\n")
            r = parse_pgbench(text, d)
        self.assertEqual((r["tps"], r["tx"], r["failed"], r["latency_samples"]), (1234.5, 100, 0, 100))
        self.assertEqual((r["p50_ms"], r["p99_ms"]), (51.0, 99.0))


if __name__ == "__main__":
    unittest.main()
