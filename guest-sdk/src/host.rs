//! The host's imports (docs/plugin-abi.md, "Imports the host provides"):
//! on wasm32 the `wasmcached` module's functions, natively the stand-ins
//! that `guest::test_clock` and `testing::Harness` read. Below both the
//! runtime (`guest`) and `metrics`, which log through it.

#[cfg(target_arch = "wasm32")]
pub(crate) use wasm::*;

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use native::*;

#[cfg(target_arch = "wasm32")]
mod wasm {
    #[link(wasm_import_module = "wasmcached")]
    extern "C" {
        #[link_name = "log"]
        fn wmc_log(level: i32, ptr: i32, len: i32);
        #[link_name = "now"]
        fn wmc_now() -> i32;
        #[link_name = "timer_set"]
        fn wmc_timer_set(token: i64, delay_ms: i32);
        #[link_name = "log_event"]
        fn wmc_log_event(ptr: i32, len: i32);
    }

    pub fn log_event(record: &[u8]) {
        // SAFETY: the host reads `len` bytes at `ptr` from our memory; both come from a live slice.
        unsafe { wmc_log_event(record.as_ptr() as usize as i32, record.len() as i32) }
    }

    pub fn log(level: i32, msg: &str) {
        // SAFETY: the host reads `len` bytes at `ptr` from our memory; both come from a live &str.
        unsafe { wmc_log(level, msg.as_ptr() as usize as i32, msg.len() as i32) }
    }

    use core::sync::atomic::{AtomicU32, Ordering};

    /// The server clock as the running call into the plugin began
    /// ([`enter`]). One instance runs one call at a time.
    static NOW: AtomicU32 = AtomicU32::new(0);

    /// Called as every export begins: reads the host's clock once for the
    /// whole call. The clock moves once a second, and a store asks for it
    /// on nearly every request: once a batch is as exact and cheaper
    /// (under the WIT world, a host call costs far more than here; the
    /// SDK does the same for both, so that neither pays it per request).
    pub fn enter() {
        // SAFETY: a plain host call without arguments.
        NOW.store(unsafe { wmc_now() } as u32, Ordering::Relaxed);
    }

    pub fn now() -> u32 {
        NOW.load(Ordering::Relaxed)
    }

    pub fn timer_set(token: u64, delay_ms: u32) {
        // SAFETY: a plain host call with scalar arguments.
        unsafe { wmc_timer_set(token as i64, delay_ms as i32) }
    }
}

/// Native stand-ins so plugins can be unit-tested with `cargo test`: the clock
/// is set by the test with `guest::test_clock::set`.
#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::cell::Cell;
    thread_local! {
        pub static CLOCK: Cell<u32> = const { Cell::new(1) };
        pub static TIMERS: std::cell::RefCell<Vec<(u64, u32)>> = const { std::cell::RefCell::new(Vec::new()) };
        pub static EVENTS: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        pub static LOGS: std::cell::RefCell<Vec<(i32, String)>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    pub fn log_event(record: &[u8]) {
        EVENTS.with(|e| e.borrow_mut().extend_from_slice(record));
    }
    pub fn log(level: i32, msg: &str) {
        eprintln!("[plugin log {level}] {msg}");
        LOGS.with(|l| l.borrow_mut().push((level, msg.to_string())));
    }
    /// Natively each `now()` reads the test clock: there is no call to begin.
    pub fn enter() {}
    pub fn now() -> u32 {
        CLOCK.with(|c| c.get())
    }
    pub fn timer_set(token: u64, delay_ms: u32) {
        TIMERS.with(|t| t.borrow_mut().push((token, delay_ms)));
    }
}
