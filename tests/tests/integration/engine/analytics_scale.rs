//! Analytics at scale: a million ledger rows, and the analytics functions still agree with a brute-force count
//! over the ledger while never reading the ledger themselves. Timings are printed, never asserted (the machine
//! is noisy); `make bench` is where speed is compared.

use std::time::Instant;

use aiquota_tests::*;

const USERS: i64 = 20_000;
const ROWS: i64 = 1_000_000;

/// Loads ROWS ledger rows over 30 days for USERS users, and the daily rollup consume would have written for them.
fn load(c: &mut Client) {
    c.batch_execute(&format!(
        "INSERT INTO quota.accounts (user_id, plan) SELECT 'u' || i, 'free' FROM generate_series(0, {USERS} - 1) i;
         INSERT INTO quota.ledger (user_id, meter, amount, created_at)
         SELECT 'u' || (i % {USERS}), 'ai_requests', 1 + (i * 7919) % 5,
                timestamptz '2026-03-10 11:00+00' - ((i / {USERS}) % 30) * interval '1 day'
                  - (i % 11) * interval '1 hour'
         FROM generate_series(0::bigint, {ROWS} - 1) i;
         INSERT INTO quota.daily_rollup (user_id, day, meter, amount, requests, denials, last_at)
         SELECT user_id, (created_at AT TIME ZONE 'UTC')::date, meter, sum(amount), count(*),
                CASE WHEN sum(amount) > 10 THEN 1 ELSE 0 END, max(created_at)
         FROM quota.ledger GROUP BY 1, 2, 3;
         ANALYZE quota.ledger; ANALYZE quota.daily_rollup;"
    ))
    .expect("load a million ledger rows");
}

/// How often this transaction has scanned quota.ledger so far.
fn ledger_scans(c: &mut impl postgres::GenericClient) -> i64 {
    c.query_one(
        "SELECT COALESCE(seq_scan, 0) + COALESCE(idx_scan, 0) FROM pg_stat_xact_user_tables \
         WHERE relid = 'quota.ledger'::regclass",
        &[],
    )
    .unwrap()
    .get(0)
}

#[test]
fn analytics_on_a_million_ledger_rows_match_the_ledger_without_reading_it() {
    let db = fresh_db("analytics_scale");
    let mut c = connect(&db);
    let t = Instant::now();
    load(&mut c);
    println!("loaded {ROWS} ledger rows in {:?}", t.elapsed());
    assert_eq!(count(&mut c, "SELECT count(*) FROM quota.ledger"), ROWS);

    // Brute force over the ledger, for comparison.
    let today = "(created_at AT TIME ZONE 'UTC')::date = date '2026-03-10'";
    let active = count(
        &mut c,
        &format!("SELECT count(DISTINCT user_id) FROM quota.ledger WHERE {today}"),
    );
    let usage = count(
        &mut c,
        &format!("SELECT sum(amount)::bigint FROM quota.ledger WHERE {today}"),
    );
    let all_time = count(&mut c, "SELECT sum(amount)::bigint FROM quota.ledger");
    let top = c
        .query(
            "SELECT user_id, sum(amount)::bigint FROM quota.ledger \
             WHERE created_at >= timestamptz '2026-02-09 00:00+00' GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 5",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
        .collect::<Vec<_>>();
    let history = c
        .query(
            "SELECT COALESCE(sum(amount), 0)::bigint FROM generate_series(date '2026-03-04', date '2026-03-10', \
             interval '1 day') d LEFT JOIN quota.ledger l ON l.user_id = 'u42' \
             AND (l.created_at AT TIME ZONE 'UTC')::date = d::date GROUP BY d ORDER BY d",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get::<_, i64>(0))
        .collect::<Vec<_>>();

    let mut tx = c.transaction().unwrap();
    tx.batch_execute("SET LOCAL quota.now = '2026-03-10 12:00:00+00'")
        .unwrap();
    let before = ledger_scans(&mut tx);
    let t = Instant::now();
    let row = tx
        .query_one(
            "SELECT total_users, active_users, usage, usage_all_time FROM quota.analytics()",
            &[],
        )
        .unwrap();
    println!(
        "quota.analytics() (first call, totals the finished days) took {:?}",
        t.elapsed()
    );
    assert_eq!(row.get::<_, i64>(0), USERS);
    assert_eq!(row.get::<_, i64>(1), active);
    assert_eq!(row.get::<_, i64>(2), usage);
    assert_eq!(row.get::<_, i64>(3), all_time);
    let t = Instant::now();
    tx.query_one("SELECT usage_all_time FROM quota.analytics()", &[])
        .unwrap();
    println!("quota.analytics() (cached days) took {:?}", t.elapsed());

    let t = Instant::now();
    let got = tx
        .query(
            "SELECT user_id, usage FROM quota.top_users(5, 'month')",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
        .collect::<Vec<_>>();
    println!("quota.top_users(5, 'month') took {:?}", t.elapsed());
    assert_eq!(got, top);
    let t = Instant::now();
    let got = tx
        .query("SELECT usage FROM quota.usage_history('u42', 7)", &[])
        .unwrap()
        .iter()
        .map(|r| r.get::<_, i64>(0))
        .collect::<Vec<_>>();
    println!("quota.usage_history('u42', 7) took {:?}", t.elapsed());
    assert_eq!(got, history);
    let after = ledger_scans(&mut tx);
    assert_eq!(before, after, "an analytics function read quota.ledger");
    tx.commit().unwrap();

    // The engine keeps working on the big ledger, and keeps the rollup in step.
    let mut tx = c.transaction().unwrap();
    tx.batch_execute("SET LOCAL quota.now = '2026-03-10 12:00:00+00'")
        .unwrap();
    tx.query_one("SELECT quota.consume('fresh-user', 'ai_requests', 2)", &[])
        .unwrap();
    let row = tx
        .query_one(
            "SELECT amount, requests FROM quota.usage_daily WHERE user_id = 'fresh-user' AND day = '2026-03-10'",
            &[],
        )
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (2, 1));
    tx.commit().unwrap();
}
