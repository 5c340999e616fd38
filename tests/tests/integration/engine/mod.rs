//! The extension itself through plain SQL sessions (no API): concurrency invariants, analytics at scale, and the
//! per-session configuration cache.

mod analytics_scale;
mod concurrency;
mod plan_cache;
mod search_path;
