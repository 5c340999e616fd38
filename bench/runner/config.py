"""The benchmark's description, read from bench/bench.toml and bench/scenarios/*.toml (see those files).

Everything else in this package works from the objects built here; nothing imports upward. Loading validates
every reference (contender names in ratios and targets, client counts, databases, scripts on disk), so a typo in
a scenario file fails before any cluster is touched (`bench.py check`).
"""
import glob
import os
import re
import tomllib
from dataclasses import dataclass, field

BENCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METRICS = ("tps", "p50_ms", "p99_ms")
KINDS = ("pgbench", "driver", "wrk")
SERVICES = ("redis", "api")
DRIVER_MODES = ("one-store", "one-store-cte", "one-store-limiter", "one-store-floor", "two-store")


class ConfigError(Exception):
    """A scenario or settings file that does not describe a runnable benchmark."""


def knob(value):
    """A setting: a literal, or {default, quick, env} resolved against the environment."""
    if not isinstance(value, dict):
        return value
    if value.get("env") and os.environ.get(value["env"], "") != "":
        raw = os.environ[value["env"]]
        return type(value["default"])(raw) if isinstance(value["default"], int) else raw
    if os.environ.get("BENCH_QUICK") == "1" and "quick" in value:
        return value["quick"]
    return value["default"]


@dataclass
class Ratio:
    to: str
    label: str
    metric: str = "tps"
    at: dict = field(default_factory=dict)  # fixed values of the sweep key for the base run
    text: str = ""  # format of the cell, {ratio} the value; default: the number


@dataclass
class Contender:
    name: str
    label: str
    kind: str  # pgbench | driver | wrk
    script: str  # the pgbench script, driver mode or wrk script
    clients: int
    needs: list
    options: list  # server settings (-c name=value) of its sessions
    vars: dict  # pgbench -D variables
    ratios: list
    record_db_size: bool = False
    record_rss: bool = False
    half_of: str = ""


@dataclass
class Term:
    metric: str
    contender: str
    at: dict  # sweep key -> int or "max"


@dataclass
class Target:
    key: str
    title: str
    goal: str
    op: str
    bound: float
    unit: str
    terms: list  # one Term (a metric) or two (a ratio)

    def met(self, v):
        return {"≥": v >= self.bound, "≤": v <= self.bound, ">": v > self.bound, "<": v < self.bound}[self.op]

    def show(self, v):
        return f"{v:.2f}" + (f" {self.unit}" if self.unit else "")


@dataclass
class Sweep:
    key: str
    label: str
    values: list
    db_size: str = ""


@dataclass
class Scenario:
    id: str
    number: str
    title: str
    log: str
    database: str
    clients: int
    users: int
    sweep: Sweep
    contenders: list
    targets: list
    syncs: list  # the synchronous_commit values it runs with, of the run's (None: all of them)

    def syncs_of(self, run_syncs):
        return [x for x in run_syncs if self.syncs is None or x in self.syncs]


@dataclass
class Settings:
    duration: int
    warmup: int
    rounds: int  # each contender is measured this many times, interleaved with the others; the median counts
    syncs: list
    selected: list
    seed: int
    users: int
    clients: dict
    databases: dict
    scenarios: list  # every scenario file, by number

    def chosen(self):
        return [s for s in self.scenarios if s.number in self.selected or s.id in self.selected]


GOAL = re.compile(r"^(≥|≤|>|<)\s*([0-9.]+)\s*(\S*)$")
TERM = re.compile(r"^\s*(\w+)\((\w+)((?:\s*,\s*\w+\s*=\s*\w+)*)\)\s*$")


def parse_term(text, where):
    m = TERM.match(text)
    if not m or m.group(1) not in METRICS:
        raise ConfigError(f"{where}: '{text}' is not metric(contender[, key=value]) with a metric of {METRICS}")
    at = {}
    for pair in filter(None, (p.strip() for p in m.group(3).split(","))):
        k, v = (s.strip() for s in pair.split("="))
        at[k] = v if v == "max" else int(v)
    return Term(m.group(1), m.group(2), at)


def load_target(t, where):
    g = GOAL.match(t["goal"])
    if not g:
        raise ConfigError(f"{where}: goal '{t['goal']}' is not '≥|≤|>|< number [unit]'")
    terms = [parse_term(p, where) for p in t["value"].split(" / ")]
    if len(terms) > 2:
        raise ConfigError(f"{where}: a value is one metric or a ratio of two")
    return Target(t["key"], t["title"], t["goal"], g.group(1), float(g.group(2)), g.group(3), terms)


def clients_of(value, clients, where):
    if isinstance(value, int):
        return value
    if value not in clients:
        raise ConfigError(f"{where}: clients '{value}' is neither a number nor one of {sorted(clients)}")
    return clients[value]


def load_contender(c, scenario_clients, clients, where):
    kinds = [k for k in KINDS if k in c]
    if len(kinds) != 1:
        raise ConfigError(f"{where}: a contender has exactly one of {KINDS}")
    kind = kinds[0]
    if kind == "pgbench" and not os.path.isfile(os.path.join(BENCH_DIR, "pgbench", c["pgbench"])):
        raise ConfigError(f"{where}: no bench/pgbench/{c['pgbench']}")
    if kind == "wrk" and not os.path.isfile(os.path.join(BENCH_DIR, "wrk", c["wrk"])):
        raise ConfigError(f"{where}: no bench/wrk/{c['wrk']}")
    if kind == "driver" and c["driver"] not in DRIVER_MODES:
        raise ConfigError(f"{where}: driver mode '{c['driver']}' is not one of {DRIVER_MODES}")
    needs = c.get("needs", [])
    if any(n not in SERVICES for n in needs):
        raise ConfigError(f"{where}: needs {needs}: services are {SERVICES}")
    if kind == "wrk" and "api" not in needs:
        raise ConfigError(f"{where}: a wrk contender needs the api")
    ratios = []
    for r in c.get("ratios", []):
        r = {"to": r} if isinstance(r, str) else r
        ratios.append(Ratio(r["to"], r.get("label", r["to"]), r.get("metric", "tps"), r.get("at", {}),
                            r.get("text", "")))
    clients_n = clients_of(c.get("clients", scenario_clients), clients, where)
    return Contender(c["name"], c["label"], kind, c[kind], clients_n, needs, c.get("options", []),
                     c.get("vars", {}), ratios, c.get("record_db_size", False), c.get("record_rss", False),
                     c.get("half_of", ""))


def load_scenario(path, settings_users, clients, databases):
    where = os.path.relpath(path, BENCH_DIR)
    with open(path, "rb") as f:
        s = tomllib.load(f)
    try:
        number = re.match(r"^s(\d+)$", s["id"]).group(1)
    except AttributeError:
        raise ConfigError(f"{where}: id '{s['id']}' is not s<number>") from None
    if s["database"] not in databases:
        raise ConfigError(f"{where}: database '{s['database']}' is not one of bench.toml's {sorted(databases)}")
    sweep = None
    if "sweep" in s:
        w = s["sweep"]
        values = knob(w["values"])
        values = [int(v) for v in (values.split() if isinstance(values, str) else values)]
        sweep = Sweep(w["key"], w["label"], values, w.get("db_size", ""))
    scenario_clients = s.get("clients", "default")
    contenders = [load_contender(c, scenario_clients, clients, f"{where}: contender {c.get('name')}")
                  for c in s.get("contender", [])]
    targets = [load_target(t, f"{where}: target {t.get('key')}") for t in s.get("target", [])]
    sc = Scenario(s["id"], number, s["title"], s.get("log", s["title"]), s["database"],
                  clients_of(scenario_clients, clients, where), s.get("users", settings_users), sweep,
                  contenders, targets, s.get("sync"))
    if sc.syncs is not None and any(x not in ("on", "off") for x in sc.syncs):
        raise ConfigError(f"{where}: sync {sc.syncs}: synchronous_commit values are on and off")
    check_references(sc, where)
    return sc


def check_references(sc, where):
    names = [c.name for c in sc.contenders]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: contender names repeat: {names}")
    sweep_key = sc.sweep.key if sc.sweep else None
    for c in sc.contenders:
        for r in c.ratios:
            if r.to not in names or r.metric not in METRICS or any(k != sweep_key for k in r.at):
                raise ConfigError(f"{where}: contender {c.name}: ratio to '{r.to}' ({r.metric}, at {r.at}) "
                                  f"names no contender, metric or sweep key of this scenario")
        if c.half_of and (c.half_of not in names or c.kind != "wrk" or names.index(c.half_of) > names.index(c.name)):
            raise ConfigError(f"{where}: contender {c.name}: half_of '{c.half_of}' is not an earlier wrk contender")
    for t in sc.targets:
        for term in t.terms:
            if term.contender not in names or any(k != sweep_key for k in term.at):
                raise ConfigError(f"{where}: target {t.key}: '{term.contender}' at {term.at} names no contender "
                                  f"or sweep key of this scenario")


def load(bench_dir=BENCH_DIR):
    with open(os.path.join(bench_dir, "bench.toml"), "rb") as f:
        b = tomllib.load(f)
    run = b["run"]
    clients = {name: int(knob(v)) for name, v in b["clients"].items()}
    databases = b["databases"]
    for name, d in databases.items():
        for path in d.get("setup", []) + d.get("every_run", []):
            if not os.path.isfile(os.path.join(bench_dir, path)):
                raise ConfigError(f"bench.toml: database {name}: no bench/{path}")
        if d.get("template") and d["template"] not in [x["name"] for x in databases.values()]:
            raise ConfigError(f"bench.toml: database {name}: template {d['template']} is not a database here")
    scenarios = sorted((load_scenario(p, run["users"], clients, databases)
                        for p in glob.glob(os.path.join(bench_dir, "scenarios", "*.toml"))),
                       key=lambda s: int(s.number))
    ids = [s.id for s in scenarios]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"scenario ids repeat: {ids}")
    selected = knob(run["scenarios"]).split()
    unknown = [x for x in selected if x not in ids and f"s{x}" not in ids]
    if unknown:
        raise ConfigError(f"BENCH_SCENARIOS names no scenario file: {unknown} (there are {ids})")
    rounds = int(knob(run["rounds"]))
    if rounds < 1:
        raise ConfigError(f"bench.toml: rounds must be at least 1, got {rounds}")
    return Settings(int(knob(run["duration_s"])), int(knob(run["warmup_s"])), rounds, knob(run["sync"]).split(),
                    selected, run["seed"], run["users"], clients, databases, scenarios)
