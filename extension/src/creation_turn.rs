//! The turn to create a user's counter rows of one meter (`statements/serialize_counters.sql`).
//!
//! Sessions that create counter rows for one user and meter take turns, so that each one's `add_counters.sql`
//! sees the rows the others created and can say whether a row is the meter's only one (`solo`). A session that
//! asks for the turn already holds the counter rows its `lock.sql` locked, so the holder of the turn must never
//! wait for a row lock: the two would wait for each other. The turn is therefore a session-level advisory lock
//! that a creator gives back at once when it finds a row it does not hold (one the previous holder created after
//! this session's `lock.sql`): the engine then locks the rows again without the turn, in period order like every
//! call, and asks again. A turn that was used is kept until the transaction ends, so that the next creator's
//! statements see this one's rows; the transaction callback here gives it back then, committed or not (and
//! hands it to a prepared transaction, which keeps it until COMMIT PREPARED).

use std::cell::RefCell;

use pgrx::prelude::*;
use pgrx::spi::SpiClient;

use crate::error::Result;
use crate::statements::Prepared;

/// The advisory lock's two keys (hashes of the user and the meter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Turn(i32, i32);

thread_local! {
    /// Every turn this transaction took and still holds (one entry per acquisition: the lock counts them).
    static HELD: RefCell<Vec<Turn>> = const { RefCell::new(Vec::new()) };
}

/// Registers the transaction callback; called once from `_PG_init`.
pub fn init() {
    // SAFETY: registering a callback is allowed at library load; it only releases this backend's own advisory
    // locks and never raises an error.
    unsafe {
        pg_sys::RegisterXactCallback(Some(transaction_ended), std::ptr::null_mut());
    }
}

/// Waits for the turn of `user` on `meter` and takes it.
pub fn take(client: &mut SpiClient<'_>, st: &Prepared, user: &str, meter: &str) -> Result<Turn> {
    let row = client
        .update(&st.serialize_counters, None, &[user.into(), meter.into()])?
        .first();
    let turn = Turn(row.get(1)?.unwrap_or(0), row.get(2)?.unwrap_or(0));
    HELD.with(|h| h.borrow_mut().push(turn));
    Ok(turn)
}

/// Gives a turn back before the transaction ends (it was not used).
pub fn give_back(turn: Turn) {
    HELD.with(|h| {
        let mut held = h.borrow_mut();
        if let Some(i) = held.iter().rposition(|t| *t == turn) {
            held.remove(i);
            release(turn);
        }
    });
}

fn release(Turn(user_key, meter_key): Turn) {
    // SAFETY: pg_advisory_unlock_int4 takes two int4 arguments and returns a boolean; it only warns (never
    // errors) when the lock is not held, and this backend took it.
    unsafe {
        pgrx::direct_function_call::<bool>(
            pg_sys::pg_advisory_unlock_int4,
            &[user_key.into_datum(), meter_key.into_datum()],
        );
    }
}

unsafe extern "C-unwind" fn transaction_ended(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    match event {
        pg_sys::XactEvent::XACT_EVENT_COMMIT | pg_sys::XactEvent::XACT_EVENT_ABORT => {
            let held = HELD.with(|h| std::mem::take(&mut *h.borrow_mut()));
            for turn in held {
                release(turn);
            }
        }
        // A prepared transaction's rows stay uncommitted after this session moves on, so its turns must last
        // until COMMIT PREPARED: each becomes a transaction-level lock, which PREPARE hands to the prepared
        // transaction (taken while the session-level one is still held, so there is no moment without it; the
        // session-level one then goes, since PREPARE refuses to carry both on one object).
        pg_sys::XactEvent::XACT_EVENT_PRE_PREPARE => {
            let held = HELD.with(|h| std::mem::take(&mut *h.borrow_mut()));
            for turn in held {
                hold_for_transaction(turn);
                release(turn);
            }
        }
        _ => {}
    }
}

fn hold_for_transaction(Turn(user_key, meter_key): Turn) {
    // SAFETY: pg_advisory_xact_lock_int4 takes two int4 arguments; this backend holds the same lock at session
    // level, so it is granted at once.
    unsafe {
        pgrx::direct_function_call_as_datum(
            pg_sys::pg_advisory_xact_lock_int4,
            &[user_key.into_datum(), meter_key.into_datum()],
        );
    }
}
