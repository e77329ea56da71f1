//! memcached's command-line tokenizer (`tokenize_command`) and the byte scan
//! the framing and key iteration share. Tokens split on the space byte only,
//! which is why tabs and control bytes end up inside keys.

/// memcached's `MAX_TOKENS`: its tokenizer returns at most 23 real tokens plus a terminal
/// one; anything after the 23rd token is left unprocessed (only `get` looks at it again).
pub const MAX_TOKENS: usize = 24;

/// Real tokens the tokenizer returns at most (`MAX_TOKENS - 1`).
const MAX_REAL_TOKENS: usize = MAX_TOKENS - 1;

/// memcached's tokenizer output for one line: up to 23 tokens split on `' '` only, plus
/// whether text was left unprocessed after the 23rd token.
#[derive(Clone, Copy)]
pub struct Tokens<'a> {
    toks: [&'a [u8]; MAX_REAL_TOKENS],
    n: usize,
    rest: Option<&'a [u8]>,
}

impl<'a> Tokens<'a> {
    /// Number of real tokens (memcached's `ntokens` is this + 1 for the terminal token).
    pub fn len(&self) -> usize {
        self.n
    }

    /// True when the line had no token at all.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Token `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        if i < self.n {
            Some(self.toks[i])
        } else {
            None
        }
    }

    /// The tokens as a slice.
    pub fn as_slice(&self) -> &[&'a [u8]] {
        &self.toks[..self.n]
    }

    /// The unprocessed text after the 23rd token (memcached's non-NULL terminal token).
    pub fn rest(&self) -> Option<&'a [u8]> {
        self.rest
    }

    /// memcached's `set_noreply_maybe`: the *last returned* token is exactly `noreply`.
    /// With more than 23 tokens that is the 23rd, not the line's last.
    pub fn noreply(&self) -> bool {
        self.n > 0 && self.toks[self.n - 1] == b"noreply"
    }

    /// memcached's `ntokens` (real tokens + the terminal token).
    pub(super) fn ntokens(&self) -> usize {
        self.n + 1
    }

    /// Token `i` or the empty slice (memcached's terminal token has length 0).
    pub(super) fn tok(&self, i: usize) -> &'a [u8] {
        if i < self.n {
            self.toks[i]
        } else {
            &[]
        }
    }
}

impl<'a> std::fmt::Debug for Tokens<'a> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field(
                "toks",
                &self
                    .as_slice()
                    .iter()
                    .map(|t| String::from_utf8_lossy(t).into_owned())
                    .collect::<Vec<_>>(),
            )
            .field("rest", &self.rest.map(String::from_utf8_lossy))
            .finish()
    }
}

/// memcached's `tokenize_command(line, tokens, MAX_TOKENS)`.
///
/// Splits on the space byte only (tabs and other control characters are token bytes —
/// `get\ta` is the unknown command `get\ta`). Runs of spaces are one separator. After the
/// 23rd token memcached stops and leaves the rest for `get` to re-tokenize; every other
/// command simply never sees it (`set` with 30 tokens answers `ERROR`). `line` must not
/// contain the line ending and must already be cut at the first NUL (memcached uses
/// `strlen`).
pub fn tokenize(line: &[u8]) -> Tokens<'_> {
    let mut t = Tokens {
        toks: [&[][..]; MAX_REAL_TOKENS],
        n: 0,
        rest: None,
    };
    let len = line.len();
    let mut i = 0;
    loop {
        while i < len && line[i] == b' ' {
            i += 1;
        }
        if i == len {
            return t;
        }
        let start = i;
        while i < len && line[i] != b' ' {
            i += 1;
        }
        t.toks[t.n] = &line[start..i];
        t.n += 1;
        if t.n == MAX_REAL_TOKENS {
            // memcached breaks after the separator that ended the 23rd token; the terminal
            // token points at whatever follows, or is NULL at the end of the string.
            if i + 1 < len {
                t.rest = Some(&line[i + 1..]);
            }
            return t;
        }
    }
}

/// The next space-separated token of `s` and what follows it.
#[inline]
pub(super) fn next_token(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let start = s.iter().position(|&b| b != b' ')?;
    let s = &s[start..];
    // Word at a time: a byte loop over a 32-byte key was most of `Keys::next`
    // (232 instructions per `get`; docs/performance.md).
    let end = find_byte(b' ', s).unwrap_or(s.len());
    Some((&s[..end], &s[end..]))
}

/// First index of `needle` in `hay`. Word-at-a-time (SWAR) because this scans every
/// command line and, for large multigets, kilobytes of keys.
#[inline]
pub(super) fn find_byte(needle: u8, hay: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pat = LO.wrapping_mul(u64::from(needle));
    let mut chunks = hay.chunks_exact(8);
    let mut base = 0;
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) ^ pat;
        let m = w.wrapping_sub(LO) & !w & HI;
        if m != 0 {
            return Some(base + (m.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == needle)
        .map(|p| base + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_matches_memcached() {
        let t = tokenize(b"  a  b ");
        assert_eq!(t.as_slice(), &[&b"a"[..], b"b"]);
        assert_eq!(t.rest(), None);
        let line: Vec<u8> = (0..30)
            .map(|i| format!("t{} ", i))
            .collect::<String>()
            .into_bytes();
        let t = tokenize(&line);
        assert_eq!(t.len(), 23);
        assert_eq!(t.rest(), Some(&line[line.len() - 7 * 4..]));
        // exactly 23 tokens, with or without a trailing space: no rest
        let mut l23: Vec<u8> = (0..23)
            .map(|i| format!("{:02} ", i))
            .collect::<String>()
            .into_bytes();
        assert_eq!(tokenize(&l23).rest(), None);
        l23.pop();
        assert_eq!(tokenize(&l23).len(), 23);
        assert_eq!(tokenize(&l23).rest(), None);
        // spaces only after the 23rd: memcached's terminal is non-NULL
        l23.extend(b"   ");
        assert_eq!(tokenize(&l23).rest(), Some(&b"  "[..]));
        assert!(tokenize(b"").is_empty());
        assert!(tokenize(b"    ").is_empty());
    }

    #[test]
    fn find_byte_agrees_with_position() {
        let hay: Vec<u8> = (0..300u32).map(|i| (i * 7 % 251) as u8).collect();
        for start in 0..40 {
            for needle in [0u8, 10, 13, 32, 250, 255, 0x80, 0x7f] {
                let h = &hay[start..];
                assert_eq!(
                    find_byte(needle, h),
                    h.iter().position(|&b| b == needle),
                    "{} {}",
                    start,
                    needle
                );
            }
        }
    }
}
