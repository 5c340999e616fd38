-- aiquota schema: plans, limits, accounts, counters and the usage ledger.
--
-- Why it looks like this:
-- * Every per-user table is keyed by user_id first, so each can become a Citus distributed table on user_id.
-- * quota.counters holds one row per (user, meter, period): the hot path updates it in place (fillfactor leaves
--   room for HOT updates) and never scans the ledger.
-- * quota.ledger is append-only and has a single btree (user_id, created_at, id) plus a BRIN on created_at, which
--   keeps the INSERT on the hot path cheap while history and verification queries stay indexed.

CREATE TABLE quota.meters (
    key         text PRIMARY KEY CHECK (key ~ '^[a-z][a-z0-9_]{0,62}$'),
    unit        text NOT NULL DEFAULT 'units',
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE quota.meters IS 'Declared meters (what is counted). Consuming an undeclared meter is an error.';

CREATE TABLE quota.plans (
    key        text PRIMARY KEY CHECK (key ~ '^[a-z][a-z0-9_]{0,62}$'),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE quota.plans IS 'Plans a user can be on. A plan includes a meter only through a row in quota.plan_limits.';

CREATE TABLE quota.plan_limits (
    plan    text NOT NULL REFERENCES quota.plans (key) ON UPDATE CASCADE ON DELETE CASCADE,
    meter   text NOT NULL REFERENCES quota.meters (key) ON UPDATE CASCADE ON DELETE CASCADE,
    period  text NOT NULL CHECK (period IN ('hour', 'day', 'week', 'month')),
    "limit" bigint CHECK ("limit" >= 0),
    -- Rollover: up to this much unused allowance carries into the next window (NULL: none).
    rollover_cap bigint CHECK (rollover_cap >= 0),
    PRIMARY KEY (plan, meter, period)
);
COMMENT ON TABLE quota.plan_limits IS 'Limits per plan, meter and calendar period; "limit" NULL means unlimited.';

-- Burst limits (GCRA): at most `rate` per `per` on average, with up to `burst` at once. Checked in the same
-- all-or-nothing decision as the calendar limits. emission_us = per / rate is what the engine computes with.
CREATE TABLE quota.plan_bursts (
    plan        text NOT NULL REFERENCES quota.plans (key) ON UPDATE CASCADE ON DELETE CASCADE,
    meter       text NOT NULL REFERENCES quota.meters (key) ON UPDATE CASCADE ON DELETE CASCADE,
    rate        bigint NOT NULL CHECK (rate > 0),
    per         interval NOT NULL CHECK (per > interval '0' AND per <= interval '1 day'),
    burst       bigint NOT NULL CHECK (burst > 0),
    emission_us bigint NOT NULL CHECK (emission_us > 0),
    PRIMARY KEY (plan, meter)
);
COMMENT ON TABLE quota.plan_bursts IS
    'Burst limit per plan and meter, a GCRA: rate per per on average, up to burst at once (e.g. 1 per 10 s, burst 3).';

CREATE TABLE quota.accounts (
    user_id         text PRIMARY KEY CHECK (length(user_id) BETWEEN 1 AND 255),
    plan            text NOT NULL REFERENCES quota.plans (key) ON UPDATE CASCADE,
    plan_expires_at timestamptz,
    timezone        text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE quota.accounts IS
    'One row per user: the assigned plan (falls back to quota.default_plan once plan_expires_at has passed) and the '
    'IANA timezone of its calendar windows (NULL: quota.default_timezone).';

CREATE TABLE quota.user_limits (
    user_id text NOT NULL REFERENCES quota.accounts (user_id) ON DELETE CASCADE,
    meter   text NOT NULL REFERENCES quota.meters (key) ON UPDATE CASCADE ON DELETE CASCADE,
    period  text NOT NULL CHECK (period IN ('hour', 'day', 'week', 'month')),
    "limit" bigint NOT NULL CHECK ("limit" >= 0),
    PRIMARY KEY (user_id, meter, period)
);
COMMENT ON TABLE quota.user_limits IS 'Per-user overrides: replace the plan''s limit for that meter and period, or add one.';

-- Domains instead of CHECK constraints on the two tables every consume writes: PostgreSQL re-reads a table's CHECK
-- constraints from their stored text in every statement that writes the table (about a tenth of a consume's time),
-- while a domain's check is kept ready in the type cache and runs only for the columns a statement assigns.
CREATE DOMAIN quota.non_negative AS bigint CHECK (VALUE >= 0);
COMMENT ON DOMAIN quota.non_negative IS 'A count or amount that cannot go below zero (counters, ledger credits).';
CREATE DOMAIN quota.period_name AS text CHECK (VALUE IN ('hour', 'day', 'week', 'month'));
COMMENT ON DOMAIN quota.period_name IS 'A calendar window: hour, day, week (ISO, from Monday) or month.';
-- The same for the tables reserve, commit and a keyed consume write on every call (0.7.0).
CREATE DOMAIN quota.positive_amount AS bigint CHECK (VALUE > 0);
COMMENT ON DOMAIN quota.positive_amount IS 'An amount of at least 1 (what a reservation holds).';
CREATE DOMAIN quota.reservation_state AS text CHECK (VALUE IN ('held', 'committed', 'released'));
COMMENT ON DOMAIN quota.reservation_state IS 'A reservation''s state: held (open), committed or released.';
CREATE DOMAIN quota.key_text AS text CHECK (length(VALUE) BETWEEN 1 AND 300);
COMMENT ON DOMAIN quota.key_text IS 'An idempotency key as stored: 1 to 300 characters (255 and the ''reserve:'' prefix).';

CREATE TABLE quota.counters (
    user_id      text NOT NULL REFERENCES quota.accounts (user_id) ON DELETE CASCADE,
    meter        text NOT NULL REFERENCES quota.meters (key) ON UPDATE CASCADE ON DELETE CASCADE,
    period       quota.period_name NOT NULL,
    window_start timestamptz NOT NULL,
    used         quota.non_negative NOT NULL DEFAULT 0,
    denied       quota.non_negative NOT NULL DEFAULT 0,
    -- Whether the latest attempt in this window was denied by this row's limit. consume reads it back through
    -- RETURNING, which is how one UPDATE both applies and reports an all-or-nothing decision.
    last_denied  boolean NOT NULL DEFAULT false,
    -- Amount held by open reservations of this meter; it counts against the limit like usage. Kept on the row so
    -- it changes under the same lock as used. held_until is the earliest expiry among those holds: once it has
    -- passed, held may include expired holds (which only makes decisions stricter) until it is recomputed.
    held         quota.non_negative NOT NULL DEFAULT 0,
    held_until   timestamptz,
    -- Allowance carried into this window from the one before (see quota.plan_limits.rollover_cap).
    carry        quota.non_negative NOT NULL DEFAULT 0,
    -- Whether this is the user's only counter row of the meter. The fast paths charge one row and need to know
    -- that no row of another period must be kept in step; a column of the row they lock, so they re-check it on
    -- the latest version after waiting. Set only by add_counters (src/statements), which creates rows in turn.
    solo         boolean NOT NULL DEFAULT false,
    -- Today's part of the daily rollup, carried by a solo row: the fast path adds its call here, on the row it
    -- writes anyway, instead of upserting a second row. rollup_day is the UTC day it belongs to; the general path
    -- moves it into quota.daily_rollup once the day is over (src/statements/fold_rollup.sql), and a row that
    -- is deleted takes it there first. quota.usage_daily adds both.
    rollup_day      date,
    rollup_amount   bigint NOT NULL DEFAULT 0,
    rollup_requests bigint NOT NULL DEFAULT 0,
    rollup_last_at  timestamptz,
    PRIMARY KEY (user_id, meter, period)
) WITH (fillfactor = 80);
COMMENT ON TABLE quota.counters IS
    'Usage in the current window per user, meter and period. Reset lazily: a row whose window_start is not the '
    'current window start counts as zero. denied counts refused attempts in the window (no ledger row per denial).';

CREATE TABLE quota.ledger (
    user_id         text NOT NULL,
    id              bigint GENERATED ALWAYS AS IDENTITY,
    meter           text NOT NULL,
    amount          bigint NOT NULL,
    idempotency_key text,
    metadata        jsonb,
    created_at      timestamptz NOT NULL,
    -- NULL for usage. For an admin's quota.reset_usage: the period of the window it zeroed, with the negative
    -- amount that zeroed it, so every counter keeps matching the ledger without any row being edited.
    reset_period    quota.period_name,
    -- The part of amount paid from credits (quota.grants) because the plan's allowance was used up.
    credits         quota.non_negative NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, created_at, id)
);
CREATE INDEX ledger_created_at_brin ON quota.ledger USING brin (created_at);
COMMENT ON TABLE quota.ledger IS 'Append-only usage ledger: one row per consumption. Counters must always agree with it (quota.verify()).';

-- GCRA state per user and meter: the theoretical arrival time. A call of n passes when
-- max(tat, now) + n * emission - burst * emission <= now, and moves tat to max(tat, now) + n * emission.
CREATE TABLE quota.bursts (
    user_id text NOT NULL REFERENCES quota.accounts (user_id) ON DELETE CASCADE,
    meter   text NOT NULL REFERENCES quota.meters (key) ON UPDATE CASCADE ON DELETE CASCADE,
    tat     timestamptz NOT NULL,
    PRIMARY KEY (user_id, meter)
) WITH (fillfactor = 80);
COMMENT ON TABLE quota.bursts IS 'Burst (GCRA) state per user and meter; see quota.plan_bursts.';

-- Per-user, per-UTC-day rollup of usage, so analytics never scan the ledger however long it grows. Its rows are
-- written by the general path's statements (and denials by the engine) in the consume transaction, and by
-- fold_rollup.sql, which moves a counter row's carried day here once the day is over. Read quota.usage_daily,
-- which adds the days still carried on counter rows.
CREATE TABLE quota.daily_rollup (
    user_id  text NOT NULL,
    day      date NOT NULL,
    meter    text NOT NULL,
    amount   bigint NOT NULL DEFAULT 0,
    requests bigint NOT NULL DEFAULT 0,
    denials  bigint NOT NULL DEFAULT 0,
    last_at  timestamptz,
    PRIMARY KEY (user_id, day, meter)
) WITH (fillfactor = 80);
CREATE INDEX daily_rollup_day_idx ON quota.daily_rollup (day, meter, user_id);
COMMENT ON TABLE quota.daily_rollup IS
    'The stored part of quota.usage_daily: what the general path wrote and the days folded from counter rows. '
    'Read quota.usage_daily, which adds the days still carried on quota.counters.';

-- Usage per user, UTC day and meter, exact at every commit: the stored rows plus what counter rows carry. With
-- security_invoker, a reader sees it through the row-level security of both tables (own rows only).
CREATE VIEW quota.usage_daily WITH (security_invoker = true) AS
SELECT u.user_id, u.day, u.meter, sum(u.amount)::bigint AS amount, sum(u.requests)::bigint AS requests,
       sum(u.denials)::bigint AS denials, max(u.last_at) AS last_at
FROM (
    SELECT r.user_id, r.day, r.meter, r.amount, r.requests, r.denials, r.last_at FROM quota.daily_rollup r
    UNION ALL
    SELECT c.user_id, c.rollup_day, c.meter, c.rollup_amount, c.rollup_requests, 0, c.rollup_last_at
    FROM quota.counters c WHERE c.rollup_requests > 0
) u
GROUP BY u.user_id, u.day, u.meter;
COMMENT ON VIEW quota.usage_daily IS
    'Usage per user, UTC day and meter: amount consumed, allowed calls (requests), denied calls, last use. '
    'Exact in every snapshot; resets do not change it (it records what was used).';

-- Totals of finished days, filled in by quota.analytics the first time it needs a day: a day that is over
-- never changes, so "all time" costs one row per day instead of a scan of every user-day.
CREATE TABLE quota.daily_totals (
    day      date NOT NULL,
    meter    text NOT NULL,
    users    bigint NOT NULL,
    amount   bigint NOT NULL,
    requests bigint NOT NULL,
    denials  bigint NOT NULL,
    PRIMARY KEY (meter, day)
);
COMMENT ON TABLE quota.daily_totals IS 'Cache of quota.usage_daily totals per finished UTC day (see quota.analytics).';

-- One-off credits (top-ups, promotions): spent only once the plan's window allowance is used up, earliest
-- expiry first. remaining only goes down; expired credits simply stop counting.
CREATE TABLE quota.grants (
    user_id    text NOT NULL REFERENCES quota.accounts (user_id) ON DELETE CASCADE,
    id         bigint GENERATED ALWAYS AS IDENTITY,
    meter      text NOT NULL REFERENCES quota.meters (key) ON UPDATE CASCADE ON DELETE CASCADE,
    amount     bigint NOT NULL CHECK (amount > 0),
    remaining  bigint NOT NULL CHECK (remaining >= 0 AND remaining <= amount),
    expires_at timestamptz,
    source     text NOT NULL CHECK (length(source) BETWEEN 1 AND 100),
    created_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, id)
);
CREATE INDEX grants_open_idx ON quota.grants (user_id, meter, expires_at) WHERE remaining > 0;
COMMENT ON TABLE quota.grants IS
    'Credits granted with quota.grant: used after the plan''s allowance, earliest expiry first (no expiry last).';

CREATE TABLE quota.reservations (
    user_id         text NOT NULL,
    id              uuid NOT NULL DEFAULT gen_random_uuid(),
    meter           text NOT NULL,
    amount          quota.positive_amount NOT NULL,
    state           quota.reservation_state NOT NULL DEFAULT 'held',
    expires_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL,
    settled_at      timestamptz,
    actual          bigint,
    charged         bigint,
    PRIMARY KEY (user_id, id)
);
-- commit and release are addressed by the reservation id alone.
CREATE UNIQUE INDEX reservations_id_key ON quota.reservations (id);
CREATE INDEX reservations_open_idx ON quota.reservations (user_id, meter, expires_at) WHERE state = 'held';
COMMENT ON TABLE quota.reservations IS
    'Holds taken by quota.reserve and settled by quota.commit or quota.release. A hold past expires_at stops '
    'counting without any job; commit or release of it is refused.';

CREATE TABLE quota.idempotency_keys (
    user_id    text NOT NULL,
    key        quota.key_text NOT NULL,
    meter      text NOT NULL,
    amount     bigint NOT NULL,
    metadata   jsonb,
    decision   jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
COMMENT ON TABLE quota.idempotency_keys IS
    'Keys of allowed consumptions and their original decisions, so a repeat replays instead of charging again. '
    'Denied attempts keep no key (a retry is evaluated afresh). Purge with quota.purge_idempotency_keys().';

CREATE TABLE quota.audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor      text NOT NULL,
    action     text NOT NULL,
    target     text,
    details    jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_target_idx ON quota.audit_log (target, created_at);
COMMENT ON TABLE quota.audit_log IS 'Administrative actions, written in the same transaction as the action.';

-- The ledger is append-only: corrections are new rows, never edits.
CREATE FUNCTION quota.ledger_is_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'quota.ledger is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'object_not_in_prerequisite_state',
              HINT = 'Record a correction as a new row instead.';
END
$$;
COMMENT ON FUNCTION quota.ledger_is_append_only() IS
    'Trigger function: refuses UPDATE, DELETE and TRUNCATE on quota.ledger (SQLSTATE 55000).';
CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON quota.ledger
    FOR EACH ROW EXECUTE FUNCTION quota.ledger_is_append_only();
CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON quota.ledger
    FOR EACH STATEMENT EXECUTE FUNCTION quota.ledger_is_append_only();

-- What consume, check and status return.
CREATE TYPE quota.decision AS (
    allowed       boolean,
    meter         text,
    plan          text,
    used          bigint,
    "limit"       bigint,
    remaining     bigint,
    resets_at     timestamptz,
    status        text,
    reason        text,
    retry_after_s integer,
    period        text,
    replayed      boolean,
    held          bigint,
    credits_used  bigint,
    limits        jsonb
);
COMMENT ON TYPE quota.decision IS
    'A quota decision. used/limit/remaining/resets_at/period describe the binding window (least remaining; on '
    'denial, the window that denied). "limit" NULL means unlimited; remaining is net of held (amounts held by '
    'open reservations). replayed is true when an idempotency key returned an earlier decision. limits maps every '
    'limited window of the meter to its limit (carried allowance included), e.g. {"day": 10, "month": 300}.';

CREATE TYPE quota.reservation AS (
    reservation_id uuid,
    expires_at     timestamptz,
    allowed        boolean,
    meter          text,
    plan           text,
    used           bigint,
    "limit"        bigint,
    remaining      bigint,
    resets_at      timestamptz,
    status         text,
    reason         text,
    retry_after_s  integer,
    period         text,
    replayed       boolean,
    held           bigint,
    credits_used   bigint,
    limits         jsonb
);
COMMENT ON TYPE quota.reservation IS
    'What quota.reserve returns: the decision, and when allowed the reservation''s id and expiry.';

CREATE TYPE quota.settlement AS (
    reservation_id uuid,
    state          text,
    held           bigint,
    actual         bigint,
    charged        bigint,
    capped         boolean,
    used           bigint,
    "limit"        bigint,
    remaining      bigint,
    status         text,
    resets_at      timestamptz
);
COMMENT ON TYPE quota.settlement IS
    'What quota.commit and quota.release return: the hold, the actual amount, what was charged (capped when '
    'the limits allowed less than the actual amount) and the binding window afterwards.';

-- Calendar window maths. Plain SQL so the planner inlines them into consume's prepared statement.
-- Hours are cut at the local minute/second boundary so a repeated hour at a DST fall-back is never ambiguous;
-- days, ISO weeks (Monday) and months are cut at local midnight, and their ends are computed in local time so a
-- 23- or 25-hour day ends at the next local midnight.
CREATE FUNCTION quota.window_start(p_period text, p_at timestamptz, p_tz text) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE p_period
        WHEN 'hour' THEN p_at - ((p_at AT TIME ZONE p_tz) - date_trunc('hour', p_at AT TIME ZONE p_tz))
        ELSE date_trunc(p_period, p_at, p_tz)
    END
$$;
COMMENT ON FUNCTION quota.window_start(text, timestamptz, text) IS
    'Start of the calendar window (hour, day, ISO week, month) containing p_at in timezone p_tz.';

CREATE FUNCTION quota.window_end(p_period text, p_start timestamptz, p_tz text) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE p_period
        WHEN 'hour' THEN p_start + interval '1 hour'
        ELSE ((p_start AT TIME ZONE p_tz) + CASE p_period
                WHEN 'day' THEN interval '1 day'
                WHEN 'week' THEN interval '7 days'
                ELSE interval '1 month' END) AT TIME ZONE p_tz
    END
$$;
COMMENT ON FUNCTION quota.window_end(text, timestamptz, text) IS
    'End (exclusive) of the calendar window that starts at p_start in timezone p_tz; DST-correct.';
