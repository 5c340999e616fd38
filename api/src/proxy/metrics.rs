//! `aiquota_proxy_requests_total{class, outcome}`: proxied requests by class (`charged`, `free`) and how
//! they ended. Outcomes: `forwarded` (free, the upstream answered), `committed`, `committed_partial` (output
//! was sent, then the upstream broke off or the client left), `released` (no output), `upstream_error`
//! (the upstream answered non-2xx: released), `unreachable` (no answer from the upstream: released),
//! `denied`, `error` (the database failed before forwarding), `rejected` (a path or body the proxy refuses).

use std::{collections::BTreeMap, fmt::Write, sync::Mutex};

/// The counters; a field of [`crate::metrics::Metrics`].
#[derive(Default)]
pub struct ProxyMetrics {
    counts: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

impl ProxyMetrics {
    /// Counts one proxied request.
    pub fn count(&self, class: &'static str, outcome: &'static str) {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *c.entry((class, outcome)).or_default() += 1;
    }

    /// Appends the exposition text.
    pub fn render(&self, out: &mut String) {
        out.push_str(
            "# HELP aiquota_proxy_requests_total Proxied requests by class and outcome.\n",
        );
        out.push_str("# TYPE aiquota_proxy_requests_total counter\n");
        for ((class, outcome), n) in self.counts.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(
                out,
                "aiquota_proxy_requests_total{{class=\"{class}\",outcome=\"{outcome}\"}} {n}"
            );
        }
    }
}
