//! Baselines the benchmarks measure the session object against.

pub mod echo;
