//! Empty: the benchmarks live in `benches/`.
