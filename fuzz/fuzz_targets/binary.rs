#![no_main]
//! See `wasmcached_fuzz::binary` for what this target checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasmcached_fuzz::binary::run(data));
