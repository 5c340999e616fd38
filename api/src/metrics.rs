//! Prometheus metrics in the text exposition format, kept by hand: a few counters and one histogram do not
//! justify a metrics framework. Requests are labelled by the *matched route* (`/v1/admin/users/{id}`), never
//! the raw path, so user ids do not explode the label space; unmatched paths share the route `unmatched` and
//! invented methods the method `other`, so the number of series is fixed by the code, not by clients.

use std::{
    collections::BTreeMap,
    fmt::Write,
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex,
    },
    time::Instant,
};

use axum::{
    extract::{MatchedPath, Request},
    middleware::Next,
    response::Response,
};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The process's metrics; one per app.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    allowed: AtomicU64,
    denied: AtomicU64,
    retries: AtomicU64,
    payments: Mutex<BTreeMap<(String, String), u64>>,
    webhooks: Mutex<BTreeMap<(String, String), u64>>,
    /// The metering proxy's counters.
    pub proxy: crate::proxy::metrics::ProxyMetrics,
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
    /// Counts one consume or reservation decision.
    pub fn decision(&self, allowed: bool) {
        let c = if allowed { &self.allowed } else { &self.denied };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one retried database attempt.
    pub fn db_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one recorded payment by provider and outcome (`applied`, `duplicate`, `mismatch`).
    pub fn payment(&self, provider: &str, outcome: &str) {
        let mut p = self.payments.lock().unwrap_or_else(|e| e.into_inner());
        *p.entry((provider.to_string(), outcome.to_string()))
            .or_default() += 1;
    }

    /// Counts one webhook delivery by provider and result (`applied`, `duplicate`, `mismatch`,
    /// `duplicate_event`, `ignored`, `invalid_signature`, `error`).
    pub fn webhook(&self, provider: &str, result: &str) {
        let mut w = self.webhooks.lock().unwrap_or_else(|e| e.into_inner());
        *w.entry((provider.to_string(), result.to_string()))
            .or_default() += 1;
    }

    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut r = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *r.entry((method.to_string(), route.to_string(), status))
            .or_default() += 1;
        drop(r);
        let mut l = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let h = l.entry(route.to_string()).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// The exposition text; `pool` is (size, available, max_size) of the database pool.
    pub fn render(&self, pool: deadpool_postgres::Status) -> String {
        let mut out = String::new();
        out.push_str("# HELP aiquota_http_requests_total HTTP requests by method, matched route and status.\n");
        out.push_str("# TYPE aiquota_http_requests_total counter\n");
        for ((m, r, s), n) in self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "aiquota_http_requests_total{{method=\"{m}\",route=\"{}\",status=\"{s}\"}} {n}",
                escape(r)
            );
        }
        out.push_str(
            "# HELP aiquota_http_request_duration_seconds Time to produce the response head.\n",
        );
        out.push_str("# TYPE aiquota_http_request_duration_seconds histogram\n");
        for (r, h) in self
            .latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let r = escape(r);
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "aiquota_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "aiquota_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "aiquota_http_request_duration_seconds_sum{{route=\"{r}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "aiquota_http_request_duration_seconds_count{{route=\"{r}\"}} {}",
                h.count
            );
        }
        out.push_str("# HELP aiquota_decisions_total Consume and reservation decisions.\n");
        out.push_str("# TYPE aiquota_decisions_total counter\n");
        let _ = writeln!(
            out,
            "aiquota_decisions_total{{outcome=\"allowed\"}} {}",
            self.allowed.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "aiquota_decisions_total{{outcome=\"denied\"}} {}",
            self.denied.load(Ordering::Relaxed)
        );
        out.push_str("# HELP aiquota_db_retries_total Database attempts repeated after a transient failure.\n");
        out.push_str("# TYPE aiquota_db_retries_total counter\n");
        let _ = writeln!(
            out,
            "aiquota_db_retries_total {}",
            self.retries.load(Ordering::Relaxed)
        );
        out.push_str("# HELP aiquota_payments_total Payments recorded, by provider and outcome.\n");
        out.push_str("# TYPE aiquota_payments_total counter\n");
        for ((p, o), n) in self
            .payments
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "aiquota_payments_total{{provider=\"{}\",outcome=\"{}\"}} {n}",
                escape(p),
                escape(o)
            );
        }
        out.push_str(
            "# HELP aiquota_payment_webhooks_total Webhook deliveries, by provider and result.\n",
        );
        out.push_str("# TYPE aiquota_payment_webhooks_total counter\n");
        for ((p, r), n) in self
            .webhooks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "aiquota_payment_webhooks_total{{provider=\"{}\",result=\"{}\"}} {n}",
                escape(p),
                escape(r)
            );
        }
        out.push_str("# HELP aiquota_db_pool_connections Database pool connections by state.\n");
        out.push_str("# TYPE aiquota_db_pool_connections gauge\n");
        let in_use = pool.size.saturating_sub(pool.available);
        let _ = writeln!(
            out,
            "aiquota_db_pool_connections{{state=\"in_use\"}} {in_use}"
        );
        let _ = writeln!(
            out,
            "aiquota_db_pool_connections{{state=\"idle\"}} {}",
            pool.available
        );
        let _ = writeln!(
            out,
            "aiquota_db_pool_connections{{state=\"max\"}} {}",
            pool.max_size
        );
        let _ = writeln!(out, "aiquota_db_pool_waiting {}", pool.waiting);
        self.proxy.render(&mut out);
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The method as a label: the standard ones by name, any other (HTTP allows inventing methods) as `other`,
/// so that no request can create a new series.
fn method_label(m: &axum::http::Method) -> &'static str {
    match m.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "other",
    }
}

/// Outer middleware: counts every response (unmatched ones as route `unmatched`) and its latency.
pub async fn track(
    axum::extract::State(metrics): axum::extract::State<std::sync::Arc<Metrics>>,
    req: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let method = method_label(req.method()).to_string();
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
