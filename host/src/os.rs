//! Process set-up that memcached does with unix system calls: `-d` (run as a
//! daemon), `-u` (drop root privileges), `-r` (raise the core file limit) and
//! `-k` (lock memory). Each is cfg-gated: on other platforms settings.rs
//! refuses the flag with a one-line reason; it is never silently ignored.

use crate::settings::Settings;
use anyhow::Result;

/// Applies the flags in memcached's order, before any thread is started
/// (a daemon's `fork` keeps only the calling thread).
#[cfg(unix)]
pub fn prepare(s: &Settings) -> Result<()> {
    use anyhow::{bail, Context};
    use std::ffi::CString;

    if s.maxcore {
        let lim = libc::rlimit {
            rlim_cur: libc::RLIM_INFINITY,
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: setrlimit reads a valid, initialised rlimit.
        if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &lim) } != 0 {
            // memcached then tries the hard limit; so do we.
            let mut cur = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: getrlimit writes into a valid rlimit.
            let ok = unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut cur) } == 0 && {
                cur.rlim_cur = cur.rlim_max;
                // SAFETY: as above.
                unsafe { libc::setrlimit(libc::RLIMIT_CORE, &cur) == 0 }
            };
            if !ok {
                bail!("failed to ensure corefile creation");
            }
        }
    }

    // SAFETY: getuid/geteuid have no preconditions.
    let root = unsafe { libc::getuid() == 0 || libc::geteuid() == 0 };
    if root {
        if let Some(user) = &s.user {
            let name = CString::new(user.as_str()).context("bad user name")?;
            // SAFETY: getpwnam reads a NUL-terminated name and returns a
            // pointer to static storage or NULL; we read it before any other
            // passwd call and from this one thread.
            let pw = unsafe { libc::getpwnam(name.as_ptr()) };
            if pw.is_null() {
                bail!("can't find the user {user} to switch to");
            }
            // SAFETY: pw is non-null and points to a valid passwd record.
            let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
            // SAFETY: plain system calls on integer ids; order matters:
            // the group goes while we still may change it.
            let ok = unsafe {
                libc::setgroups(0, std::ptr::null()) == 0
                    && libc::setgid(gid) == 0
                    && libc::setuid(uid) == 0
            };
            if !ok {
                bail!("failed to assume identity of user {user}");
            }
        }
    }

    if s.daemonize {
        // memcached keeps the working directory with -r (so cores land
        // there) and stdio with -v.
        daemonize(s.maxcore, s.verbose > 0)?;
    }

    if s.lock_memory {
        // SAFETY: mlockall takes flags only.
        if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } != 0 {
            // memcached warns and goes on, as the limit is often too low.
            eprintln!(
                "warning: -k invalid, mlockall() failed: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    Ok(())
}

/// memcached's daemon(): fork, the parent exits 0, the child leaves the
/// terminal's session. Written out because macOS's libc deprecates daemon().
#[cfg(unix)]
fn daemonize(keep_cwd: bool, keep_stdio: bool) -> Result<()> {
    use anyhow::bail;
    // SAFETY: called before any thread exists, so the child is a complete
    // copy of the process; the parent only calls _exit.
    match unsafe { libc::fork() } {
        -1 => bail!("failed to daemon() in order to daemonize"),
        0 => {}
        _ => unsafe { libc::_exit(0) },
    }
    // SAFETY: plain system calls; the path and mode are valid C strings.
    unsafe {
        if libc::setsid() == -1 {
            bail!("failed to daemon() in order to daemonize");
        }
        if !keep_cwd {
            libc::chdir(c"/".as_ptr());
        }
        if !keep_stdio {
            let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            if fd != -1 {
                libc::dup2(fd, 0);
                libc::dup2(fd, 1);
                libc::dup2(fd, 2);
                if fd > 2 {
                    libc::close(fd);
                }
            }
        }
    }
    Ok(())
}

/// Nothing to do: settings.rs refuses the unix-only flags on this platform.
#[cfg(not(unix))]
pub fn prepare(_s: &Settings) -> Result<()> {
    Ok(())
}
