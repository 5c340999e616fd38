//! Decides, for a request its route lets through ([`crate::config::proxy::routes`]), whether it is charged and how much is
//! held, or refuses it. Fail closed: a request is free only when its route is `free` or it is positively one
//! of CopilotKit's non-generating calls, recognised by a strict parse of the whole body; every other
//! forwarded request is charged, and a body that cannot be read strictly is refused ([`super::body`]).
//!
//! The hold of a charged call covers the prompt and the output: `n × (prompt + output bound)`, where the
//! prompt estimate is a third of the request body's bytes, rounded up (a token is 3 to 4 bytes of English and
//! about 3 bytes of CJK text; the JSON around the prompt only adds to it), and the output bound is the
//! request's `max_tokens` (or `max_completion_tokens`, `max_output_tokens`), else
//! `AIQUOTA_PROXY_DEFAULT_TOKENS`. The commit charges what the upstream reports, whatever the hold was.
//!
//! CopilotKit's non-generating calls:
//! - single route (`POST` to the prefix): `{"method": "info"}`, `agent/connect` and `agent/stop` envelopes
//!   whose fields are exactly the runtime's; GraphQL whose one operation is a query of `availableAgents` /
//!   `loadAgentState` ([`super::graphql`]);
//! - REST: `agent/{id}/connect` with a body that is exactly an AG-UI `RunAgentInput`, `agent/{id}/stop/{thread}`
//!   with an empty body or `{}`.

use axum::http::HeaderMap;
use serde_json::{Map, Value};

use super::{
    body::{strict_json, Refusal},
    graphql::{self, Operation},
};
use crate::config::proxy::routes::{Kind, Meters, Route};

/// What a forwarded request is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Class {
    /// Forwarded without touching the quota.
    Free {
        /// Which rule matched, for logs and tests.
        rule: &'static str,
    },
    /// An AI generation: held before forwarding, settled when the upstream finishes.
    Charged(Charge),
}

/// How a charged call is held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Charge {
    /// Which rule matched.
    pub rule: &'static str,
    /// The meters held.
    pub meters: Meters,
    /// `ai_tokens` held.
    pub hold: i64,
    /// The prompt estimate: charged, with the streamed output, when the upstream reports no usage.
    pub prompt: i64,
    /// The body to forward instead of the client's (an OpenAI stream that now asks for usage).
    pub body: Option<Vec<u8>>,
}

impl Class {
    /// `charged` or `free`, the metrics label.
    pub fn label(&self) -> &'static str {
        match self {
            Class::Charged(_) => "charged",
            Class::Free { .. } => "free",
        }
    }
}

/// The prompt estimate of a body: its bytes / 3, rounded up.
pub fn prompt_estimate(bytes: usize) -> i64 {
    i64::try_from(bytes.div_ceil(3)).unwrap_or(i64::MAX)
}

/// Classifies a request of `route` (`path` below the prefix, as sent).
pub fn classify(
    route: &Route,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
    default_tokens: i64,
) -> Result<Class, Refusal> {
    let charge = |rule, hold: i64, prompt, body| {
        Class::Charged(Charge {
            rule,
            meters: route.meters,
            hold: hold.max(1),
            prompt,
            body,
        })
    };
    match route.kind {
        Kind::Free if body.is_empty() => Ok(Class::Free { rule: "free route" }),
        Kind::Free => Err(Refusal::bad("This route is forwarded without a body.")),
        Kind::Charged => Ok(charge("charged route", default_tokens, 0, None)),
        Kind::OpenAi => {
            let json = strict_json(headers, body)?;
            let o = openai(&json, path, default_tokens)?;
            let prompt = prompt_estimate(body.len());
            let hold = o.n.saturating_mul(prompt.saturating_add(o.output));
            let body = o.ask_usage.then(|| with_usage(json)).transpose()?;
            Ok(charge("openai generation", hold, prompt, body))
        }
        Kind::CopilotKit => {
            let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
            if body.is_empty() && matches!(segs.as_slice(), ["agent", _, "stop", _]) {
                return Ok(Class::Free {
                    rule: "copilotkit agent stop",
                });
            }
            let json = strict_json(headers, body)?;
            let prompt = prompt_estimate(body.len());
            match copilotkit_free(&segs, &json)? {
                Some(rule) => Ok(Class::Free { rule }),
                None => Ok(charge(
                    "copilotkit generation",
                    prompt.saturating_add(default_tokens),
                    prompt,
                    None,
                )),
            }
        }
    }
}

/// What an OpenAI-compatible request asks for.
struct OpenAi {
    n: i64,
    output: i64,
    ask_usage: bool,
}

fn openai(json: &Value, path: &str, default_tokens: i64) -> Result<OpenAi, Refusal> {
    let obj = json
        .as_object()
        .ok_or_else(|| Refusal::bad("The body must be a JSON object."))?;
    let int = |key: &str, max: i64| -> Result<Option<i64>, Refusal> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_i64() {
                Some(n) if (1..=max).contains(&n) => Ok(Some(n)),
                _ => Err(Refusal::bad(format!(
                    "{key} must be a whole number from 1 to {max}."
                ))),
            },
        }
    };
    let n = int("n", 128)?
        .unwrap_or(1)
        .max(int("best_of", 128)?.unwrap_or(1));
    let mut output = None;
    for key in ["max_tokens", "max_completion_tokens", "max_output_tokens"] {
        output = output.or(int(key, 1_000_000_000)?);
    }
    let stream = match obj.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(Refusal::bad("stream must be true or false.")),
    };
    let asked = obj
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        == Some(&Value::Bool(true));
    Ok(OpenAi {
        n,
        output: output.unwrap_or(default_tokens),
        // Chat and legacy completions report a stream's usage only when asked; the Responses API always does.
        ask_usage: stream && !asked && path.ends_with("completions"),
    })
}

/// The body with `stream_options.include_usage = true`.
fn with_usage(mut json: Value) -> Result<Vec<u8>, Refusal> {
    let Some(obj) = json.as_object_mut() else {
        return Err(Refusal::bad("The body must be a JSON object."));
    };
    let options = obj
        .entry("stream_options")
        .or_insert_with(|| Value::Object(Map::new()));
    match options {
        Value::Object(o) => {
            o.insert("include_usage".into(), Value::Bool(true));
        }
        Value::Null => *options = serde_json::json!({"include_usage": true}),
        _ => return Err(Refusal::bad("stream_options must be an object.")),
    }
    serde_json::to_vec(&json).map_err(|_| Refusal::bad("The body cannot be re-encoded."))
}

/// The rule of a non-generating CopilotKit call, `None` for everything else (charged).
fn copilotkit_free(segs: &[&str], json: &Value) -> Result<Option<&'static str>, Refusal> {
    let obj = json.as_object().ok_or_else(|| {
        Refusal::bad("The body must be a JSON object (GraphQL batches are not forwarded).")
    })?;
    // A GraphQL document decides by what it executes; one the parser cannot pin down is refused.
    if let Some(q) = obj.get("query") {
        let q = q
            .as_str()
            .ok_or_else(|| Refusal::bad("query must be a GraphQL document."))?;
        let op = graphql::operation(q)?;
        let plain = keys_within(obj, &["query", "operationName", "variables"]);
        return Ok((op == Operation::Free && plain).then_some("copilotkit graphql query"));
    }
    if obj.contains_key("extensions") {
        return Err(Refusal::bad(
            "A GraphQL request must carry its document (persisted queries are not forwarded).",
        ));
    }
    Ok(match segs {
        [] => envelope_free(obj),
        ["agent", _, "connect"] if run_input(json) => Some("copilotkit agent connect"),
        ["agent", _, "stop", _] if obj.is_empty() => Some("copilotkit agent stop"),
        _ => None,
    })
}

/// Single-route envelopes of the non-generating methods, with exactly the runtime's fields.
fn envelope_free(obj: &Map<String, Value>) -> Option<&'static str> {
    if !keys_within(obj, &["method", "params", "body"]) {
        return None;
    }
    let params = obj.get("params").and_then(Value::as_object);
    let params_are = |keys: &[&str]| {
        params.is_some_and(|p| {
            keys_within(p, keys) && p.contains_key("agentId") && p.values().all(Value::is_string)
        })
    };
    let empty = |v: Option<&Value>| match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(o)) => o.is_empty(),
        _ => false,
    };
    match obj.get("method").and_then(Value::as_str)? {
        "info" if empty(obj.get("params")) && empty(obj.get("body")) => Some("copilotkit info"),
        "agent/connect" if params_are(&["agentId"]) && obj.get("body").is_some_and(run_input) => {
            Some("copilotkit agent connect")
        }
        "agent/stop" if params_are(&["agentId", "threadId"]) && empty(obj.get("body")) => {
            Some("copilotkit agent stop")
        }
        _ => None,
    }
}

/// Exactly an AG-UI `RunAgentInput`: its fields and no other, with a thread id.
fn run_input(v: &Value) -> bool {
    v.as_object().is_some_and(|o| {
        keys_within(
            o,
            &[
                "threadId",
                "runId",
                "parentRunId",
                "state",
                "messages",
                "tools",
                "context",
                "forwardedProps",
            ],
        ) && o.get("threadId").is_some_and(Value::is_string)
    })
}

fn keys_within(obj: &Map<String, Value>, allowed: &[&str]) -> bool {
    obj.keys().all(|k| allowed.contains(&k.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::proxy::routes::RouteTable;
    use axum::http::{header, HeaderValue, Method};
    use serde_json::json;

    fn run(preset: &str, method: Method, path: &str, body: &Value) -> Result<Class, Refusal> {
        let table = RouteTable::preset(preset).unwrap();
        let route = table.find(&method, path).expect("routed");
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let bytes = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        classify(route, path, &h, &bytes, 1000)
    }

    fn rule(c: &Result<Class, Refusal>) -> &'static str {
        match c {
            Ok(Class::Free { rule }) => rule,
            Ok(Class::Charged(c)) => c.rule,
            Err(r) => r.slug,
        }
    }

    #[test]
    fn openai_holds_prompt_times_n_plus_output_and_asks_a_stream_for_usage() {
        let body = json!({"model": "m", "n": 2, "max_tokens": 10, "stream": true,
            "messages": [{"role": "user", "content": "x".repeat(300)}]});
        let len = body.to_string().len();
        let Ok(Class::Charged(c)) = run("openai", Method::POST, "/chat/completions", &body) else {
            panic!()
        };
        assert_eq!(c.prompt, len.div_ceil(3) as i64);
        assert_eq!(c.hold, 2 * (c.prompt + 10));
        let sent: Value = serde_json::from_slice(&c.body.unwrap()).unwrap();
        assert_eq!(sent["stream_options"]["include_usage"], true);
        assert_eq!(sent["messages"], body["messages"]);
        // Already asked, not streamed, or the Responses API: forwarded as sent.
        for (path, b) in [
            (
                "/chat/completions",
                json!({"stream": true, "stream_options": {"include_usage": true}}),
            ),
            ("/chat/completions", json!({"messages": []})),
            (
                "/responses",
                json!({"stream": true, "input": "hi", "max_output_tokens": 5}),
            ),
        ] {
            let Ok(Class::Charged(c)) = run("openai", Method::POST, path, &b) else {
                panic!()
            };
            assert!(c.body.is_none(), "{b}");
        }
        let Ok(Class::Charged(c)) = run(
            "openai",
            Method::POST,
            "/completions",
            &json!({"prompt": "p"}),
        ) else {
            panic!()
        };
        assert_eq!(c.hold, c.prompt + 1000);
        for bad in [
            json!({"max_tokens": -5}),
            json!({"max_tokens": "10"}),
            json!({"n": 0}),
            json!({"n": 1000}),
            json!({"stream": "yes"}),
            json!({"stream": true, "stream_options": 3}),
            json!([1]),
        ] {
            assert_eq!(
                rule(&run("openai", Method::POST, "/chat/completions", &bad)),
                "bad-request",
                "{bad}"
            );
        }
        assert_eq!(
            rule(&run("openai", Method::GET, "/models", &Value::Null)),
            "free route"
        );
        assert_eq!(
            rule(&run("openai", Method::GET, "/models", &json!({}))),
            "bad-request"
        );
    }

    #[test]
    fn copilotkit_is_free_only_when_recognised() {
        let sync = json!({"threadId": "t-1", "runId": "r-2", "state": {}, "messages": [],
            "tools": [], "context": [], "forwardedProps": {}});
        let gql = |op: Option<&str>, query: &str| {
            let mut b = json!({"query": query, "variables": {"data": {"messages": [{"id": "m"}]}}});
            if let Some(op) = op {
                b["operationName"] = op.into();
            }
            b
        };
        let gen = "mutation generateCopilotResponse($data: GenerateCopilotResponseInput!) { generateCopilotResponse(data: $data) { threadId } }";
        let cases: Vec<(Method, &str, Value, &str)> = vec![
            (Method::POST, "", json!({"method": "info"}), "copilotkit info"),
            (Method::POST, "", json!({"method": "agent/connect", "params": {"agentId": "default"}, "body": sync}), "copilotkit agent connect"),
            (Method::POST, "", json!({"method": "agent/stop", "params": {"agentId": "default", "threadId": "t-1"}}), "copilotkit agent stop"),
            (Method::POST, "", gql(Some("availableAgents"), "query availableAgents { availableAgents { agents { id } } }"), "copilotkit graphql query"),
            (Method::POST, "/agent/default/connect", sync.clone(), "copilotkit agent connect"),
            (Method::POST, "/agent/default/stop/t-1", Value::Null, "copilotkit agent stop"),
            (Method::POST, "/agent/default/stop/t-1", json!({}), "copilotkit agent stop"),
            // Generations, however they are dressed up.
            (Method::POST, "", json!({"method": "agent/run", "params": {"agentId": "default"}, "body": sync}), "copilotkit generation"),
            (Method::POST, "", json!({"method": "agent/suggest", "params": {"agentId": "default"}, "body": sync}), "copilotkit generation"),
            (Method::POST, "", json!({"method": "transcribe"}), "copilotkit generation"),
            (Method::POST, "", json!({"method": "info", "body": sync}), "copilotkit generation"),
            (Method::POST, "", json!({"method": "info", "query": gen}), "copilotkit generation"),
            (Method::POST, "", json!({"method": "agent/connect", "params": {"agentId": "default", "x": "1"}, "body": sync}), "copilotkit generation"),
            (Method::POST, "", gql(Some("generateCopilotResponse"), gen), "copilotkit generation"),
            (Method::POST, "", gql(None, gen), "copilotkit generation"),
            (Method::POST, "", gql(Some("availableAgents"), gen), "copilotkit generation"),
            (Method::POST, "", gql(Some("loadAgentState"), "mutation { generateCopilotResponse(data: {messages: [{textMessage: {content: \"hi\"}}]}) { threadId } }"), "copilotkit generation"),
            (Method::POST, "", json!({"threadId": "t", "messages": [{"role": "user", "content": "hi"}]}), "copilotkit generation"),
            (Method::POST, "/agent/default/connect", json!({"method": "agent/run", "params": {"agentId": "default"}, "body": sync}), "copilotkit generation"),
            (Method::POST, "/agent/default/run", sync.clone(), "copilotkit generation"),
            (Method::POST, "/agent/default/suggest", json!({"threadId": "t", "context": [{"value": "prompt"}]}), "copilotkit generation"),
            (Method::POST, "/agent/default/stop/t-1", json!({"method": "agent/run"}), "copilotkit generation"),
            (Method::POST, "/transcribe", Value::Null, "charged route"),
            (Method::GET, "/info", Value::Null, "free route"),
            // Refused: cannot be read strictly.
            (Method::POST, "", json!([{"query": gen}]), "bad-request"),
            (Method::POST, "", json!({"query": 5}), "bad-request"),
            (Method::POST, "", json!({"query": "mutation {"}), "bad-request"),
            (Method::POST, "", json!({"extensions": {"persistedQuery": {"sha256Hash": "ab"}}}), "bad-request"),
            (Method::POST, "", Value::Null, "bad-request"),
        ];
        for (method, path, body, want) in cases {
            assert_eq!(
                rule(&run("copilotkit", method.clone(), path, &body)),
                want,
                "{method} {path:?} {body}"
            );
        }
    }
}
