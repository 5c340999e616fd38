//! The engine's C functions run with their own search path (`search_path.rs`), whatever the caller's: an operator
//! a caller puts first in its path is never the one the engine's statements use, and the caller's path is what
//! it was afterwards, also after an error inside the engine.

#[pgrx::pg_schema]
mod tests {
    use crate::tests::support::*;
    use pgrx::prelude::*;

    /// A schema whose `+` on bigints fails loudly, first in the session's path.
    fn hostile_path() {
        run("CREATE SCHEMA hostile");
        run(
            "CREATE FUNCTION hostile.plus(bigint, bigint) RETURNS bigint LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'hostile + ran'; END $$",
        );
        run("CREATE OPERATOR hostile.+ (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = hostile.plus)");
        run("SET LOCAL search_path = hostile, pg_catalog");
        // The operator really is the one this path resolves to.
        expect_sqlstate("PERFORM 1::bigint + 2::bigint", "P0001");
    }

    #[pg_test]
    fn an_operator_first_in_the_callers_path_is_never_used_by_the_engine() {
        at("2026-03-10 12:00:00+00");
        hostile_path();
        // A new user (the general path: account, counter rows), then the fast path, a keyed call, check, status,
        // and a reservation committed and one released.
        assert!(consume("'sp-new', 'ai_requests', 1").0);
        assert!(consume("'sp-new', 'ai_requests', 1").0);
        assert!(consume("'sp-new', 'ai_tokens', 5, 'k-sp'").0);
        assert_eq!(
            one::<bool>("SELECT allowed FROM quota.check('sp-new', 'ai_requests', 1)"),
            Some(true)
        );
        assert_eq!(
            one::<i64>("SELECT used FROM quota.status('sp-new') WHERE meter = 'ai_requests'"),
            Some(2)
        );
        let id = one::<pgrx::Uuid>(
            "SELECT reservation_id FROM quota.reserve('sp-new', 'ai_tokens', 50)",
        )
        .unwrap();
        assert_eq!(
            one::<i64>(&format!("SELECT charged FROM quota.commit('{id}', 20)")),
            Some(20)
        );
        let id = one::<pgrx::Uuid>(
            "SELECT reservation_id FROM quota.reserve('sp-new', 'ai_tokens', 50)",
        )
        .unwrap();
        assert_eq!(
            one::<String>(&format!("SELECT state FROM quota.release('{id}')")),
            Some("released".into())
        );
        assert_eq!(
            one::<i64>(
                "SELECT used FROM quota.counters WHERE user_id = 'sp-new' AND meter = 'ai_tokens'"
            ),
            Some(25)
        );
        // The caller's path is its own again.
        assert_eq!(
            one::<String>("SHOW search_path"),
            Some("hostile, pg_catalog".into())
        );
        assert_eq!(one::<i64>("SELECT count(*) FROM quota.verify()"), Some(0));
    }

    #[pg_test]
    fn the_callers_path_survives_an_error_inside_the_engine() {
        at("2026-03-10 12:00:00+00");
        hostile_path();
        assert!(consume("'sp-err', 'ai_tokens', 5, 'k-err'").0);
        // The same key for another amount: the engine refuses (an error it raises after its statements ran),
        // caught by a subtransaction (the abort of a whole transaction clears the pin the same way).
        run(
            "DO $$ BEGIN PERFORM quota.consume('sp-err', 'ai_tokens', 6, 'k-err'); \
             EXCEPTION WHEN duplicate_object THEN NULL; END $$",
        );
        expect_sqlstate(
            "PERFORM quota.consume('sp-err', 'ai_tokens', 6, 'k-err')",
            "42710",
        );
        assert_eq!(
            one::<String>("SHOW search_path"),
            Some("hostile, pg_catalog".into())
        );
        assert!(consume("'sp-err', 'ai_tokens', 5").0);
        assert_eq!(
            one::<i64>(
                "SELECT used FROM quota.counters WHERE user_id = 'sp-err' AND meter = 'ai_tokens'"
            ),
            Some(10)
        );
    }
}
