//! The typed store of the extension: one `async fn` per `quota.*` call the API makes, each holding its SQL
//! text and its row mapping, and the row types they return. Routes, the metering proxy, the event stream,
//! the rate-limit headers and the problem bodies are built on these types; none of them writes SQL for the
//! quota engine itself, so a statement changes in exactly one place.
//!
//! The store depends only on [`crate::db`] (the pool, the retry rule, SQLSTATE classification) and on plain
//! types; it knows nothing of requests and responses. Its row types are also the JSON bodies (one wire shape),
//! hence their `Serialize` and `ToSchema`.

pub mod admin;
pub mod decision;
pub mod maintenance;
pub mod payments;
pub mod quota;
pub mod reservations;
pub mod timestamp;
pub mod users;

pub use decision::Decision;
pub use quota::{MeterStatus, Quota};
pub use reservations::{Reservation, Settlement};
