//! The planner never sees one of aiquota's tables as smaller than ten pages.
//!
//! A table that was vacuumed or analysed while it held nothing carries statistics that say so (`reltuples = 0`),
//! and PostgreSQL plans it from its size at that moment: a sequential scan of nothing is the cheapest plan there
//! is. The engine keeps its plans for the life of a backend, and a kept plan is rebuilt only when something
//! invalidates it, not as rows arrive. So a plan made on an empty `quota.reservations` went on scanning every
//! settled reservation on every commit until autovacuum's next `ANALYZE` of the table (docs/operations.md,
//! "Statistics of an empty table"): reserve/commit pairs ran at up to half speed for as long.
//!
//! PostgreSQL already assumes ten pages for a table that was never vacuumed, because an empty table seldom stays
//! empty. This applies the same floor to the engine's tables once they have statistics too: fewer than ten
//! pages are planned as ten pages of rows of the table's width. Every statement of the engine finds its rows
//! by key, and at that size the planner prices a probe by key below a scan; a table that really is small only
//! gets an index probe where a scan of a page or two would have done. Tables outside schema `quota` are left as
//! PostgreSQL estimates them.

use std::ptr;

use pgrx::pg_sys;
use pgrx::prelude::*;

/// PostgreSQL's own floor for a table that was never vacuumed (`table_block_relation_estimate_size`).
const FLOOR_PAGES: pg_sys::BlockNumber = 10;

/// A heap page's room for rows (all of it but the page header), and what each row costs besides its data (its
/// aligned tuple header and its line pointer), computed as `table_block_relation_estimate_size` does.
// SAFETY (both): SizeOfPageHeaderData and MAXALIGN are arithmetic on constants.
const USABLE_BYTES_PER_PAGE: usize =
    pg_sys::BLCKSZ as usize - unsafe { pg_sys::SizeOfPageHeaderData() };
const OVERHEAD_BYTES_PER_ROW: usize =
    unsafe { pg_sys::MAXALIGN(std::mem::offset_of!(pg_sys::HeapTupleHeaderData, t_bits)) }
        + std::mem::size_of::<pg_sys::ItemIdData>();

static mut PREVIOUS: pg_sys::get_relation_info_hook_type = None;

/// Installs the hook; called once from `_PG_init`.
pub fn init() {
    // SAFETY: hooks are installed at library load, before any planning in this backend; the previous hook is
    // kept and called first, so other extensions' hooks keep working.
    unsafe {
        PREVIOUS = pg_sys::get_relation_info_hook;
        pg_sys::get_relation_info_hook = Some(relation_info);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn relation_info(
    root: *mut pg_sys::PlannerInfo,
    relid: pg_sys::Oid,
    inhparent: bool,
    rel: *mut pg_sys::RelOptInfo,
) {
    // SAFETY: called by get_relation_info with the relation locked and `rel` filled in (pages, tuples and its
    // indexes); only those estimates are raised, the same fields PostgreSQL's own estimate wrote.
    unsafe {
        if let Some(previous) = PREVIOUS {
            previous(root, relid, inhparent, rel);
        }
        if inhparent || rel.is_null() || (*rel).pages >= FLOOR_PAGES || !ours(relid) {
            return;
        }
        let data =
            usize::try_from(pg_sys::get_relation_data_width(relid, ptr::null_mut())).unwrap_or(0);
        let rows_per_page = (USABLE_BYTES_PER_PAGE / (data + OVERHEAD_BYTES_PER_ROW)).max(1);
        let floor_rows = f64::from(FLOOR_PAGES) * rows_per_page as f64;
        (*rel).pages = FLOOR_PAGES;
        if (*rel).tuples < floor_rows {
            (*rel).tuples = floor_rows;
        }
        // An index without a predicate holds a row per table row; get_relation_info copied the table's count
        // into it before this hook ran. A partial index keeps its own (smaller) estimate.
        let indexes = (*rel).indexlist;
        for i in 0..pg_sys::list_length(indexes) {
            let index = (*pg_sys::list_nth_cell(indexes, i)).ptr_value as *mut pg_sys::IndexOptInfo;
            if !index.is_null() && (*index).indpred.is_null() {
                (*index).tuples = (*rel).tuples;
            }
        }
    }
}

/// Whether the relation is in schema `quota`.
fn ours(relid: pg_sys::Oid) -> bool {
    // SAFETY: syscache lookups by OID and by name; a missing schema gives InvalidOid, which no relation has.
    unsafe {
        let quota = pg_sys::get_namespace_oid(c"quota".as_ptr(), true);
        quota != pg_sys::InvalidOid && pg_sys::get_rel_namespace(relid) == quota
    }
}
