//! The connection pool, the one place that turns a PostgreSQL error into a [`DbError`] by SQLSTATE, and the
//! retry rule for transient failures.
//!
//! Every pooled connection runs as the `quota_api` group role (`SET ROLE` once, when the connection is
//! made): the login role `aiquota_api` is `NOINHERIT`, so a connection can call only what `quota_api` may
//! until an admin route switches to `quota_admin` for one transaction (`SET LOCAL ROLE`, see [`admin_tx`]).

use std::{future::Future, time::Duration};

use deadpool_postgres::{
    HookError, Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use tokio_postgres::{error::SqlState, NoTls};

use crate::config::Config;

/// What went wrong talking to the database, in the terms the HTTP layer needs. The client sees the
/// message only for the input errors the extension words for people (22004, 22023, P0002, 55000).
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// 22004 / 22023: the request's values were refused by the extension's validation.
    #[error("{0}")]
    InvalidInput(String),
    /// 22023 "already used": an idempotency key reused for a different request.
    #[error("{0}")]
    IdempotencyMismatch(String),
    /// P0002: unknown plan or reservation (or a reservation of another user).
    #[error("{0}")]
    NotFound(String),
    /// 55000: the object is not in a state that allows the operation (reservation already settled).
    #[error("{0}")]
    Conflict(String),
    /// Serialization failure, deadlock, statement timeout, lost connection, no connection to be had: worth
    /// retrying later.
    #[error("transient database failure: {0}")]
    Transient(String),
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
        let message = db.message().to_string();
        match db.code() {
            // The extension reports a reused idempotency key with its own SQLSTATE, so no message is read.
            c if *c == SqlState::DUPLICATE_OBJECT => DbError::IdempotencyMismatch(message),
            c if *c == SqlState::INVALID_PARAMETER_VALUE
                || *c == SqlState::NULL_VALUE_NOT_ALLOWED =>
            {
                DbError::InvalidInput(message)
            }
            c if *c == SqlState::NO_DATA_FOUND => DbError::NotFound(message),
            c if *c == SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE => DbError::Conflict(message),
            // (rolled_back includes 57P03, which the extension also raises while this database is not updated
            // to the installed library yet: retrying later works.)
            c if rolled_back(c)
                || *c == SqlState::ADMIN_SHUTDOWN
                || *c == SqlState::QUERY_CANCELED =>
            {
                DbError::Transient(format!("{}: {message}", c.code()))
            }
            c => DbError::Internal(format!("{}: {message}", c.code())),
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
}

/// Builds the pool. No connection is made here; `/readyz` and the first request find out whether the
/// database is reachable, so the API can start before PostgreSQL does.
pub fn pool(config: &Config) -> Result<Pool, String> {
    let mut pg: tokio_postgres::Config = config
        .database_url
        .expose()
        .parse()
        .map_err(|e| format!("AIQUOTA_DATABASE_URL: {e}"))?;
    pg.application_name("aiquota-api");
    pg.connect_timeout(Duration::from_secs(5));
    let manager = Manager::from_config(
        pg,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    // The server gives up on a statement a little before the request deadline, so a statement never
    // outlives the request that sent it (57014, rolled back: nothing charged) and its connection is free
    // again when it returns to the pool; the HTTP timeout stays as the backstop.
    let statement_timeout_ms = (config.request_timeout.as_millis() * 9 / 10).max(100);
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
        .build()
        .map_err(|e| format!("database pool: {e}"))
}

/// Whether a failed attempt may run again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Reads, and writes that are idempotent by themselves or carry an idempotency key: safe to repeat even
    /// when the connection broke after the statement was sent.
    Safe,
    /// Writes that would apply twice: repeat only when nothing can have happened (no connection could be had,
    /// or the server rolled the transaction back: 40001, 40P01).
    IfNotApplied,
}

const ATTEMPTS: u32 = 3;

/// The pool plus the process metrics that count retries.
#[derive(Clone)]
pub struct Db {
    /// The connections.
    pub pool: Pool,
    /// Where retries are counted.
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
}

impl Db {
    /// Runs `f` on a pooled connection, repeating it (up to 3 attempts, short backoff) when the failure is
    /// transient and `retry` allows it. Non-transient errors return at once.
    pub async fn run<T, F, Fut>(&self, retry: Retry, f: F) -> Result<T, DbError>
    where
        F: Fn(Object) -> Fut,
        Fut: Future<Output = Result<T, tokio_postgres::Error>>,
    {
        let db = self;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = match db.pool.get().await {
                // No statement was sent: always safe to try again.
                Err(e) => Err((DbError::from(e), true)),
                Ok(client) => {
                    let created = Object::metrics(&client).created;
                    f(client).await.map_err(|e| {
                        if connection_dead(&e) {
                            // The connection is back in the pool by now and may still look alive (its task has
                            // not seen the socket close yet); remove it so no request picks it up.
                            db.pool.retain(|_, m| m.created != created);
                        }
                        let not_applied = e.code().is_some_and(rolled_back);
                        (DbError::from(e), not_applied || retry == Retry::Safe)
                    })
                }
            };
            match outcome {
                Ok(v) => return Ok(v),
                Err((DbError::Transient(why), repeatable)) if repeatable && attempt < ATTEMPTS => {
                    tracing::warn!(attempt, %why, "transient database failure, retrying");
                    db.metrics.db_retry();
                    tokio::time::sleep(Duration::from_millis(50 * 3u64.pow(attempt - 1))).await;
                }
                Err((e, _)) => return Err(e),
            }
        }
    }
}

/// Opens a transaction as `quota_admin`: the only way the API uses admin rights, so they never leak into a
/// pooled session (`SET LOCAL` ends with the transaction).
async fn begin_admin(
    client: &mut Object,
) -> Result<deadpool_postgres::Transaction<'_>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.batch_execute("SET LOCAL ROLE quota_admin").await?;
    Ok(tx)
}

/// Runs `sql` with `params` in a transaction as `quota_admin` and returns its rows.
pub async fn admin_tx(
    mut client: Object,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
    let tx = begin_admin(&mut client).await?;
    let stmt = tx.prepare_cached(sql).await?;
    let rows = tx.query(&stmt, params).await?;
    tx.commit().await?;
    Ok(rows)
}

/// As [`admin_tx`] for a statement that yields exactly one row (a function called in the select list);
/// any other count is an error, never a panic.
pub async fn admin_tx_one(
    mut client: Object,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<tokio_postgres::Row, tokio_postgres::Error> {
    let tx = begin_admin(&mut client).await?;
    let stmt = tx.prepare_cached(sql).await?;
    let row = tx.query_one(&stmt, params).await?;
    tx.commit().await?;
    Ok(row)
}
