//! Authentication: every kind of bad token is a 401 with `WWW-Authenticate: Bearer` and problem+json;
//! RS256 tokens are checked against a JWKS served by a local axum server; algorithm confusion fails.

use aiquota_api::config::Secret;
use aiquota_tests::http::*;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

const RSA_PRIVATE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/rsa_private.pem"
));
const RSA_PUBLIC: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/rsa_public.pem"
));
const JWKS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/jwks.json"));
const EC_PRIVATE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/ec_private.pem"
));

async fn assert_401(app: &TestApp, auth: Option<&str>, why: &str) {
    let mut req = app.client.get(app.url("/v1/quota"));
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let res = req.send().await.unwrap();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .unwrap_or_else(|| panic!("{why}: no WWW-Authenticate"))
        .to_str()
        .unwrap()
        .to_string();
    assert!(challenge.starts_with("Bearer"), "{why}: {challenge}");
    let b = problem(res, 401).await;
    assert_eq!(b["type"], "/problems/unauthorized", "{why}");
}

/// [`assert_401`] for `Authorization: Bearer <token>`.
async fn assert_token_401(app: &TestApp, token: &str, why: &str) {
    assert_401(app, Some(&format!("Bearer {token}")), why).await;
}

fn rs256(claims: &serde_json::Value, kid: &str) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(kid.into());
    jsonwebtoken::encode(
        &h,
        claims,
        &EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn es256(claims: &serde_json::Value, kid: &str) -> String {
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some(kid.into());
    jsonwebtoken::encode(
        &h,
        claims,
        &EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap(),
    )
    .unwrap()
}

/// A token with `alg: none` and no signature, built by hand (the library refuses to make one).
fn alg_none(claims: &serde_json::Value) -> String {
    let h = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT"}).to_string());
    let c = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{h}.{c}.")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_tokens_are_401() {
    let app = TestApp::start_with("http_auth_hs", |c| {
        c.jwt_issuer = Some("https://issuer.test".into())
    })
    .await;
    let good = |sub: &str| {
        let mut c = claims(sub, "authenticated");
        c["iss"] = "https://issuer.test".into();
        c
    };
    // A valid token works, so the failures below are about the token.
    let ok = app.quota(&hs256(&good("alice"), SECRET)).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(body(ok).await["user"], "alice");

    assert_401(&app, None, "missing").await;
    assert_401(&app, Some("Bearer"), "empty bearer").await;
    assert_401(&app, Some("Basic YWxpY2U6cHc="), "basic scheme").await;
    assert_401(&app, Some("Bearer not-a-jwt"), "malformed").await;

    let mut expired = good("alice");
    expired["exp"] = (now() - 3600).into();
    assert_token_401(&app, &hs256(&expired, SECRET), "expired").await;

    let mut aud = good("alice");
    aud["aud"] = "someone-else".into();
    assert_token_401(&app, &hs256(&aud, SECRET), "wrong audience").await;

    let mut iss = good("alice");
    iss["iss"] = "https://evil.test".into();
    assert_token_401(&app, &hs256(&iss, SECRET), "wrong issuer").await;

    let mut no_sub = good("alice");
    no_sub.as_object_mut().unwrap().remove("sub");
    assert_token_401(&app, &hs256(&no_sub, SECRET), "no sub").await;

    let mut no_exp = good("alice");
    no_exp.as_object_mut().unwrap().remove("exp");
    assert_token_401(&app, &hs256(&no_exp, SECRET), "no exp").await;

    assert_token_401(&app, &alg_none(&good("alice")), "alg none").await;
    assert_401(
        &app,
        Some(&format!(
            "Bearer {}",
            hs256(&good("alice"), "another-secret-another-secret-0000")
        )),
        "wrong key",
    )
    .await;
    // RS256 while no JWKS is configured.
    assert_token_401(
        &app,
        &rs256(&good("alice"), "test-rsa-1"),
        "rs256 without jwks",
    )
    .await;
    app.stop().await;
}

/// Serves the fixture JWKS on a local port; returns its URL.
async fn jwks_server() -> String {
    let router = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(|| async { ([("content-type", "application/json")], JWKS) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}/jwks.json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jwks_rs256_and_no_algorithm_confusion() {
    let url = jwks_server().await;
    let app = TestApp::start_with("http_auth_jwks", |c| {
        c.jwks_url = Some(url);
        // Both kinds configured: the confusion attack below must still fail.
        c.jwt_secret = Some(Secret::new(SECRET));
    })
    .await;

    let ok = app
        .quota(&rs256(&claims("rsa-user", "authenticated"), "test-rsa-1"))
        .await;
    assert_eq!(ok.status(), 200);
    assert_eq!(body(ok).await["user"], "rsa-user");

    // ES256 with the P-256 key of the same JWKS.
    let ok = app
        .quota(&es256(&claims("ec-user", "authenticated"), "test-ec-1"))
        .await;
    assert_eq!(ok.status(), 200);
    assert_eq!(body(ok).await["user"], "ec-user");
    // An ES256 token naming the RSA key's kid matches no key of its algorithm.
    assert_401(
        &app,
        Some(&format!(
            "Bearer {}",
            es256(&claims("ec-user", "authenticated"), "test-rsa-1")
        )),
        "ES256 naming an RSA kid",
    )
    .await;

    // Unknown kid: refetched once, still unknown.
    assert_401(
        &app,
        Some(&format!(
            "Bearer {}",
            rs256(&claims("rsa-user", "authenticated"), "rotated-away")
        )),
        "unknown kid",
    )
    .await;

    // HS256 signed with the RSA public key as the HMAC secret (classic RS/HS confusion).
    let confused = hs256(&claims("rsa-user", "authenticated"), RSA_PUBLIC);
    assert_401(
        &app,
        Some(&format!("Bearer {confused}")),
        "HS256 with the public key",
    )
    .await;
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("test-rsa-1".into());
    let confused_kid = jsonwebtoken::encode(
        &h,
        &claims("rsa-user", "authenticated"),
        &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()),
    )
    .unwrap();
    assert_401(
        &app,
        Some(&format!("Bearer {confused_kid}")),
        "HS256 naming the RSA kid",
    )
    .await;

    let mut expired = claims("rsa-user", "authenticated");
    expired["exp"] = (now() - 3600).into();
    assert_token_401(&app, &rs256(&expired, "test-rsa-1"), "expired RS256").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jwks_only_rejects_hs256() {
    let url = jwks_server().await;
    let app = TestApp::start_with("http_auth_jwks_only", |c| {
        c.jwks_url = Some(url);
        c.jwt_secret = None;
    })
    .await;
    assert_token_401(&app, &user_token("alice"), "HS256 without a secret").await;
    let ok = app
        .quota(&rs256(&claims("alice", "authenticated"), "test-rsa-1"))
        .await;
    assert_eq!(ok.status(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unreachable_jwks_is_503_not_401() {
    // Nothing listens on port 1.
    let app = TestApp::start_with("http_auth_jwks_down", |c| {
        c.jwks_url = Some("http://127.0.0.1:1/jwks.json".into());
        c.jwt_secret = None;
    })
    .await;
    let res = app
        .quota(&rs256(&claims("alice", "authenticated"), "test-rsa-1"))
        .await;
    assert!(res.headers().contains_key("retry-after"));
    problem(res, 503).await;
    app.stop().await;
}
