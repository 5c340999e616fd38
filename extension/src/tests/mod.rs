//! `#[pg_test]`s: each runs inside PostgreSQL, in its own transaction that is rolled back afterwards.
//!
//! The clock is pinned with `SET LOCAL quota.now` so window arithmetic is checked against exact instants.

// The test files are included (not `mod`-declared) because `#[pg_schema]` cannot expand file modules.
#[pgrx::pg_schema]
mod tests {
    use crate::tests::support::*;
    use pgrx::prelude::*;

    include!("tests/admin.rs");
    include!("tests/analytics.rs");
    include!("tests/bad_input.rs");
    include!("tests/consume.rs");
    include!("tests/credits.rs");
    include!("tests/payments.rs");
    include!("tests/plans.rs");
    include!("tests/reservations.rs");
    include!("tests/roles.rs");
    include!("tests/windows.rs");
}

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
