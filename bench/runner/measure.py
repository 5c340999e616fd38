"""One measured run of a contender: pgbench, the Rust driver (bench/driver) or wrk, each after its warm-up and a
CHECKPOINT, parsed into one result: tps, tx, p50_ms, p99_ms and what the tool adds."""
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

from .config import BENCH_DIR


class MeasureError(Exception):
    """A load generator that failed; carries its output."""


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    i = int(round(p / 100.0 * (len(sorted_values) - 1)))
    return sorted_values[min(i, len(sorted_values) - 1)]


def parse_pgbench(text, logdir):
    """pgbench's summary, with p50/p99 from its per-transaction --log files (every transaction, no sampling)."""
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
    return {
        "tps": float(tps.group(1)) if tps else None,
        "tx": int(tx.group(1)) if tx else None,
        "failed": int(failed.group(1)) if failed else 0,
        "p50_ms": round(percentile(lat, 50) / 1000.0, 3) if lat else None,
        "p99_ms": round(percentile(lat, 99) / 1000.0, 3) if lat else None,
        "latency_samples": len(lat),
    }


def parse_wrk(text):
    """The JSON line bench/wrk/consume.lua prints from done()."""
    m = re.search(r"^RESULT (\{.*\})$", text, re.M)
    if not m:
        raise MeasureError("no RESULT line in wrk output:\n" + text)
    r = json.loads(m.group(1))
    return {"tps": r["rps"], "tx": r["requests"], "p50_ms": round(r["p50_ms"], 3), "p99_ms": round(r["p99_ms"], 3),
            "non2xx": r["non2xx"], "socket_errors": r["socket_errors"]}


def run(cmd, cwd=None, env=None):
    r = subprocess.run(cmd, cwd=cwd, env=env, text=True, capture_output=True)
    if r.returncode != 0:
        raise MeasureError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    return r.stdout


class Measure:
    def __init__(self, env, settings, cluster):
        self.env = env
        self.s = settings
        self.cluster = cluster

    def pgbench(self, c, sync, db, users):
        """A warm-up run, then the measured run on fresh connections with per-transaction logs."""
        opts = " ".join(f"-c {o}" for o in [f"synchronous_commit={sync}", *c.options])
        env = dict(os.environ, PGOPTIONS=opts, PGHOST="127.0.0.1", PGPORT=str(self.env.pgport), PGUSER="postgres")
        common = ["-n", "-M", "prepared", "-c", str(c.clients), "-j", str(min(c.clients, 2)),
                  f"--random-seed={self.s.seed}", "-D", f"users={users}"]
        for k, v in c.vars.items():
            common += ["-D", f"{k}={v}"]
        common += ["-f", os.path.join(BENCH_DIR, "pgbench", c.script), db]
        self.cluster.checkpoint(db)
        with tempfile.TemporaryDirectory(dir=self.env.work) as d:
            if self.s.warmup > 0:
                run(["pgbench", "-T", str(self.s.warmup), *common], cwd=d, env=env)
            out = run(["pgbench", "-T", str(self.s.duration), "--log", "--log-prefix=pgbench_log", *common],
                      cwd=d, env=env)
            return parse_pgbench(out, d)

    def driver(self, c, sync, db, users):
        """bench/driver: a warm-up invocation, a CHECKPOINT, then the measured one (its JSON line)."""
        def once(seconds):
            return run([self.env.driver, "--mode", c.script, "--pg", f"{self.env.pg_url}/{db}",
                        "--redis", f"127.0.0.1:{self.env.redis_port}", "--clients", str(c.clients),
                        "--duration", str(seconds), "--warmup", "0", "--users", str(users), "--sync", sync,
                        "--seed", str(self.s.seed)])
        if self.s.warmup > 0:
            once(self.s.warmup)
        self.cluster.checkpoint(db)
        return json.loads(once(self.s.duration))

    def wrk(self, c, seconds, think_ms, tokens):
        out = run(["wrk", "-t", "2", "-c", str(c.clients), "-d", f"{seconds}s", "--timeout", "10s", "-s",
                   os.path.join(BENCH_DIR, "wrk", c.script), f"http://{self.env.api_listen}", "--", tokens,
                   str(think_ms)])
        return parse_wrk(out)

    def tokens(self, users):
        """One HS256 token per user u1..u<users> (a year long), made once with `aiquota-api token`."""
        path = os.path.join(self.env.work, "tokens.txt")
        if os.path.exists(path) and sum(1 for _ in open(path)) == users:
            return path
        env = dict(os.environ, AIQUOTA_JWT_SECRET=self.env.jwt_secret)
        with open(path, "w") as f:
            for i in range(1, users + 1):
                f.write(run([self.env.api_bin, "token", "--sub", f"u{i}", "--ttl", "31536000"], env=env))
        return path


def summary(label, r):
    print("    %-48s %9.0f/s  p50 %7.2f ms  p99 %7.2f ms" % (label, r.get("tps") or 0, r.get("p50_ms") or 0,
                                                             r.get("p99_ms") or 0), file=sys.stderr, flush=True)
