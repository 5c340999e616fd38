//! Bad input is a 4xx problem everywhere: a U+0000 in any string the API takes (body, path, query, a
//! token's `sub`) is refused before it reaches PostgreSQL, and a value PostgreSQL refuses as a data
//! exception (class 22, bigint overflow included) is a 400, never a 500. Nothing is charged either way.

use aiquota_tests::http::*;
use serde_json::json;

/// Consumes recorded for `user` in the ledger (as the superuser).
async fn ledger_rows(app: &TestApp, user: &str) -> i64 {
    sql(&app.db)
        .await
        .query_one(
            "SELECT count(*) FROM quota.ledger WHERE user_id = $1",
            &[&user],
        )
        .await
        .unwrap()
        .get(0)
}

/// Asserts that the problem `p` says the refused character is U+0000; `what` names the case.
fn assert_names_the_nul(p: &serde_json::Value, what: &str) {
    assert!(
        p["detail"].as_str().unwrap().contains("U+0000"),
        "{what}: {p}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nul_in_a_body_is_400_and_charges_nothing() {
    let app = TestApp::start("http_input_nul_body").await;
    let t = user_token("nadia");
    for (body, what) in [
        (json!({"meter": "ai_\u{0}requests"}), "meter"),
        (json!({"metadata": {"k\u{0}": 1}}), "metadata key"),
        (json!({"metadata": {"k": "v\u{0}"}}), "metadata value"),
        (
            json!({"metadata": {"k": ["a", {"deep": "\u{0}"}]}}),
            "nested metadata value",
        ),
    ] {
        let res = app.post_json("/v1/quota/consume", &t, &body).await;
        let p = problem(res, 400).await;
        assert_eq!(p["type"], "/problems/bad-request", "{what}: {p}");
        assert_names_the_nul(&p, what);
    }
    let res = app
        .post_json(
            "/v1/quota/reservations",
            &t,
            &json!({"meter": "ai_tokens\u{0}", "amount": 5}),
        )
        .await;
    problem(res, 400).await;
    // An escaped backslash before "u0000" is text, not a NUL: the body is read, not pattern-matched.
    let res = app
        .post_json(
            "/v1/quota/consume",
            &t,
            &json!({"metadata": {"k": "\\u0000"}}),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    assert_eq!(ledger_rows(&app, "nadia").await, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nul_in_path_query_or_sub_is_4xx() {
    let app = TestApp::start("http_input_nul_url").await;
    let admin = admin_token("ops");
    for path in [
        "/v1/admin/users/bad%00id",
        "/v1/admin/users/bad%00id/history",
        "/v1/admin/users/bob/history?meter=ai%00requests",
        "/v1/admin/analytics?meter=ai_requests%00",
    ] {
        let res = app.get(path, &admin).send().await.unwrap();
        let p = problem(res, 400).await;
        assert_names_the_nul(&p, path);
    }
    let res = app
        .put_json(
            "/v1/admin/users/bad%00id/plan",
            &admin,
            &json!({"plan": "pro"}),
        )
        .await;
    problem(res, 400).await;
    // A token whose `sub` holds a NUL is not a usable identity.
    let t = hs256(&claims("eve\u{0}", "authenticated"), SECRET);
    let res = app.consume(&t).await;
    problem(res, 401).await;
    let res = app.quota(&t).await;
    problem(res, 401).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_saturated_burst_is_answered_not_500() {
    let app = TestApp::start("http_input_overflow").await;
    // No calendar limit, one unit a day, a burst of 10^12: the bucket's time for a 10^12 call is past the
    // end of PostgreSQL's time, so the extension answers `resets_at = infinity`, which chrono cannot hold.
    sql(&app.db)
        .await
        .batch_execute(
            "SELECT quota.create_plan('slow', 'Slow');
             SELECT quota.set_plan_burst('slow', 'ai_requests', 1, '1 day', 1000000000000);
             SELECT quota.assign_plan('olga', 'slow');",
        )
        .await
        .unwrap();
    let t = user_token("olga");
    let huge = json!({"amount": 1_000_000_000_000i64});
    let res = app.post_json("/v1/quota/consume", &t, &huge).await;
    assert_eq!(res.status(), 200);
    let d = body(res).await;
    assert_eq!(d["resets_at"], "9999-12-31T23:59:59Z", "{d}");
    // The next call is a burst denial, reported the same way.
    let res = app.post_json("/v1/quota/consume", &t, &huge).await;
    let p = problem(res, 429).await;
    assert_eq!(p["period"], "burst", "{p}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn timestamps_postgresql_cannot_hold_are_400() {
    let app = TestApp::start("http_input_timestamp").await;
    let admin = admin_token("ops");
    // A year chrono reads but PostgreSQL refuses (22008, timestamp out of range): the client's value.
    let res = app
        .put_json(
            "/v1/admin/users/tim/plan",
            &admin,
            &json!({"plan": "pro", "expires_at": "-200000-01-01T00:00:00Z"}),
        )
        .await;
    let p = problem(res, 400).await;
    assert_eq!(p["type"], "/problems/invalid-input", "{p}");
    app.stop().await;
}
