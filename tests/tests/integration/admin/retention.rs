//! Retention: the API deletes idempotency keys and settled reservations older than AIQUOTA_RETENTION_DAYS on
//! its timer, and keeps everything newer and every open hold.

use std::time::Duration;

use aiquota_tests::http::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn old_keys_and_settled_reservations_are_purged_on_a_timer() {
    let app = TestApp::start_with("http_retention", |c| {
        c.purge_interval = Duration::from_secs(1);
        c.retention_days = 1;
    })
    .await;
    let db = sql(&app.db).await;
    db.batch_execute(
        "SELECT quota._ensure_account('rita');
         INSERT INTO quota.idempotency_keys (user_id, key, meter, amount, created_at)
         VALUES ('rita', 'old', 'ai_requests', 1, now() - interval '3 days'),
                ('rita', 'new', 'ai_requests', 1, now());
         INSERT INTO quota.reservations (user_id, meter, amount, state, expires_at, created_at, settled_at)
         VALUES ('rita', 'ai_tokens', 5, 'committed', now() - interval '3 days', now() - interval '3 days',
                 now() - interval '3 days'),
                ('rita', 'ai_tokens', 5, 'released', now() + interval '1 hour', now(), now());",
    )
    .await
    .unwrap();
    let count = |q: &'static str| {
        let db = &db;
        async move { db.query_one(q, &[]).await.unwrap().get::<_, i64>(0) }
    };
    let mut purged = false;
    for _ in 0..50 {
        if count("SELECT count(*) FROM quota.idempotency_keys WHERE key = 'old'").await == 0 {
            purged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(purged, "the old key was not purged within 5 s");
    assert_eq!(
        count("SELECT count(*) FROM quota.idempotency_keys WHERE key = 'new'").await,
        1
    );
    assert_eq!(
        count("SELECT count(*) FROM quota.reservations WHERE user_id = 'rita'").await,
        1,
        "the settled reservation of 3 days ago goes, the recent one stays"
    );
}
