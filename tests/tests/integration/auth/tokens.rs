//! Token validity beyond the signature: `nbf` is enforced with the same leeway as `exp`, and JWKS keys that
//! no successful fetch has confirmed for `AIQUOTA_JWKS_MAX_STALE_S` are dropped (a revoked key stops working
//! even while the JWKS is unreachable).

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use aiquota_api::Config;
use aiquota_tests::http::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

const RSA_PRIVATE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/rsa_private.pem"
));
const JWKS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/jwks.json"));

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nbf_in_the_future_is_401_and_charges_nothing() {
    let app = TestApp::start("http_tokens_nbf").await;
    let with_nbf = |offset: i64| {
        let mut c = claims("nora", "authenticated");
        c["nbf"] = (now() + offset).into();
        hs256(&c, SECRET)
    };
    let res = app.consume(&with_nbf(600)).await;
    let p = problem(res, 401).await;
    assert_eq!(p["detail"], "token not valid yet", "{p}");
    let charged: i64 = sql(&app.db)
        .await
        .query_one(
            "SELECT count(*) FROM quota.ledger WHERE user_id = 'nora'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(charged, 0);
    // Within the 30 s leeway `exp` also gets, and in the past: valid.
    for offset in [10, -60] {
        let res = app.quota(&with_nbf(offset)).await;
        assert_eq!(res.status(), 200, "nbf now{offset:+}");
    }
    app.stop().await;
}

/// Serves the fixture JWKS while `up` is true, 500 otherwise; returns its URL.
async fn switchable_jwks(up: Arc<AtomicBool>) -> String {
    let router = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let up = up.load(Ordering::SeqCst);
            async move {
                if up {
                    Ok(([("content-type", "application/json")], JWKS))
                } else {
                    Err(axum::http::StatusCode::INTERNAL_SERVER_ERROR)
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}/jwks.json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jwks_keys_are_dropped_after_max_stale_without_a_fetch() {
    let up = Arc::new(AtomicBool::new(true));
    let url = switchable_jwks(up.clone()).await;
    let db = fresh_db("http_tokens_jwks_stale").await;
    // Through the environment's names, with the shortest values they allow.
    let config = Config::from_lookup(|name| match name {
        "AIQUOTA_JWKS_URL" => Some(url.clone()),
        "AIQUOTA_JWKS_REFRESH_S" | "AIQUOTA_JWKS_MAX_STALE_S" => Some("10".into()),
        "AIQUOTA_DATABASE_URL" => Some(api_url(&db)),
        "AIQUOTA_LISTEN" => Some("127.0.0.1:0".into()),
        _ => None,
    })
    .unwrap();
    let app = TestApp::start_on(db, config).await;
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some("test-rsa-1".into());
    let token = jsonwebtoken::encode(
        &h,
        &claims("rita", "authenticated"),
        &EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
    )
    .unwrap();
    let res = app.quota(&token).await;
    assert_eq!(res.status(), 200, "keys fetched");
    // The JWKS goes down: the cached keys still work for a while ...
    up.store(false, Ordering::SeqCst);
    let res = app.quota(&token).await;
    assert_eq!(res.status(), 200, "within AIQUOTA_JWKS_MAX_STALE_S");
    // ... but not past the bound: the refresh fails and the keys are gone, so nothing verifies (503).
    tokio::time::sleep(Duration::from_secs(11)).await;
    let res = app.quota(&token).await;
    let p = problem(res, 503).await;
    assert_eq!(p["type"], "/problems/unavailable", "{p}");
    // Back up: the next fetch (at most every 5 s) brings them back.
    up.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(6)).await;
    let res = app.quota(&token).await;
    assert_eq!(res.status(), 200, "keys fetched again");
    app.stop().await;
}
