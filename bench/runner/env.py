"""Where things are: the paths, ports and binaries scripts/bench.sh sets up and hands over in the environment."""
import os
from dataclasses import dataclass


@dataclass
class Env:
    root: str  # the checkout
    work: str  # .data/bench: scratch files of a run (runs.jsonl, machine.json, tokens, logs)
    pgbin: str  # the PostgreSQL binaries psql and pg_ctl come from
    spg_config: str  # pg_config of the bench cluster's private snapshot (its extension script and library)
    pgport: int
    redis_port: int
    api_listen: str
    api_bin: str
    driver: str
    jwt_secret: str
    from_head: bool

    @property
    def pg_url(self):
        return f"postgres://postgres@127.0.0.1:{self.pgport}"


def from_environ():
    e = os.environ
    root = e.get("BENCH_ROOT") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return Env(root, e.get("BENCH_WORK", os.path.join(root, ".data", "bench")), e.get("BENCH_PGBIN", ""),
               e.get("BENCH_SPG_CONFIG", ""), int(e.get("AIQUOTA_BENCH_PGPORT", "55442")),
               int(e.get("AIQUOTA_BENCH_REDIS_PORT", "56379")), e.get("AIQUOTA_BENCH_LISTEN", "127.0.0.1:58080"),
               e.get("BENCH_API_BIN", ""), e.get("BENCH_DRIVER", ""), e.get("BENCH_JWT_SECRET", ""),
               e.get("BENCH_FROM_HEAD") == "1")
