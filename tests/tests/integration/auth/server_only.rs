//! Server-only mode (`AIQUOTA_USER_WRITES=off`): end-user tokens read their quota and stream events, but
//! consume, reserve, commit and release are 403 for them and charge nothing; a service token (a role in
//! `AIQUOTA_ADMIN_ROLES`, `sub` = the user) writes as before.

use aiquota_api::Config;
use aiquota_tests::http::*;
use serde_json::json;

async fn server_only(name: &str) -> TestApp {
    let db = fresh_db(name).await;
    // Through the environment's names, as an operator would set it.
    let config = Config::from_lookup(|var| match var {
        "AIQUOTA_USER_WRITES" => Some("off".into()),
        "AIQUOTA_JWT_SECRET" => Some(SECRET.into()),
        "AIQUOTA_DATABASE_URL" => Some(api_url(&db)),
        "AIQUOTA_LISTEN" => Some("127.0.0.1:0".into()),
        _ => None,
    })
    .unwrap();
    TestApp::start_on(db, config).await
}

async fn used(app: &TestApp, user: &str) -> i64 {
    sql(&app.db)
        .await
        .query_one(
            "SELECT coalesce(sum(amount), 0)::bigint FROM quota.ledger WHERE user_id = $1",
            &[&user],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn end_users_read_but_only_the_server_writes() {
    let app = server_only("http_server_only").await;
    let user = user_token("sam");
    let service = admin_token("sam");

    let res = app.consume(&user).await;
    let p = problem(res, 403).await;
    assert_eq!(p["type"], "/problems/server-only", "{p}");
    let res = app
        .post_json("/v1/quota/reservations", &user, &json!({"amount": 10}))
        .await;
    problem(res, 403).await;
    assert_eq!(
        used(&app, "sam").await,
        0,
        "nothing charged for the refused writes"
    );

    // Reads and the event stream stay open to the user.
    let res = app.quota(&user).await;
    assert_eq!(res.status(), 200);
    assert_eq!(body(res).await["user"], "sam");
    let res = app.get("/v1/quota/events", &user).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    drop(res);

    // The service token writes for the user.
    let res = app.consume(&service).await;
    assert_eq!(res.status(), 200);
    assert_eq!(used(&app, "sam").await, 1);
    let res = app
        .post_json("/v1/quota/reservations", &service, &json!({"amount": 10}))
        .await;
    assert_eq!(res.status(), 201);
    let id = body(res).await["reservation_id"]
        .as_str()
        .unwrap()
        .to_string();
    // The user cannot settle it (not even release it), the service can.
    for verb in ["commit", "release"] {
        let res = app
            .post_json(
                &format!("/v1/quota/reservations/{id}/{verb}"),
                &user,
                &json!({"actual": 3}),
            )
            .await;
        problem(res, 403).await;
    }
    let res = app
        .post_json(
            &format!("/v1/quota/reservations/{id}/commit"),
            &service,
            &json!({"actual": 3}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let q = body(app.quota(&user).await).await;
    let tokens = q["meters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["meter"] == "ai_tokens")
        .unwrap()
        .clone();
    assert_eq!(tokens["used"], 3, "{q}");
    app.stop().await;
}
