//! The route table: which requests the proxy forwards at all, and how each is metered. Default deny: a
//! request whose method and path match no route is answered 404 by aiquota and never reaches the upstream.
//!
//! A route is `METHOD PATH KIND [METERS]`, matched against the path below the prefix exactly as the client
//! sent it (still percent-encoded). A literal segment matches only itself; `*` matches one segment of
//! unreserved characters (letters, digits, `-`, `_`, `.`, `~`, never `.` or `..`), so an encoded `/`, a
//! `..` or any `%` escape never matches a wildcard. The kinds:
//!
//! | kind | meaning |
//! |---|---|
//! | `free` | forwarded without touching the quota; the request may not carry a body |
//! | `charged` | always charged: one `ai_requests` and `AIQUOTA_PROXY_DEFAULT_TOKENS` held in `ai_tokens` |
//! | `openai` | charged; the body is an OpenAI-compatible generation request, read strictly for the estimate |
//! | `copilotkit` | free only when the body is positively one of the runtime's non-generating calls, else charged |
//!
//! `METERS` (charged kinds only) is `ai_requests`, `ai_tokens` or both, comma-separated; default both.

use axum::http::Method;

use crate::config::error::ConfigError;

/// How a matched request is metered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Forwarded free.
    Free,
    /// Charged the default estimate, body not read.
    Charged,
    /// Charged; an OpenAI-compatible generation body (chat/completions, completions, responses).
    OpenAi,
    /// A CopilotKit runtime call: free when recognised as non-generating, else charged.
    CopilotKit,
}

/// Which meters a charged route holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meters {
    /// One `ai_requests` per call.
    pub requests: bool,
    /// The token estimate in `ai_tokens`, settled at the usage.
    pub tokens: bool,
}

impl Meters {
    const BOTH: Meters = Meters {
        requests: true,
        tokens: true,
    };
}

/// One row of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The only method it matches.
    pub method: Method,
    /// Segments below the prefix; `None` is `*`. The prefix itself is the empty list (written `/`).
    pub segments: Vec<Option<String>>,
    /// How it is metered.
    pub kind: Kind,
    /// The meters of a charged kind.
    pub meters: Meters,
}

/// The routes the proxy forwards, first match wins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteTable(pub Vec<Route>);

/// Built-in presets, by name: the table each stands for (documented in docs/proxy.md).
pub const PRESETS: [(&str, &str); 2] = [
    (
        "openai",
        "POST /chat/completions openai; POST /completions openai; POST /responses openai; \
         GET /models free; GET /models/* free",
    ),
    (
        "copilotkit",
        "POST / copilotkit; GET /info free; POST /agent/*/run copilotkit; \
         POST /agent/*/connect copilotkit; POST /agent/*/stop/* copilotkit; \
         POST /agent/*/suggest copilotkit; POST /transcribe charged",
    ),
];

impl RouteTable {
    /// The preset called `name`.
    pub fn preset(name: &str) -> Option<Self> {
        PRESETS
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, t)| Self::parse(t).ok())
    }

    /// Parses `METHOD PATH KIND [METERS]` rows separated by `;` or new lines.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut routes = Vec::new();
        for row in text
            .split([';', '\n'])
            .map(str::trim)
            .filter(|r| !r.is_empty())
        {
            routes.push(route(row)?);
        }
        if routes.is_empty() {
            return Err("names no route".into());
        }
        Ok(Self(routes))
    }

    /// The route `method` and `path` (below the prefix, as sent) match, if any.
    pub fn find(&self, method: &Method, path: &str) -> Option<&Route> {
        let segs: Vec<&str> = if path.is_empty() {
            Vec::new()
        } else {
            path.strip_prefix('/')?.split('/').collect()
        };
        self.0.iter().find(|r| {
            r.method == method
                && r.segments.len() == segs.len()
                && r.segments.iter().zip(&segs).all(|(want, got)| match want {
                    Some(lit) => lit == got,
                    None => wildcard(got),
                })
        })
    }

    /// Every route of `self` then of `other`.
    pub fn then(mut self, other: RouteTable) -> Self {
        self.0.extend(other.0);
        self
    }
}

fn wildcard(seg: &str) -> bool {
    !seg.is_empty()
        && seg != "."
        && seg != ".."
        && seg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'))
}

fn route(row: &str) -> Result<Route, String> {
    let words: Vec<&str> = row.split_whitespace().collect();
    let [method, path, kind, rest @ ..] = words.as_slice() else {
        return Err(format!("{row:?} is not METHOD PATH KIND [METERS]"));
    };
    let method = match *method {
        "GET" => Method::GET,
        "POST" => Method::POST,
        "PUT" => Method::PUT,
        "PATCH" => Method::PATCH,
        "DELETE" => Method::DELETE,
        other => return Err(format!("{other:?} is not GET, POST, PUT, PATCH or DELETE")),
    };
    let segments = segments(path)?;
    let kind = match *kind {
        "free" => Kind::Free,
        "charged" => Kind::Charged,
        "openai" => Kind::OpenAi,
        "copilotkit" => Kind::CopilotKit,
        other => {
            return Err(format!(
                "{other:?} is not free, charged, openai or copilotkit"
            ))
        }
    };
    let meters = match rest {
        [] => Meters::BOTH,
        [_] if kind == Kind::Free => return Err(format!("{row:?}: a free route charges no meter")),
        [list] => meters(list)?,
        _ => return Err(format!("{row:?} has words after METERS")),
    };
    Ok(Route {
        method,
        segments,
        kind,
        meters,
    })
}

fn segments(path: &str) -> Result<Vec<Option<String>>, String> {
    let bad = || format!("{path:?} must be a path like /chat/completions or /agent/*/run");
    let rest = path.strip_prefix('/').ok_or_else(bad)?;
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    rest.split('/')
        .map(|s| match s {
            "*" => Ok(None),
            s if wildcard(s) => Ok(Some(s.to_string())),
            _ => Err(bad()),
        })
        .collect()
}

fn meters(list: &str) -> Result<Meters, String> {
    let mut m = Meters {
        requests: false,
        tokens: false,
    };
    for name in list.split(',') {
        match name {
            "ai_requests" => m.requests = true,
            "ai_tokens" => m.tokens = true,
            other => return Err(format!("{other:?} is not ai_requests or ai_tokens")),
        }
    }
    Ok(m)
}

/// The table for `AIQUOTA_PROXY_ROUTES` and `AIQUOTA_PROXY_PRESET` (comma-separated names; the routes
/// first, then the presets in order). Neither set: the `openai` preset.
pub fn from_env(routes: Option<&str>, presets: Option<&str>) -> Result<RouteTable, ConfigError> {
    let mut table = RouteTable(Vec::new());
    if let Some(text) = routes {
        table = RouteTable::parse(text).map_err(|why| ConfigError::Invalid {
            name: "AIQUOTA_PROXY_ROUTES",
            why,
        })?;
    }
    let presets = match (routes, presets) {
        (_, Some(p)) => p,
        (Some(_), None) => "",
        (None, None) => "openai",
    };
    for name in presets.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let preset = RouteTable::preset(name).ok_or_else(|| ConfigError::Invalid {
            name: "AIQUOTA_PROXY_PRESET",
            why: format!("{name:?} is not a preset (openai, copilotkit)"),
        })?;
        table = table.then(preset);
    }
    if table.0.is_empty() {
        return Err(ConfigError::Invalid {
            name: "AIQUOTA_PROXY_PRESET",
            why: "names no preset, and AIQUOTA_PROXY_ROUTES no route".into(),
        });
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use crate::config::proxy::routes::*;

    fn kind(t: &RouteTable, m: Method, p: &str) -> Option<Kind> {
        t.find(&m, p).map(|r| r.kind)
    }

    #[test]
    fn the_openai_preset_forwards_generations_and_models_only() {
        let t = RouteTable::preset("openai").unwrap();
        assert_eq!(
            kind(&t, Method::POST, "/chat/completions"),
            Some(Kind::OpenAi)
        );
        assert_eq!(kind(&t, Method::POST, "/responses"), Some(Kind::OpenAi));
        assert_eq!(kind(&t, Method::GET, "/models"), Some(Kind::Free));
        assert_eq!(
            kind(&t, Method::GET, "/models/gpt-4o-mini"),
            Some(Kind::Free)
        );
        for (m, p) in [
            (Method::POST, "/images/generations"),
            (Method::POST, "/embeddings"),
            (Method::POST, "/files"),
            (Method::DELETE, "/files/file-1"),
            (Method::GET, "/files/file-1/content"),
            (Method::POST, "/batches"),
            (Method::POST, "/audio/speech"),
            (Method::POST, "/realtime/sessions"),
            (Method::GET, "/chat/completions"),
            (Method::POST, "/chat%2Fcompletions"),
            (Method::POST, "/chat/completions/"),
            (Method::POST, "//chat/completions"),
            (Method::POST, "/chat/./completions"),
            (Method::GET, "/models/.."),
            (Method::GET, "/models/%2e%2e"),
            (Method::GET, "/models/a%2Fb"),
            (Method::POST, ""),
        ] {
            assert_eq!(kind(&t, m.clone(), p), None, "{m} {p}");
        }
    }

    #[test]
    fn the_copilotkit_preset_and_wildcards() {
        let t = RouteTable::preset("copilotkit").unwrap();
        assert_eq!(kind(&t, Method::POST, ""), Some(Kind::CopilotKit));
        assert_eq!(kind(&t, Method::GET, "/info"), Some(Kind::Free));
        assert_eq!(kind(&t, Method::POST, "/info"), None);
        assert_eq!(
            kind(&t, Method::POST, "/agent/default/run"),
            Some(Kind::CopilotKit)
        );
        assert_eq!(kind(&t, Method::POST, "/agent/a%20b/run"), None);
        assert_eq!(
            kind(&t, Method::POST, "/agent/default/suggest"),
            Some(Kind::CopilotKit)
        );
        assert_eq!(kind(&t, Method::POST, "/transcribe"), Some(Kind::Charged));
        assert_eq!(kind(&t, Method::POST, "/agent/default/delete"), None);
    }

    #[test]
    fn custom_routes_and_their_errors() {
        let t = RouteTable::parse(
            "POST /v1/chat/completions openai\nPOST /transcribe charged ai_requests; GET /health free",
        )
        .unwrap();
        let r = t.find(&Method::POST, "/transcribe").unwrap();
        assert_eq!(
            r.meters,
            Meters {
                requests: true,
                tokens: false
            }
        );
        for bad in [
            "POST chat openai",
            "POST /chat magic",
            "TRACE /x free",
            "GET /x free ai_tokens",
            "POST /x charged ai_dollars",
            "POST /a/%2e/b charged",
            "POST /a/../b charged",
            "",
        ] {
            assert!(RouteTable::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            from_env(None, None).unwrap(),
            RouteTable::preset("openai").unwrap()
        );
        let both = from_env(Some("GET /health free"), Some("copilotkit,openai")).unwrap();
        assert_eq!(both.0.len(), 1 + 7 + 5);
        assert!(from_env(None, Some("langchain")).is_err());
        assert!(from_env(None, Some(" ")).is_err());
    }
}
