//! Finds the token usage an upstream reports, while the response streams past: in an SSE stream, the `usage`
//! of the last `data:` event that has one (OpenAI's final chunk with `stream_options.include_usage`, the
//! Responses API's `response.completed`); in a JSON body, its `usage`. Memory is bounded: one SSE line, or
//! a JSON body up to [`JSON_LIMIT`], is kept at a time.
//!
//! It also measures the output, for a response that reports no usage: the bytes of the generated text
//! (string values under [`TEXT_KEYS`] in each event or in the JSON body, e.g. `choices[].delta.content`,
//! AG-UI's `delta`, tool call `arguments`), or, when a body has none of those, all its bytes.

use serde_json::Value;

/// Largest JSON response body kept to read its usage; a larger one commits the estimate.
const JSON_LIMIT: usize = 4 * 1024 * 1024;
/// Longest SSE line kept; usage events are small, a longer line is skipped.
const LINE_LIMIT: usize = 1024 * 1024;

/// Keys whose string values are generated text.
const TEXT_KEYS: [&str; 7] = [
    "content",
    "text",
    "delta",
    "arguments",
    "refusal",
    "reasoning_content",
    "output_text",
];

/// Watches the bytes of one response for a usage report.
pub struct UsageScanner {
    mode: Mode,
    buf: Vec<u8>,
    overflow: bool,
    found: Option<i64>,
    /// Bytes of generated text seen.
    text: u64,
    /// Every byte of the body.
    total: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Sse,
    Json,
    Other,
}

impl UsageScanner {
    /// A scanner for a response with this `Content-Type`.
    pub fn new(content_type: Option<&str>) -> Self {
        let mime = content_type
            .and_then(|c| c.split(';').next())
            .map(|m| m.trim().to_ascii_lowercase())
            .unwrap_or_default();
        let mode = if mime == "text/event-stream" {
            Mode::Sse
        } else if mime == "application/json" || mime.ends_with("+json") {
            Mode::Json
        } else {
            Mode::Other
        };
        Self {
            mode,
            buf: Vec::new(),
            overflow: false,
            found: None,
            text: 0,
            total: 0,
        }
    }

    /// Bytes of output: the generated text found, else the whole body (call once the body has ended).
    pub fn output_bytes(&mut self) -> u64 {
        if self.mode == Mode::Json && !self.overflow {
            if let Ok(v) = serde_json::from_slice::<Value>(&self.buf) {
                self.text = text_bytes(&v);
            }
        }
        if self.text > 0 {
            self.text
        } else {
            self.total
        }
    }

    /// Looks at the next chunk of the body.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.total += chunk.len() as u64;
        match self.mode {
            Mode::Other => {}
            Mode::Json => {
                if self.buf.len() + chunk.len() > JSON_LIMIT {
                    self.overflow = true;
                    self.buf = Vec::new();
                } else if !self.overflow {
                    self.buf.extend_from_slice(chunk);
                }
            }
            Mode::Sse => {
                let mut rest = chunk;
                while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
                    if self.overflow {
                        self.text += nl as u64;
                    } else {
                        self.buf.extend_from_slice(&rest[..nl]);
                        self.sse_line();
                    }
                    self.buf.clear();
                    self.overflow = false;
                    rest = &rest[nl + 1..];
                }
                if self.overflow {
                    self.text += rest.len() as u64;
                } else if self.buf.len() + rest.len() > LINE_LIMIT {
                    // A line too long to keep: all its bytes count as output, so it is never free.
                    self.text += (self.buf.len() + rest.len()) as u64;
                    self.overflow = true;
                    self.buf.clear();
                } else {
                    self.buf.extend_from_slice(rest);
                }
            }
        }
    }

    fn sse_line(&mut self) {
        let line = self.buf.strip_suffix(b"\r").unwrap_or(&self.buf);
        let Some(data) = line.strip_prefix(b"data:") else {
            return;
        };
        let Ok(event) = serde_json::from_slice::<Value>(data) else {
            return;
        };
        self.text += text_bytes(&event);
        if let Some(n) = usage_of(&event) {
            self.found = Some(n);
        }
    }

    /// The usage reported, once the body has ended (`complete`), or what an SSE stream reported so far.
    pub fn usage(&mut self, complete: bool) -> Option<i64> {
        match self.mode {
            Mode::Sse => {
                if complete && !self.buf.is_empty() && !self.overflow {
                    self.sse_line();
                    self.buf.clear();
                }
                self.found
            }
            Mode::Json if complete && !self.overflow => serde_json::from_slice::<Value>(&self.buf)
                .ok()
                .as_ref()
                .and_then(usage_of),
            _ => None,
        }
    }
}

/// Bytes of the string values under [`TEXT_KEYS`], anywhere in `v`.
fn text_bytes(v: &Value) -> u64 {
    match v {
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) if TEXT_KEYS.contains(&k.as_str()) => s.len() as u64,
                other => text_bytes(other),
            })
            .sum(),
        Value::Array(a) => a.iter().map(text_bytes).sum(),
        _ => 0,
    }
}

/// Total tokens of a usage report: `usage.total_tokens`, else prompt + completion (or input + output);
/// `usage` at the top or under `response` (Responses API events).
pub fn usage_of(v: &Value) -> Option<i64> {
    let u = v
        .get("usage")
        .filter(|u| u.is_object())
        .or_else(|| v.get("response")?.get("usage"))?;
    let n = |k: &str| u.get(k).and_then(Value::as_i64);
    let total =
        n("total_tokens").or_else(|| match (n("prompt_tokens"), n("completion_tokens")) {
            (Some(p), Some(c)) => Some(p + c),
            _ => match (n("input_tokens"), n("output_tokens")) {
                (Some(i), Some(o)) => Some(i + o),
                _ => None,
            },
        })?;
    (total >= 0).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_stream_with_usage_in_the_final_chunk_split_anywhere() {
        let body = concat!(
            "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"Hel\"}}],\"usage\":null}\n\n",
            "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"lo\"}}],\"usage\":null}\r\n\r\n",
            "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":30,\"total_tokens\":42}}\n\n",
            "data: [DONE]\n\n"
        );
        for split in [1, 7, 50, body.len()] {
            let mut s = UsageScanner::new(Some("text/event-stream; charset=utf-8"));
            for chunk in body.as_bytes().chunks(split) {
                s.feed(chunk);
            }
            assert_eq!(s.usage(true), Some(42), "split {split}");
        }
    }

    #[test]
    fn responses_api_and_prompt_plus_completion() {
        let mut s = UsageScanner::new(Some("text/event-stream"));
        s.feed(b"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":5,\"output_tokens\":7}}}");
        assert_eq!(s.usage(true), Some(12));
        let mut j = UsageScanner::new(Some("application/json"));
        j.feed(br#"{"choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":3,"#);
        j.feed(br#""completion_tokens":4}}"#);
        assert_eq!(j.usage(false), None);
        assert_eq!(j.usage(true), Some(7));
    }

    #[test]
    fn output_is_the_generated_text_else_the_whole_body() {
        let mut s = UsageScanner::new(Some("text/event-stream"));
        s.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"Hello\"}}]}\n\n");
        s.feed(b"data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"function\":{\"arguments\":\"{}\"}}]}}]}\n\ndata: [DONE]\n\n");
        assert_eq!(s.usage(true), None);
        assert_eq!(s.output_bytes(), 7);
        let mut j = UsageScanner::new(Some("application/json"));
        j.feed(br#"{"choices":[{"message":{"content":"Hello world"}}]}"#);
        assert_eq!(j.output_bytes(), 11);
        let mut long = UsageScanner::new(Some("text/event-stream"));
        long.feed(b"data: {\"delta\":\"");
        long.feed(&vec![b'x'; LINE_LIMIT]);
        long.feed(b"\"}\n\ndata: {\"delta\":\"ab\"}\n\n");
        assert_eq!(long.output_bytes(), 16 + LINE_LIMIT as u64 + 2 + 2);
        let mut o = UsageScanner::new(Some("text/plain"));
        o.feed(b"twelve bytes");
        assert_eq!(o.output_bytes(), 12);
    }

    #[test]
    fn no_usage_reported() {
        let mut s = UsageScanner::new(Some("text/event-stream"));
        s.feed(b"data: {\"type\":\"TEXT_MESSAGE_CONTENT\",\"delta\":\"usage\"}\n\n");
        assert_eq!(s.usage(true), None);
        let mut o = UsageScanner::new(Some("multipart/mixed"));
        o.feed(br#"{"usage":{"total_tokens":5}}"#);
        assert_eq!(o.usage(true), None);
        let mut bad = UsageScanner::new(Some("application/json"));
        bad.feed(br#"{"usage":{"total_tokens":-3}}"#);
        assert_eq!(bad.usage(true), None);
    }
}
