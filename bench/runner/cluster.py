"""The bench cluster's databases, built from bench.toml's [databases] with psql (the cluster itself is started and
stopped by scripts/bench.sh)."""
import hashlib
import os
import re
import subprocess
import sys

from .config import BENCH_DIR


def log(msg):
    print(f"\033[1m==> {msg}\033[0m", file=sys.stderr, flush=True)


class Cluster:
    def __init__(self, env, databases):
        self.env = env
        self.databases = databases
        self._sha = None

    def psql(self, db, *args, capture=False):
        cmd = [os.path.join(self.env.pgbin, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
               "-p", str(self.env.pgport), "-U", "postgres", "-d", db, *args]
        r = subprocess.run(cmd, check=True, text=True, stdout=subprocess.PIPE if capture else subprocess.DEVNULL)
        return r.stdout.strip() if capture else None

    def value(self, db, sql):
        """One value (psql -tA), or None when the query fails (a database that is not there yet)."""
        try:
            return self.psql(db, "-tAc", sql, capture=True)
        except subprocess.CalledProcessError:
            return None

    def exists(self, name):
        return self.value("postgres", f"SELECT 1 FROM pg_database WHERE datname = '{name}'") == "1"

    def checkpoint(self, db):
        self.psql(db, "-c", "CHECKPOINT")

    def ext_sha(self):
        """What the databases are built from: the installed extension script and every setup file."""
        if self._sha is None:
            share = subprocess.run([self.env.spg_config, "--sharedir"], check=True, capture_output=True,
                                   text=True).stdout.strip()
            with open(os.path.join(self.env.root, "Cargo.toml")) as f:
                version = re.search(r'^version = "(.*)"', f.read(), re.M).group(1)
            h = hashlib.sha256()
            paths = [os.path.join(share, "extension", f"aiquota--{version}.sql")]
            paths += [os.path.join(BENCH_DIR, p) for d in self.databases.values() for p in d.get("setup", [])]
            for p in paths:
                with open(p, "rb") as f:
                    h.update(f.read())
            self._sha = h.hexdigest()[:16]
        return self._sha

    def _create(self, d, name, params):
        if self.exists(name):
            self.psql("postgres", "-c", f"DROP DATABASE {name}")
        template = f" TEMPLATE {d['template']}" if d.get("template") else ""
        self.psql("postgres", "-c", f"CREATE DATABASE {name}{template}")
        psql_vars = []
        for k, v in d.get("vars", {}).items():
            psql_vars += ["-v", f"{k}={v.format(**params)}"]
        for path in d.get("setup", []):
            self.psql(name, *psql_vars, "-v", f"ext_sha={self.ext_sha()}", "-f", os.path.join(BENCH_DIR, path))

    def prepare_run(self):
        """Once per run: the template (rebuilt when its checksum changed), what runs every time, the fresh ones."""
        for key, d in self.databases.items():
            if d.get("template"):
                continue
            name, sha = d["name"], self.ext_sha()
            if not (self.exists(name) and self.value(name, "SELECT obj_description('bench'::regnamespace)") == sha):
                log(f"creating the template database {name}")
                self._create(d, name, {})
                self.psql(name, "-c", f"COMMENT ON SCHEMA bench IS '{sha}'")
            for path in d.get("every_run", []):
                self.psql(name, "-c", "SET client_min_messages = warning", "-f", os.path.join(BENCH_DIR, path))
        for d in self.databases.values():
            if d.get("fresh") == "run":
                self._create(d, d["name"], {})

    def database(self, key, params):
        """The database `key` of bench.toml for one sweep value (params), built or reused; its name."""
        d = self.databases[key]
        name = d["name"].format(**params)
        if d.get("fresh") == "run":
            return name
        rows = int(d.get("vars", {}).get("rows", "0").format(**params))
        stamp = self.value(name, "SELECT ext_sha || ':' || rows FROM bench.meta") if self.exists(name) else None
        if rows >= d.get("keep_from", 1) and stamp == f"{self.ext_sha()}:{rows}":
            return name
        log(f"generating {name} (once; reused by later runs)")
        self._create(d, name, params)
        return name
