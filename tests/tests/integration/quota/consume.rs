//! The caller's quota over HTTP: consume until denied (status, headers, problem body), idempotent replay and
//! 422, bad input, reservations (and another user's reservation id is a 404).

use aiquota_tests::http::*;
use axum::http::StatusCode;
use serde_json::json;

fn header(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consume_until_denied() {
    let app = TestApp::start("http_consume").await;
    let alice = user_token("alice");
    for n in 1..=10 {
        let res = app.consume(&alice).await;
        assert_eq!(res.status(), 200, "request {n}");
        assert_eq!(
            header(&res, "ratelimit-policy").as_deref(),
            Some("\"daily\";q=10;w=86400")
        );
        let rl = header(&res, "ratelimit").unwrap();
        assert!(
            rl.starts_with(&format!("\"daily\";r={};t=", 10 - n)),
            "{rl}"
        );
        assert!(header(&res, "retry-after").is_none());
        let d = body(res).await;
        assert_eq!(d["allowed"], true);
        assert_eq!(d["used"], n);
        assert_eq!(d["remaining"], 10 - n);
    }
    let res = app.consume(&alice).await;
    let retry: i64 = header(&res, "retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=86_400).contains(&retry), "{retry}");
    assert_eq!(
        header(&res, "ratelimit-policy").as_deref(),
        Some("\"daily\";q=10;w=86400")
    );
    assert!(header(&res, "ratelimit")
        .unwrap()
        .starts_with("\"daily\";r=0;t="));
    let p = problem(res, 429).await;
    // The IANA-registered problem type, with aiquota's slug kept as the member `problem`.
    assert_eq!(
        p["type"],
        "https://iana.org/assignments/http-problem-types#quota-exceeded"
    );
    assert_eq!(p["problem"], "quota-exceeded");
    assert_eq!(p["remaining"], 0);
    assert_eq!(p["allowed"], false);
    assert_eq!(p["quota_status"], "exceeded");
    assert!(p["resets_at"].is_string());
    assert_eq!(p["retry_after_s"], retry);
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("Daily limit of 10 ai_requests reached"),
        "{p}"
    );
    assert_eq!(p["instance"], "/v1/quota/consume");

    // A request that can never pass has no Retry-After.
    let res = app
        .post_json(
            "/v1/quota/consume",
            &alice,
            &json!({"meter": "ai_tokens", "amount": 20000}),
        )
        .await;
    assert!(header(&res, "retry-after").is_none());
    let p = problem(res, 429).await;
    assert!(p["retry_after_s"].is_null());

    // GET /v1/quota shows the state; another user is untouched.
    let q = body(app.quota(&alice).await).await;
    assert_eq!(q["plan"], "free");
    let req = q["meters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["meter"] == "ai_requests")
        .unwrap();
    assert_eq!(req["used"], 10);
    assert_eq!(req["status"], "exceeded");
    let bob = body(app.quota(&user_token("bob")).await).await;
    assert_eq!(bob["meters"][0]["used"], 0);

    let db = sql(&app.db).await;
    let rows: i64 = db
        .query_one(
            "SELECT count(*) FROM quota.ledger WHERE user_id = 'alice'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 10);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deny_status_403_when_configured() {
    let app = TestApp::start_with("http_deny403", |c| c.deny_status = StatusCode::FORBIDDEN).await;
    let t = user_token("carol");
    let res = app
        .post_json("/v1/quota/consume", &t, &json!({"amount": 10}))
        .await;
    assert_eq!(res.status(), 200);
    let res = app.consume(&t).await;
    assert!(header(&res, "retry-after").is_some());
    problem(res, 403).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idempotent_replay_and_422() {
    let app = TestApp::start("http_idem").await;
    let t = user_token("dave");
    let req = || {
        app.post("/v1/quota/consume", &t)
            .header("idempotency-key", "job-1")
            .json(&json!({"meter": "ai_tokens", "amount": 1200, "metadata": {"model": "m"}}))
    };
    let first = body(req().send().await.unwrap()).await;
    assert_eq!(first["replayed"], false);
    assert_eq!(first["used"], 1200);
    let again = req().send().await.unwrap();
    assert_eq!(again.status(), 200);
    let again = body(again).await;
    assert_eq!(again["replayed"], true);
    assert_eq!(again["used"], 1200);

    let other = app
        .post("/v1/quota/consume", &t)
        .header("idempotency-key", "job-1")
        .json(&json!({"meter": "ai_tokens", "amount": 5000, "metadata": {"model": "m"}}))
        .send()
        .await
        .unwrap();
    let p = problem(other, 422).await;
    assert_eq!(p["type"], "/problems/idempotency-key-reused");
    assert!(p["detail"].as_str().unwrap().contains("already used"));

    // Keys are per user: the same key from another user is a new request.
    let eve = app
        .post("/v1/quota/consume", &user_token("eve"))
        .header("idempotency-key", "job-1")
        .json(&json!({"meter": "ai_tokens", "amount": 5000}))
        .send()
        .await
        .unwrap();
    assert_eq!(body(eve).await["replayed"], false);

    let db = sql(&app.db).await;
    let charged: i64 = db
        .query_one(
            "SELECT coalesce(sum(amount), 0)::bigint FROM quota.ledger WHERE user_id = 'dave'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(charged, 1200, "the replay charged nothing");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_is_400_without_database_text() {
    let app = TestApp::start("http_bad_input").await;
    let t = user_token("frank");
    for (body_json, what) in [
        (json!({"meter": "nope"}), "undeclared meter"),
        (json!({"amount": 0}), "amount 0"),
        (json!({"metadata": [1, 2]}), "metadata not an object"),
    ] {
        let res = app.post_json("/v1/quota/consume", &t, &body_json).await;
        let p = problem(res, 400).await;
        assert_eq!(p["type"], "/problems/invalid-input", "{what}");
        let detail = p["detail"].as_str().unwrap();
        assert!(
            !detail.contains("SQLSTATE") && !detail.contains("ERROR"),
            "{what}: {detail}"
        );
    }
    let res = app
        .post("/v1/quota/consume", &t)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(res, 400).await["type"], "/problems/bad-request");
    let res = app
        .post_json("/v1/quota/consume", &t, &json!({"amount": "ten"}))
        .await;
    problem(res, 400).await;
    let res = app
        .post("/v1/quota/consume", &t)
        .header("idempotency-key", "k".repeat(300))
        .send()
        .await
        .unwrap();
    problem(res, 400).await;
    // Body over the limit.
    let res = app
        .post_json(
            "/v1/quota/consume",
            &t,
            &json!({"metadata": {"x": "y".repeat(100_000)}}),
        )
        .await;
    problem(res, 413).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reservations() {
    let app = TestApp::start("http_reservations").await;
    let grace = user_token("grace");
    let res = app
        .post_json(
            "/v1/quota/reservations",
            &grace,
            &json!({"meter": "ai_tokens", "amount": 4000, "ttl_s": 120}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let r = body(res).await;
    assert_eq!(r["allowed"], true);
    assert_eq!(r["held"], 4000);
    assert_eq!(r["remaining"], 6000);
    let id = r["reservation_id"].as_str().unwrap().to_string();

    // Another user cannot settle it: 404, as for an unknown id.
    let mallory = user_token("mallory");
    let res = app
        .post_json(
            &format!("/v1/quota/reservations/{id}/commit"),
            &mallory,
            &json!({"actual": 1}),
        )
        .await;
    problem(res, 404).await;
    let res = app
        .post(&format!("/v1/quota/reservations/{id}/release"), &mallory)
        .send()
        .await
        .unwrap();
    problem(res, 404).await;

    // The hold counts: a second reservation that does not fit is denied.
    let res = app
        .post_json(
            "/v1/quota/reservations",
            &grace,
            &json!({"meter": "ai_tokens", "amount": 7000}),
        )
        .await;
    let p = problem(res, 429).await;
    assert!(p["reservation_id"].is_null());

    let res = app
        .post_json(
            &format!("/v1/quota/reservations/{id}/commit"),
            &grace,
            &json!({"actual": 3250}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let s = body(res).await;
    assert_eq!(s["state"], "committed");
    assert_eq!(s["charged"], 3250);
    assert_eq!(s["remaining"], 6750);
    // Settled already: 409.
    let res = app
        .post_json(
            &format!("/v1/quota/reservations/{id}/commit"),
            &grace,
            &json!({"actual": 3250}),
        )
        .await;
    problem(res, 409).await;

    // Reserve with a key twice: one reservation; then release it.
    let reserve = || {
        app.post("/v1/quota/reservations", &grace)
            .header("idempotency-key", "call-9")
            .json(&json!({"meter": "ai_tokens", "amount": 1000}))
    };
    let a = body(reserve().send().await.unwrap()).await;
    let b = body(reserve().send().await.unwrap()).await;
    assert_eq!(a["reservation_id"], b["reservation_id"]);
    assert_eq!(b["replayed"], true);
    let id2 = a["reservation_id"].as_str().unwrap();
    let res = app
        .post(&format!("/v1/quota/reservations/{id2}/release"), &grace)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let s = body(res).await;
    assert_eq!(s["state"], "released");
    assert_eq!(s["charged"], 0);

    // Unknown and malformed ids.
    let res = app
        .post(
            "/v1/quota/reservations/00000000-0000-0000-0000-000000000000/release",
            &grace,
        )
        .send()
        .await
        .unwrap();
    problem(res, 404).await;
    let res = app
        .post("/v1/quota/reservations/not-a-uuid/release", &grace)
        .send()
        .await
        .unwrap();
    problem(res, 400).await;

    let q = body(app.quota(&grace).await).await;
    let tokens = q["meters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["meter"] == "ai_tokens")
        .unwrap();
    assert_eq!(tokens["used"], 3250);
    assert_eq!(tokens["held"], 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_rate_limit_policy_lists_every_window_of_the_meter() {
    let app = TestApp::start("http_policy_windows").await;
    let admin = admin_token("admin-policy");
    let res = app
        .put_json(
            "/v1/admin/users/wendy/limits",
            &admin,
            &json!({"meter": "ai_requests", "period": "hour", "limit": 3}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let wendy = user_token("wendy");
    let res = app.consume(&wendy).await;
    assert_eq!(res.status(), 200);
    // Both windows in the policy (shortest first); RateLimit names the binding one, the hour (2 of 3 left).
    assert_eq!(
        header(&res, "ratelimit-policy").as_deref(),
        Some("\"hourly\";q=3;w=3600, \"daily\";q=10;w=86400")
    );
    assert!(header(&res, "ratelimit")
        .unwrap()
        .starts_with("\"hourly\";r=2;t="));
}
