//! `#[pg_test]`s: each runs inside PostgreSQL, in its own transaction that is rolled back afterwards.
//!
//! The clock is pinned with `SET LOCAL quota.now` so window arithmetic is checked against exact instants.

// Each file is a module of its own that declares its `#[pg_schema] mod tests` inline: `cargo pgrx test` calls a
// test as `tests.<name>()`, so every one of them must land in SQL schema `tests` (pgrx-tests' `run_test`), and
// `#[pg_schema]` cannot expand a file module itself. The files live in `tests/` beside this one.
#[path = "tests/admin.rs"]
mod admin;
#[path = "tests/analytics.rs"]
mod analytics;
#[path = "tests/bad_input.rs"]
mod bad_input;
#[path = "tests/consume.rs"]
mod consume;
#[path = "tests/credits.rs"]
mod credits;
#[path = "tests/payments.rs"]
mod payments;
#[path = "tests/plans.rs"]
mod plans;
#[path = "tests/reservations.rs"]
mod reservations;
#[path = "tests/roles.rs"]
mod roles;
#[path = "tests/rollup.rs"]
mod rollup;
#[path = "tests/search_path.rs"]
mod search_path;
#[path = "tests/windows.rs"]
mod windows;

/// Helpers shared by the test modules.
#[cfg(any(test, feature = "pg_test"))]
pub(crate) mod support {
    use pgrx::prelude::*;

    /// Runs SQL that must succeed.
    pub fn run(sql: &str) {
        Spi::run(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Pins aiquota's clock for the rest of the test's transaction.
    pub fn at(ts: &str) {
        run(&format!("SET LOCAL quota.now = '{ts}'"));
    }

    /// One value from a query.
    pub fn one<T: FromDatum + IntoDatum>(sql: &str) -> Option<T> {
        Spi::get_one::<T>(sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Consumes and returns (allowed, used, status, reason, retry_after_s, period).
    pub fn consume(
        args: &str,
    ) -> (
        bool,
        i64,
        String,
        Option<String>,
        Option<i32>,
        Option<String>,
    ) {
        let sql = format!(
            "SELECT allowed, used, status, reason, retry_after_s, period FROM quota.consume({args})"
        );
        Spi::connect(|c| {
            let row = c
                .select(&sql, None, &[])
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .first();
            (
                row.get::<bool>(1).unwrap().unwrap(),
                row.get::<i64>(2).unwrap().unwrap(),
                row.get::<String>(3).unwrap().unwrap(),
                row.get::<String>(4).unwrap(),
                row.get::<i32>(5).unwrap(),
                row.get::<String>(6).unwrap(),
            )
        })
    }

    /// Asserts that `stmt` fails with SQLSTATE `code` (and, being an error, changes nothing).
    pub fn expect_sqlstate(stmt: &str, code: &str) {
        let body = format!(
            "DO $t$ BEGIN {stmt}; RAISE EXCEPTION 'expected SQLSTATE {code}, but it succeeded'; \
             EXCEPTION WHEN SQLSTATE '{code}' THEN NULL; \
             WHEN OTHERS THEN IF SQLSTATE = 'P0001' AND SQLERRM LIKE 'expected SQLSTATE%' THEN RAISE; END IF; \
             RAISE EXCEPTION 'expected SQLSTATE {code}, got %: %', SQLSTATE, SQLERRM; END $t$"
        );
        run(&body);
    }
}
