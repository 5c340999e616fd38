//! Route modules; each owns its `router()` and the OpenAPI annotations of its handlers.

pub mod admin;
pub mod admin_user;
pub mod dashboard;
pub mod demo;
pub mod health;
pub mod quota;
