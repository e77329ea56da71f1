#![no_main]
//! See `wasmcached_fuzz::meta` for what this target checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasmcached_fuzz::meta::run(data));
