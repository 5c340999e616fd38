//! Admin routes: 403 for end users; each change is audited with the admin's `sub` as actor.

use aiquota_tests::http::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_routes_need_an_admin_role() {
    let app = TestApp::start("http_admin_403").await;
    let user = user_token("henry");
    let checks = [
        app.get("/v1/admin/users/henry", &user),
        app.put("/v1/admin/users/henry/plan", &user)
            .json(&json!({"plan": "pro"})),
        app.put("/v1/admin/users/henry/limits", &user)
            .json(&json!({"meter": "ai_requests", "period": "day", "limit": 1000})),
        app.post("/v1/admin/users/henry/reset", &user),
    ];
    for req in checks {
        problem(req.send().await.unwrap(), 403).await;
    }
    // No token at all is 401, not 403.
    let res = app.get_anonymous("/v1/admin/users/henry").await;
    problem(res, 401).await;
    let db = sql(&app.db).await;
    let audited: i64 = db
        .query_one("SELECT count(*) FROM quota.audit_log", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(audited, 0, "nothing changed");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_changes_are_audited_with_the_admin_as_actor() {
    let app = TestApp::start("http_admin").await;
    let admin = admin_token("admin-7");
    let ivy = user_token("ivy");
    assert_eq!(app.consume_status(&ivy).await, 200);

    let res = app
        .put_json(
            "/v1/admin/users/ivy/plan",
            &admin,
            &json!({"plan": "pro", "expires_at": "2999-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let acct = body(res).await;
    assert_eq!(acct["plan"], "pro");
    assert_eq!(acct["plan_expires_at"], "2999-01-01T00:00:00Z");
    let q = body(app.quota(&ivy).await).await;
    assert_eq!(q["plan"], "pro", "applies to the very next read");

    let res = app
        .put_json(
            "/v1/admin/users/ivy/plan",
            &admin,
            &json!({"plan": "no-such-plan"}),
        )
        .await;
    problem(res, 404).await;

    let res = app
        .put_json(
            "/v1/admin/users/ivy/limits",
            &admin,
            &json!({"meter": "ai_requests", "period": "hour", "limit": 5}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(body(res).await["limit"], 5);
    let res = app
        .put_json(
            "/v1/admin/users/ivy/limits",
            &admin,
            &json!({"meter": "ai_requests", "period": "fortnight", "limit": 5}),
        )
        .await;
    problem(res, 400).await;
    let res = app
        .put_json(
            "/v1/admin/users/ivy/limits",
            &admin,
            &json!({"meter": "ai_requests", "period": "hour", "limit": null}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert!(body(res).await["limit"].is_null());

    let res = app
        .post_json(
            "/v1/admin/users/ivy/reset",
            &admin,
            &json!({"meter": "ai_requests"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(body(res).await["windows"], 1);

    let res = app.get("/v1/admin/users/ivy", &admin).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let usage = body(res).await;
    let req = usage
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["meter"] == "ai_requests")
        .unwrap();
    assert_eq!(req["used"], 0);
    assert_eq!(req["all_time"], 1);
    assert_eq!(req["plan"], "pro");

    let db = sql(&app.db).await;
    let rows = db
        .query(
            "SELECT actor, action FROM quota.audit_log WHERE target = 'ivy' ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let actions: Vec<&str> = got.iter().map(|(_, a)| a.as_str()).collect();
    assert_eq!(
        actions,
        ["assign_plan", "set_limit", "set_limit", "reset_usage"],
        "{got:?}"
    );
    assert!(got.iter().all(|(actor, _)| actor == "admin-7"), "{got:?}");

    // Admin rights do not stay on the pooled connection: an end-user route still cannot reach them.
    let db_role: String = db
        .query_one(
            "SELECT string_agg(DISTINCT usename, ',') FROM pg_stat_activity WHERE datname = current_database() AND usename <> 'postgres'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        db_role, "aiquota_api",
        "the API connects as aiquota_api only"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grants_analytics_top_users() {
    let app = TestApp::start("http_admin_analytics").await;
    let admin = admin_token("admin-9");
    let user = user_token("olga");
    for req in [
        app.post("/v1/admin/users/olga/grants", &user)
            .json(&json!({"meter": "ai_requests", "amount": 5})),
        app.get("/v1/admin/analytics", &user),
        app.get("/v1/admin/top-users", &user),
    ] {
        problem(req.send().await.unwrap(), 403).await;
    }

    // olga spends her 10 a day, gets 5 credits, and can consume 5 more, then is denied.
    for _ in 0..10 {
        assert_eq!(app.consume_status(&user).await, 200);
    }
    problem(app.consume(&user).await, 429).await;
    let res = app
        .post_json(
            "/v1/admin/users/olga/grants",
            &admin,
            &json!({"meter": "ai_requests", "amount": 5, "source": "support"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let g = body(res).await;
    assert_eq!(g["amount"], 5);
    assert_eq!(g["remaining"], 5);
    assert_eq!(g["source"], "support");
    for n in 0..5 {
        let res = app.consume(&user).await;
        assert_eq!(res.status(), 200, "credit {n}");
    }
    problem(app.consume(&user).await, 429).await;
    let res = app
        .post_json(
            "/v1/admin/users/olga/grants",
            &admin,
            &json!({"meter": "ai_requests", "amount": 0}),
        )
        .await;
    problem(res, 400).await;

    // A second user, lighter.
    assert_eq!(app.consume_status(&user_token("pete")).await, 200);

    let res = app
        .get("/v1/admin/top-users?limit=10&by=today", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let top = body(res).await;
    let top = top.as_array().unwrap();
    assert_eq!(top.len(), 2, "{top:?}");
    assert_eq!(top[0]["user_id"], "olga");
    assert_eq!(top[0]["rank"], 1);
    assert_eq!(top[0]["usage"], 15);
    assert_eq!(top[1]["user_id"], "pete");
    problem(
        app.get("/v1/admin/top-users?by=decade", &admin)
            .send()
            .await
            .unwrap(),
        400,
    )
    .await;
    problem(
        app.get("/v1/admin/top-users?limit=many", &admin)
            .send()
            .await
            .unwrap(),
        400,
    )
    .await;

    let res = app.get("/v1/admin/analytics", &admin).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let a = body(res).await;
    assert_eq!(a["meter"], "ai_requests");
    assert_eq!(a["active_users"], 2);
    assert_eq!(a["users_at_limit"], 1);
    assert_eq!(a["usage"], 16);
    let day = a["day"].as_str().unwrap().to_string();
    let res = app
        .get(&format!("/v1/admin/analytics?day={day}"), &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(body(res).await["usage"], 16);
    let res = app
        .get("/v1/admin/analytics?day=2020-01-01", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(body(res).await["usage"], 0);
    problem(
        app.get("/v1/admin/analytics?day=yesterday", &admin)
            .send()
            .await
            .unwrap(),
        400,
    )
    .await;

    let db = sql(&app.db).await;
    let actor: String = db
        .query_one(
            "SELECT actor FROM quota.audit_log WHERE action = 'grant' AND target = 'olga'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(actor, "admin-9");
    app.stop().await;
}
