"""A run: every chosen scenario's contenders, per sweep value and synchronous_commit value, each measured once per
round (the rounds interleaved) and appended to runs.jsonl (one JSON object per run: what was run, its round, then
what was measured). report.median_rounds picks what the report shows."""
import itertools
import json
import os
import threading

from .cluster import Cluster, log
from .machine import describe, so_sha
from .measure import Measure, summary
from .services import Services, rss_kb


class Runner:
    def __init__(self, env, settings):
        self.env = env
        self.s = settings
        self.cluster = Cluster(env, settings.databases)
        self.measure = Measure(env, settings, self.cluster)
        self.services = Services(env)
        self.runs_path = os.path.join(env.work, "runs.jsonl")
        self.runs = []

    def record(self, meta, result):
        row = dict(meta, **result)
        self.runs.append(row)
        with open(self.runs_path, "a") as f:
            f.write(json.dumps(row) + "\n")

    def wrk(self, sc, c, sync, db):
        """wrk against the API: warm-up (or, at half of another run's saturation, a calibration probe), CHECKPOINT,
        the measured run; the API's memory when asked."""
        tokens = self.measure.tokens(sc.users)
        extra, think, pid = {}, 0, self.services.api_pid()
        if c.record_rss:
            extra["rss_idle_kb"] = rss_kb(pid)
        if c.half_of:
            sat = next(r for r in reversed(self.runs) if r["scenario"] == sc.id and r["contender"] == c.half_of
                       and r["sync"] == sync)["tps"]
            # connections / (think + latency) = saturation / 2; latency at half load is measured by a probe.
            think = max(1, round(c.clients * 1000 / (sat / 2)))
            probe = self.measure.wrk(c, max(1, self.s.warmup), think, tokens)
            think = max(1, round(c.clients * 1000 / (sat / 2) - probe["p50_ms"]))
            extra["think_ms"] = think
        elif self.s.warmup > 0:
            self.measure.wrk(c, self.s.warmup, 0, tokens)
        samples, done = [], threading.Event()

        def sample():
            while not done.wait(0.2):
                samples.append(rss_kb(pid))
        sampler = threading.Thread(target=sample, daemon=True)
        self.cluster.checkpoint(db)
        sampler.start()
        try:
            res = self.measure.wrk(c, self.s.duration, think, tokens)
        finally:
            done.set()
            sampler.join()
        if c.record_rss:
            extra["rss_peak_kb"] = max(samples, default=0)
        if c.half_of:
            res["of_saturation"] = round(res["tps"] / sat, 2)
        return extra, res

    def scenario(self, sc):
        log(f"scenario {sc.number}: " + sc.log.format(users=sc.users, clients=sc.clients,
                                                      sweep=" ".join(str(v) for v in sc.sweep.values)
                                                      if sc.sweep else ""))
        for value in (sc.sweep.values if sc.sweep else [None]):
            params = {sc.sweep.key: value} if sc.sweep else {}
            db = self.cluster.database(sc.database, params)
            size = self.cluster.value(db, sc.sweep.db_size) if sc.sweep and sc.sweep.db_size else None
            for sync in sc.syncs_of(self.s.syncs):
                for rnd, c in itertools.product(range(self.s.rounds), sc.contenders):
                    self.services.want(c.needs, sync, c.clients, db)
                    meta = {"scenario": sc.id, "contender": c.name, "sync": sync, "clients": c.clients, **params,
                            "round": rnd}
                    if c.record_db_size and size:
                        meta["db_size"] = size
                    if c.kind == "pgbench":
                        extra, res = {}, self.measure.pgbench(c, sync, db, sc.users)
                    elif c.kind == "driver":
                        extra, res = {}, self.measure.driver(c, sync, db, sc.users)
                    else:
                        extra, res = self.wrk(sc, c, sync, db)
                    self.record(dict(meta, **extra), res)
                    label = " ".join([c.name, *(f"{k}={v}" for k, v in params.items()),
                                      *([f"think={extra['think_ms']}ms"] if "think_ms" in extra else []),
                                      f"sync={sync}", *([f"round={rnd + 1}"] if self.s.rounds > 1 else [])])
                    summary(label, res)
        self.services.stop_all()

    def run(self):
        """Every chosen scenario; then what it ran on. Returns (runs, machine)."""
        os.makedirs(self.env.work, exist_ok=True)
        open(self.runs_path, "w").close()
        start = so_sha(self.env)
        self.cluster.prepare_run()
        try:
            for sc in self.s.chosen():
                self.scenario(sc)
        finally:
            self.services.stop_all()
        machine = describe(self.env, self.s, self.cluster, start)
        with open(os.path.join(self.env.work, "machine.json"), "w") as f:
            json.dump(machine, f, indent=2)
        return self.runs, machine
