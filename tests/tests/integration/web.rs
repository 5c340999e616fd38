//! The web kit (`web/`) against the real API and database: the generated TypeScript types must match the
//! API's `/openapi.json`, and the browser tests (`web/test/browser`, Debian's chromium driven by
//! playwright-core) run against an app started here. `make test-web` runs `npm ci` first.

use std::{path::PathBuf, process::Stdio};

use aiquota_api::config::Secret;
use aiquota_tests::http::*;
use serde_json::json;
use sha2::{Digest, Sha256};

/// The admin API key the browser tests sign in with; only its digest is configured.
const ADMIN_KEY: &str = "aiquota-browser-test-admin-key-5b1e";
/// Keys of the Razorpay stand-in (`web/scripts/razorpay-standin.mjs`) the upgrade test pays through.
const RAZORPAY_KEY_ID: &str = "rzp_test_browser1";
const RAZORPAY_KEY_SECRET: &str = "browser-test-key-secret-Kq47";

fn kit_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web")
}

/// `node` with the kit's dependencies installed, or a clear failure saying how to get them.
fn node() -> tokio::process::Command {
    assert!(
        kit_dir().join("node_modules/playwright-core").is_dir(),
        "web/node_modules is missing: run `make test-web` (it runs `npm ci` in web/)"
    );
    let mut c = tokio::process::Command::new("node");
    c.current_dir(kit_dir()).stdin(Stdio::null());
    c
}

/// A port nobody listens on right now, for the test pages' origin (it must be in the CORS list before
/// the API starts).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn temp_file(name: &str, contents: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("aiquota-{}-{name}", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn web_generated_types_match_the_served_openapi_document() {
    let app = TestApp::start("web_types").await;
    let doc = app
        .get_anonymous("/openapi.json")
        .await
        .text()
        .await
        .unwrap();
    let path = temp_file("openapi.json", &doc);
    let out = node()
        .args(["scripts/gen-types.mjs", path.to_str().unwrap(), "--check"])
        .output()
        .await
        .expect("node runs");
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn web_kit_in_a_real_browser() {
    let page_port = free_port();
    let origin = format!("http://127.0.0.1:{page_port}");
    let razorpay_port = free_port();
    let demo = kit_dir().join("dist/demo");
    assert!(
        demo.join("index.html").is_file(),
        "web/dist/demo is missing: `make test-web` builds it (npm run build) first"
    );
    let digest: [u8; 32] = Sha256::digest(ADMIN_KEY.as_bytes()).into();
    let app = TestApp::start_with("web_browser", |c| {
        c.cors_origins = vec![origin.clone()];
        c.admin_key_hashes = vec![digest];
        c.payments.razorpay_key_id = Some(RAZORPAY_KEY_ID.into());
        c.payments.razorpay_key_secret = Some(Secret::new(RAZORPAY_KEY_SECRET));
        c.payments.razorpay_api_base = format!("http://127.0.0.1:{razorpay_port}");
        c.payments.public_url = Some(origin.clone());
        c.demo_dir = Some(demo);
    })
    .await;
    let users = json!({
        "meter": "wb_meter", "live": "wb_live", "copilot": "wb_copilot", "admin": "wb_admin",
        "upgrade": "wb_upgrade", "demo": "wb_demo",
    });
    let mut tokens = serde_json::Map::new();
    for (k, u) in users.as_object().unwrap() {
        tokens.insert(k.clone(), user_token(u.as_str().unwrap()).into());
    }
    let env = json!({
        "api": app.base, "pagePort": page_port, "tokens": tokens, "users": users,
        "adminKey": ADMIN_KEY,
        "razorpay": {"port": razorpay_port, "keyId": RAZORPAY_KEY_ID, "keySecret": RAZORPAY_KEY_SECRET},
        "screenshots": kit_dir().join("../docs/img").canonicalize().unwrap_or_else(|_| kit_dir().join("../docs/img")),
    });
    let env_path = temp_file("web-env.json", &env.to_string());
    let mut files: Vec<String> = std::fs::read_dir(kit_dir().join("test/browser"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".test.ts"))
        .map(|n| format!("test/browser/{n}"))
        .collect();
    files.sort();
    let status = node()
        .args(["--import", "tsx", "--test", "--test-concurrency=1"])
        .args(&files)
        .env("AIQUOTA_WEB_ENV", &env_path)
        .status()
        .await
        .expect("node runs");
    let _ = std::fs::remove_file(&env_path);
    assert!(status.success(), "browser tests failed (output above)");

    // What the dashboard did is in the audit log, with the admin key as actor, and in quota.status.
    let db = sql(&app.db).await;
    let actions: Vec<String> = db
        .query(
            "SELECT action FROM quota.audit_log WHERE target = 'wb_admin' AND actor LIKE 'api-key:%' ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        actions,
        ["assign_plan", "set_limit", "reset_usage", "grant"]
    );
    let row = db
        .query_one(
            "SELECT plan, used, \"limit\" FROM quota.status('wb_admin') WHERE meter = 'ai_requests' AND period = 'day'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0).as_deref(), Some("pro"));
    assert_eq!(row.get::<_, i64>(1), 0, "usage was reset");
    assert_eq!(row.get::<_, Option<i64>>(2), Some(75), "the custom limit");
    let credits: i64 = db
        .query_one(
            "SELECT coalesce(sum(remaining), 0)::bigint FROM quota.credits('wb_admin') WHERE meter = 'ai_requests'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(credits, 25);
    let plan: String = db
        .query_one(
            "SELECT plan FROM quota.accounts WHERE user_id = 'wb_upgrade'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(plan, "pro", "the payment upgraded the buyer");
    app.stop().await;
}
