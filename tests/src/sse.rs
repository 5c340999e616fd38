//! Reading an SSE response of `GET /v1/quota/events` in tests: the `event: quota` messages as JSON.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;

/// Reads `event: quota` messages from an SSE response, skipping comments (keep-alives).
pub struct Events {
    stream: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: String,
}

impl Events {
    /// Reads the stream of `res`.
    pub fn new(res: reqwest::Response) -> Self {
        Self {
            stream: res.bytes_stream().boxed(),
            buf: String::new(),
        }
    }

    /// Opens `GET /v1/quota/events` on `app` as `user` and reads the quota it sends at connect.
    pub async fn subscribe(app: &crate::http::TestApp, user: &str) -> (Self, Value) {
        let res = app
            .get("/v1/quota/events", &crate::http::user_token(user))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "the stream opens");
        let mut events = Self::new(res);
        let first = events
            .next(Duration::from_secs(5))
            .await
            .expect("the quota at connect");
        (events, first)
    }

    /// The next `event: quota` within `within`, or `None`.
    pub async fn next(&mut self, within: Duration) -> Option<Value> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let message: String = self.buf.drain(..end + 2).collect();
                let data: String = message
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if message.lines().any(|l| l == "event: quota") {
                    return Some(serde_json::from_str(&data).unwrap());
                }
                continue;
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            match tokio::time::timeout(left, self.stream.next()).await {
                Ok(Some(Ok(chunk))) => self.buf.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return None,
            }
        }
    }

    /// Reads events until one has `plan`, for at most `within`.
    pub async fn wait_for_plan(&mut self, plan: &str, within: Duration) -> Option<Duration> {
        let start = Instant::now();
        while let Some(left) = within.checked_sub(start.elapsed()) {
            match self.next(left).await {
                Some(e) if e["plan"] == plan => return Some(start.elapsed()),
                Some(_) => {}
                None => return None,
            }
        }
        None
    }
}
