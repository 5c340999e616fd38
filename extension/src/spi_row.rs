//! Reading the bigint columns of a statement's one result row straight from the tuple.
//!
//! pgrx's typed getter (`SpiHeapTupleData::get`) makes two guarded calls into PostgreSQL per column (the column's
//! type, then its value) and switches memory contexts around each; for the three bigints of a fast-path charge
//! that was about 1 % of a consume (docs/benchmarks.md). A bigint is passed by value, so reading it needs no
//! call at all: the tuple and its descriptor are plain memory, read here with pgrx's port of `heap_getattr`.

use pgrx::pg_sys;
use pgrx::spi::SpiTupleTable;

use crate::error::{QuotaError, Result};

/// Columns `1..=N` of the first row of `table` (the result of the statement just run), as bigints (None for
/// NULL); None when there is no row. A column that is not a bigint is an internal error, never a misread.
pub fn int8_columns<const N: usize>(table: &SpiTupleTable<'_>) -> Result<Option<[Option<i64>; N]>> {
    if table.is_empty() {
        return Ok(None);
    }
    let wrong = || QuotaError::Internal(format!("expected {N} bigint columns"));
    // SAFETY: `table` borrows the SPI connection, so no statement ran since the one whose result it holds, and
    // SPI_tuptable is that result (non-empty, checked above and again below). The descriptor lists `natts`
    // attributes, of which the first N are checked to be int8 (by value on every 64-bit platform, which is all
    // pgrx supports) before heap_getattr reads them from the first tuple.
    unsafe {
        let tuptable = pg_sys::SPI_tuptable;
        if tuptable.is_null() || (*tuptable).numvals == 0 {
            return Err(wrong());
        }
        let desc = (*tuptable).tupdesc;
        let natts = usize::try_from((*desc).natts).map_err(|_| wrong())?;
        if natts < N {
            return Err(wrong());
        }
        let attrs = (*desc).attrs.as_slice(natts);
        let tuple = *(*tuptable).vals;
        let mut out = [None; N];
        for (i, slot) in out.iter_mut().enumerate() {
            if attrs[i].atttypid != pg_sys::INT8OID {
                return Err(wrong());
            }
            let mut isnull = false;
            let datum = pg_sys::heap_getattr(tuple, i as i32 + 1, desc, &mut isnull);
            *slot = (!isnull).then_some(datum.value() as i64);
        }
        Ok(Some(out))
    }
}
