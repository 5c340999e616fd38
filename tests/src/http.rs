//! Helpers for the HTTP tests: the real API started in-process on port 0, connected as `aiquota_api` to a
//! fresh database of the private cluster, plus token minting and a SQL connection for assertions.

use std::{future::Future, net::SocketAddr, time::Duration};

use aiquota_api::{config::Secret, App, Config};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tokio::{sync::oneshot, task::JoinHandle};

/// The HS256 secret every test app trusts.
pub const SECRET: &str = "integration-test-secret-0123456789abcdef";
/// The audience every test app requires.
pub const AUDIENCE: &str = "authenticated";

/// A running API.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The test database.
    pub db: String,
    /// A client with a generous timeout.
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<std::io::Result<()>>>,
}

/// Connection string of `db` as the API's role.
pub fn api_url(db: &str) -> String {
    format!("{} user=aiquota_api", crate::url(db))
}

/// A fresh database (`t_<name>`); `fresh_db` is blocking, so it runs off the async workers.
pub async fn fresh_db(name: &str) -> String {
    let name = name.to_string();
    tokio::task::spawn_blocking(move || crate::fresh_db(&name))
        .await
        .expect("fresh_db panicked")
}

/// A superuser connection to `db` for setting up and asserting (async: the tests run in tokio).
pub async fn sql(db: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&crate::url(db), tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {db}: {e}"));
    tokio::spawn(conn);
    client
}

/// The configuration tests start from: HS256 with [`SECRET`], port 0, the test database.
pub fn test_config(db: &str) -> Config {
    let mut c = Config::with_defaults();
    c.database_url = Secret::new(api_url(db));
    c.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    c.jwt_secret = Some(Secret::new(SECRET));
    c.shutdown_timeout = Duration::from_secs(10);
    c
}

impl TestApp {
    /// A fresh database `t_<name>` and the API on it with [`test_config`].
    pub async fn start(name: &str) -> Self {
        Self::start_with(name, |_| {}).await
    }

    /// Like [`TestApp::start`], with the configuration adjusted by `tweak`.
    pub async fn start_with(name: &str, tweak: impl FnOnce(&mut Config)) -> Self {
        let db = fresh_db(name).await;
        let mut config = test_config(&db);
        tweak(&mut config);
        Self::start_on(db, config).await
    }

    /// The API with `config` on an existing database.
    pub async fn start_on(db: String, config: Config) -> Self {
        let app = App::build(config).await.expect("the app builds");
        let base = format!("http://{}", app.local_addr());
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(app.serve(async {
            let _ = stopped.await;
        }));
        Self {
            base,
            db,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    /// Full URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET with a bearer token.
    pub fn get(&self, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path)).bearer_auth(token)
    }

    /// POST with a bearer token.
    pub fn post(&self, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.client.post(self.url(path)).bearer_auth(token)
    }

    /// `GET /v1/quota` with `token`; the response as it is.
    pub async fn quota(&self, token: &str) -> reqwest::Response {
        self.get("/v1/quota", token).send().await.unwrap()
    }

    /// GET without a token; the response as it is.
    pub async fn get_anonymous(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// POST of the JSON `body` with a bearer token; the response as it is.
    pub async fn post_json(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.post(path, token).json(body).send().await.unwrap()
    }

    /// PUT of the JSON `body` with a bearer token; the response as it is.
    pub async fn put_json(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.put(path, token).json(body).send().await.unwrap()
    }

    /// PUT with a bearer token.
    pub fn put(&self, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.client.put(self.url(path)).bearer_auth(token)
    }

    /// The Prometheus text of `GET /metrics`.
    pub async fn metrics(&self) -> String {
        self.get_anonymous("/metrics").await.text().await.unwrap()
    }

    /// The OpenAPI document the API serves (`GET /openapi.json`).
    pub async fn openapi(&self) -> Value {
        body(self.get_anonymous("/openapi.json").await).await
    }

    /// Starts graceful shutdown and returns the server task, to await later.
    pub fn begin_shutdown(&mut self) -> impl Future<Output = std::io::Result<()>> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let handle = self.handle.take().expect("still running");
        async move { handle.await.expect("server task panicked") }
    }

    /// Shuts down and waits.
    pub async fn stop(mut self) {
        self.begin_shutdown().await.expect("clean shutdown");
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Runs the `n` futures `task(0..n)` makes, each in its own task, released together by a barrier once all
/// are spawned; returns their outputs in order.
pub async fn together<T, F>(n: usize, task: impl Fn(usize) -> F) -> Vec<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (barrier, work) = (barrier.clone(), task(i));
            tokio::spawn(async move {
                barrier.wait().await;
                work.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for h in handles {
        out.push(h.await.expect("a task panicked"));
    }
    out
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Claims of a valid user token; tests change fields to make it invalid.
pub fn claims(sub: &str, role: &str) -> Value {
    json!({"sub": sub, "role": role, "aud": AUDIENCE, "exp": now() + 600, "iat": now()})
}

/// HS256 token over `claims` with `secret`.
pub fn hs256(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// A valid token for an end user.
pub fn user_token(sub: &str) -> String {
    hs256(&claims(sub, "authenticated"), SECRET)
}

/// A valid token for an admin (`service_role`).
pub fn admin_token(sub: &str) -> String {
    hs256(&claims(sub, "service_role"), SECRET)
}

/// The JSON body of a response.
pub async fn body(res: reqwest::Response) -> Value {
    let text = res.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Asserts a problem+json response with `status`, and returns its body.
pub async fn problem(res: reqwest::Response, status: u16) -> Value {
    assert_eq!(res.status().as_u16(), status, "status of {}", res.url());
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert_eq!(ct, "application/problem+json");
    let b = body(res).await;
    assert_eq!(b["status"], status, "problem status member: {b}");
    // aiquota's own types are `/problems/<slug>`; a quota denial's is the IANA-registered URI. Either way the
    // slug is the member `problem`.
    let t = b["type"].as_str().unwrap();
    assert!(
        t.starts_with("/problems/")
            || t == "https://iana.org/assignments/http-problem-types#quota-exceeded",
        "{b}"
    );
    assert!(t.ends_with(b["problem"].as_str().unwrap_or("\u{0}")), "{b}");
    assert!(b["title"].is_string(), "{b}");
    b
}

/// A session holding `FOR UPDATE` locks on a user's counter rows until [`Locked::release`].
pub struct Locked {
    client: tokio_postgres::Client,
}

/// Locks every counter row of `user` in database `db` from a separate session (a stuck transaction).
pub async fn lock_counters(db: &str, user: &str) -> Locked {
    let client = sql(db).await;
    client.batch_execute("BEGIN").await.unwrap();
    client
        .execute(
            "SELECT 1 FROM quota.counters WHERE user_id = $1 FOR UPDATE",
            &[&user],
        )
        .await
        .unwrap();
    Locked { client }
}

impl Locked {
    /// Ends the transaction, releasing the locks.
    pub async fn release(self) {
        self.client.batch_execute("ROLLBACK").await.unwrap();
    }
}

/// How many of the API's backends (role `aiquota_api`) on `db`'s database wait on a lock right now.
pub async fn lock_waiters(db: &tokio_postgres::Client) -> i64 {
    db.query_one(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND usename = 'aiquota_api' AND wait_event_type = 'Lock'",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

/// Ledger rows of `user`.
pub async fn ledger_rows(db: &tokio_postgres::Client, user: &str) -> i64 {
    db.query_one(
        "SELECT count(*) FROM quota.ledger WHERE user_id = $1",
        &[&user],
    )
    .await
    .unwrap()
    .get(0)
}

/// Rows of `quota.verify()` (counters that disagree with the ledger).
pub async fn verify_rows(db: &tokio_postgres::Client) -> i64 {
    db.query_one("SELECT count(*) FROM quota.verify()", &[])
        .await
        .unwrap()
        .get(0)
}

impl TestApp {
    /// One default consume (one `ai_requests`) with `token`; the response as it is.
    pub async fn consume(&self, token: &str) -> reqwest::Response {
        self.post("/v1/quota/consume", token).send().await.unwrap()
    }

    /// The status of one default consume (one `ai_requests`) with `token`.
    pub async fn consume_status(&self, token: &str) -> u16 {
        self.consume(token).await.status().as_u16()
    }
}
