#![no_main]
//! See `wasmcached_fuzz::abi_responses` for what this target checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasmcached_fuzz::abi_responses::run(data));
