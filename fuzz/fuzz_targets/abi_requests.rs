#![no_main]
//! See `wasmcached_fuzz::abi_requests` for what this target checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasmcached_fuzz::abi_requests::run(data));
