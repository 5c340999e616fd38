//! The API for browsers: CORS on the user, payment and event routes (`AIQUOTA_CORS_ORIGINS`), and admin
//! access by API key (`AIQUOTA_ADMIN_KEYS`, SHA-256 digests of the accepted keys).

use aiquota_tests::http::*;
use reqwest::Method;
use serde_json::json;
use sha2::{Digest, Sha256};

const APP: &str = "http://app.example.test";

fn header<'a>(res: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    res.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn browser_routes_answer_cors_and_expose_the_rate_limit_headers() {
    let app = TestApp::start_with("http_cors", |c| {
        c.cors_origins = vec![APP.into(), "http://localhost:3000".into()]
    })
    .await;
    let token = user_token("cora");

    // A preflight carries no token and is answered before authentication.
    for path in [
        "/v1/quota/consume",
        "/v1/quota",
        "/v1/quota/events",
        "/v1/payments/razorpay/links",
    ] {
        let res = app
            .client
            .request(Method::OPTIONS, app.url(path))
            .header("origin", APP)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.status());
        assert_eq!(
            header(&res, "access-control-allow-origin"),
            Some(APP),
            "{path}"
        );
        let allowed = header(&res, "access-control-allow-headers").unwrap_or("");
        assert!(allowed.contains("authorization"), "{path}: {allowed}");
        assert_eq!(header(&res, "access-control-allow-credentials"), None);
    }

    // Spend the day's 10, then the denial: the browser must be allowed to read its status and headers.
    let mut last = None;
    for n in 1..=11 {
        let res = app
            .post("/v1/quota/consume", &token)
            .header("origin", APP)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), if n <= 10 { 200 } else { 429 });
        assert_eq!(header(&res, "access-control-allow-origin"), Some(APP));
        last = Some(res);
    }
    let res = last.unwrap();
    let exposed = header(&res, "access-control-expose-headers")
        .unwrap_or("")
        .to_ascii_lowercase();
    for h in [
        "ratelimit",
        "ratelimit-policy",
        "retry-after",
        "x-request-id",
    ] {
        assert!(
            exposed.split(',').any(|e| e.trim() == h),
            "{h} not in {exposed}"
        );
    }
    problem(res, 429).await;

    // An error before the handler (no token) still carries CORS, so the page sees a 401, not a network error.
    let res = app
        .client
        .get(app.url("/v1/quota"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(header(&res, "access-control-allow-origin"), Some(APP));

    // An origin not on the list gets no grant; neither do the admin routes, from any origin.
    let res = app
        .get("/v1/quota", &token)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "access-control-allow-origin"), None);
    let res = app
        .client
        .request(Method::OPTIONS, app.url("/v1/admin/users/cora/plan"))
        .header("origin", APP)
        .header("access-control-request-method", "PUT")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "access-control-allow-origin"), None);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_cors_origins_there_is_no_cors() {
    let app = TestApp::start("http_cors_off").await;
    let res = app
        .get("/v1/quota", &user_token("dora"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "access-control-allow-origin"), None);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_admin_api_key_is_accepted_by_its_digest_and_audited_by_a_prefix() {
    let key = "sb_secret_test_Zq81LmN0pQ";
    let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
    let other: [u8; 32] = Sha256::digest(b"another-service-key").into();
    let app = TestApp::start_with("http_admin_keys", |c| {
        c.admin_key_hashes = vec![other, digest]
    })
    .await;

    let res = app
        .put_json("/v1/admin/users/kim/plan", key, &json!({"plan": "pro"}))
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(body(res).await["plan"], "pro");
    let res = app.get("/v1/admin/analytics", key).send().await.unwrap();
    assert_eq!(res.status(), 200);

    let db = sql(&app.db).await;
    let row = db
        .query_one(
            "SELECT actor, action FROM quota.audit_log WHERE target = 'kim'",
            &[],
        )
        .await
        .unwrap();
    let prefix: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(row.get::<_, String>(0), format!("api-key:{prefix}"));
    assert!(!row.get::<_, String>(0).contains(key));

    // A wrong key, or the right key with a character changed, is no JWT either: 401, and nothing changes.
    for bad in ["sb_secret_test_Zq81LmN0pX", "nope"] {
        let res = app
            .put_json("/v1/admin/users/kim/plan", bad, &json!({"plan": "free"}))
            .await;
        problem(res, 401).await;
    }
    // The key is an admin credential only: it is not a user.
    problem(app.quota(key).await, 401).await;
    // A user's JWT is still refused on admin routes.
    let res = app
        .put_json(
            "/v1/admin/users/kim/plan",
            &user_token("kim"),
            &json!({"plan": "free"}),
        )
        .await;
    problem(res, 403).await;
    let plan: String = db
        .query_one("SELECT plan FROM quota.accounts WHERE user_id = 'kim'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(plan, "pro");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dashboard_is_embedded_and_the_demo_is_served_only_when_configured() {
    let app = TestApp::start("http_dashboard").await;
    let res = app.get_anonymous("/admin/").await;
    assert_eq!(res.status(), 200);
    let csp = header(&res, "content-security-policy")
        .unwrap_or("")
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(res.text().await.unwrap().contains("/admin/admin.js"));
    let res = app.get_anonymous("/admin/admin.js").await;
    assert_eq!(
        header(&res, "content-type"),
        Some("text/javascript; charset=utf-8")
    );
    // No demo without AIQUOTA_DEMO_DIR: a problem+json 404 like any unknown route.
    problem(app.get_anonymous("/demo/").await, 404).await;
    app.stop().await;

    let dir = std::env::temp_dir().join(format!("aiquota-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), "<p>demo</p>").unwrap();
    std::fs::write(dir.join("demo.js"), "export {}").unwrap();
    std::fs::write(dir.join(".secret.js"), "no").unwrap();
    let d = dir.clone();
    let app = TestApp::start_with("http_demo", move |c| c.demo_dir = Some(d)).await;
    let res = app.get_anonymous("/demo/").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "<p>demo</p>");
    let res = app.get_anonymous("/demo/demo.js").await;
    assert_eq!(
        header(&res, "content-type"),
        Some("text/javascript; charset=utf-8")
    );
    for bad in [
        "/demo/.secret.js",
        "/demo/..%2Fetc%2Fpasswd",
        "/demo/%2e%2e",
        "/demo/missing.js",
    ] {
        let res = app.get_anonymous(bad).await;
        assert_eq!(res.status(), 404, "{bad}");
    }
    // Razorpay's callback goes on to the demo page with its query.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = no_redirects
        .get(app.url("/billing/razorpay/callback?razorpay_payment_id=pay_1&x=y"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        header(&res, "location"),
        Some("/demo/?razorpay_payment_id=pay_1&x=y")
    );
    app.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
