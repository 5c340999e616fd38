//! The extension itself through plain SQL sessions (no API): concurrency invariants and analytics at scale.

mod analytics_scale;
mod concurrency;
