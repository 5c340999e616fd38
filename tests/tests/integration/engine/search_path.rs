//! The engine's own search path (`extension/src/search_path.rs`) in real sessions: whatever ends a call (its
//! result, an error the engine returns, an error PostgreSQL raises inside it), the session's path is its own
//! afterwards and the next calls run normally (an override left behind would break the next one).

use aiquota_tests::*;

fn path(c: &mut Client) -> String {
    c.query_one("SHOW search_path", &[]).unwrap().get(0)
}

#[test]
fn an_aborted_call_leaves_the_sessions_path_and_the_next_calls_intact() {
    let db = fresh_db("search_path_abort");
    let mut c = connect(&db);
    c.batch_execute("SET search_path = public, pg_catalog; CREATE TABLE sp_probe (x int)")
        .unwrap();
    // Within one transaction, the caller's own unqualified names resolve again right after each call: the pin
    // ends with the call, not with the transaction. Also after an engine error a subtransaction caught.
    c.batch_execute("BEGIN").unwrap();
    assert!(allowed(
        &mut c,
        "SELECT allowed FROM quota.consume('sp', 'ai_tokens', 5, 'k-sp')"
    ));
    c.batch_execute("SELECT count(*) FROM sp_probe").unwrap();
    c.batch_execute(
        "DO $$ BEGIN PERFORM quota.consume('sp', 'ai_tokens', 6, 'k-sp'); \
         EXCEPTION WHEN duplicate_object THEN NULL; END $$",
    )
    .unwrap();
    c.batch_execute("SELECT count(*) FROM sp_probe; COMMIT")
        .unwrap();

    // An error the engine returns (the key again, another amount), uncaught: the transaction aborts.
    c.batch_execute("BEGIN").unwrap();
    let err = c
        .batch_execute("SELECT quota.consume('sp', 'ai_tokens', 6, 'k-sp')")
        .unwrap_err();
    assert_eq!(err.code().map(|s| s.code()), Some("42710"));
    c.batch_execute("ROLLBACK").unwrap();
    assert_eq!(path(&mut c), "public, pg_catalog");
    assert!(allowed(
        &mut c,
        "SELECT allowed FROM quota.consume('sp', 'ai_tokens', 5)"
    ));
    c.batch_execute("SELECT count(*) FROM sp_probe").unwrap();

    // An error PostgreSQL raises inside the engine: the statement timeout, while consume waits for the row lock
    // another session holds.
    let mut holder = connect(&db);
    holder
        .batch_execute("BEGIN; SELECT quota.consume('sp', 'ai_tokens', 1);")
        .unwrap();
    c.batch_execute("SET statement_timeout = '300ms'").unwrap();
    let err = c
        .batch_execute("SELECT quota.consume('sp', 'ai_tokens', 1)")
        .unwrap_err();
    assert_eq!(err.code().map(|s| s.code()), Some("57014"), "{err}");
    holder.batch_execute("COMMIT").unwrap();
    c.batch_execute("RESET statement_timeout").unwrap();
    assert_eq!(path(&mut c), "public, pg_catalog");
    for _ in 0..3 {
        assert!(allowed(
            &mut c,
            "SELECT allowed FROM quota.consume('sp', 'ai_tokens', 5)"
        ));
    }
    // 5 + 5 + 1 (the holder's) + 3 * 5; nothing of the refused or cancelled calls.
    let used = count(
        &mut c,
        "SELECT used::bigint FROM quota.counters WHERE user_id = 'sp' AND meter = 'ai_tokens'",
    );
    assert_eq!(used, 26);
    assert_consistent(&mut c);
}
