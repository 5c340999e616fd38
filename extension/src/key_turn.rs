//! The turn of one idempotency key: calls that carry the same user and key take turns, so that the second one
//! sees the first one's outcome (the key's row, written with its decision) instead of charging again.
//!
//! With the turn, the key's row is written once, with the decision, after an allowed charge
//! (`statements/record_key.sql`), and a denial writes none. Before 0.7.0 a call claimed the key first (an
//! `INSERT ... ON CONFLICT DO NOTHING` of the row without its decision, which a second call waited on) and then
//! stored the decision (an UPDATE) or deleted the row (a denial): two writes of one row per keyed call, and the
//! API keys every consume.
//!
//! The turn is a transaction-level lock of PostgreSQL's advisory kind in a space of its own: `locktag_field4`,
//! which `pg_advisory_lock` and its relatives set to 1 or 2 and never to [`SPACE`], so no application's advisory
//! lock and no creation turn (`creation_turn.rs`) can be the same lock. Like any transaction-level lock it is
//! held until the transaction ends (committed or not), given back when the subtransaction that took it aborts,
//! and handed to a prepared transaction. It shows in `pg_locks` as `locktype = 'advisory'`, `objsubid = 16721`.
//!
//! The turn only helps a statement whose snapshot is taken after the turn was granted: under READ COMMITTED,
//! where each of the engine's statements takes its own. Under REPEATABLE READ or SERIALIZABLE the snapshot may
//! predate the other call's commit, so there the engine still claims the key before charging
//! (`statements/claim_key.sql`, after taking the turn), and PostgreSQL refuses the second call with 40001 rather
//! than let it charge again.

use pgrx::pg_sys;

/// The lock space of key turns (`locktag_field4`; PostgreSQL's own advisory functions use 1 and 2).
pub const SPACE: u16 = 0x4151;

/// Waits for the turn of `user`'s `key` and takes it until the transaction ends.
pub fn take(user: &str, key: &str) {
    // SAFETY: MyDatabaseId is this backend's database, set once at connection start.
    let database = unsafe { pg_sys::MyDatabaseId };
    let tag = pg_sys::LOCKTAG {
        locktag_field1: database.to_u32(),
        locktag_field2: fnv1a(user.as_bytes()),
        locktag_field3: fnv1a(key.as_bytes()),
        locktag_field4: SPACE,
        locktag_type: pg_sys::LockTagType::LOCKTAG_ADVISORY as u8,
        locktag_lockmethodid: pg_sys::USER_LOCKMETHOD as u8,
    };
    // SAFETY: the tag is fully initialised and lives across the call; a transaction-level lock needs a
    // transaction, which every engine call runs in. A wait ends in the grant, or in an error that PostgreSQL
    // raises (deadlock, lock_timeout, statement_timeout, cancel) and pgrx turns into this call's error.
    unsafe {
        pg_sys::LockAcquire(
            &tag,
            pg_sys::ExclusiveLock as pg_sys::LOCKMODE,
            false,
            false,
        );
    }
}

/// Whether each statement takes a fresh snapshot (READ COMMITTED), so that one run after [`take`] sees what the
/// turn's previous holder committed.
pub fn snapshot_per_statement() -> bool {
    // SAFETY: reads a backend-local integer.
    unsafe { pg_sys::XactIsoLevel < pg_sys::XACT_REPEATABLE_READ as i32 }
}

/// 32-bit FNV-1a: the same in every backend (all load this library), and two different keys of one user share
/// a turn only by a collision, which costs a wait, never a wrong answer (the row's primary key decides).
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::fnv1a;

    #[test]
    fn fnv1a_matches_the_reference_values() {
        assert_eq!(fnv1a(b""), 0x811c_9dc5);
        assert_eq!(fnv1a(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a(b"foobar"), 0xbf9c_f968);
    }
}
