//! `aiquota-api`: the HTTP layer over the extension's SQL functions.
//!
//! A placeholder until the API issue lands: the workspace layout is fixed now so the build, lint and test
//! commands already cover it.

fn main() {
    eprintln!(
        "aiquota-api is not built yet; use the SQL functions in schema quota (see README.md)."
    );
    std::process::exit(2);
}
