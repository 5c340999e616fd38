//! The extension's composite result types (`quota.decision`, `quota.reservation`, `quota.settlement`), looked
//! up once per backend.
//!
//! Building a composite by name parses the name (`regtypein`) on every call, which cost a measurable part of a
//! consume. The OIDs are kept per backend instead, and forgotten whenever any `pg_type` entry changes (a syscache
//! invalidation callback), so a `DROP EXTENSION` + `CREATE EXTENSION` in a long-lived session never uses a stale
//! OID.

use std::cell::RefCell;

use pgrx::prelude::*;
use pgrx::PgTupleDesc;

use crate::error::{QuotaError, Result};

thread_local! {
    static OIDS: RefCell<Vec<(&'static str, pg_sys::Oid)>> = const { RefCell::new(Vec::new()) };
}

/// Registers the invalidation callback; called once from `_PG_init`.
pub fn init() {
    // SAFETY: registering a syscache callback is allowed at library load; the callback only clears a
    // backend-local cache and never errors.
    unsafe {
        pg_sys::CacheRegisterSyscacheCallback(
            pg_sys::SysCacheIdentifier::TYPEOID as i32,
            Some(forget),
            pg_sys::Datum::from(0),
        );
    }
}

unsafe extern "C-unwind" fn forget(_arg: pg_sys::Datum, _cacheid: i32, _hash: u32) {
    // try_borrow_mut: an invalidation can arrive while a lookup below holds the borrow; then the lookup's result
    // is about to be stored and the next invalidation (or the next call's lookup) settles it.
    OIDS.with(|o| {
        if let Ok(mut o) = o.try_borrow_mut() {
            o.clear();
        }
    });
}

/// A new, all-NULL value of the composite type `name` (schema-qualified).
pub fn composite(name: &'static str) -> Result<PgHeapTuple<'static, AllocatedByRust>> {
    let cached = OIDS.with(|o| {
        o.borrow()
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, oid)| *oid)
    });
    let oid = match cached {
        Some(oid) => oid,
        None => {
            let desc = PgTupleDesc::for_composite_type(name)
                .ok_or_else(|| QuotaError::Internal(format!("type {name} does not exist")))?;
            let oid = desc.oid();
            OIDS.with(|o| o.borrow_mut().push((name, oid)));
            oid
        }
    };
    PgHeapTuple::new_composite_type_by_oid(oid)
        .map_err(|e| QuotaError::Internal(format!("{name}: {e}")))
}
