//! A pgbench-like load driver for scenario 4 of `make bench`: one store vs two.
//!
//! Every client is a thread with its own PostgreSQL connection (and, for the two-store design, its own Redis
//! connection). It runs the chosen transaction in a closed loop for `--warmup` seconds without recording, then
//! for `--duration` seconds recording each transaction's latency, and prints one JSON object:
//! `{"mode":..., "clients":..., "tx":..., "denied":..., "errors":..., "seconds":..., "tps":..., "p50_ms":..., "p99_ms":...}`.
//!
//! Modes (the application write is `INSERT INTO app.generation_jobs`):
//! * `one-store`: `BEGIN; SELECT allowed FROM quota.consume(..); INSERT job (if allowed); COMMIT` (4 round trips).
//! * `one-store-cte`: the same decision and insert as one statement (a CTE), in its own implicit transaction.
//! * `one-store-limiter`: as `one-store`, with the hand-written PL/pgSQL limiter (`bench.limiter_definer`) in
//!   place of `quota.consume`: what a user would write instead of aiquota, in the same transaction shape.
//! * `one-store-floor`: as `one-store`, with the plain counter UPDATE of scenario 1's floor (no check, no ledger)
//!   in place of the decision: the least any quota kept in the job's PostgreSQL transaction can cost, so its ratio
//!   to two stores bounds every one-store design, aiquota's included.
//! * `two-store`: a Redis Lua counter (INCRBY, EXPIRE on first use, give back and deny over the limit), then the
//!   same INSERT in PostgreSQL (autocommit). Nothing makes the two writes atomic: that is the design measured.
//!
//! The Redis client is a minimal RESP writer/reader over a blocking socket (only EVALSHA and SCRIPT LOAD are
//! needed), which keeps this crate's only dependency the `postgres` crate already in aiquota's lock file.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The Redis side of the two-store design: a per-user daily counter, checked and incremented atomically.
const LUA: &str = "local n = redis.call('INCRBY', KEYS[1], ARGV[1]) \
if n == tonumber(ARGV[1]) then redis.call('EXPIRE', KEYS[1], ARGV[3]) end \
if n > tonumber(ARGV[2]) then redis.call('DECRBY', KEYS[1], ARGV[1]) return 0 end \
return 1";

const INSERT_JOB: &str = "INSERT INTO app.generation_jobs (user_id, prompt) VALUES ($1, $2)";
const CONSUME: &str = "SELECT allowed FROM quota.consume($1::text, 'ai_requests', 1)";
const LIMITER: &str = "SELECT bench.limiter_definer($1::text, 1)";
const FLOOR: &str =
    "UPDATE bench.counters SET used = used + 1 WHERE user_id = $1::text RETURNING true";
const CONSUME_AND_INSERT: &str = "WITH d AS (SELECT allowed FROM quota.consume($1::text, 'ai_requests', 1)) \
     INSERT INTO app.generation_jobs (user_id, prompt) SELECT $1, $2 FROM d WHERE d.allowed RETURNING 1";
/// The modes above (bench/runner/config.py's DRIVER_MODES lists the same, to check scenario files before a run).
const MODES: &[&str] = &[
    "one-store",
    "one-store-cte",
    "one-store-limiter",
    "one-store-floor",
    "two-store",
];
const PROMPT: &str = "Write a haiku about counting things exactly once.";

#[derive(Clone)]
struct Opts {
    mode: String,
    pg: String,
    redis: String,
    clients: usize,
    duration: f64,
    warmup: f64,
    users: u64,
    limit: i64,
    sync: String,
    seed: u64,
}

fn usage() -> ! {
    eprintln!(
        "usage: aiquota-bench-driver --mode {} --pg URL [--redis HOST:PORT] \
         [--clients N] [--duration S] [--warmup S] [--users N] [--limit N] [--sync on|off] [--seed N]",
        MODES.join("|")
    );
    std::process::exit(2)
}

fn parse() -> Opts {
    let mut o = Opts {
        mode: String::new(),
        pg: String::new(),
        redis: "127.0.0.1:56379".into(),
        clients: 8,
        duration: 10.0,
        warmup: 2.0,
        users: 10_000,
        limit: 1_000_000_000_000,
        sync: "on".into(),
        seed: 42,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_else(|| usage());
        match args[i].as_str() {
            "--mode" => o.mode = v,
            "--pg" => o.pg = v,
            "--redis" => o.redis = v,
            "--clients" => o.clients = v.parse().unwrap_or_else(|_| usage()),
            "--duration" => o.duration = v.parse().unwrap_or_else(|_| usage()),
            "--warmup" => o.warmup = v.parse().unwrap_or_else(|_| usage()),
            "--users" => o.users = v.parse().unwrap_or_else(|_| usage()),
            "--limit" => o.limit = v.parse().unwrap_or_else(|_| usage()),
            "--sync" => o.sync = v,
            "--seed" => o.seed = v.parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
        i += 2;
    }
    if o.pg.is_empty() || !MODES.contains(&o.mode.as_str()) {
        usage()
    }
    o
}

/// A minimal blocking RESP client.
struct Redis {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Redis {
    fn connect(addr: &str) -> std::io::Result<Self> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        Ok(Redis {
            r: BufReader::new(s.try_clone()?),
            w: s,
        })
    }

    fn command(&mut self, parts: &[&[u8]]) -> std::io::Result<Reply> {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(format!("*{}\r\n", parts.len()).as_bytes());
        for p in parts {
            buf.extend_from_slice(format!("${}\r\n", p.len()).as_bytes());
            buf.extend_from_slice(p);
            buf.extend_from_slice(b"\r\n");
        }
        self.w.write_all(&buf)?;
        self.read_reply()
    }

    fn read_reply(&mut self) -> std::io::Result<Reply> {
        let mut line = String::new();
        self.r.read_line(&mut line)?;
        let line = line.trim_end();
        let (kind, rest) = line.split_at(1.min(line.len()));
        match kind {
            ":" => Ok(Reply::Int(rest.parse().unwrap_or(0))),
            "+" => Ok(Reply::Text(rest.to_string())),
            "$" => {
                let n: i64 = rest.parse().unwrap_or(-1);
                if n < 0 {
                    return Ok(Reply::Text(String::new()));
                }
                let mut data = vec![0u8; n as usize + 2];
                self.r.read_exact(&mut data)?;
                data.truncate(n as usize);
                Ok(Reply::Text(String::from_utf8_lossy(&data).into_owned()))
            }
            _ => Err(std::io::Error::other(format!("redis: {line}"))),
        }
    }
}

enum Reply {
    Int(i64),
    Text(String),
}

/// xorshift64*: a cheap, seeded user picker (uniform over 1..=users).
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n) + 1
    }
}

#[derive(Default)]
struct Tally {
    lat_us: Vec<u32>,
    tx: u64,
    denied: u64,
    errors: u64,
}

fn client(o: Arc<Opts>, id: usize, sha: Option<String>, start: Instant) -> Result<Tally, String> {
    let mut pg = postgres::Client::connect(&o.pg, postgres::NoTls).map_err(|e| e.to_string())?;
    pg.batch_execute(&format!("SET synchronous_commit = {}", o.sync))
        .map_err(|e| e.to_string())?;
    let decide = match o.mode.as_str() {
        "one-store-limiter" => LIMITER,
        "one-store-floor" => FLOOR,
        _ => CONSUME,
    };
    let consume = pg.prepare(decide).map_err(|e| e.to_string())?;
    let insert = pg.prepare(INSERT_JOB).map_err(|e| e.to_string())?;
    let both = pg.prepare(CONSUME_AND_INSERT).map_err(|e| e.to_string())?;
    let mut redis = match &sha {
        Some(_) => Some(Redis::connect(&o.redis).map_err(|e| e.to_string())?),
        None => None,
    };
    let (limit, ttl) = (o.limit.to_string(), "90000".to_string());
    let mut rng = Rng(o
        .seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(id as u64 * 2 + 1)
        | 1);
    let warm_end = start + Duration::from_secs_f64(o.warmup);
    let end = warm_end + Duration::from_secs_f64(o.duration);
    let mut t = Tally::default();
    loop {
        let t0 = Instant::now();
        if t0 >= end {
            break;
        }
        let user = format!("u{}", rng.next(o.users));
        let result: Result<bool, String> = match o.mode.as_str() {
            "one-store" | "one-store-limiter" | "one-store-floor" => (|| {
                let mut tx = pg.transaction().map_err(|e| e.to_string())?;
                let allowed: bool = tx
                    .query_one(&consume, &[&user])
                    .map_err(|e| e.to_string())?
                    .get(0);
                if allowed {
                    tx.execute(&insert, &[&user, &PROMPT])
                        .map_err(|e| e.to_string())?;
                }
                tx.commit().map_err(|e| e.to_string())?;
                Ok(allowed)
            })(),
            "one-store-cte" => pg
                .query(&both, &[&user, &PROMPT])
                .map(|rows| !rows.is_empty())
                .map_err(|e| e.to_string()),
            _ => (|| {
                let r = redis.as_mut().ok_or("no redis")?;
                let day = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() / 86_400);
                let key = format!("quota:{user}:ai_requests:{day}");
                let sha = sha.as_deref().unwrap_or_default();
                let reply = r
                    .command(&[
                        b"EVALSHA",
                        sha.as_bytes(),
                        b"1",
                        key.as_bytes(),
                        b"1",
                        limit.as_bytes(),
                        ttl.as_bytes(),
                    ])
                    .map_err(|e| e.to_string())?;
                let allowed = matches!(reply, Reply::Int(1));
                if allowed {
                    pg.execute(&insert, &[&user, &PROMPT])
                        .map_err(|e| e.to_string())?;
                }
                Ok(allowed)
            })(),
        };
        let t1 = Instant::now();
        if t0 < warm_end {
            continue;
        }
        match result {
            Ok(allowed) => {
                t.tx += 1;
                if !allowed {
                    t.denied += 1;
                }
                t.lat_us
                    .push((t1 - t0).as_micros().min(u32::MAX as u128) as u32);
            }
            Err(e) => {
                if t.errors == 0 {
                    eprintln!("client {id}: {e}");
                }
                t.errors += 1;
            }
        }
    }
    Ok(t)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

fn main() {
    let o = Arc::new(parse());
    let sha = if o.mode == "two-store" {
        let mut r = Redis::connect(&o.redis).unwrap_or_else(|e| {
            eprintln!("redis at {}: {e}", o.redis);
            std::process::exit(1)
        });
        match r.command(&[b"SCRIPT", b"LOAD", LUA.as_bytes()]) {
            Ok(Reply::Text(s)) => Some(s),
            _ => {
                eprintln!("redis: SCRIPT LOAD failed");
                std::process::exit(1)
            }
        }
    } else {
        None
    };
    let start = Instant::now() + Duration::from_millis(300);
    let handles: Vec<_> = (0..o.clients)
        .map(|id| {
            let (o, sha) = (o.clone(), sha.clone());
            std::thread::spawn(move || client(o, id, sha, start))
        })
        .collect();
    let mut all = Tally::default();
    for h in handles {
        match h.join() {
            Ok(Ok(t)) => {
                all.tx += t.tx;
                all.denied += t.denied;
                all.errors += t.errors;
                all.lat_us.extend(t.lat_us);
            }
            Ok(Err(e)) => {
                eprintln!("client failed: {e}");
                std::process::exit(1)
            }
            Err(_) => std::process::exit(1),
        }
    }
    all.lat_us.sort_unstable();
    println!(
        "{{\"mode\":\"{}\",\"clients\":{},\"sync\":\"{}\",\"tx\":{},\"denied\":{},\"errors\":{},\"seconds\":{},\"tps\":{:.1},\"p50_ms\":{:.3},\"p99_ms\":{:.3}}}",
        o.mode,
        o.clients,
        o.sync,
        all.tx,
        all.denied,
        all.errors,
        o.duration,
        all.tx as f64 / o.duration,
        percentile(&all.lat_us, 50.0),
        percentile(&all.lat_us, 99.0)
    );
}
