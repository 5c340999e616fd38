//! The error statuses every route shares, added to the OpenAPI document so it lists every status a route
//! can answer (the fuzzer in `make test-fuzz` checks that it does).
//!
//! Each rule mirrors a layer or extractor of the app, not a guess: the NUL refusal of [`crate::input`]
//! answers 400 on every route; a route with a bearer token can answer 401 ([`crate::auth`]) and 503 (no
//! signing keys, database unavailable, request timeout, no turn for the user); an admin route 403; a route
//! with a body 400 (unreadable), 413 (over the 64 KiB body limit) and 415 (not JSON). Routes keep their own
//! descriptions of these statuses where they have one. The metering proxy's routes describe themselves.

use utoipa::openapi::{
    path::Operation, ContentBuilder, OpenApi, Ref, RefOr, Response, ResponseBuilder,
};

/// The problem+json response with `description`.
fn problem(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                crate::problem::PROBLEM_JSON,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ProblemDoc")))
                    .build(),
            )
            .build(),
    )
}

/// Adds `status` to `op` unless the route already describes it.
fn add(op: &mut Operation, status: &str, description: &str) {
    op.responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| problem(description));
}

/// Adds the shared error statuses to every operation of `doc` outside the proxy.
pub fn complete(doc: &mut OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        if path.starts_with("/v1/proxy") {
            continue;
        }
        let admin = path.starts_with("/v1/admin");
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            add(op, "400", "Bad request: a value that cannot be read (a U+0000 in the URL or body, a malformed path, query or body)");
            let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
            if secured {
                add(
                    op,
                    "401",
                    "Missing, invalid or expired bearer token (WWW-Authenticate: Bearer)",
                );
                add(op, "503", "Unavailable: the database, the signing keys or a turn for this user could not be had in time; Retry-After");
            }
            if admin {
                add(
                    op,
                    "403",
                    "The token's role is not in AIQUOTA_ADMIN_ROLES and it is no admin key",
                );
            }
            if op.request_body.is_some() {
                add(op, "413", "Body over the 64 KiB body limit");
                add(op, "415", "A body that is not application/json");
            }
        }
    }
}
