//! The search path every engine entry point runs its statements under, pinned by the engine itself.
//!
//! The engine's functions are `SECURITY DEFINER`: they run as the extension's owner, so nothing a caller creates
//! may take part in their statements. Every name in them is schema-qualified, but operators and functions are
//! still resolved through the search path when a statement is prepared (and again when a kept plan is
//! revalidated): a caller whose path puts its own schema first could otherwise substitute its own `+` for
//! `pg_catalog`'s. A `SET search_path` clause on the function pins it too, but PostgreSQL applies that clause as
//! a configuration change on every call, twice (set, then restore), and each one makes the next name lookup
//! recompute the whole path: about a twentieth of a consume (docs/benchmarks.md). An override search path is
//! the same pin without the configuration machinery: only `pg_catalog`, not even the caller's temporary schema,
//! and PostgreSQL keeps it for exactly the duration of the call (it is popped below, or by the (sub)transaction
//! abort that an error causes).

use pgrx::pg_sys;

/// Runs `f` with the search path set to `pg_catalog` alone.
pub fn pinned<R>(f: impl FnOnce() -> R) -> R {
    let mut path = pg_sys::OverrideSearchPath {
        schemas: std::ptr::null_mut(),
        addCatalog: true,
        addTemp: false,
        generation: 0,
    };
    // SAFETY: called inside a transaction (every entry point is); PushOverrideSearchPath copies what it needs.
    unsafe { pg_sys::PushOverrideSearchPath(&mut path) };
    let out = f();
    // SAFETY: pops the entry pushed above: `f` leaves the override stack and the transaction nesting level as it
    // found them (the engine opens no subtransaction; an error never returns here, and the abort it causes
    // removes the entry instead).
    unsafe { pg_sys::PopOverrideSearchPath() };
    out
}
