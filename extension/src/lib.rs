//! aiquota: per-user AI usage quotas inside PostgreSQL.
//!
//! The SQL surface lives in `sql/*.sql` (reviewable as SQL); Rust holds the hot path (`consume`), validation,
//! window decisions and the text a person reads.

use pgrx::prelude::*;

mod api;
mod attempt;
mod burst;
mod clock;
mod creation_turn;
mod decision;
mod engine;
mod error;
mod events;
mod gucs;
mod jsonb;
mod key_turn;
mod meter_cache;
mod period;
mod reservations;
mod search_path;
mod spi_row;
mod statements;
mod table_floor;
mod types;
mod validate;
mod version;

#[cfg(any(test, feature = "pg_test"))]
mod tests;

::pgrx::pg_module_magic!(name, version);

extension_sql_file!("../sql/schema.sql", name = "schema", bootstrap);
extension_sql_file!("../sql/engine.sql", name = "engine");
extension_sql_file!("../sql/limits.sql", name = "limits", requires = ["engine"]);
extension_sql_file!("../sql/cache.sql", name = "cache", requires = ["engine"]);
extension_sql_file!("../sql/admin.sql", name = "admin", requires = ["engine"]);
extension_sql_file!("../sql/credits.sql", name = "credits", requires = ["admin"]);
extension_sql_file!(
    "../sql/analytics.sql",
    name = "analytics",
    requires = ["admin"]
);
extension_sql_file!(
    "../sql/payments.sql",
    name = "payments",
    requires = ["admin"]
);
extension_sql_file!(
    "../sql/roles.sql",
    name = "roles",
    requires = [
        "admin",
        "credits",
        "analytics",
        "payments",
        "limits",
        "cache"
    ]
);
extension_sql_file!("../sql/defaults.sql", name = "defaults", finalize);

/// Registers the GUCs, the caches' invalidation callbacks and the planner's table floor when the library loads.
#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    gucs::init();
    types::init();
    meter_cache::init();
    creation_turn::init();
    table_floor::init();
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
