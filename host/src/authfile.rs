//! The credentials files, as memcached's authfile.c and its SASL password
//! database read them: plain data loaded at start (`-Y`) or at each attempt
//! (`MEMCACHED_SASL_PWDB`), kept apart from the protocol sessions that ask
//! (`crate::auth`) so that parsing the command line never reaches into them.
//!
//! Passwords are compared in constant time and never logged.

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// memcached's `MAX_ENTRY_LEN` for a SASL password database line.
const MAX_PWDB_ENTRY: usize = 256;

/// `user:password` entries (memcached's authfile format).
#[derive(Clone, Default)]
pub struct Credentials {
    entries: Vec<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({} entries, redacted)", self.entries.len())
    }
}

impl Credentials {
    /// Parses an authfile: every line is `user:password` (the password runs
    /// to the end of the line; `\r` is dropped). A line without `:` is malformed.
    pub fn parse(text: &[u8]) -> Option<Credentials> {
        let mut entries = Vec::new();
        for line in text.split_inclusive(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\n").unwrap_or(line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let colon = line.iter().position(|&b| b == b':')?;
            let pass = &line[colon + 1..];
            let pass = &pass[..pass.iter().position(|&b| b == b'\r').unwrap_or(pass.len())];
            entries.push((line[..colon].to_vec(), pass.to_vec()));
        }
        Some(Credentials { entries })
    }

    /// Loads `-Y`'s file, failing with memcached's messages.
    pub fn load(path: &Path) -> Result<Credentials> {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) => bail!(
                "Could not open authfile [{}] for reading, error {e}",
                path.display()
            ),
        };
        match Credentials::parse(&text) {
            Some(c) => Ok(c),
            None => bail!(
                "Authfile [{}] has a malformed entry. Should be 'user:password'",
                path.display()
            ),
        }
    }

    /// Whether `user`/`pass` is an entry. Every entry is compared, in
    /// constant time per byte, so timing does not tell which part differed.
    pub fn check(&self, user: &[u8], pass: &[u8]) -> bool {
        let mut ok = false;
        for (u, p) in &self.entries {
            ok |= ct_eq(u, user) & ct_eq(p, pass);
        }
        ok
    }
}

/// Constant-time equality (the length is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

/// memcached's `sasl_server_userdb_checkpass`: the first line of the file
/// for `user` decides; its password ends at `:`, a line end or the file's end.
pub fn pwdb_check(path: Option<&PathBuf>, user: &[u8], pass: &[u8]) -> bool {
    let Some(text) = path.and_then(|p| std::fs::read(p).ok()) else {
        return false;
    };
    if user.len() + pass.len() > MAX_PWDB_ENTRY - 4 {
        return false;
    }
    for line in text.split(|&b| b == b'\n') {
        if line.len() > user.len() && line.starts_with(user) && line[user.len()] == b':' {
            let rest = &line[user.len() + 1..];
            let end = rest
                .iter()
                .position(|&b| b == b':' || b == b'\r')
                .unwrap_or(rest.len());
            return ct_eq(&rest[..end], pass);
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials::parse(b"alice:secret\r\nbob:pw:with:colons\ncarol:").unwrap()
    }

    #[test]
    fn authfile_parsing_and_check() {
        let c = creds();
        assert!(c.check(b"alice", b"secret"));
        assert!(c.check(b"bob", b"pw:with:colons"));
        assert!(c.check(b"carol", b""));
        assert!(!c.check(b"alice", b"secre"));
        assert!(!c.check(b"alice", b"secret2"));
        assert!(!c.check(b"alicex", b"secret"));
        assert!(!c.check(b"", b""));
        assert!(Credentials::parse(b"nocolon\n").is_none());
        assert!(Credentials::parse(b"a:b\n\n").is_none());
        assert_eq!(Credentials::parse(b"").unwrap().entries.len(), 0);
        assert!(!format!("{c:?}").contains("secret"));
    }

    #[test]
    fn constant_time_eq() {
        assert!(ct_eq(b"", b""));
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }

    #[test]
    fn pwdb_lookup() {
        let dir = std::env::temp_dir().join(format!("wmc-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("pwdb");
        std::fs::write(&f, "alice:secret:extra\nbob:pw\r\nalice:other\n").unwrap();
        let p = Some(&f);
        assert!(pwdb_check(p, b"alice", b"secret"));
        assert!(!pwdb_check(p, b"alice", b"other"), "first entry decides");
        assert!(pwdb_check(p, b"bob", b"pw"));
        assert!(!pwdb_check(p, b"bob", b"p"));
        assert!(!pwdb_check(p, b"carol", b""));
        assert!(!pwdb_check(None, b"alice", b"secret"));
        assert!(!pwdb_check(Some(&dir.join("missing")), b"alice", b"secret"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
