//! The library and the database must agree on the extension's version before the engine runs.
//!
//! Installing a new `aiquota.so` replaces the library for every database at once, while each database keeps its
//! extension's SQL objects at the old version until `ALTER EXTENSION aiquota UPDATE` runs there. The engine's
//! statements are written for its own version's tables, so in between they would fail on whatever changed
//! (a missing column, 42703). Instead the first call in a backend compares the versions and refuses with an error
//! that names the fix and that the API answers with 503 + Retry-After (57P03), until the update has run.

use pgrx::spi::SpiClient;

use crate::error::{QuotaError, Result};

/// This library's version, the one its statements are written for.
pub const LIBRARY: &str = env!("CARGO_PKG_VERSION");

/// Ok when this database's extension is at the library's version.
pub fn check(client: &SpiClient<'_>) -> Result<()> {
    let table = client.select(
        "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'aiquota'",
        None,
        &[],
    )?;
    let database: Option<String> = table.first().get(1)?;
    match database {
        Some(v) if v != LIBRARY => Err(QuotaError::VersionMismatch {
            library: LIBRARY,
            database: v,
        }),
        _ => Ok(()),
    }
}
