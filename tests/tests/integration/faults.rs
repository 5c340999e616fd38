//! The fault suite (`make test-faults`, part of `make test`): an operator's bad day on a cluster of its own
//! (`scripts/faults.sh`, port `AIQUOTA_PGPORT + 1`). Every scenario runs HTTP load through the real API,
//! prints its figures (`FAULTS <scenario>: ...`) and fails on any acknowledged charge missing from the
//! ledger, any double charge, any `503` with `Retry-After` that was charged, or any 5xx other than `503`.
//! The tests are `#[ignore]`d so that `make test-integration` never kills its own cluster.

use std::time::{Duration, Instant};

use aiquota_tests::{
    faults::{cluster, consume, recovery, Answer, Load, Tally},
    http::*,
    sse::Events,
};
use futures_util::future::join_all;

const TIMEOUT: Duration = Duration::from_secs(3);

async fn app(name: &str) -> TestApp {
    TestApp::start_with(name, |c| c.request_timeout = TIMEOUT).await
}

/// Consumes for `user` (10 `ai_requests` a day) until denied; returns its ledger rows.
async fn top_up_low_user(app: &TestApp, user: &str) -> i64 {
    for _ in 0..30 {
        if consume(&app.client, &app.base, user, "ai_requests", 1)
            .await
            .status
            == 429
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ledger_rows(&sql(&app.db).await, user).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs its own cluster: make test-faults"]
async fn kill_9_under_load_twice() {
    let app = app("faults_kill9").await;
    let load = Load::tokens(&app, 8, "k", 5);
    // A 10/day user hammered slowly, so that it reaches its limit across the crashes.
    let low = Load::start(
        std::slice::from_ref(&app.base),
        1,
        "low",
        "ai_requests",
        1,
        Duration::from_millis(150),
    );
    let mut ups = Vec::new();
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        cluster("kill9").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        cluster("start").await;
        ups.push(Instant::now());
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut answers = load.finish().await;
    let low_answers = low.finish().await;
    let low_rows = top_up_low_user(&app, "low0").await;
    answers.extend(low_answers.iter().cloned());
    let t = Tally::of(&answers, &app.db).await;
    let rec: Vec<_> = ups.iter().map(|u| recovery(&answers, *u)).collect();
    t.print(
        "kill -9 x2",
        &format!(", recovery after restart {rec:.3?}, 10/day user ends at {low_rows}"),
    );
    t.assert_sound();
    assert!(t.acknowledged > 100, "the load ran");
    assert!(
        rec.iter().all(|r| r.is_some()),
        "recovered after each crash"
    );
    assert_eq!(low_rows, 10, "the 10/day user ends at exactly 10");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs its own cluster: make test-faults"]
async fn fast_and_immediate_restarts_under_load() {
    let app = app("faults_restart").await;
    // A live stream must show a plan change made right after each restart.
    let (mut events, _) = Events::subscribe(&app, "watch").await;
    let load = Load::tokens(&app, 8, "r", 5);
    let mut ups = Vec::new();
    let mut pushed = Vec::new();
    for (how, plan) in [("restart-fast", "pro"), ("restart-immediate", "enterprise")] {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        cluster(how).await;
        ups.push(Instant::now());
        sql(&app.db)
            .await
            .execute("SELECT quota.assign_plan('watch', $1)", &[&plan])
            .await
            .unwrap();
        pushed.push(events.wait_for_plan(plan, Duration::from_secs(5)).await);
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let answers = load.finish().await;
    let t = Tally::of(&answers, &app.db).await;
    let rec: Vec<_> = ups.iter().map(|u| recovery(&answers, *u)).collect();
    t.print(
        "restart fast + immediate",
        &format!(
            ", recovery after restart {rec:.3?}, SSE shows the plan change after {pushed:.3?}"
        ),
    );
    t.assert_sound();
    assert!(t.slowest < TIMEOUT * 2 + Duration::from_secs(2), "no hang");
    assert!(
        rec.iter().all(|r| r.is_some()),
        "recovered after each restart"
    );
    assert!(
        pushed.iter().all(|p| p.is_some()),
        "the SSE stream resynced after each restart"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs its own cluster: make test-faults"]
async fn a_stall_longer_than_the_timeout_never_charges_a_503() {
    let app = app("faults_stall").await;
    let load = Load::tokens(&app, 8, "s", 5);
    tokio::time::sleep(Duration::from_millis(800)).await;
    cluster("freeze").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    cluster("thaw").await;
    let up = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let answers = load.finish().await;
    let t = Tally::of(&answers, &app.db).await;
    t.print(
        "SIGSTOP 4 s (timeout 3 s)",
        &format!(", recovery after SIGCONT {:.3?}", recovery(&answers, up)),
    );
    t.assert_sound();
    assert!(recovery(&answers, up).is_some());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs its own cluster: make test-faults"]
async fn a_stall_longer_than_the_grace_is_outcome_unknown_never_a_charged_503() {
    let app = app("faults_long_stall").await;
    let load = Load::tokens(&app, 8, "l", 5);
    tokio::time::sleep(Duration::from_millis(800)).await;
    // Longer than the deadline plus the grace a cancelled statement gets (3 s + 3 s).
    cluster("freeze").await;
    tokio::time::sleep(Duration::from_millis(7500)).await;
    cluster("thaw").await;
    let up = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let answers = load.finish().await;
    // The orphaned statements run on after SIGCONT; let them finish before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = Tally::of(&answers, &app.db).await;
    t.print(
        "SIGSTOP 7.5 s (timeout 3 s + 3 s grace)",
        &format!(", recovery after SIGCONT {:.3?}", recovery(&answers, up)),
    );
    t.assert_sound();
    assert!(t.unknown > 0, "the frozen statements were outcome-unknown");
    assert!(
        t.slowest < TIMEOUT * 2 + Duration::from_secs(2),
        "answered by the end of the grace"
    );
    assert!(recovery(&answers, up).is_some());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs its own cluster: make test-faults"]
async fn a_locked_user_with_the_pool_exhausted() {
    let app = app("faults_locked").await;
    // The user's rows exist before they are locked.
    consume(&app.client, &app.base, "stuck", "ai_tokens", 1).await;
    let locked = lock_counters(&app.db, "stuck").await;
    // Far more of the stuck user's calls at once than the pool has connections (16).
    let (client, base) = (app.client.clone(), app.base.clone());
    let stuck = tokio::spawn(async move {
        join_all((0..40).map(|_| consume(&client, &base, "stuck", "ai_tokens", 1))).await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let load = Load::tokens(&app, 8, "o", 5);
    tokio::time::sleep(Duration::from_secs(5)).await;
    locked.release().await;
    let others = load.finish().await;
    let stuck: Vec<Answer> = stuck.await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut times: Vec<Duration> = others.iter().map(|a| a.took).collect();
    times.sort();
    let p99 = times[(times.len() * 99).div_ceil(100) - 1];
    let o = Tally::of(&others, &app.db).await;
    let s = Tally::of(&stuck, &app.db).await;
    o.print("locked user: the others", &format!(", p99 {p99:.3?}"));
    s.print(
        "locked user: the stuck one (row locked 5 s, timeout 3 s)",
        "",
    );
    o.assert_sound();
    s.assert_sound();
    assert_eq!(
        o.acknowledged, o.answers,
        "every other user's consume passed"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs its own cluster: make test-faults"]
async fn two_api_instances_allow_exactly_ten_of_a_hundred() {
    let one = app("faults_two").await;
    let mut config = test_config(&one.db);
    config.request_timeout = TIMEOUT;
    let two = TestApp::start_on(one.db.clone(), config).await;
    let calls = (0..100).map(|i| {
        let app = if i % 2 == 0 { &one } else { &two };
        consume(&app.client, &app.base, "race", "ai_requests", 1)
    });
    let answers = join_all(calls).await;
    let t = Tally::of(&answers, &one.db).await;
    t.print("two API instances, 100 racing consumes, 10 a day", "");
    t.assert_sound();
    assert_eq!((t.acknowledged, t.denied), (10, 90));
    two.stop().await;
    one.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs its own cluster: make test-faults"]
async fn read_only_mode_is_503_and_recovers() {
    let app = app("faults_readonly").await;
    let admin = sql(&app.db).await;
    let load = Load::tokens(&app, 4, "ro", 10);
    tokio::time::sleep(Duration::from_millis(500)).await;
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {} SET default_transaction_read_only = on; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND usename = 'aiquota_api'",
            app.db
        ))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let read = app.quota(&user_token("ro0")).await;
    let read_status = read.status().as_u16();
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {} RESET default_transaction_read_only",
            app.db
        ))
        .await
        .unwrap();
    let up = Instant::now();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let answers = load.finish().await;
    let t = Tally::of(&answers, &app.db).await;
    t.print(
        "read-only database",
        &format!(
            ", GET /v1/quota while read-only {read_status}, writes back after {:.3?}",
            recovery(&answers, up)
        ),
    );
    t.assert_sound();
    assert_eq!(read_status, 200, "reads keep working");
    assert!(t.unavailable > 0, "consumes were refused while read-only");
    assert!(recovery(&answers, up).is_some());
    app.stop().await;
}
