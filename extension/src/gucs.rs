//! Every GUC the extension defines, registered from one `init()`.
//!
//! The plan and timezone defaults are superuser-only (`SUSET`): they decide what a new user gets, and a session
//! must not be able to hand itself a better plan by `SET`. The status thresholds only change labels, so any
//! session may tune them.

use std::ffi::{CStr, CString};

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};

/// Plan given to new users and to users whose plan has expired.
pub static DEFAULT_PLAN: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"free"));
/// IANA timezone of calendar windows for accounts without their own.
pub static DEFAULT_TIMEZONE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"UTC"));
/// Fraction of a limit from which status is `warning`.
pub static WARNING_THRESHOLD: GucSetting<f64> = GucSetting::<f64>::new(0.6);
/// Fraction of a limit from which status is `critical`.
pub static CRITICAL_THRESHOLD: GucSetting<f64> = GucSetting::<f64>::new(0.9);
/// Overrides the clock (tests, replays). Empty or unset: the transaction's start time.
pub static NOW_OVERRIDE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// Largest metadata (JSON text) a ledger row may carry: every allowed call stores it, so it must not become free
/// storage. Superuser-only.
pub static MAX_METADATA_BYTES: GucSetting<i32> = GucSetting::<i32>::new(2048);

/// Names the function that returns the id of the end user a session acts for (e.g. `auth.uid` on Supabase);
/// row-level security shows such sessions only their own rows. Empty: end-user roles see nothing.
pub static USER_ID_FUNCTION: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// Registers the GUCs; called once from `_PG_init`.
pub fn init() {
    GucRegistry::define_int_guc(
        c"quota.max_metadata_bytes",
        c"Largest p_metadata (as JSON text) a consume may store on its ledger row.",
        c"Every allowed call stores its metadata, so this bounds what a caller can store per call. Superuser-only.",
        &MAX_METADATA_BYTES,
        0,
        1024 * 1024,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"quota.default_plan",
        c"Plan assigned to new users and to users whose plan expired.",
        c"Must name a row of quota.plans. Superuser-only, so a session cannot pick its own plan.",
        &DEFAULT_PLAN,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"quota.default_timezone",
        c"IANA timezone of calendar windows for accounts without one.",
        c"Windows (hour, day, ISO week, month) start at local boundaries in this zone.",
        &DEFAULT_TIMEZONE,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_float_guc(
        c"quota.warning_threshold",
        c"Fraction of a limit from which quota status is 'warning'.",
        c"",
        &WARNING_THRESHOLD,
        0.0,
        1.0,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_float_guc(
        c"quota.critical_threshold",
        c"Fraction of a limit from which quota status is 'critical'.",
        c"",
        &CRITICAL_THRESHOLD,
        0.0,
        1.0,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"quota.user_id_function",
        c"Function returning the end user's id for row-level security (e.g. auth.uid).",
        c"Read by quota.current_user_id(); superuser-only, since it decides whose rows a session sees.",
        &USER_ID_FUNCTION,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"quota.now",
        c"Overrides the clock aiquota uses (a timestamptz); empty means the transaction start time.",
        c"For tests and replays only; superuser-only.",
        &NOW_OVERRIDE,
        GucContext::Suset,
        GucFlags::default(),
    );
}

/// Runs `f` on a string GUC's value where PostgreSQL keeps it, trimmed; None when unset or empty. The one reader
/// of string settings: the hot paths only compare the default timezone, and copying it out twice per call was
/// about 0.7 % of a consume.
pub fn with_string<R>(
    setting: &GucSetting<Option<CString>>,
    f: impl FnOnce(Option<&str>) -> R,
) -> R {
    pgrx::pg_sys::submodules::thread_check::check_active_thread();
    // SAFETY: the setting's value is NULL or a NUL-terminated string that PostgreSQL replaces (and frees) only
    // when the setting changes, which nothing does while `f` runs (the engine's statements set no GUC).
    let raw = unsafe { *setting.as_ptr() };
    // Borrowed when the value is UTF-8 (always, for names PostgreSQL accepted); otherwise a lossy copy.
    let value = (!raw.is_null()).then(|| unsafe { CStr::from_ptr(raw) }.to_string_lossy());
    f(value.as_deref().map(str::trim).filter(|s| !s.is_empty()))
}

/// A string GUC's value, copied; None when unset or empty.
pub fn string(setting: &GucSetting<Option<CString>>) -> Option<String> {
    with_string(setting, |value| value.map(str::to_string))
}

/// The default plan's key.
pub fn default_plan() -> String {
    with_string(&DEFAULT_PLAN, |value| value.unwrap_or("free").to_string())
}

/// Runs `f` on the default timezone's name, in place.
pub fn with_default_timezone<R>(f: impl FnOnce(&str) -> R) -> R {
    with_string(&DEFAULT_TIMEZONE, |value| f(value.unwrap_or("UTC")))
}

/// The default timezone's name, copied (for the general path, which keeps it across statements).
pub fn default_timezone() -> String {
    with_default_timezone(str::to_string)
}
