//! The admin routes and the API's own housekeeping of the data they look at.

mod retention;
mod routes;
