#!/usr/bin/env python3
"""Backend CPU per transaction of two or more pgbench contenders, run side by side.

Throughput on this machine drifts by ±15 % between runs of a few seconds, far more than most changes to a hot
path are worth. This measures what a change costs instead: every contender runs at once, one pgbench client
each, so the machine's noise hits all of them alike, and each is charged the CPU time of its own backend only
(`/proc/<pid>/schedstat`, nanoseconds on a CPU), divided by the transactions it completed in the same interval
(pgbench's per-transaction log). Rounds alternate the contenders' start order.

    python3 bench/cpu_ab.py --port 28432 --seconds 20 --rounds 3 \\
        old=bench_a:bench/pgbench/reserve_commit.sql new=bench_b:bench/pgbench/reserve_commit.sql

Each contender is NAME=DATABASE:SCRIPT. pgbench runs `-M prepared -c 1 -j 1 -D users=N` as PGUSER (default
postgres) with PGOPTIONS (default `-c synchronous_commit=off`); the first and last second of each run are left out.
Prints CPU per transaction in microseconds per round and each contender's ratio to the first one.
"""

import argparse
import glob
import os
import subprocess
import sys
import tempfile
import time


def backend_pid(args, app):
    """The pid of the one backend whose application_name is `app`, once it is connected."""
    for _ in range(100):
        out = subprocess.run(
            ["psql", "-h", args.host, "-p", str(args.port), "-U", args.user, "-d", "postgres", "-tAc",
             f"SELECT pid FROM pg_stat_activity WHERE application_name = '{app}'"],
            capture_output=True, text=True, check=True).stdout.split()
        if len(out) == 1:
            return int(out[0])
        time.sleep(0.1)
    sys.exit(f"no single backend named {app}")


def cpu_ns(pid):
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def transactions_between(prefix, start, end):
    count = 0
    for path in glob.glob(prefix + ".*"):
        with open(path) as f:
            for line in f:
                fields = line.split()
                t = int(fields[4]) + int(fields[5]) / 1e6
                count += start <= t < end
    return count


def one_round(args, contenders, workdir, round_no):
    procs = []
    for name, db, script in contenders:
        prefix = os.path.join(workdir, f"r{round_no}_{name}")
        env = dict(os.environ, PGAPPNAME=f"ab_{name}", PGOPTIONS=args.options)
        procs.append((name, prefix, subprocess.Popen(
            ["pgbench", "-h", args.host, "-p", str(args.port), "-U", args.user, "-n", "-M", "prepared",
             "-c", "1", "-j", "1", "-T", str(args.seconds), "-D", f"users={args.users}", "-f", script,
             "--log", "--log-prefix", prefix]
            + (["--rate", str(args.rate)] if args.rate else []) + [db],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)))
    time.sleep(1)  # pgbench's first connection (its checks) has gone; the client's own is the one left
    pids = {name: backend_pid(args, f"ab_{name}") for name, _, _ in procs}
    start = time.time()
    before = {name: cpu_ns(pid) for name, pid in pids.items()}
    time.sleep(args.seconds - 3.5)
    after = {name: cpu_ns(pid) for name, pid in pids.items()}
    end = time.time()
    result = {}
    for name, prefix, proc in procs:
        _, err = proc.communicate()
        if proc.returncode != 0:
            sys.exit(f"pgbench {name} failed: {err.decode()}")
        n = transactions_between(prefix, start, end)
        result[name] = (after[name] - before[name]) / 1000 / max(n, 1), n
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=int(os.environ.get("PGPORT", 5432)))
    p.add_argument("--user", default=os.environ.get("PGUSER", "postgres"))
    p.add_argument("--options", default=os.environ.get("PGOPTIONS", "-c synchronous_commit=off"))
    p.add_argument("--seconds", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--users", type=int, default=10000)
    p.add_argument("--rate", type=int, default=0,
                   help="transactions per second per contender (pgbench --rate; 0: as fast as it goes). A rate "
                        "both reach keeps the machine below saturation and the contenders' work equal")
    p.add_argument("contender", nargs="+", help="NAME=DATABASE:SCRIPT")
    args = p.parse_args()
    if args.seconds < 5:
        sys.exit("--seconds must be at least 5")
    contenders = []
    for c in args.contender:
        name, _, rest = c.partition("=")
        db, _, script = rest.partition(":")
        if not (name and db and script):
            sys.exit(f"{c}: expected NAME=DATABASE:SCRIPT")
        contenders.append((name, db, script))
    with tempfile.TemporaryDirectory() as workdir:
        for r in range(args.rounds):
            order = contenders if r % 2 == 0 else contenders[::-1]
            res = one_round(args, order, workdir, r)
            base = res[contenders[0][0]][0]
            print(f"round {r + 1}: " + ", ".join(
                f"{name} {res[name][0]:.1f} us/tx ({res[name][1]} tx, {res[name][0] / base:.3f})"
                for name, _, _ in contenders), flush=True)


if __name__ == "__main__":
    main()
