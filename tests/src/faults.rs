//! Helpers for the fault suite (`make test-faults`, `tests/tests/integration/faults.rs`): HTTP load against
//! one or more API instances that records every answer with its `Idempotency-Key`, the tally that compares
//! what was acknowledged with what the ledger holds, and control of the suite's own cluster through
//! `scripts/faults.sh` (kill -9, restarts, SIGSTOP/SIGCONT).

use std::{
    collections::HashSet,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use serde_json::json;
use tokio::task::JoinHandle;

/// Runs `scripts/faults.sh <cmd>` on the suite's cluster and waits for it.
pub async fn cluster(cmd: &'static str) {
    let script = std::env::var("AIQUOTA_FAULTS")
        .expect("the fault suite runs from `make test-faults` (scripts/faults.sh run)");
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&script)
            .arg(cmd)
            .status()
            .expect("run scripts/faults.sh")
    })
    .await
    .unwrap();
    assert!(status.success(), "scripts/faults.sh {cmd} failed");
}

/// One answer the load got.
#[derive(Clone, Debug)]
pub struct Answer {
    /// Whose consume it was.
    pub user: String,
    /// HTTP status; 0 when no answer came (connection error or the client's timeout).
    pub status: u16,
    /// The problem type, for errors.
    pub kind: String,
    /// Whether `Retry-After` was set.
    pub retry_after: bool,
    /// The consume's idempotency key (from the response).
    pub key: Option<String>,
    /// When the answer came.
    pub at: Instant,
    /// How long it took.
    pub took: Duration,
}

/// One consume for `user` of `amount` `meter`, recorded.
pub async fn consume(
    client: &reqwest::Client,
    base: &str,
    user: &str,
    meter: &str,
    amount: i64,
) -> Answer {
    let started = Instant::now();
    let res = client
        .post(format!("{base}/v1/quota/consume"))
        .bearer_auth(crate::http::user_token(user))
        .json(&json!({"meter": meter, "amount": amount}))
        .send()
        .await;
    let (status, kind, retry_after, key) = match res {
        Ok(res) => {
            let status = res.status().as_u16();
            let retry_after = res.headers().contains_key("retry-after");
            let key = res
                .headers()
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body: serde_json::Value = res.json().await.unwrap_or_default();
            let kind = body["type"].as_str().unwrap_or("").to_string();
            (status, kind, retry_after, key)
        }
        Err(e) => (0, e.to_string(), false, None),
    };
    Answer {
        user: user.to_string(),
        status,
        kind,
        retry_after,
        key,
        at: Instant::now(),
        took: started.elapsed(),
    }
}

/// Workers consuming in a loop until [`Load::finish`].
pub struct Load {
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<Vec<Answer>>>,
}

impl Load {
    /// `workers` loops over the API instances at `bases` (round robin), worker `i` as user `{prefix}{i}`,
    /// each consume `amount` of `meter`, with `pause` between calls.
    pub fn start(
        bases: &[String],
        workers: usize,
        prefix: &str,
        meter: &'static str,
        amount: i64,
        pause: Duration,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let workers = (0..workers)
            .map(|i| {
                let (stop, client) = (stop.clone(), client.clone());
                let base = bases[i % bases.len()].clone();
                let user = format!("{prefix}{i}");
                tokio::spawn(async move {
                    let mut answers = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        answers.push(consume(&client, &base, &user, meter, amount).await);
                        tokio::time::sleep(pause).await;
                    }
                    answers
                })
            })
            .collect();
        Self { stop, workers }
    }

    /// `workers` users `{prefix}{i}` consuming one `ai_tokens` (10,000 a month) each through `app`, with
    /// `pause_ms` between calls: steady load that no limit stops.
    pub fn tokens(app: &crate::http::TestApp, workers: usize, prefix: &str, pause_ms: u64) -> Self {
        Self::start(
            std::slice::from_ref(&app.base),
            workers,
            prefix,
            "ai_tokens",
            1,
            Duration::from_millis(pause_ms),
        )
    }

    /// Stops the workers and returns every answer.
    pub async fn finish(self) -> Vec<Answer> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for w in self.workers {
            all.extend(w.await.unwrap());
        }
        all
    }
}

/// What the answers say against what the ledger holds.
#[derive(Debug, Default)]
pub struct Tally {
    /// Answers in all.
    pub answers: usize,
    /// `200`: acknowledged charges.
    pub acknowledged: usize,
    /// Acknowledged charges found in the ledger (by idempotency key).
    pub found: usize,
    /// Denials (429).
    pub denied: usize,
    /// `503 unavailable` with `Retry-After`.
    pub unavailable: usize,
    /// Of those, charged all the same (must be 0).
    pub charged_after_503: usize,
    /// `503 outcome-unknown`.
    pub unknown: usize,
    /// Of those, charged in the end.
    pub unknown_charged: usize,
    /// Anything else: other statuses, a 503 of another kind, no answer (must be 0).
    pub other: Vec<String>,
    /// Idempotency keys with more than one ledger row (must be 0).
    pub double_charged: i64,
    /// Rows of `quota.verify()` (must be 0).
    pub verify_rows: i64,
    /// The slowest answer.
    pub slowest: Duration,
}

impl Tally {
    /// Compares `answers` with the ledger of database `db`.
    pub async fn of(answers: &[Answer], db: &str) -> Self {
        let sql = crate::http::sql(db).await;
        let ledger: HashSet<(String, String)> = sql
            .query(
                "SELECT user_id, idempotency_key FROM quota.ledger WHERE idempotency_key IS NOT NULL",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let charged = |a: &Answer| {
            a.key
                .as_ref()
                .is_some_and(|k| ledger.contains(&(a.user.clone(), k.clone())))
        };
        let mut t = Tally {
            answers: answers.len(),
            ..Tally::default()
        };
        for a in answers {
            t.slowest = t.slowest.max(a.took);
            match (a.status, a.kind.as_str(), a.retry_after) {
                (200, _, _) => {
                    t.acknowledged += 1;
                    t.found += usize::from(charged(a));
                }
                (429, _, _) => t.denied += 1,
                (503, "/problems/unavailable", true) => {
                    t.unavailable += 1;
                    t.charged_after_503 += usize::from(charged(a));
                }
                (503, "/problems/outcome-unknown", false) => {
                    t.unknown += 1;
                    t.unknown_charged += usize::from(charged(a));
                }
                (s, kind, _) => t.other.push(format!("{s} {kind}")),
            }
        }
        t.double_charged = sql
            .query_one(
                "SELECT count(*) FROM (SELECT 1 FROM quota.ledger WHERE idempotency_key IS NOT NULL \
                 GROUP BY user_id, idempotency_key HAVING count(*) > 1) d",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        t.verify_rows = crate::http::verify_rows(&sql).await;
        t
    }

    /// One line of figures.
    pub fn print(&self, scenario: &str, extra: &str) {
        println!(
            "FAULTS {scenario}: answers {}, acknowledged {}, found {}, denied {}, 503 retry {}, charged after 503 {}, \
             outcome-unknown {} (charged {}), other {}, double charges {}, verify rows {}, slowest {:.2?}{extra}",
            self.answers,
            self.acknowledged,
            self.found,
            self.denied,
            self.unavailable,
            self.charged_after_503,
            self.unknown,
            self.unknown_charged,
            self.other.len(),
            self.double_charged,
            self.verify_rows,
            self.slowest,
        );
    }

    /// Fails on any loss, double charge, charged 503 or 5xx other than 503.
    pub fn assert_sound(&self) {
        assert_eq!(self.found, self.acknowledged, "acknowledged charges lost");
        assert_eq!(
            self.charged_after_503, 0,
            "503s with Retry-After were charged"
        );
        assert!(
            self.other.is_empty(),
            "unexpected answers: {:?}",
            self.other
        );
        assert_eq!(self.double_charged, 0, "double charges");
        assert_eq!(self.verify_rows, 0, "quota.verify() is not empty");
    }
}

/// Time from `since` to the first `200` answered after it.
pub fn recovery(answers: &[Answer], since: Instant) -> Option<Duration> {
    answers
        .iter()
        .filter(|a| a.status == 200 && a.at >= since)
        .map(|a| a.at - since)
        .min()
}
