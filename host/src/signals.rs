//! Operating-system stop requests, turned into the same orderly shutdown as
//! the `shutdown` command: SIGTERM and SIGINT on unix (as memcached), Ctrl-C
//! and closing the console window on Windows. SIGUSR1 on unix and
//! Ctrl-Break on Windows are memcached's graceful stop (`shutdown
//! graceful`), which with `-e` also leaves the cache in the memory file
//! (host/src/restart/). On unix SIGHUP reloads the plugin
//! (host/src/reload.rs).
//!
//! Signal handlers may do almost nothing; signal-hook runs a small thread
//! that receives the signal and then calls [`Shared::request_shutdown`],
//! which wakes the main reactor. Windows runs console control handlers on
//! a thread of their own, so there the handler calls it directly.

use crate::shared::Shared;
use anyhow::{Context, Result};
use std::sync::Arc;

/// Installs the handlers for the life of the process.
#[cfg(unix)]
pub fn install(shared: Arc<Shared>) -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
    use signal_hook::iterator::Signals;
    let mut signals =
        Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1]).context("installing signal handlers")?;
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
                if sig == SIGUSR1 {
                    shared.request_shutdown(true);
                    continue;
                }
                let name = if sig == SIGINT {
                    "Interrupt"
                } else {
                    "Terminated"
                };
                // memcached's line, on stdout as memcached prints it.
                println!("Signal handled: {name}.");
                shared.request_shutdown(false);
            }
        })?;
    Ok(())
}

/// Installs the handlers for the life of the process.
#[cfg(windows)]
pub fn install(shared: Arc<Shared>) -> Result<()> {
    use std::sync::OnceLock;
    use windows_sys::core::BOOL;
    use windows_sys::Win32::System::Console::{SetConsoleCtrlHandler, CTRL_BREAK_EVENT};
    static SHARED: OnceLock<Arc<Shared>> = OnceLock::new();

    // Runs on a thread Windows starts for the event.
    unsafe extern "system" fn handler(event: u32) -> BOOL {
        let Some(shared) = SHARED.get() else {
            return 0;
        };
        if event == CTRL_BREAK_EVENT {
            shared.request_shutdown(true);
        } else {
            println!("Signal handled: console control event.");
            shared.request_shutdown(false);
        }
        1
    }

    let _ = SHARED.set(shared);
    // SAFETY: registers a function with the signature the API requires; it
    // only reads a static that is set before this call.
    if unsafe { SetConsoleCtrlHandler(Some(handler), 1) } == 0 {
        return Err(std::io::Error::last_os_error())
            .context("installing the console control handler");
    }
    Ok(())
}

/// No stop signals to catch on this platform: `shutdown` still works.
#[cfg(not(any(unix, windows)))]
pub fn install(_shared: Arc<Shared>) -> Result<()> {
    Ok(())
}
