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

/// A value of one of the extension's composite types being filled in: the fields are collected as datums and the
/// tuple is formed once at the end (setting fields on a formed tuple one by one rebuilds it every time).
pub struct Composite {
    desc: PgTupleDesc<'static>,
    values: Vec<Option<pg_sys::Datum>>,
}

/// A new, all-NULL value of the composite type `name` (schema-qualified).
pub fn composite(name: &'static str) -> Result<Composite> {
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
    let desc = PgTupleDesc::for_composite_type_by_oid(oid)
        .ok_or_else(|| QuotaError::Internal(format!("type {name} is not a composite type")))?;
    let values = vec![None; desc.len()];
    Ok(Composite { desc, values })
}

impl Composite {
    /// Sets field `field` (which must exist, with a type `T` converts to).
    pub fn set<T: IntoDatum>(&mut self, field: &str, value: T) -> Result<()> {
        let found = self
            .desc
            .iter()
            .enumerate()
            .find(|(_, a)| !a.is_dropped() && a.name() == field)
            .map(|(i, a)| (i, a.type_oid().value()));
        let Some((i, oid)) = found else {
            return Err(QuotaError::Internal(format!("no field {field}")));
        };
        if !T::is_compatible_with(oid) {
            return Err(QuotaError::Internal(format!("field {field}: wrong type")));
        }
        self.values[i] = value.into_datum();
        Ok(())
    }

    /// Forms the tuple.
    pub fn finish(self) -> Result<PgHeapTuple<'static, AllocatedByRust>> {
        // SAFETY: one datum (or NULL) per attribute of `desc`, each converted by the IntoDatum of a type that
        // `set` checked is compatible with the attribute's type.
        unsafe { PgHeapTuple::from_datums(self.desc, self.values) }
            .map_err(|e| QuotaError::Internal(format!("composite: {e}")))
    }
}
