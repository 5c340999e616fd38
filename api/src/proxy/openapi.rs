//! The proxy's routes in the OpenAPI document, for the default prefix and the two presets. They are described
//! here rather than generated from the router because the proxy's router is one catch-all whose table comes
//! from the configuration; a custom prefix or table is not reflected (docs/proxy.md says so). The functions
//! are never called: they carry the `#[utoipa::path]` descriptions only.

use utoipa::OpenApi;

use crate::problem::ProblemDoc;

/// The proxy's part of the document, merged into the API's.
#[derive(OpenApi)]
#[openapi(
    paths(chat_completions, completions, responses, models, model, copilotkit_single_route, copilotkit_info, copilotkit_agent),
    tags((name = "proxy", description = "The metering proxy (on when AIQUOTA_PROXY_UPSTREAM is set): the openai preset's and the copilotkit preset's routes under the default prefix /v1/proxy; any other method and path is a 404 that never reaches the upstream"))
)]
pub struct ProxyDoc;

/// An OpenAI-compatible chat completion, charged: held `n × (body bytes / 3 + max_tokens)`, committed at the
/// upstream's reported usage (the proxy adds `stream_options.include_usage` to a stream).
#[utoipa::path(post, path = "/v1/proxy/chat/completions", tag = "proxy", security(("bearer" = [])),
    responses(
        (status = 200, description = "The upstream's answer, streamed as it arrives (JSON or text/event-stream)"),
        (status = 400, body = ProblemDoc, content_type = "application/problem+json", description = "A body the proxy cannot read strictly"),
        (status = 401, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = ProblemDoc, content_type = "application/problem+json", description = "Quota exceeded (AIQUOTA_PROXY_DENY_STATUS 403): also `message`, an OpenAI-style `error` object, `x-should-retry: false`"),
        (status = 415, body = ProblemDoc, content_type = "application/problem+json", description = "Content-Encoding or Content-Type other than identity application/json"),
        (status = 429, body = ProblemDoc, content_type = "application/problem+json", description = "Quota exceeded (AIQUOTA_PROXY_DENY_STATUS 429)"),
        (status = 502, body = ProblemDoc, content_type = "application/problem+json", description = "The upstream could not be reached; nothing charged"),
        (status = 504, body = ProblemDoc, content_type = "application/problem+json", description = "The upstream did not answer in time; nothing charged"),
    ))]
#[allow(dead_code)]
fn chat_completions() {}

/// A legacy completion, charged like a chat completion.
#[utoipa::path(post, path = "/v1/proxy/completions", tag = "proxy", security(("bearer" = [])),
    responses((status = 200, description = "The upstream's answer"), (status = 403, body = ProblemDoc, content_type = "application/problem+json")))]
#[allow(dead_code)]
fn completions() {}

/// A Responses API call, charged (`max_output_tokens` is the output bound).
#[utoipa::path(post, path = "/v1/proxy/responses", tag = "proxy", security(("bearer" = [])),
    responses((status = 200, description = "The upstream's answer"), (status = 403, body = ProblemDoc, content_type = "application/problem+json")))]
#[allow(dead_code)]
fn responses() {}

/// The upstream's model list, free.
#[utoipa::path(get, path = "/v1/proxy/models", tag = "proxy", security(("bearer" = [])),
    responses((status = 200, description = "The upstream's answer"), (status = 400, body = ProblemDoc, content_type = "application/problem+json", description = "A body on a free route")))]
#[allow(dead_code)]
fn models() {}

/// One model, free.
#[utoipa::path(get, path = "/v1/proxy/models/{model}", tag = "proxy", security(("bearer" = [])),
    params(("model" = String, Path, description = "Model id (letters, digits, - _ . ~)")),
    responses((status = 200, description = "The upstream's answer")))]
#[allow(dead_code)]
fn model() {}

/// CopilotKit's single-route transport (preset `copilotkit`): free only for `info`, `agent/connect`,
/// `agent/stop` envelopes and GraphQL queries of `availableAgents` / `loadAgentState`; everything else charged.
#[utoipa::path(post, path = "/v1/proxy", tag = "proxy", security(("bearer" = [])),
    responses(
        (status = 200, description = "The runtime's answer, streamed"),
        (status = 400, body = ProblemDoc, content_type = "application/problem+json", description = "A body or GraphQL document the proxy cannot read strictly"),
        (status = 403, body = ProblemDoc, content_type = "application/problem+json", description = "Quota exceeded"),
        (status = 415, body = ProblemDoc, content_type = "application/problem+json"),
    ))]
#[allow(dead_code)]
fn copilotkit_single_route() {}

/// CopilotKit's runtime info (preset `copilotkit`), free.
#[utoipa::path(get, path = "/v1/proxy/info", tag = "proxy", security(("bearer" = [])),
    responses((status = 200, description = "The runtime's answer")))]
#[allow(dead_code)]
fn copilotkit_info() {}

/// CopilotKit's REST agent routes (preset `copilotkit`): `run` and `suggest` charged, `connect` free for an
/// exact `RunAgentInput`, `stop/{thread}` free with an empty body.
#[utoipa::path(post, path = "/v1/proxy/agent/{agent}/{action}", tag = "proxy", security(("bearer" = [])),
    params(
        ("agent" = String, Path, description = "Agent id"),
        ("action" = String, Path, description = "run, connect, suggest (or stop/{thread})"),
    ),
    responses((status = 200, description = "The runtime's answer, streamed"), (status = 403, body = ProblemDoc, content_type = "application/problem+json")))]
#[allow(dead_code)]
fn copilotkit_agent() {}
