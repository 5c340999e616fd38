//! Abuse that spends no quota: reservation churn and payment-link creation are rate-limited per user (429
//! with Retry-After); invented methods and paths add no metrics series; a user's event streams are capped
//! and end when the token expires; a client that trickles its request head is cut off; the server holds at
//! most its connection cap. And the event stream works with the minimal `{"user", "kind"}` payloads.

use std::time::{Duration, Instant};

use aiquota_api::limits::Rate;
use aiquota_tests::{http::*, payments::*, sse::Events};
use futures_util::StreamExt;
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

fn per_hour(count: u32) -> Option<Rate> {
    Some(Rate {
        count,
        per: Duration::from_secs(3600),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reservation_churn_is_rate_limited_per_user() {
    assert_eq!(
        aiquota_api::Config::with_defaults().limits.reserve_rate,
        Some(Rate {
            count: 100,
            per: Duration::from_secs(60)
        }),
        "on by default"
    );
    let app = TestApp::start_with("abuse_reserve", |c| c.limits.reserve_rate = per_hour(3)).await;
    let t = user_token("churn");
    for i in 0..3 {
        let res = app
            .post_json("/v1/quota/reservations", &t, &json!({"amount": 10}))
            .await;
        assert_eq!(res.status(), 201, "reservation {i}");
        let id = body(res).await["reservation_id"]
            .as_str()
            .unwrap()
            .to_string();
        let res = app
            .post(&format!("/v1/quota/reservations/{id}/release"), &t)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let res = app
        .post_json("/v1/quota/reservations", &t, &json!({"amount": 10}))
        .await;
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1000..=1200).contains(&retry), "Retry-After {retry}");
    let p = problem(res, 429).await;
    assert_eq!(p["type"], "/problems/rate-limited");
    let db = sql(&app.db).await;
    let rows: i64 = db
        .query_one(
            "SELECT count(*) FROM quota.reservations WHERE user_id = 'churn'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 3, "the refused reservation wrote nothing");
    // Another user is not affected, and consume (which spends quota) is not limited by this.
    let res = app
        .post_json(
            "/v1/quota/reservations",
            &user_token("other"),
            &json!({"amount": 10}),
        )
        .await;
    assert_eq!(res.status(), 201);
    assert_eq!(app.consume_status(&t).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn payment_link_creation_is_rate_limited_per_user() {
    let mock = MockRazorpay::start().await;
    let m = mock.clone();
    let app = TestApp::start_with("abuse_links", move |c| {
        with_razorpay(c, &m);
        c.limits.payment_link_rate = per_hour(2);
    })
    .await;
    let t = user_token("linker");
    for _ in 0..2 {
        let res = app.request_link(&t, "pro_week").await;
        assert_eq!(res.status(), 201);
    }
    let res = app.request_link(&t, "pro_week").await;
    assert!(res.headers().contains_key("retry-after"));
    let p = problem(res, 429).await;
    assert_eq!(p["type"], "/problems/rate-limited");
    assert_eq!(mock.created().len(), 2, "no third link at the provider");
    let db = sql(&app.db).await;
    let orders: i64 = db
        .query_one(
            "SELECT count(*) FROM quota.orders WHERE user_id = 'linker'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(orders, 2, "no third order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invented_methods_and_paths_add_no_metrics_series() {
    let app = TestApp::start("abuse_metrics").await;
    let series = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("aiquota_http_requests_total{"))
            .count()
    };
    let method = reqwest::Method::from_bytes(b"XFOOBAR").unwrap();
    for path in ["/v1/quota", "/no/such/route", "/healthz"] {
        let res = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_client_error(), "{path}: {}", res.status());
    }
    let first = app.metrics().await;
    assert!(!first.contains("XFOOBAR"), "{first}");
    assert!(first.contains("method=\"other\""), "{first}");
    // More invented methods and paths: the same series, only their counts grow.
    for i in 0..5 {
        let m = reqwest::Method::from_bytes(format!("INVENTED{i}").as_bytes()).unwrap();
        app.client
            .request(m, app.url(&format!("/random/{i}")))
            .send()
            .await
            .unwrap();
    }
    let second = app.metrics().await;
    // The first /metrics request itself adds one series (GET /metrics 200).
    assert_eq!(series(&second), series(&first) + 1, "{second}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_users_event_streams_are_capped() {
    let app = TestApp::start_with("abuse_sse_cap", |c| c.limits.sse_per_user = 2).await;
    let (a, _) = Events::subscribe(&app, "streamer").await;
    let (_b, _) = Events::subscribe(&app, "streamer").await;
    let res = app
        .get("/v1/quota/events", &user_token("streamer"))
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("retry-after"));
    let p = problem(res, 429).await;
    assert_eq!(p["type"], "/problems/rate-limited");
    // Another user still gets a stream.
    let _c = Events::subscribe(&app, "someone_else").await;
    // A closed stream frees its slot (once the server notices the client left).
    drop(a);
    let start = Instant::now();
    loop {
        let res = app
            .get("/v1/quota/events", &user_token("streamer"))
            .send()
            .await
            .unwrap();
        if res.status() == 200 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "slot never freed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_stream_ends_when_its_token_expires() {
    let app = TestApp::start("abuse_sse_exp").await;
    let mut c = claims("brief", "authenticated");
    c["exp"] = json!(now() + 3);
    let res = app
        .get("/v1/quota/events", &hs256(&c, SECRET))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let start = Instant::now();
    let mut stream = res.bytes_stream();
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(chunk) = stream.next().await {
            if chunk.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived its token by 15 s");
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "ended before the token expired"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_trickled_request_head_is_cut_off() {
    let app = TestApp::start_with("abuse_slowloris", |c| {
        c.limits.header_read_timeout = Duration::from_secs(1)
    })
    .await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the connection is still open after 10 s");
    println!("cut off after {:?}", start.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_server_holds_at_most_its_connection_cap() {
    let app = TestApp::start_with("abuse_conns", |c| {
        c.limits.max_connections = 2;
        c.limits.header_read_timeout = Duration::from_secs(60);
    })
    .await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let idle1 = TcpStream::connect(&addr).await.unwrap();
    let _idle2 = TcpStream::connect(&addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    assert!(
        client.get(app.url("/healthz")).send().await.is_err(),
        "a third connection was served"
    );
    drop(idle1);
    let res = client
        .get(app.url("/healthz"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("served once a connection closed");
    assert_eq!(res.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn minimal_notifications_deliver_current_data() {
    let app = TestApp::start("abuse_minimal_notify").await;
    let (mut events, first) = Events::subscribe(&app, "mini").await;
    assert_eq!(first["plan"], "free");
    let db = sql(&app.db).await;
    // A change the stream can only learn about from a payload with nothing but user and kind.
    db.batch_execute(
        "BEGIN; SET LOCAL session_replication_role = replica;
         INSERT INTO quota.accounts (user_id, plan) VALUES ('mini', 'pro')
           ON CONFLICT (user_id) DO UPDATE SET plan = 'pro', plan_expires_at = NULL;
         COMMIT;",
    )
    .await
    .unwrap();
    // Whatever the extension notified for that (if anything) is read first; then the minimal payload.
    db.execute(
        "SELECT pg_notify('quota_events', '{\"user\": \"mini\", \"kind\": \"plan_changed\"}')",
        &[],
    )
    .await
    .unwrap();
    assert!(
        events
            .wait_for_plan("pro", Duration::from_secs(5))
            .await
            .is_some(),
        "the stream re-read the quota on a minimal payload"
    );
}
