//! What the proxy charges: the one place that decides whether a request is an AI generation (charged: one
//! `ai_requests` and a hold of `ai_tokens`) or background traffic (free). The tests at the bottom are a table
//! of real request shapes from CopilotKit's runtime (single-route envelope, REST routes, the GraphQL of
//! 1.x) and OpenAI-compatible APIs.
//!
//! The rules, first match wins:
//! 1. Anything but `POST` is free (discovery, health, `GET /info`, `GET /models`, retrieving a response).
//! 2. OpenAI-style generation paths (`.../chat/completions`, `.../completions`, `.../responses`) are charged;
//!    the estimate is `max_tokens` (or `max_completion_tokens`, `max_output_tokens`).
//! 3. CopilotKit REST routes: `.../agent/{id}/run` and `.../transcribe` are charged; `.../agent/{id}/connect`
//!    (context sync), `.../agent/{id}/stop/{thread}` and `.../info` are free.
//! 4. CopilotKit single-route envelope `{"method": ..., "params": ..., "body": ...}`: `agent/run` is charged,
//!    every other method (`info`, `agent/connect`, `agent/stop`) is free.
//! 5. CopilotKit 1.x GraphQL: `generateCopilotResponse` carrying messages is charged; other operations
//!    (`availableAgents`, `loadAgentState`, a response without messages) are free.
//! 6. Any other JSON body carrying a non-empty `messages` array (an AG-UI `RunAgentInput` posted to an agent)
//!    is charged; everything else is free.

use axum::http::Method;
use serde_json::Value;

/// What a request is, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Class {
    /// An AI generation: reserve before forwarding, settle when the response ends.
    Charged {
        /// `max_tokens` (or its equivalents) when the request names it; else the configured default.
        max_tokens: Option<i64>,
        /// Which rule matched, for logs and tests.
        rule: &'static str,
    },
    /// Background traffic, forwarded without touching the quota.
    Free {
        /// Which rule matched.
        rule: &'static str,
    },
}

impl Class {
    /// `charged` or `free`, the metrics label.
    pub fn label(&self) -> &'static str {
        match self {
            Class::Charged { .. } => "charged",
            Class::Free { .. } => "free",
        }
    }
}

/// Classifies a request from its method, its path below the prefix and its body (JSON or not).
pub fn classify(method: &Method, path: &str, body: &[u8]) -> Class {
    if method != Method::POST {
        return Class::Free { rule: "not a POST" };
    }
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let ends = |tail: &[&str]| segs.len() >= tail.len() && segs[segs.len() - tail.len()..] == *tail;
    if ends(&["chat", "completions"]) || ends(&["completions"]) || ends(&["responses"]) {
        return Class::Charged {
            max_tokens: json.as_ref().and_then(max_tokens),
            rule: "openai generation",
        };
    }
    match segs.as_slice() {
        [.., "agent", _, "run"] => return charged("copilotkit agent run"),
        [.., "transcribe"] => return charged("copilotkit transcribe"),
        [.., "agent", _, "connect"] => {
            return Class::Free {
                rule: "copilotkit agent connect",
            }
        }
        [.., "agent", _, "stop", _] => {
            return Class::Free {
                rule: "copilotkit agent stop",
            }
        }
        [.., "info"] => {
            return Class::Free {
                rule: "copilotkit info",
            }
        }
        _ => {}
    }
    let Some(json) = json else {
        return Class::Free {
            rule: "no generation in the payload",
        };
    };
    if let Some(m) = json.get("method").and_then(Value::as_str) {
        return match m {
            "agent/run" => charged("copilotkit single-route agent/run"),
            _ => Class::Free {
                rule: "copilotkit single-route method",
            },
        };
    }
    if let Some(op) = json.get("operationName").and_then(Value::as_str) {
        let messages = json.pointer("/variables/data/messages");
        return match op {
            "generateCopilotResponse" if non_empty(messages) => {
                charged("copilotkit graphql generation")
            }
            _ => Class::Free {
                rule: "copilotkit graphql operation",
            },
        };
    }
    if non_empty(json.get("messages")) {
        return Class::Charged {
            max_tokens: max_tokens(&json),
            rule: "payload with messages",
        };
    }
    Class::Free {
        rule: "no generation in the payload",
    }
}

fn charged(rule: &'static str) -> Class {
    Class::Charged {
        max_tokens: None,
        rule,
    }
}

fn non_empty(v: Option<&Value>) -> bool {
    v.and_then(Value::as_array).is_some_and(|a| !a.is_empty())
}

/// The output limit a request names: `max_tokens` (chat and legacy completions), `max_completion_tokens`
/// (newer chat models), `max_output_tokens` (responses).
fn max_tokens(json: &Value) -> Option<i64> {
    ["max_tokens", "max_completion_tokens", "max_output_tokens"]
        .iter()
        .find_map(|k| json.get(*k).and_then(Value::as_i64))
        .filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// One row: method, path below the prefix, body, expected class label, rule and max_tokens.
    type Row = (
        Method,
        &'static str,
        Value,
        &'static str,
        &'static str,
        Option<i64>,
    );

    fn table() -> Vec<Row> {
        let run_input = json!({"threadId": "t-1", "runId": "r-1", "state": {},
            "messages": [{"id": "m-1", "role": "user", "content": "Summarise my notes"}],
            "tools": [], "context": [], "forwardedProps": {}});
        let sync_input = json!({"threadId": "t-1", "runId": "r-2", "state": {}, "messages": [],
            "tools": [], "context": [{"description": "open document", "value": "..."}], "forwardedProps": {}});
        vec![
            // OpenAI-compatible APIs.
            (
                Method::POST,
                "/v1/chat/completions",
                json!({"model": "gpt-4o-mini", "stream": true, "max_tokens": 256,
                    "stream_options": {"include_usage": true},
                    "messages": [{"role": "user", "content": "hi"}]}),
                "charged",
                "openai generation",
                Some(256),
            ),
            (
                Method::POST,
                "/chat/completions",
                json!({"model": "o3-mini", "max_completion_tokens": 900, "messages": []}),
                "charged",
                "openai generation",
                Some(900),
            ),
            (
                Method::POST,
                "/v1/completions",
                json!({"model": "gpt-3.5-turbo-instruct", "prompt": "Say hi"}),
                "charged",
                "openai generation",
                None,
            ),
            (
                Method::POST,
                "/v1/responses",
                json!({"model": "gpt-4.1", "input": "hi", "max_output_tokens": 64}),
                "charged",
                "openai generation",
                Some(64),
            ),
            (
                Method::POST,
                "/openai/deployments/gpt4o/chat/completions",
                json!({"messages": [{"role": "user", "content": "x"}]}),
                "charged",
                "openai generation",
                None,
            ),
            (
                Method::GET,
                "/v1/models",
                Value::Null,
                "free",
                "not a POST",
                None,
            ),
            (
                Method::GET,
                "/v1/responses/resp_123",
                Value::Null,
                "free",
                "not a POST",
                None,
            ),
            (
                Method::POST,
                "/v1/embeddings",
                json!({"model": "text-embedding-3-small", "input": "x"}),
                "free",
                "no generation in the payload",
                None,
            ),
            // CopilotKit runtime, single route (runtimeUrl itself, path "").
            (
                Method::POST,
                "",
                json!({"method": "agent/run", "params": {"agentId": "default"}, "body": run_input}),
                "charged",
                "copilotkit single-route agent/run",
                None,
            ),
            (
                Method::POST,
                "",
                json!({"method": "agent/connect", "params": {"agentId": "default"}, "body": sync_input}),
                "free",
                "copilotkit single-route method",
                None,
            ),
            (
                Method::POST,
                "",
                json!({"method": "agent/connect", "params": {"agentId": "default"}, "body": run_input}),
                "free",
                "copilotkit single-route method",
                None,
            ),
            (
                Method::POST,
                "",
                json!({"method": "agent/stop", "params": {"agentId": "default", "threadId": "t-1"}}),
                "free",
                "copilotkit single-route method",
                None,
            ),
            (
                Method::POST,
                "",
                json!({"method": "info"}),
                "free",
                "copilotkit single-route method",
                None,
            ),
            // CopilotKit runtime, REST routes.
            (
                Method::GET,
                "/info",
                Value::Null,
                "free",
                "not a POST",
                None,
            ),
            (
                Method::POST,
                "/info",
                json!({}),
                "free",
                "copilotkit info",
                None,
            ),
            (
                Method::POST,
                "/agent/default/run",
                run_input.clone(),
                "charged",
                "copilotkit agent run",
                None,
            ),
            (
                Method::POST,
                "/agent/default/connect",
                sync_input.clone(),
                "free",
                "copilotkit agent connect",
                None,
            ),
            (
                Method::POST,
                "/agent/default/stop/t-1",
                Value::Null,
                "free",
                "copilotkit agent stop",
                None,
            ),
            (
                Method::POST,
                "/transcribe",
                Value::Null,
                "charged",
                "copilotkit transcribe",
                None,
            ),
            // CopilotKit 1.x GraphQL.
            (
                Method::POST,
                "",
                json!({"operationName": "generateCopilotResponse",
                "query": "mutation generateCopilotResponse($data: GenerateCopilotResponseInput!) { ... }",
                "variables": {"data": {"threadId": "t-1", "messages": [{"id": "m-1",
                    "textMessage": {"role": "user", "content": "hi"}}], "frontend": {"actions": []}}}}),
                "charged",
                "copilotkit graphql generation",
                None,
            ),
            (
                Method::POST,
                "",
                json!({"operationName": "generateCopilotResponse",
                "variables": {"data": {"threadId": "t-1", "messages": [], "metaEvents": []}}}),
                "free",
                "copilotkit graphql operation",
                None,
            ),
            (
                Method::POST,
                "",
                json!({"operationName": "availableAgents", "query": "query availableAgents { ... }", "variables": {}}),
                "free",
                "copilotkit graphql operation",
                None,
            ),
            (
                Method::POST,
                "",
                json!({"operationName": "loadAgentState", "variables": {"data": {"threadId": "t-1", "agentName": "a"}}}),
                "free",
                "copilotkit graphql operation",
                None,
            ),
            // An AG-UI agent endpoint behind the proxy directly.
            (
                Method::POST,
                "/agents/researcher",
                run_input,
                "charged",
                "payload with messages",
                None,
            ),
            (
                Method::POST,
                "/agents/researcher",
                sync_input,
                "free",
                "no generation in the payload",
                None,
            ),
            // Health and odd bodies.
            (
                Method::GET,
                "/health",
                Value::Null,
                "free",
                "not a POST",
                None,
            ),
            (
                Method::OPTIONS,
                "/v1/chat/completions",
                Value::Null,
                "free",
                "not a POST",
                None,
            ),
            (
                Method::POST,
                "/something",
                json!("not an object"),
                "free",
                "no generation in the payload",
                None,
            ),
        ]
    }

    #[test]
    fn real_request_shapes() {
        for (method, path, body, label, rule, max) in table() {
            let bytes = if body.is_null() {
                Vec::new()
            } else {
                body.to_string().into_bytes()
            };
            let class = classify(&method, path, &bytes);
            assert_eq!(class.label(), label, "{method} {path:?} {body}");
            match class {
                Class::Charged {
                    max_tokens,
                    rule: r,
                } => {
                    assert_eq!(r, rule, "{method} {path:?}");
                    assert_eq!(max_tokens, max, "{method} {path:?}");
                }
                Class::Free { rule: r } => assert_eq!(r, rule, "{method} {path:?}"),
            }
        }
    }

    #[test]
    fn a_body_that_is_not_json_is_judged_by_its_path() {
        assert_eq!(
            classify(&Method::POST, "/v1/chat/completions", b"{oops").label(),
            "charged"
        );
        assert_eq!(
            classify(&Method::POST, "/graphql", b"{oops").label(),
            "free"
        );
        assert_eq!(
            classify(
                &Method::POST,
                "/v1/chat/completions",
                br#"{"max_tokens": -5}"#
            ),
            Class::Charged {
                max_tokens: None,
                rule: "openai generation"
            }
        );
    }
}
