//! The extension's composite result types (`quota.decision`, `quota.reservation`, `quota.settlement`), looked
//! up once per backend.
//!
//! Building a composite by name parses the name (`regtypein`) on every call, which cost a measurable part of a
//! consume. The OIDs are kept per backend instead, and forgotten whenever any `pg_type` entry changes (a syscache
//! invalidation callback), so a `DROP EXTENSION` + `CREATE EXTENSION` in a long-lived session never uses a stale
//! OID.

use std::cell::RefCell;
use std::rc::Rc;

use pgrx::prelude::*;
use pgrx::PgTupleDesc;

use crate::error::{QuotaError, Result};

/// One composite type as looked up: its OID and, per attribute in order, the name (empty when dropped) and type.
struct Known {
    name: &'static str,
    oid: pg_sys::Oid,
    fields: Rc<[(String, pg_sys::Oid)]>,
}

thread_local! {
    static OIDS: RefCell<Vec<Known>> = const { RefCell::new(Vec::new()) };
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
/// tuple is formed once at the end (setting fields on a formed tuple one by one rebuilds it every time). Fields
/// are found by name in the attribute list kept with the OID, not by walking the tuple descriptor per field.
pub struct Composite {
    desc: PgTupleDesc<'static>,
    fields: Rc<[(String, pg_sys::Oid)]>,
    values: Vec<Option<pg_sys::Datum>>,
}

/// A new, all-NULL value of the composite type `name` (schema-qualified).
pub fn composite(name: &'static str) -> Result<Composite> {
    match build(name)? {
        Some(c) => Ok(c),
        // The type gained or lost an attribute since it was looked up (ALTER TYPE within this session): look
        // it up again.
        None => {
            OIDS.with(|o| o.borrow_mut().retain(|k| k.name != name));
            build(name)?.ok_or_else(|| QuotaError::Internal(format!("type {name} keeps changing")))
        }
    }
}

fn build(name: &'static str) -> Result<Option<Composite>> {
    let cached = OIDS.with(|o| {
        o.borrow()
            .iter()
            .find(|k| k.name == name)
            .map(|k| (k.oid, k.fields.clone()))
    });
    let (oid, fields) = match cached {
        Some(known) => known,
        None => {
            let desc = PgTupleDesc::for_composite_type(name)
                .ok_or_else(|| QuotaError::Internal(format!("type {name} does not exist")))?;
            let fields: Rc<[(String, pg_sys::Oid)]> = desc
                .iter()
                .map(|a| {
                    let field = if a.is_dropped() { "" } else { a.name() };
                    (field.to_string(), a.type_oid().value())
                })
                .collect();
            let oid = desc.oid();
            OIDS.with(|o| {
                o.borrow_mut().push(Known {
                    name,
                    oid,
                    fields: fields.clone(),
                })
            });
            (oid, fields)
        }
    };
    let desc = PgTupleDesc::for_composite_type_by_oid(oid)
        .ok_or_else(|| QuotaError::Internal(format!("type {name} is not a composite type")))?;
    if desc.len() != fields.len() {
        return Ok(None);
    }
    let values = vec![None; fields.len()];
    Ok(Some(Composite {
        desc,
        fields,
        values,
    }))
}

impl Composite {
    /// Sets field `field` (which must exist, with a type `T` converts to).
    pub fn set<T: IntoDatum>(&mut self, field: &str, value: T) -> Result<()> {
        let found = self
            .fields
            .iter()
            .position(|(name, _)| name == field)
            .map(|i| (i, self.fields[i].1));
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
