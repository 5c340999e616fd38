//! The reference docs against the code they describe, so they cannot drift apart unnoticed:
//! - every `AIQUOTA_*` variable the API reads has a row in the configuration table of docs/http.md (and the
//!   proxy's in docs/proxy.md, the payments' in docs/payments.md), and every row names a variable that is read;
//! - every problem type the API can send is documented in docs/http.md or docs/proxy.md, and every documented
//!   one can be sent.
//!
//! Plain text scanning of the sources: no database, no server, milliseconds.

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The Rust sources under `api/src`, comments left out (a doc comment may name a variable in passing).
fn api_sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let code: String = fs::read_to_string(&path)
                    .unwrap()
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("//"))
                    .map(|l| format!("{l}\n"))
                    .collect();
                out.push((path.display().to_string(), code));
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join("api/src"), &mut out);
    out
}

/// Every `AIQUOTA_NAME` in `text`; a bare prefix such as `AIQUOTA_PROXY_` (in "AIQUOTA_PROXY_*") is not a name.
fn variables(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("AIQUOTA_") {
        let tail = &rest[i..];
        let len = tail
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..len];
        if !name.ends_with('_') {
            found.insert(name.to_string());
        }
        rest = &tail[len..];
    }
    found
}

/// The variables a doc's configuration table documents: the names in the first cell of its `| `AIQUOTA_...` rows.
fn documented_variables(doc: &str) -> BTreeSet<String> {
    read(doc)
        .lines()
        .filter(|l| l.starts_with("| `AIQUOTA_"))
        .flat_map(|l| variables(l.split(" | ").next().unwrap_or("")))
        .collect()
}

fn read_by(filter: impl Fn(&str) -> bool) -> BTreeSet<String> {
    api_sources()
        .iter()
        .filter(|(path, _)| filter(path))
        .flat_map(|(_, code)| variables(code))
        .collect()
}

fn assert_same(what: &str, code: &BTreeSet<String>, doc: &BTreeSet<String>) {
    let undocumented: Vec<_> = code.difference(doc).collect();
    let stale: Vec<_> = doc.difference(code).collect();
    assert!(
        undocumented.is_empty() && stale.is_empty(),
        "{what}: in the code but not documented: {undocumented:?}; documented but not in the code: {stale:?}"
    );
}

#[test]
fn every_variable_the_api_reads_is_in_the_http_table() {
    assert_same(
        "docs/http.md",
        &read_by(|_| true),
        &documented_variables("docs/http.md"),
    );
}

#[test]
fn the_proxy_and_payment_tables_match_their_modules() {
    let proxy = read_by(|p| p.contains("/proxy/"));
    let proxy: BTreeSet<_> = proxy
        .into_iter()
        .filter(|v| v.starts_with("AIQUOTA_PROXY_"))
        .collect();
    let proxy_doc = documented_variables("docs/proxy.md");
    assert_same("docs/proxy.md", &proxy, &proxy_doc);
    // The payment table lists what the payment routes need; every name in it must be read by the config.
    let payments_doc = documented_variables("docs/payments.md");
    let all = read_by(|_| true);
    let stale: Vec<_> = payments_doc.difference(&all).collect();
    assert!(
        stale.is_empty(),
        "docs/payments.md documents variables nothing reads: {stale:?}"
    );
    let payment_vars: BTreeSet<_> = all
        .into_iter()
        .filter(|v| v.contains("RAZORPAY") || v.contains("STRIPE"))
        .collect();
    let missing: Vec<_> = payment_vars.difference(&payments_doc).collect();
    assert!(missing.is_empty(), "docs/payments.md lacks: {missing:?}");
}

/// The string literal that follows `marker` and one argument (`Problem::new(status, "slug"`), or directly
/// follows it (`slug: "slug"`), everywhere in `code`.
fn literals_after(code: &str, marker: &str, skip_argument: bool) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(marker) {
        rest = &rest[i + marker.len()..];
        let mut arg = rest;
        if skip_argument {
            match arg.find(',') {
                Some(c) => arg = &arg[c + 1..],
                None => break,
            }
        }
        let arg = arg.trim_start();
        if let Some(lit) = arg.strip_prefix('"') {
            if let Some(end) = lit.find('"') {
                found.push(lit[..end].to_string());
            }
        }
    }
    found
}

/// Every problem type the API can send: the slugs given to `Problem::new`, to the proxy's `upstream_failed`
/// and in the proxy's rejection tables (`slug: "..."`).
fn problem_types_in_code() -> BTreeSet<String> {
    let mut slugs = BTreeSet::new();
    for (_, code) in api_sources() {
        slugs.extend(literals_after(&code, "Problem::new(", true));
        slugs.extend(literals_after(&code, "upstream_failed(", true));
        slugs.extend(literals_after(&code, "slug: ", false));
    }
    slugs
}

fn problem_types_in(doc: &str) -> BTreeSet<String> {
    let text = read(doc);
    let mut slugs = BTreeSet::new();
    let mut rest = text.as_str();
    // aiquota's own types are `/problems/<slug>`; a registered one goes by its IANA URI, `...#<slug>`.
    while let Some((i, marker)) = ["/problems/", "/http-problem-types#"]
        .iter()
        .filter_map(|m| rest.find(m).map(|i| (i, *m)))
        .min()
    {
        let tail = &rest[i + marker.len()..];
        let len = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
            .unwrap_or(tail.len());
        if len > 0 {
            slugs.insert(tail[..len].to_string());
        }
        rest = &tail[len..];
    }
    slugs
}

#[test]
fn documented_problem_types_are_the_ones_the_api_sends() {
    let code = problem_types_in_code();
    assert!(
        code.contains("quota-exceeded") && code.len() > 10,
        "the scan found too little: {code:?}"
    );
    let mut doc = problem_types_in("docs/http.md");
    doc.extend(problem_types_in("docs/proxy.md"));
    assert_same("problem types (docs/http.md + docs/proxy.md)", &code, &doc);
}
