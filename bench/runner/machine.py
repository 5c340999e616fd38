"""What a run ran on: the machine, the tools' versions, the build measured and the bench cluster's settings."""
import hashlib
import os
import platform
import subprocess

SETTINGS = ("shared_buffers", "effective_cache_size", "work_mem", "wal_buffers", "max_wal_size", "checkpoint_timeout",
            "fsync", "full_page_writes", "wal_sync_method", "jit", "max_connections", "autovacuum")


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except OSError:
        return None


def so_path(env):
    return os.path.join(sh(f"'{env.spg_config}' --pkglibdir"), "aiquota.so")


def so_sha(env):
    with open(so_path(env), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def so_kind(env):
    """Debug builds keep Rust's precondition checks as symbols."""
    return "debug" if "precondition_check" in (sh(f"nm '{so_path(env)}' 2>/dev/null") or "") else "release"


def describe(env, settings, cluster, so_sha_start):
    commit = sh(f"cd '{env.root}' && git rev-parse --short HEAD")
    if not env.from_head and subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "api", "extension"],
                                            cwd=env.root).returncode != 0:
        commit += " (+ uncommitted changes in the working tree)"
    sha = so_sha(env)
    replaced = "" if sha == so_sha_start else f", REPLACED during the run: was {so_sha_start}"
    names = ",".join(f"'{n}'" for n in SETTINGS)
    pg = cluster.value("postgres", f"SELECT name || ' = ' || current_setting(name) FROM pg_settings "
                                   f"WHERE name IN ({names}) ORDER BY name") or ""
    return {
        "date": sh("date -u '+%Y-%m-%d %H:%M UTC'"),
        "quick": os.environ.get("BENCH_QUICK") == "1",
        "duration_s": settings.duration, "warmup_s": settings.warmup, "rounds": settings.rounds,
        "nproc": int(sh("nproc") or 0),
        "cpu": sh("lscpu | sed -n 's/^Model name: *//p' | head -1"),
        "memory": sh("free -h | awk '/^Mem:/ {print $2}'"),
        "kernel": platform.release(),
        "postgres": sh(f"'{env.pgbin}/postgres' --version"),
        "pgbench": sh("pgbench --version"),
        "redis": sh("redis-server --version | cut -d' ' -f1-3"),
        "wrk": sh("wrk -v 2>&1 | head -1 | cut -d' ' -f1-2"),
        "aiquota_commit": commit,
        "extension_build": f"{so_kind(env)} build of aiquota.so (sha256 {sha}{replaced})",
        "settings": pg.splitlines() + ["synchronous_commit = on | off (per run, every contender alike)"],
        "clients": settings.clients,
    }
