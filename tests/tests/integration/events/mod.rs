//! The quota event stream (Server-Sent Events).

mod stream;
