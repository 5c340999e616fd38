//! The caller's quota over HTTP: consume, reserve / commit / release, bad input, certain outcomes under
//! failure, concurrency and fairness of the pool.

mod concurrency;
mod consume;
mod fairness;
mod input;
mod outcome;
mod readonly;
mod retry;
