//! Period names and their order: the bottom of the module graph (decision, burst and events all use it, it
//! uses nothing of the crate).

/// The period label a burst limit reports in decisions and status (calendar periods are hour, day, week, month).
pub const BURST: &str = "burst";

/// Ordering of periods from shortest to longest; also the tie-breaker when windows bind equally.
pub fn rank(period: &str) -> u8 {
    match period {
        BURST => 0,
        "hour" => 1,
        "day" => 2,
        "week" => 3,
        _ => 4,
    }
}

/// "Hourly", "Daily", ...: how a denial names the window that refused.
pub fn adjective(period: &str) -> &'static str {
    match period {
        "hour" => "Hourly",
        "day" => "Daily",
        "week" => "Weekly",
        BURST => "Burst",
        _ => "Monthly",
    }
}
