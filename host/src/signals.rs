//! Operating-system stop requests, turned into the same orderly shutdown as
//! the `shutdown` command: SIGTERM and SIGINT on unix (as memcached), Ctrl-C,
//! Ctrl-Break and closing the console window on Windows. On unix SIGHUP
//! reloads the plugin (host/src/reload.rs).
//!
//! Signal handlers may do almost nothing; the crates below run a small thread
//! that receives the signal and then calls [`Shared::request_shutdown`],
//! which wakes the main reactor.

use crate::shared::Shared;
use anyhow::{Context, Result};
use std::sync::Arc;

/// Installs the handlers for the life of the process.
#[cfg(unix)]
pub fn install(shared: Arc<Shared>) -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    use signal_hook::iterator::Signals;
    let mut signals =
        Signals::new([SIGTERM, SIGINT, SIGHUP]).context("installing signal handlers")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if sig == SIGHUP {
                    // Reload on its own thread: a stop signal must not wait
                    // behind a reload. reload_all logs its outcome.
                    let shared = shared.clone();
                    let _ = std::thread::Builder::new()
                        .name("plugin-reload".into())
                        .spawn(move || crate::reload::reload_all(&shared));
                    continue;
                }
                let name = if sig == SIGINT {
                    "Interrupt"
                } else {
                    "Terminated"
                };
                // memcached's line, on stdout as memcached prints it.
                println!("Signal handled: {name}.");
                shared.request_shutdown();
            }
        })?;
    Ok(())
}

/// Installs the handlers for the life of the process.
#[cfg(windows)]
pub fn install(shared: Arc<Shared>) -> Result<()> {
    ctrlc::set_handler(move || {
        println!("Signal handled: console control event.");
        shared.request_shutdown();
    })
    .context("installing the console control handler")
}

/// No stop signals to catch on this platform: `shutdown` still works.
#[cfg(not(any(unix, windows)))]
pub fn install(_shared: Arc<Shared>) -> Result<()> {
    Ok(())
}
