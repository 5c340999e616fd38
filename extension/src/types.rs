//! The extension's composite result types (`quota.decision`, `quota.reservation`, `quota.settlement`), looked
//! up once per backend, and formed once per call.
//!
//! Building a composite by name parses the name (`regtypein`) on every call, which cost a measurable part of a
//! consume. The OIDs and attribute lists are kept per backend instead, and forgotten whenever any `pg_type`
//! entry changes (a syscache invalidation callback), so a `DROP EXTENSION` + `CREATE EXTENSION` in a long-lived
//! session never uses a stale OID. The tuple is formed with the type cache's own descriptor, pinned for the
//! moment (pgrx's composite builder copied the descriptor and then the tuple, per call), and the `limits`
//! jsonb is built in place (`jsonb.rs`) instead of being printed as text and parsed again.

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
    oid: pg_sys::Oid,
    fields: Rc<[(String, pg_sys::Oid)]>,
    values: Vec<Option<pg_sys::Datum>>,
    /// Where the next field is looked for first: callers set fields in the type's order, so the search by name
    /// usually succeeds at once.
    next: usize,
}

/// Forms a value of the composite type `name` (schema-qualified): `fill` sets its fields by name, and the tuple
/// is formed once. The type's descriptor is looked up once per call, when the tuple is formed; should the type
/// have gained or lost an attribute since its attribute list was kept (ALTER TYPE within this session), the
/// list is read again and the value filled again.
pub fn form(name: &'static str, fill: impl Fn(&mut Composite) -> Result<()>) -> Result<Row> {
    for _ in 0..2 {
        let mut value = empty(name)?;
        fill(&mut value)?;
        if let Some(row) = value.finish()? {
            return Ok(row);
        }
        OIDS.with(|o| o.borrow_mut().retain(|k| k.name != name));
    }
    Err(QuotaError::Internal(format!("type {name} keeps changing")))
}

/// A new, all-NULL value of `name`, by the attribute list kept for it (read and kept when missing).
fn empty(name: &'static str) -> Result<Composite> {
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
    let values = vec![None; fields.len()];
    Ok(Composite {
        oid,
        fields,
        values,
        next: 0,
    })
}

/// Runs `f` on the type cache's descriptor of the composite type `oid`, pinned for the duration (no copy: the
/// type cache keeps it, and a descriptor copied per call cost a measurable part of a consume).
fn with_descriptor<R>(oid: pg_sys::Oid, f: impl FnOnce(pg_sys::TupleDesc) -> R) -> Result<R> {
    // SAFETY: lookup_rowtype_tupdesc raises an error for a type that is not composite (pgrx turns it into a
    // panic caught at the function boundary) and returns a pinned, valid descriptor otherwise, registered with
    // the current resource owner; `f` only reads it. The pin is released here, or, should `f` raise an error
    // (out of memory), by the resource owner when that error aborts the (sub)transaction.
    unsafe {
        let desc = pg_sys::lookup_rowtype_tupdesc(oid, -1);
        if desc.is_null() {
            return Err(QuotaError::Internal(format!(
                "type {oid:?} is not composite"
            )));
        }
        let out = f(desc);
        pg_sys::DecrTupleDescRefCount(desc);
        Ok(out)
    }
}

impl Composite {
    /// Sets field `field` (which must exist, with a type `T` converts to).
    pub fn set<T: IntoDatum>(&mut self, field: &str, value: T) -> Result<()> {
        let (i, oid) = self.field(field)?;
        if !T::is_compatible_with(oid) {
            return Err(QuotaError::Internal(format!("field {field}: wrong type")));
        }
        self.values[i] = value.into_datum();
        Ok(())
    }

    /// Sets the jsonb field `field` to the object `{"key": number, ...}`.
    pub fn set_int_object(&mut self, field: &str, pairs: &[(String, i64)]) -> Result<()> {
        let (i, oid) = self.field(field)?;
        if oid != pg_sys::JSONBOID {
            return Err(QuotaError::Internal(format!("field {field}: not jsonb")));
        }
        self.values[i] = Some(crate::jsonb::int_object(pairs));
        Ok(())
    }

    fn field(&mut self, field: &str) -> Result<(usize, pg_sys::Oid)> {
        let i = match self.fields.get(self.next) {
            Some((name, _)) if name == field => self.next,
            _ => self
                .fields
                .iter()
                .position(|(name, _)| name == field)
                .ok_or_else(|| QuotaError::Internal(format!("no field {field}")))?,
        };
        self.next = i + 1;
        Ok((i, self.fields[i].1))
    }

    /// Forms the tuple, as the composite datum a function returns; None when the type no longer has the
    /// attributes the value was filled for.
    fn finish(self) -> Result<Option<Row>> {
        let mut datums: Vec<pg_sys::Datum> = self
            .values
            .iter()
            .map(|v| v.unwrap_or(pg_sys::Datum::from(0)))
            .collect();
        let mut nulls: Vec<bool> = self.values.iter().map(Option::is_none).collect();
        let formed = with_descriptor(self.oid, |desc| {
            // SAFETY: the descriptor is pinned; `datums` and `nulls` hold one entry per attribute (checked
            // against natts), each converted by the IntoDatum of a type that `set` checked is compatible with
            // the attribute's type. heap_form_tuple copies the values into memory of the current context
            // (the caller's: engine calls finish after SPI finished) and stamps the type's OID on the tuple.
            unsafe {
                if (*desc).natts as usize != datums.len() {
                    return None;
                }
                let tuple = pg_sys::heap_form_tuple(desc, datums.as_mut_ptr(), nulls.as_mut_ptr());
                Some(pg_sys::HeapTupleHeaderGetDatum((*tuple).t_data))
            }
        })?;
        Ok(formed.map(Row))
    }
}

/// A formed value of one of the extension's composite types, as the C entry points return it (their SQL
/// declarations, written by hand, name the type).
pub struct Row(pg_sys::Datum);

// SAFETY: the SQL that pgrx would generate for it (a composite) is never used: the entry points are declared with
// `sql = false` and their SQL, written by hand, names the composite type.
unsafe impl pgrx::pgrx_sql_entity_graph::metadata::SqlTranslatable for Row {
    const TYPE_IDENT: &'static str = pgrx::pgrx_resolved_type!(Row);
    const TYPE_ORIGIN: pgrx::pgrx_sql_entity_graph::metadata::TypeOrigin =
        pgrx::pgrx_sql_entity_graph::metadata::TypeOrigin::External;
    const ARGUMENT_SQL: std::result::Result<
        pgrx::pgrx_sql_entity_graph::metadata::SqlMappingRef,
        pgrx::pgrx_sql_entity_graph::metadata::ArgumentError,
    > = Ok(pgrx::pgrx_sql_entity_graph::metadata::SqlMappingRef::Composite);
    const RETURN_SQL: std::result::Result<
        pgrx::pgrx_sql_entity_graph::metadata::ReturnsRef,
        pgrx::pgrx_sql_entity_graph::metadata::ReturnsError,
    > = Ok(pgrx::pgrx_sql_entity_graph::metadata::ReturnsRef::One(
        pgrx::pgrx_sql_entity_graph::metadata::SqlMappingRef::Composite,
    ));
}

// SAFETY: the datum is a composite formed by `Composite::finish` in the memory context of the function call,
// which outlives the call's return.
unsafe impl pgrx::callconv::BoxRet for Row {
    unsafe fn box_into<'fcx>(
        self,
        fcinfo: &mut pgrx::callconv::FcInfo<'fcx>,
    ) -> pgrx::datum::Datum<'fcx> {
        // SAFETY: see the impl.
        unsafe { fcinfo.return_raw_datum(self.0) }
    }
}
