//! Each role can do exactly what docs/sql.md ("Privileges and roles") says: every function it may execute and every
//! table it may read or write, enumerated, so a new grant (or a missing revoke) fails here.

#[pgrx::pg_schema]
mod tests {
    use crate::tests::support::*;
    use pgrx::prelude::*;

    /// The helpers every role may execute: they read no table.
    const PUBLIC_HELPERS: &[&str] = &[
        "quota._check_key(text,text)",
        "quota._check_period(text)",
        "quota._validate_user(text)",
        "quota.current_user_id()",
        "quota.default_plan()",
        "quota.default_timezone()",
        "quota.ledger_is_append_only()",
        "quota.now()",
        "quota.window_end(text,timestamp with time zone,text)",
        "quota.window_start(text,timestamp with time zone,text)",
    ];

    fn executable_by(role: &str) -> Vec<String> {
        let sql = format!(
        "SELECT coalesce(array_agg(p.oid::regprocedure::text ORDER BY p.oid::regprocedure::text), '{{}}') \
         FROM pg_proc p WHERE p.pronamespace = 'quota'::regnamespace \
           AND has_function_privilege('{role}', p.oid, 'EXECUTE')"
    );
        Spi::get_one::<Vec<String>>(&sql)
            .unwrap()
            .unwrap_or_default()
    }

    fn tables(role: &str, privilege: &str) -> Vec<String> {
        let sql = format!(
        "SELECT coalesce(array_agg(c.relname::text ORDER BY c.relname), '{{}}') FROM pg_class c \
         WHERE c.relnamespace = 'quota'::regnamespace AND c.relkind IN ('r', 'v', 'p') \
           AND has_table_privilege('{role}', c.oid, '{privilege}')"
    );
        Spi::get_one::<Vec<String>>(&sql)
            .unwrap()
            .unwrap_or_default()
    }

    fn with_helpers(own: &[&str]) -> Vec<String> {
        let mut all: Vec<String> = own
            .iter()
            .chain(PUBLIC_HELPERS)
            .map(|s| s.to_string())
            .collect();
        all.sort();
        all
    }

    const API: &[&str] = &[
        "quota.\"check\"(text,text,bigint)",
        "quota.commit(uuid,bigint,text,boolean)",
        "quota.consume(text,text,bigint,text,jsonb)",
        "quota.credits(text)",
        "quota.release(uuid,text)",
        "quota.reserve(text,text,bigint,interval,text)",
        "quota.status(text)",
    ];

    #[pg_test]
    fn quota_api_executes_the_user_facing_functions_and_nothing_else() {
        assert_eq!(executable_by("quota_api"), with_helpers(API));
        for privilege in ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE"] {
            assert_eq!(
                tables("quota_api", privilege),
                Vec::<String>::new(),
                "{privilege}"
            );
        }
        // It cannot record a payment (that gives a user a paid plan), nor look orders up.
        run("SET LOCAL ROLE quota_api");
        expect_sqlstate(
            "PERFORM quota.record_payment('razorpay', 'pay_x', 'u', 'pro_week', 100, 'INR')",
            "42501",
        );
        expect_sqlstate("PERFORM quota.find_order('razorpay', 'aq_1')", "42501");
        expect_sqlstate(
            "PERFORM quota.create_order('razorpay', 'u', 'pro_week')",
            "42501",
        );
    }

    #[pg_test]
    fn quota_payments_records_and_revokes_payments_and_nothing_else() {
        let own = [
            "quota.attach_order(text,text)",
            "quota.create_order(text,text,text)",
            "quota.find_order(text,text,text)",
            "quota.record_payment(text,text,text,text,bigint,text,jsonb,text)",
            "quota.revoke_payment(text,text,text,text)",
        ];
        assert_eq!(executable_by("quota_payments"), with_helpers(&own));
        for privilege in ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE"] {
            assert_eq!(
                tables("quota_payments", privilege),
                Vec::<String>::new(),
                "{privilege}"
            );
        }
    }

    #[pg_test]
    fn quota_admin_administers_and_reads_everything_but_records_no_payment() {
        let own = [
            "quota.\"grant\"(text,text,bigint,timestamp with time zone,text,text)",
            "quota.analytics(date,text)",
            "quota.assign_plan(text,text,timestamp with time zone,text)",
            "quota.create_plan(text,text,text)",
            "quota.define_meter(text,text,text,text)",
            "quota.define_product(text,text,interval,bigint,text,boolean,text)",
            "quota.predict_exhaustion(text,text)",
            "quota.purge_idempotency_keys(interval)",
            "quota.purge_reservations(interval)",
            "quota.remove_plan_limit(text,text,text,text)",
            "quota.reset_usage(text,text,text)",
            "quota.set_limit(text,text,text,bigint,text)",
            "quota.set_plan_burst(text,text,bigint,interval,bigint,text)",
            "quota.set_plan_limit(text,text,text,bigint,text)",
            "quota.set_plan_rollover(text,text,text,bigint,text)",
            "quota.set_timezone(text,text,text)",
            "quota.top_users(integer,text,text)",
            "quota.usage_history(text,integer,text)",
            "quota.user_usage(text)",
            "quota.verify()",
        ];
        let all: Vec<&str> = own.iter().chain(API).copied().collect();
        assert_eq!(executable_by("quota_admin"), with_helpers(&all));
        let every_table = tables("postgres", "SELECT");
        assert_eq!(tables("quota_admin", "SELECT"), every_table);
        for privilege in ["INSERT", "UPDATE", "DELETE", "TRUNCATE"] {
            assert_eq!(
                tables("quota_admin", privilege),
                Vec::<String>::new(),
                "{privilege}"
            );
        }
    }

    #[pg_test]
    fn quota_reader_reads_its_own_tables_and_executes_only_the_helpers() {
        assert_eq!(executable_by("quota_reader"), with_helpers(&[]));
        let readable = [
            "accounts",
            "bursts",
            "counters",
            "daily_rollup",
            "grants",
            "ledger",
            "meters",
            "plan_limits",
            "plans",
            "usage_daily",
            "user_limits",
        ];
        assert_eq!(
            tables("quota_reader", "SELECT"),
            readable.map(String::from).to_vec()
        );
        for privilege in ["INSERT", "UPDATE", "DELETE", "TRUNCATE"] {
            assert_eq!(
                tables("quota_reader", privilege),
                Vec::<String>::new(),
                "{privilege}"
            );
        }
    }
}
