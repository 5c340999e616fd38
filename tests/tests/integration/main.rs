//! aiquota's integration tests as one binary (one link of the API instead of one per file), a module per
//! feature. Every test gets a fresh database cloned from this binary's template on the private cluster that
//! `make db` starts; the helpers they share are the `aiquota_tests` library (`tests/src/`).
//!
//! The tiers select by module path (see the Makefile and CONTRIBUTING.md "Test tiers"):
//! `make test-integration` runs everything but `web::` and `fuzz::` (the `faults::` tests are `#[ignore]`d, so
//! they never kill the development cluster), `make test-fuzz` runs `fuzz::`, `make test-web` runs `web::`, and
//! `make test-faults` runs the ignored `faults::` tests on a cluster of their own.

mod admin;
mod auth;
mod docs;
mod engine;
mod events;
mod faults;
mod fuzz;
mod ops;
mod payments;
mod proxy;
mod quota;
mod web;
