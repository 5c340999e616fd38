//! Helpers for aiquota's integration tests: every test gets its own database, cloned from a template that has
//! the extension installed, on the private cluster `make db` starts.

use std::sync::Once;

pub use postgres::{Client, NoTls};

pub mod cut;
pub mod faults;
pub mod http;
pub mod payments;
pub mod proxy;
pub mod sse;

/// The HTTP API's login role, created once per cluster (the same script `scripts/db.sh start` runs).
const API_ROLE_SQL: &str = include_str!("../../scripts/api-role.sql");

/// The cluster to test against: the private one `make db` starts (on `AIQUOTA_PGPORT` when set), unless
/// `AIQUOTA_TEST_DATABASE_URL` names another.
fn base() -> String {
    std::env::var("AIQUOTA_TEST_DATABASE_URL").unwrap_or_else(|_| {
        let port = std::env::var("AIQUOTA_PGPORT").unwrap_or_else(|_| "55432".to_string());
        format!("host=127.0.0.1 port={port} user=postgres")
    })
}

/// Connection string of database `db` on the test cluster.
pub fn url(db: &str) -> String {
    format!("{} dbname={db}", base())
}

/// A new connection to `db`.
pub fn connect(db: &str) -> Client {
    Client::connect(&url(db), NoTls).unwrap_or_else(|e| panic!("connect to {db}: {e}"))
}

static TEMPLATE: Once = Once::new();

/// The template database of this test binary: one per binary (named after it, without cargo's hash), so two
/// test binaries running at the same time never drop each other's template.
fn template() -> String {
    let exe = std::env::current_exe().expect("test binary path");
    let stem = exe
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("tests")
        .to_string();
    let name = stem.rsplit_once('-').map_or(stem.as_str(), |(n, _)| n);
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("aiquota_tmpl_{safe}")
}

/// A fresh database named `t_<name>` with the extension installed. The template is rebuilt once per test
/// binary, so it always carries the extension build that is installed now.
pub fn fresh_db(name: &str) -> String {
    let tmpl = template();
    TEMPLATE.call_once(|| {
        let mut admin = connect("postgres");
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {tmpl} WITH (FORCE)"))
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {tmpl}"))
            .unwrap();
        let mut t = connect(&tmpl);
        t.batch_execute("CREATE EXTENSION aiquota").unwrap();
        t.batch_execute(API_ROLE_SQL).unwrap();
        drop(t);
    });
    let db = format!("t_{name}");
    let mut admin = connect("postgres");
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {db} TEMPLATE {tmpl}"))
        .unwrap();
    db
}

/// Runs `calls` threads, each on its own connection, released together by a barrier; returns their results.
pub fn concurrently<T: Send + 'static>(
    db: &str,
    calls: usize,
    f: impl Fn(&mut Client, usize) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let f = std::sync::Arc::new(f);
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(calls));
    let handles: Vec<_> = (0..calls)
        .map(|i| {
            let (f, barrier, db) = (f.clone(), barrier.clone(), db.to_string());
            std::thread::spawn(move || {
                let mut c = connect(&db);
                barrier.wait();
                f(&mut c, i)
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("worker panicked"))
        .collect()
}

/// A single i64 from a query.
pub fn count(c: &mut Client, sql: &str) -> i64 {
    c.query_one(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

/// A single boolean from a query (`allowed` of a decision).
pub fn allowed(c: &mut Client, sql: &str) -> bool {
    c.query_one(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

/// Asserts that the counters agree with the ledger.
pub fn assert_consistent(c: &mut Client) {
    assert_eq!(
        count(c, "SELECT count(*) FROM quota.verify()"),
        0,
        "quota.verify() found disagreements"
    );
}
