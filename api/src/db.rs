//! The connection pool, the one place that turns a PostgreSQL error into a [`DbError`] by SQLSTATE, the
//! retry rule for transient failures, and the request deadline applied to every statement.
//!
//! Every pooled connection runs as the `quota_api` group role (`SET ROLE` once, when the connection is
//! made): the login role `aiquota_api` is `NOINHERIT`, so a connection can call only what `quota_api` may
//! until an admin route switches to `quota_admin`, or a payment route to `quota_payments`, for one transaction
//! (`SET LOCAL ROLE`, see [`role_tx`]).
//!
//! **Certain outcomes.** A statement gets what is left of the request deadline after the pool wait. When
//! the deadline passes, [`Db::run`] sends PostgreSQL a cancel request and keeps waiting for the statement's
//! own answer (a grace of one more request timeout): either it finished (the client gets the result) or it
//! was cancelled (`57014`, rolled back: `503` + `Retry-After`, certainly not charged). Only when the
//! connection breaks mid-statement, or the server does not answer even the cancel, is a write's outcome
//! unknown: [`DbError::OutcomeUnknown`], which is never answered with `Retry-After`.

use std::{future::Future, pin::pin, time::Duration};

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use deadpool_postgres::{
    HookError, Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime, Timeouts,
};
use futures_util::TryStreamExt;
use tokio::time::Instant;
use tokio_postgres::{error::SqlState, types::ToSql, NoTls, Row};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::{
    config::Config,
    deadline,
    problem::{self, Problem},
};

/// What went wrong talking to the database, in the terms the HTTP layer needs. The client sees the
/// message only for the input errors (22004, 22023 worded by the extension, every other class-22 data
/// exception worded by PostgreSQL), 42710, P0002 and 55000.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// Class 22 (22004, 22023, 22003, 22021, 22P05, ...): the request's values were refused by the
    /// extension's validation or by PostgreSQL.
    #[error("{0}")]
    InvalidInput(String),
    /// 42710 (duplicate_object): an idempotency key reused for a different request.
    #[error("{0}")]
    IdempotencyMismatch(String),
    /// P0002: unknown plan or reservation (or a reservation of another user).
    #[error("{0}")]
    NotFound(String),
    /// 55000: the object is not in a state that allows the operation (reservation already settled).
    #[error("{0}")]
    Conflict(String),
    /// Nothing was applied and trying again later may work: no connection to be had in time, the
    /// statement cancelled at the deadline, a serialization failure or deadlock, a read-only or
    /// recovering server, the server shutting down. For reads also a lost connection.
    #[error("transient database failure: {0}")]
    Transient(String),
    /// A write whose connection broke after the statement was sent, or whose server answered neither the
    /// statement nor the cancel: it may or may not have been applied. Only an idempotency key makes a
    /// retry safe.
    #[error("outcome unknown: {0}")]
    OutcomeUnknown(String),
    /// Anything else, including 42501 (a privilege the API's role lacks: a deployment bug).
    #[error("database error: {0}")]
    Internal(String),
}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        let Some(db) = e.as_db_error() else {
            // No SQLSTATE: the connection broke (transient), or a row did not decode (a bug).
            return if connection_dead(&e) {
                DbError::Transient(e.to_string())
            } else {
                DbError::Internal(e.to_string())
            };
        };
        DbError::of_state(db.code(), db.message().to_string())
    }
}

impl DbError {
    /// The classification by SQLSTATE alone: `message` is only carried along (the client sees it for the
    /// input errors), never matched.
    fn of_state(code: &SqlState, message: String) -> Self {
        match code {
            // The extension reports a reused idempotency key with its own SQLSTATE, so no message is read.
            c if *c == SqlState::DUPLICATE_OBJECT => DbError::IdempotencyMismatch(message),
            c if *c == SqlState::INVALID_PARAMETER_VALUE
                || *c == SqlState::NULL_VALUE_NOT_ALLOWED =>
            {
                DbError::InvalidInput(message)
            }
            // Every other data exception (class 22: 22003 numeric overflow, 22021 / 22P05 a NUL or bad
            // byte, 22P02 bad syntax, ...) is the request's value refused by PostgreSQL itself: the client's
            // input, never a server fault. Its message names the value's problem, not the statement.
            c if c.code().starts_with("22") => DbError::InvalidInput(message),
            c if *c == SqlState::NO_DATA_FOUND => DbError::NotFound(message),
            c if *c == SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE => DbError::Conflict(message),
            // (57P03, which the extension raises while this database is not updated to the installed library
            // yet, is in rolled_back: retrying later works.)
            c if rolled_back(c) || unavailable(c) || *c == SqlState::QUERY_CANCELED => {
                DbError::Transient(format!("{}: {message}", c.code()))
            }
            c => DbError::Internal(format!("{}: {message}", c.code())),
        }
    }
}

/// The SQLSTATE-to-status table (the classification itself is in [`DbError`]'s `From`).
impl IntoResponse for DbError {
    fn into_response(self) -> Response {
        match self {
            DbError::InvalidInput(m) => {
                Problem::new(StatusCode::BAD_REQUEST, "invalid-input", "Invalid input")
                    .detail(m)
                    .into_response()
            }
            DbError::IdempotencyMismatch(m) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency key reused for a different request",
            )
            .detail(m)
            .into_response(),
            DbError::NotFound(m) => Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found")
                .detail(m)
                .into_response(),
            DbError::Conflict(m) => Problem::new(StatusCode::CONFLICT, "conflict", "Conflict")
                .detail(m)
                .into_response(),
            DbError::Transient(why) => {
                tracing::warn!(%why, "database unavailable");
                problem::unavailable("The database is unavailable right now; try again.")
            }
            DbError::OutcomeUnknown(why) => {
                tracing::warn!(%why, "database connection lost mid-statement");
                // No Retry-After: a blind retry could apply the write twice; the idempotency key settles it.
                Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "outcome-unknown",
                "Outcome unknown",
            )
            .detail(
                "The database connection was lost while the request was being applied, so it may or may \
                 not have taken effect. Repeat it with the same Idempotency-Key to find out; without one \
                 a repeat may apply it twice.",
            )
            .into_response()
            }
            DbError::Internal(why) => {
                tracing::error!(%why, "database error");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Internal server error",
                )
                .into_response()
            }
        }
    }
}

impl From<PoolError> for DbError {
    fn from(e: PoolError) -> Self {
        DbError::Transient(format!("no database connection: {e}"))
    }
}

/// Whether the error means the connection itself is gone (no SQLSTATE: socket closed or broken; 57P*: the
/// server is terminating the session; 08*: connection exception).
fn connection_dead(e: &tokio_postgres::Error) -> bool {
    use std::error::Error as _;
    match e.code() {
        None => e.is_closed() || e.source().is_some_and(|s| s.is::<std::io::Error>()),
        Some(c) => c.code().starts_with("57P") || c.code().starts_with("08"),
    }
}

/// SQLSTATEs after which the server has certainly rolled the statement back (or never ran it), so running
/// it again cannot charge twice. A lost connection is not among them: the commit may have happened.
fn rolled_back(c: &SqlState) -> bool {
    *c == SqlState::T_R_SERIALIZATION_FAILURE
        || *c == SqlState::T_R_DEADLOCK_DETECTED
        || *c == SqlState::LOCK_NOT_AVAILABLE
        || *c == SqlState::CANNOT_CONNECT_NOW
        || *c == SqlState::TOO_MANY_CONNECTIONS
        || *c == SqlState::READ_ONLY_SQL_TRANSACTION
}

/// SQLSTATEs of a server that cannot take the request now (shutting down, crashed, in recovery, out of
/// resources, connection exception): a `503`, never a `500`.
fn unavailable(c: &SqlState) -> bool {
    let class = &c.code()[..2];
    matches!(class, "57" | "08" | "53") && *c != SqlState::QUERY_CANCELED
        || *c == SqlState::READ_ONLY_SQL_TRANSACTION
}

/// A connection idle for longer than this is checked before use: still a writable primary?
const RECHECK_IDLE: Duration = Duration::from_secs(1);

/// Builds the pool. No connection is made here; `/readyz` and the first request find out whether the
/// database is reachable, so the API can start before PostgreSQL does.
/// The connections are TLS as `sslmode` says (see [`crate::tls`]); the connector is returned too, for
/// cancel requests, which open a connection of their own.
pub fn pool(config: &Config) -> Result<(Pool, Option<MakeRustlsConnect>), String> {
    let target = crate::tls::parse(config.database_url.expose())
        .map_err(|e| format!("AIQUOTA_DATABASE_URL: {e}"))?;
    let mut pg = target.config;
    pg.application_name("aiquota-api");
    pg.connect_timeout(Duration::from_secs(5));
    let manager_config = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = match target.tls.clone() {
        Some(tls) => Manager::from_config(pg, tls, manager_config),
        None => Manager::from_config(pg, NoTls, manager_config),
    };
    // A backstop only: [`Db::run`] cancels a statement at the request deadline, which is never later than
    // this. It stops a statement whose API process died from running on for ever.
    let statement_timeout_ms = config.request_timeout.as_millis().max(100);
    let session_setup =
        format!("SET ROLE quota_api; SET statement_timeout = {statement_timeout_ms}");
    Pool::builder(manager)
        .max_size(config.pool_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(5)))
        .post_create(deadpool_postgres::Hook::async_fn(move |client, _| {
            let setup = session_setup.clone();
            Box::pin(async move {
                // Least privilege for every request; admin transactions raise it with SET LOCAL ROLE.
                client
                    .batch_execute(&setup)
                    .await
                    .map_err(HookError::Backend)
            })
        }))
        .post_recycle(deadpool_postgres::Hook::async_fn(|client, metrics| {
            let idle = metrics.last_used();
            Box::pin(async move {
                // After a failover the old connections may lead to a server that is now a standby (or was
                // made read-only): drop them so the pool connects afresh. Busy connections skip the check.
                if idle < RECHECK_IDLE {
                    return Ok(());
                }
                let row = client
                    .query_one(
                        "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only')::bool",
                        &[],
                    )
                    .await
                    .map_err(HookError::Backend)?;
                match row.try_get::<_, bool>(0) {
                    Ok(false) => Ok(()),
                    _ => Err(HookError::message("the server is read-only or in recovery")),
                }
            })
        }))
        .build()
        .map(|pool| (pool, target.tls))
        .map_err(|e| format!("database pool: {e}"))
}

/// Whether a failed attempt may run again, and what a lost connection means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Reads, and writes that are idempotent by themselves: safe to repeat even when the connection broke
    /// after the statement was sent.
    Safe,
    /// Writes with the client's idempotency key: repeated like [`Retry::Safe`] (the extension replays),
    /// but when every attempt failed with an unknown outcome the answer says so.
    Keyed,
    /// Writes that would apply twice: repeat only when nothing can have happened (no connection could be had,
    /// or the server rolled the transaction back: 40001, 40P01, 25006).
    IfNotApplied,
}

impl Retry {
    fn writes(self) -> bool {
        self != Retry::Safe
    }
}

/// A statement's failure as seen by [`query_one`]: an error before the statement's row means it did not
/// complete (nothing applied, when the server said so), an error after it means it ran and only the end of
/// its transaction is in doubt.
#[derive(Debug)]
pub enum StatementError {
    /// The statement failed, or the connection broke, before its row arrived.
    Before(tokio_postgres::Error),
    /// The row arrived, then the server or the connection failed before the statement's end.
    After(tokio_postgres::Error),
    /// The statement ended without a row.
    NoRow,
}

impl From<tokio_postgres::Error> for StatementError {
    fn from(e: tokio_postgres::Error) -> Self {
        StatementError::Before(e)
    }
}

/// Runs a statement that yields one row (a function in the select list) and reports errors as a
/// [`StatementError`], so that a write whose row was received is never mistaken for one that failed.
pub async fn query_one(
    client: &Object,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Row, StatementError> {
    let stmt = client.prepare_cached(sql).await?;
    let rows = client
        .query_raw(&stmt, params.iter().map(|p| *p as &dyn ToSql))
        .await?;
    let mut rows = pin!(rows);
    let Some(row) = rows.try_next().await? else {
        return Err(StatementError::NoRow);
    };
    // Read to the end (ReadyForQuery): an error now comes after the statement ran.
    while rows
        .try_next()
        .await
        .map_err(StatementError::After)?
        .is_some()
    {}
    Ok(row)
}

const ATTEMPTS: u32 = 3;

/// The pool plus the process metrics that count retries.
#[derive(Clone)]
pub struct Db {
    /// The connections.
    pub pool: Pool,
    /// Where retries are counted.
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// `AIQUOTA_REQUEST_TIMEOUT_S`: the deadline outside a request, and the grace a cancelled statement
    /// gets to answer.
    pub timeout: Duration,
    /// The pool's TLS connector (`None`: `sslmode=disable`): a cancel request must speak TLS like the
    /// connection it cancels.
    pub tls: Option<MakeRustlsConnect>,
}

/// One failed attempt: the error for the client, whether the attempt may run again, and whether its
/// connection must leave the pool.
struct Failed {
    error: DbError,
    repeatable: bool,
    discard: bool,
}

impl Db {
    /// Runs `f` on a pooled connection within the request deadline, repeating it (up to 3 attempts, short
    /// backoff, never past the deadline) when the failure is transient and `retry` allows it. Non-transient
    /// errors return at once.
    pub async fn run<T, F, Fut>(&self, retry: Retry, f: F) -> Result<T, DbError>
    where
        F: Fn(Object) -> Fut,
        Fut: Future<Output = Result<T, tokio_postgres::Error>>,
    {
        self.run_statement(retry, |c| {
            let fut = f(c);
            async move { fut.await.map_err(StatementError::from) }
        })
        .await
    }

    /// As [`Db::run`] for a closure that reports [`StatementError`]s (see [`query_one`]).
    pub async fn run_statement<T, F, Fut>(&self, retry: Retry, f: F) -> Result<T, DbError>
    where
        F: Fn(Object) -> Fut,
        Fut: Future<Output = Result<T, StatementError>>,
    {
        let deadline = deadline::current(self.timeout);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failed = match self.attempt(deadline, retry, &f).await {
                Ok(v) => return Ok(v),
                Err(failed) => failed,
            };
            let backoff = Duration::from_millis(50 * 3u64.pow(attempt - 1));
            match failed {
                Failed {
                    error: DbError::Transient(why) | DbError::OutcomeUnknown(why),
                    repeatable: true,
                    ..
                } if attempt < ATTEMPTS && Instant::now() + backoff < deadline => {
                    tracing::warn!(attempt, %why, "transient database failure, retrying");
                    self.metrics.db_retry();
                    tokio::time::sleep(backoff).await;
                }
                Failed { error, .. } => return Err(error),
            }
        }
    }

    /// One attempt: a connection within what is left of the deadline, then the statement until the
    /// deadline, then (cancelled) until its answer or the grace runs out.
    async fn attempt<T, F, Fut>(&self, deadline: Instant, retry: Retry, f: &F) -> Result<T, Failed>
    where
        F: Fn(Object) -> Fut,
        Fut: Future<Output = Result<T, StatementError>>,
    {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(never_sent(
                "the request deadline passed before the statement was sent",
            ));
        }
        let wait = Timeouts {
            wait: Some(left),
            create: Some(left.min(Duration::from_secs(5))),
            recycle: Some(left.min(Duration::from_secs(5))),
        };
        // No statement was sent: always safe to try again.
        let client = self.pool.timeout_get(&wait).await.map_err(|e| Failed {
            error: DbError::from(e),
            repeatable: true,
            discard: false,
        })?;
        let created = Object::metrics(&client).created;
        let cancel = client.cancel_token();
        // Boxed so that it can be dropped (with its connection) before the connection is taken out of the pool.
        let mut statement = Box::pin(f(client));
        let result = match tokio::time::timeout_at(deadline, &mut statement).await {
            Ok(r) => r,
            Err(_) => {
                // Ask the server to cancel, then wait for the statement's own answer: it finished, or it
                // was cancelled (57014, rolled back). Until then its outcome is not known.
                let grace_end = Instant::now() + self.timeout.max(Duration::from_secs(1));
                let cancel_sent = async {
                    match &self.tls {
                        Some(tls) => cancel.cancel_query(tls.clone()).await,
                        None => cancel.cancel_query(NoTls).await,
                    }
                };
                let cancelled = matches!(
                    tokio::time::timeout_at(grace_end, cancel_sent).await,
                    Ok(Ok(()))
                );
                match tokio::time::timeout_at(grace_end, &mut statement).await {
                    Ok(r) => {
                        if !cancelled {
                            // A cancel still on its way could hit the next statement on this connection.
                            self.pool.retain(|_, m| m.created != created);
                        }
                        r
                    }
                    Err(_) => {
                        drop(statement);
                        self.pool.retain(|_, m| m.created != created);
                        let why = "the server answered neither the statement nor its cancel";
                        return Err(Failed {
                            error: lost(retry, why.into()),
                            repeatable: false,
                            discard: true,
                        });
                    }
                }
            }
        };
        result.map_err(|e| {
            let failed = classify(e, retry);
            if failed.discard {
                // The connection is gone (or leads to a read-only server) and may still look alive in the
                // pool (its task has not seen the socket close yet); remove it so no request picks it up.
                self.pool.retain(|_, m| m.created != created);
            }
            failed
        })
    }
}

/// Nothing was sent: a certain 503.
fn never_sent(why: &str) -> Failed {
    Failed {
        error: DbError::Transient(why.into()),
        repeatable: false,
        discard: false,
    }
}

/// A connection lost after the statement went out: unknown for a write, a plain transient for a read.
fn lost(retry: Retry, why: String) -> DbError {
    if retry.writes() {
        DbError::OutcomeUnknown(why)
    } else {
        DbError::Transient(why)
    }
}

/// What a failed statement means for the client, for the retry rule and for its connection.
fn classify(e: StatementError, retry: Retry) -> Failed {
    match e {
        StatementError::NoRow => Failed {
            error: DbError::Internal("the statement returned no row".into()),
            repeatable: false,
            discard: false,
        },
        StatementError::After(e) => Failed {
            error: lost(retry, e.to_string()),
            repeatable: retry != Retry::IfNotApplied,
            discard: true,
        },
        StatementError::Before(e) => {
            // An error the server sent ends the statement (and its implicit transaction) unapplied.
            let not_applied = e.code().is_some_and(rolled_back);
            let repeatable = not_applied || retry != Retry::IfNotApplied;
            let discard =
                connection_dead(&e) || e.code() == Some(&SqlState::READ_ONLY_SQL_TRANSACTION);
            let error = if e.code().is_none() && connection_dead(&e) {
                lost(retry, e.to_string())
            } else {
                DbError::from(e)
            };
            Failed {
                error,
                repeatable,
                discard,
            }
        }
    }
}

/// The group roles a transaction may switch to; each is a constant, so no SQL is built from input.
#[derive(Clone, Copy, Debug)]
pub enum TxRole {
    /// `quota_admin`: the admin routes.
    Admin,
    /// `quota_payments`: orders and payments (create, attach, find, record, revoke), held only by the
    /// API's login role, so an app backend given `quota_api` cannot mint paid plans.
    Payments,
}

impl TxRole {
    fn set_local(self) -> &'static str {
        match self {
            TxRole::Admin => "SET LOCAL ROLE quota_admin",
            TxRole::Payments => "SET LOCAL ROLE quota_payments",
        }
    }
}

/// Opens a transaction as `role`: the only way the API uses rights above `quota_api`, so they never leak
/// into a pooled session (`SET LOCAL` ends with the transaction).
async fn begin_as(
    client: &mut Object,
    role: TxRole,
) -> Result<deadpool_postgres::Transaction<'_>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.batch_execute(role.set_local()).await?;
    Ok(tx)
}

/// Runs `sql` with `params` in a transaction as `role` and returns its rows.
pub async fn role_tx(
    mut client: Object,
    role: TxRole,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
    let tx = begin_as(&mut client, role).await?;
    let stmt = tx.prepare_cached(sql).await?;
    let rows = tx.query(&stmt, params).await?;
    tx.commit().await?;
    Ok(rows)
}

/// As [`role_tx`] for a statement that yields exactly one row (a function called in the select list);
/// any other count is an error, never a panic.
pub async fn role_tx_one(
    mut client: Object,
    role: TxRole,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<tokio_postgres::Row, tokio_postgres::Error> {
    let tx = begin_as(&mut client, role).await?;
    let stmt = tx.prepare_cached(sql).await?;
    let row = tx.query_one(&stmt, params).await?;
    tx.commit().await?;
    Ok(row)
}

/// [`role_tx`] as `quota_admin`.
pub async fn admin_tx(
    client: Object,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
    role_tx(client, TxRole::Admin, sql, params).await
}

/// [`role_tx_one`] as `quota_admin`.
pub async fn admin_tx_one(
    client: Object,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<tokio_postgres::Row, tokio_postgres::Error> {
    role_tx_one(client, TxRole::Admin, sql, params).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified_by_sqlstate_never_by_message() {
        let mismatch = DbError::of_state(&SqlState::DUPLICATE_OBJECT, "anything".into());
        assert!(matches!(mismatch, DbError::IdempotencyMismatch(m) if m == "anything"));
        // The wording the extension once used for a reused key, under 22023, is plain invalid input now.
        let worded = "idempotency key already used for a different request";
        let input = DbError::of_state(&SqlState::INVALID_PARAMETER_VALUE, worded.into());
        assert!(matches!(input, DbError::InvalidInput(_)));
        for (code, check) in [
            (SqlState::NO_DATA_FOUND, "not-found"),
            (SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE, "conflict"),
            (SqlState::NUMERIC_VALUE_OUT_OF_RANGE, "input"),
            (SqlState::T_R_SERIALIZATION_FAILURE, "transient"),
            (SqlState::QUERY_CANCELED, "transient"),
            (SqlState::INSUFFICIENT_PRIVILEGE, "internal"),
        ] {
            let got = match DbError::of_state(&code, "already used".into()) {
                DbError::NotFound(_) => "not-found",
                DbError::Conflict(_) => "conflict",
                DbError::InvalidInput(_) => "input",
                DbError::Transient(_) => "transient",
                DbError::Internal(_) => "internal",
                other => panic!("{}: {other:?}", code.code()),
            };
            assert_eq!(got, check, "{}", code.code());
        }
    }
}
