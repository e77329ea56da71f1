#![no_main]
//! See `wasmcached_fuzz::udp_frame` for what this target checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasmcached_fuzz::udp_frame::run(data));
