//! Prometheus metrics on the `metrics` crate, exposed by `metrics-exporter-prometheus` in the text format.
//!
//! Every label has a bounded set of values, so no client can grow the number of series: requests are labelled by
//! the *matched route* (`/v1/admin/users/{id}`, never the raw path; `unmatched` for a 404), a fixed set of
//! methods (anything else is `other`) and the status code (a 3-digit number the API itself chose); payment
//! labels are the known providers and outcomes, anything else `other`. Each app has its own recorder (not the
//! process-global one), so two apps in one process (the tests) count separately.

use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request},
    middleware::Next,
    response::Response,
};
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

const REQUESTS: &str = "aiquota_http_requests_total";
const LATENCY: &str = "aiquota_http_request_duration_seconds";
const DECISIONS: &str = "aiquota_decisions_total";
const RETRIES: &str = "aiquota_db_retries_total";
const PAYMENTS: &str = "aiquota_payments_total";
const WEBHOOKS: &str = "aiquota_payment_webhooks_total";
const POOL: &str = "aiquota_db_pool_connections";
const POOL_WAITING: &str = "aiquota_db_pool_waiting";

/// The methods counted by name; any other is `other`.
const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
const PROVIDERS: [&str; 2] = ["razorpay", "stripe"];
const PAYMENT_OUTCOMES: [&str; 5] = ["applied", "duplicate", "mismatch", "kept", "revoked"];
const WEBHOOK_RESULTS: [&str; 10] = [
    "applied",
    "duplicate",
    "mismatch",
    "kept",
    "revoked",
    "livemode_mismatch",
    "duplicate_event",
    "ignored",
    "invalid_signature",
    "error",
];

/// `value` when it is one of `known`, else `other`: the label value is always from a fixed set.
fn bounded(value: &str, known: &[&'static str]) -> &'static str {
    known
        .iter()
        .find(|k| **k == value)
        .copied()
        .unwrap_or("other")
}

/// The process's metrics; one per app.
pub struct Metrics {
    recorder: PrometheusRecorder,
    /// The metering proxy's counters (rendered by the proxy module itself).
    pub proxy: crate::proxy::metrics::ProxyMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(LATENCY.to_string()), &BUCKETS)
            .expect("the bucket list is a non-empty constant")
            .build_recorder();
        let m = Self {
            recorder,
            proxy: Default::default(),
        };
        m.with(|| {
            describe_counter!(
                REQUESTS,
                "HTTP requests by method, matched route and status."
            );
            describe_histogram!(LATENCY, "Time to produce the response head.");
            describe_counter!(DECISIONS, "Consume and reservation decisions.");
            describe_counter!(
                RETRIES,
                "Database attempts repeated after a transient failure."
            );
            describe_counter!(PAYMENTS, "Payments recorded, by provider and outcome.");
            describe_counter!(WEBHOOKS, "Webhook deliveries, by provider and result.");
            describe_gauge!(POOL, "Database pool connections by state.");
            describe_gauge!(POOL_WAITING, "Requests waiting for a database connection.");
            // Shown from the start, at 0, so that a dashboard (and a test) can tell "none yet" from "missing".
            counter!(DECISIONS, "outcome" => "allowed").absolute(0);
            counter!(DECISIONS, "outcome" => "denied").absolute(0);
            counter!(RETRIES).absolute(0);
        });
        m
    }
}

/// The route a response was produced by, copied from the request by [`route_label`] so the outer
/// [`track`] middleware can read it.
#[derive(Clone)]
struct Route(String);

/// Inner middleware (a route layer): remembers the matched route in the response.
pub async fn route_label(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let mut res = next.run(req).await;
    if let Some(r) = route {
        res.extensions_mut().insert(Route(r));
    }
    res
}

impl Metrics {
    /// Runs `f` with this app's recorder as the one the `metrics` macros record into.
    fn with<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.recorder, f)
    }

    /// Counts one consume or reservation decision.
    pub fn decision(&self, allowed: bool) {
        let outcome = if allowed { "allowed" } else { "denied" };
        self.with(|| counter!(DECISIONS, "outcome" => outcome).increment(1));
    }

    /// Counts one retried database attempt.
    pub fn db_retry(&self) {
        self.with(|| counter!(RETRIES).increment(1));
    }

    /// Counts one recorded payment by provider and outcome (`applied`, `duplicate`, `mismatch`).
    pub fn payment(&self, provider: &str, outcome: &str) {
        let provider = bounded(provider, &PROVIDERS);
        let outcome = bounded(outcome, &PAYMENT_OUTCOMES);
        self.with(|| counter!(PAYMENTS, "provider" => provider, "outcome" => outcome).increment(1));
    }

    /// Counts one webhook delivery by provider and result (`applied`, `duplicate`, `mismatch`,
    /// `kept`, `revoked`, `livemode_mismatch`, `duplicate_event`, `ignored`, `invalid_signature`, `error`).
    pub fn webhook(&self, provider: &str, result: &str) {
        let provider = bounded(provider, &PROVIDERS);
        let result = bounded(result, &WEBHOOK_RESULTS);
        self.with(|| counter!(WEBHOOKS, "provider" => provider, "result" => result).increment(1));
    }

    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let method = bounded(method, &METHODS);
        // The status is the API's own choice; clamping keeps even a bug from making more than 500 series.
        let status = status.clamp(100, 599).to_string();
        self.with(|| {
            counter!(REQUESTS, "method" => method, "route" => route.to_string(), "status" => status)
                .increment(1);
            histogram!(LATENCY, "route" => route.to_string()).record(seconds);
        });
    }

    /// The exposition text; `pool` is the database pool's state at this moment.
    pub fn render(&self, pool: deadpool_postgres::Status) -> String {
        self.with(|| {
            let in_use = pool.size.saturating_sub(pool.available);
            gauge!(POOL, "state" => "in_use").set(in_use as f64);
            gauge!(POOL, "state" => "idle").set(pool.available as f64);
            gauge!(POOL, "state" => "max").set(pool.max_size as f64);
            gauge!(POOL_WAITING).set(pool.waiting as f64);
        });
        let mut out = self.recorder.handle().render();
        self.proxy.render(&mut out);
        out
    }
}

/// Outer middleware: counts every response (unmatched ones as route `unmatched`) and its latency.
pub async fn track(
    axum::extract::State(metrics): axum::extract::State<std::sync::Arc<Metrics>>,
    req: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_string();
    let res = next.run(req).await;
    let route = res
        .extensions()
        .get::<Route>()
        .map(|r| r.0.as_str())
        .unwrap_or("unmatched");
    metrics.observe(
        &method,
        route,
        res.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> deadpool_postgres::Status {
        deadpool_postgres::Status {
            max_size: 4,
            size: 1,
            available: 1,
            waiting: 0,
        }
    }

    /// A request's method is a label value: any token a client sends must not make a new series.
    #[test]
    fn unknown_methods_share_one_label() {
        let m = Metrics::default();
        for method in ["BREW", "PROPFIND", "X-Y-Z"] {
            m.observe(method, "unmatched", 405, 0.001);
        }
        m.observe("GET", "/health", 200, 0.001);
        let text = m.render(pool());
        assert!(
            text.contains(
                "aiquota_http_requests_total{method=\"other\",route=\"unmatched\",status=\"405\"} 3"
            ),
            "{text}"
        );
        assert!(!text.contains("BREW"), "{text}");
        assert!(
            text.contains(
                "aiquota_http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"} 1"
            ),
            "{text}"
        );
    }

    /// The names, types and shapes the dashboards and tests read, unchanged by the move to the crate.
    #[test]
    fn exposition_keeps_names_and_shapes() {
        let m = Metrics::default();
        let text = m.render(pool());
        for needle in [
            "aiquota_decisions_total{outcome=\"allowed\"} 0",
            "aiquota_db_retries_total 0",
            "aiquota_db_pool_connections{state=\"max\"} 4",
            "aiquota_db_pool_waiting 0",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
        m.observe("POST", "/v1/quota/consume", 200, 0.003);
        m.decision(true);
        m.db_retry();
        m.payment("razorpay", "applied");
        m.payment("someone", "whatever");
        m.webhook("stripe", "invalid_signature");
        let text = m.render(pool());
        for needle in [
            "# TYPE aiquota_http_requests_total counter",
            "# TYPE aiquota_http_request_duration_seconds histogram",
            "aiquota_http_request_duration_seconds_bucket{route=\"/v1/quota/consume\",le=\"0.0025\"} 0",
            "aiquota_http_request_duration_seconds_bucket{route=\"/v1/quota/consume\",le=\"0.005\"} 1",
            "aiquota_http_request_duration_seconds_bucket{route=\"/v1/quota/consume\",le=\"+Inf\"} 1",
            "aiquota_http_request_duration_seconds_count{route=\"/v1/quota/consume\"} 1",
            "aiquota_decisions_total{outcome=\"allowed\"} 1",
            "aiquota_db_retries_total 1\n",
            "aiquota_payments_total{provider=\"razorpay\",outcome=\"applied\"} 1",
            "aiquota_payments_total{provider=\"other\",outcome=\"other\"} 1",
            "aiquota_payment_webhooks_total{provider=\"stripe\",result=\"invalid_signature\"} 1",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }
}
