//! The extension's one error type, mapped to a SQLSTATE in one place.
//!
//! Every error a caller can provoke with bad input has its own SQLSTATE so that SQL callers and the HTTP API can
//! react to the class of failure without parsing messages.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

/// Everything that can go wrong inside aiquota's Rust functions.
#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    /// A required argument was NULL (22004 null_value_not_allowed).
    #[error("{0} must not be NULL")]
    Null(&'static str),
    /// An argument has an invalid value (22023 invalid_parameter_value).
    #[error("{0}")]
    Invalid(String),
    /// A named plan does not exist (P0002 no_data_found).
    #[error("plan \"{0}\" does not exist")]
    UnknownPlan(String),
    /// An idempotency key was reused for a different request (42710 duplicate_object: the key exists already,
    /// for another request), so callers can tell it from bad input without reading the message.
    #[error("idempotency key \"{0}\" was already used for a different request")]
    IdempotencyMismatch(String),
    /// No reservation has this id (P0002 no_data_found).
    #[error("reservation {0} does not exist")]
    UnknownReservation(String),
    /// The reservation was already committed or released, or expired (55000 object_not_in_prerequisite_state).
    #[error("{0}")]
    Settled(String),
    /// The library is a different version than the database's extension (57P03 cannot_connect_now: the
    /// database is not ready for this library until `ALTER EXTENSION aiquota UPDATE` runs; retrying later works).
    #[error("the aiquota library is version {library}, but this database has the extension at version {database}")]
    VersionMismatch {
        library: &'static str,
        database: String,
    },
    /// An SPI call failed in a way that is our bug, not the caller's (XX000 internal_error).
    #[error("internal error: {0}")]
    Internal(String),
}

/// Short alias used across the extension.
pub type Result<T> = std::result::Result<T, QuotaError>;

impl QuotaError {
    /// The SQLSTATE this error is reported with.
    pub fn sqlstate(&self) -> PgSqlErrorCode {
        match self {
            QuotaError::Null(_) => PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            QuotaError::Invalid(_) => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            QuotaError::IdempotencyMismatch(_) => PgSqlErrorCode::ERRCODE_DUPLICATE_OBJECT,
            QuotaError::VersionMismatch { .. } => PgSqlErrorCode::ERRCODE_CANNOT_CONNECT_NOW,
            QuotaError::UnknownPlan(_) | QuotaError::UnknownReservation(_) => {
                PgSqlErrorCode::ERRCODE_NO_DATA_FOUND
            }
            QuotaError::Settled(_) => PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            QuotaError::Internal(_) => PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        }
    }

    fn hint(&self) -> Option<&'static str> {
        match self {
            QuotaError::IdempotencyMismatch(_) => {
                Some("Use a new idempotency key for a request with a different meter, amount or metadata.")
            }
            QuotaError::UnknownPlan(_) => Some("List plans with: SELECT key FROM quota.plans;"),
            QuotaError::VersionMismatch { .. } => Some(
                "Run ALTER EXTENSION aiquota UPDATE in this database (docs/operations.md, \"Upgrading\").",
            ),
            _ => None,
        }
    }
}

/// The boundary: a `#[pg_extern]` returns `Result<T, ErrorReport>` and pgrx raises the report with its SQLSTATE
/// and hint, aborting the current transaction (or subtransaction).
impl From<QuotaError> for ErrorReport {
    fn from(e: QuotaError) -> Self {
        let report = ErrorReport::new(e.sqlstate(), e.to_string(), "aiquota");
        match e.hint() {
            Some(hint) => report.set_hint(hint),
            None => report,
        }
    }
}

impl From<pgrx::spi::SpiError> for QuotaError {
    fn from(e: pgrx::spi::SpiError) -> Self {
        QuotaError::Internal(e.to_string())
    }
}
