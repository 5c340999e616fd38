//! Server-Sent Events: the current quota at connect, and a plan upgrade made from plain SQL is pushed (NOTIFY,
//! nothing polls); other users' events are not delivered; after any loss of the LISTEN connection, one or a run
//! of them, every open stream shows a change made right after it.

use std::time::{Duration, Instant};

use aiquota_tests::{http::*, sse::Events};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plan_upgrade_is_pushed_without_polling() {
    let app = TestApp::start("http_events").await;
    let res = app
        .get("/v1/quota/events", &user_token("jane"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut events = Events::new(res);
    let first = events
        .next(Duration::from_secs(5))
        .await
        .expect("the quota at connect");
    assert_eq!(first["user"], "jane");
    assert_eq!(first["plan"], "free");

    // Someone else's change is not sent to jane.
    let db = sql(&app.db).await;
    db.execute("SELECT quota.assign_plan('kate', 'pro')", &[])
        .await
        .unwrap();
    assert!(
        events.next(Duration::from_millis(500)).await.is_none(),
        "kate's event reached jane"
    );

    // Pushed by NOTIFY, nothing polls: without the push no event comes at all, so the wait can be generous
    // for a noisy host.
    let start = Instant::now();
    db.execute("SELECT quota.assign_plan('jane', 'pro')", &[])
        .await
        .unwrap();
    let upgraded = events
        .next(Duration::from_secs(10))
        .await
        .expect("the upgrade pushed");
    println!("upgrade pushed after {:?}", start.elapsed());
    assert_eq!(upgraded["plan"], "pro");
    let req = upgraded["meters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["meter"] == "ai_requests")
        .unwrap();
    assert_eq!(req["limit"], 50);

    // Crossing a threshold through the API is pushed too.
    let t = user_token("jane");
    let res = app
        .post_json("/v1/quota/consume", &t, &serde_json::json!({"amount": 30}))
        .await;
    assert_eq!(res.status(), 200);
    let warned = events
        .next(Duration::from_secs(1))
        .await
        .expect("threshold event");
    let req = warned["meters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["meter"] == "ai_requests")
        .unwrap();
    assert_eq!(req["status"], "warning");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn listener_reconnects_after_its_connection_is_killed() {
    let app = TestApp::start("http_events_reconnect").await;
    let (mut events, _) = Events::subscribe(&app, "lena").await;
    let db = sql(&app.db).await;
    // Wait until it is back, then an upgrade must still arrive.
    kill_listener_and_wait(&db).await;
    db.execute("SELECT quota.assign_plan('lena', 'enterprise')", &[])
        .await
        .unwrap();
    let mut got = None;
    while let Some(e) = events.next(Duration::from_secs(2)).await {
        if e["plan"] == "enterprise" {
            got = Some(e);
            break;
        }
    }
    assert!(got.is_some(), "no event after the reconnect");
    app.stop().await;
}

/// Terminates the shared LISTEN connection and waits until the listener has connected again.
async fn kill_listener_and_wait(db: &tokio_postgres::Client) {
    let killed: i64 = db
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(killed, 1, "one shared LISTEN connection");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let n: i64 = db
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND query ILIKE 'LISTEN%' AND state = 'idle'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if n == 1 {
            return;
        }
        assert!(Instant::now() < deadline, "the listener did not reconnect");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_stream_resyncs_after_any_listen_loss_short_or_long() {
    let app = TestApp::start("http_events_resync").await;
    let mut streams = Vec::new();
    for user in ["nina", "noah"] {
        streams.push(Events::subscribe(&app, user).await.0);
    }
    let db = sql(&app.db).await;
    // A run of losses, as while PostgreSQL restarts: none of them may slow the next recovery down.
    for _ in 0..5 {
        kill_listener_and_wait(&db).await;
    }
    // A short loss, with the plans changed right after it, before the listener is back.
    db.execute(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND usename = 'aiquota_api'",
        &[],
    )
    .await
    .unwrap();
    for user in ["nina", "noah"] {
        db.execute("SELECT quota.assign_plan($1, 'pro')", &[&user])
            .await
            .unwrap();
    }
    for (user, events) in ["nina", "noah"].iter().zip(streams.iter_mut()) {
        let took = events.wait_for_plan("pro", Duration::from_secs(3)).await;
        println!("{user}: the plan change arrived after {took:?}");
        assert!(took.is_some(), "{user}'s stream did not resync within 3 s");
    }
    app.stop().await;
}
