//! Requests and the parsing of their answers (text protocol).
//!
//! Every key `k` always gets the same value (a slice of a repeating
//! pattern, starting at `k % 26`), whoever sets it: so a get can check the
//! exact bytes it receives no matter how sets and gets interleave.

/// One request of a batch; the number is the key index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Req {
    Get(u32),
    Set(u32),
}

/// The result of looking at the bytes received so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Not a whole answer yet: read more.
    Incomplete,
    /// A whole answer of `len` bytes; `ok` if it is the right one.
    Answer { len: usize, ok: bool },
}

/// Keys are 32 bytes: "key:" and the index in 28 digits.
pub const KEY_LEN: usize = 32;

pub fn key(k: u32) -> [u8; KEY_LEN] {
    let mut out = *b"key:0000000000000000000000000000";
    let mut n = k;
    let mut i = KEY_LEN;
    while n > 0 {
        i -= 1;
        out[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out
}

/// The values of all keys: one pattern buffer, sliced per key.
pub struct Values {
    pattern: Vec<u8>,
    size: usize,
}

impl Values {
    pub fn new(size: usize) -> Values {
        let pattern = (0..size + 26).map(|i| b'a' + (i % 26) as u8).collect();
        Values { pattern, size }
    }

    pub fn of(&self, k: u32) -> &[u8] {
        let at = (k % 26) as usize;
        &self.pattern[at..at + self.size]
    }

    /// Appends the request's bytes to `out`.
    pub fn write_req(&self, req: Req, out: &mut Vec<u8>) {
        match req {
            Req::Get(k) => {
                out.extend_from_slice(b"get ");
                out.extend_from_slice(&key(k));
                out.extend_from_slice(b"\r\n");
            }
            Req::Set(k) => {
                out.extend_from_slice(b"set ");
                out.extend_from_slice(&key(k));
                out.extend_from_slice(format!(" 0 0 {}\r\n", self.size).as_bytes());
                out.extend_from_slice(self.of(k));
                out.extend_from_slice(b"\r\n");
            }
        }
    }

    /// Parses the answer to `req` at the start of `buf`. A wrong answer is
    /// consumed like a right one (as far as it can be told apart from the
    /// next one) and reported with `ok: false`.
    pub fn parse(&self, buf: &[u8], req: Req) -> Parsed {
        let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") else {
            return Parsed::Incomplete;
        };
        let line = &buf[..eol];
        let after_line = eol + 2;
        let k = match req {
            Req::Set(_) => {
                return Parsed::Answer {
                    len: after_line,
                    ok: line == b"STORED",
                }
            }
            Req::Get(k) => k,
        };
        // "VALUE <key> <flags> <bytes>" then the data, "\r\n", "END\r\n".
        // Anything else (a miss's lone "END", ERROR, SERVER_ERROR ...) is one
        // wrong line.
        let Some(header) = line.strip_prefix(b"VALUE ") else {
            return Parsed::Answer {
                len: after_line,
                ok: false,
            };
        };
        let mut fields = header.split(|&b| b == b' ');
        let (got_key, bytes) = (fields.next(), fields.nth(1));
        let Some(n) = bytes
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|s| s.parse::<usize>().ok())
        else {
            return Parsed::Answer {
                len: after_line,
                ok: false,
            };
        };
        let end = after_line + n + b"\r\nEND\r\n".len();
        if buf.len() < end {
            return Parsed::Incomplete;
        }
        let ok = got_key == Some(&key(k)[..])
            && n == self.size
            && &buf[after_line..after_line + n] == self.of(k)
            && &buf[after_line + n..end] == b"\r\nEND\r\n";
        Parsed::Answer { len: end, ok }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses a whole stream of answers the way a connection does: bytes
    /// arrive in pieces, each answer is parsed once it is complete.
    fn parse_all(v: &Values, reqs: &[Req], pieces: &[&[u8]]) -> Vec<bool> {
        let (mut buf, mut out, mut i) = (Vec::new(), Vec::new(), 0);
        for p in pieces {
            buf.extend_from_slice(p);
            while i < reqs.len() {
                match v.parse(&buf, reqs[i]) {
                    Parsed::Incomplete => break,
                    Parsed::Answer { len, ok } => {
                        buf.drain(..len);
                        out.push(ok);
                        i += 1;
                    }
                }
            }
        }
        assert!(
            buf.is_empty(),
            "left over: {:?}",
            String::from_utf8_lossy(&buf)
        );
        out
    }

    fn value_answer(v: &Values, k: u32) -> Vec<u8> {
        let mut a = format!(
            "VALUE {} 0 {}\r\n",
            std::str::from_utf8(&key(k)).unwrap(),
            v.size
        )
        .into_bytes();
        a.extend_from_slice(v.of(k));
        a.extend_from_slice(b"\r\nEND\r\n");
        a
    }

    #[test]
    fn keys_are_32_bytes() {
        assert_eq!(&key(0), b"key:0000000000000000000000000000");
        assert_eq!(&key(4_294_967_295), b"key:0000000000000000004294967295");
    }

    #[test]
    fn requests() {
        let v = Values::new(3);
        let mut out = Vec::new();
        v.write_req(Req::Set(1), &mut out);
        v.write_req(Req::Get(1), &mut out);
        let k = "key:0000000000000000000000000001";
        assert_eq!(
            out,
            format!("set {k} 0 0 3\r\nbcd\r\nget {k}\r\n").as_bytes()
        );
    }

    #[test]
    fn split_anywhere() {
        let v = Values::new(40); // the data holds "\r"-free text longer than a header
        let reqs = [
            Req::Get(7),
            Req::Set(3),
            Req::Get(12),
            Req::Get(5),
            Req::Set(9),
        ];
        let mut stream = value_answer(&v, 7);
        stream.extend_from_slice(b"STORED\r\n");
        stream.extend_from_slice(&value_answer(&v, 12));
        stream.extend_from_slice(b"END\r\n"); // a miss
        stream.extend_from_slice(b"SERVER_ERROR out of memory storing object\r\n");
        let want = vec![true, true, true, false, false];
        assert_eq!(parse_all(&v, &reqs, &[&stream]), want);
        for a in 0..=stream.len() {
            for b in a..=stream.len() {
                let pieces = [&stream[..a], &stream[a..b], &stream[b..]];
                assert_eq!(parse_all(&v, &reqs, &pieces), want, "split at {a} and {b}");
            }
        }
        // one byte at a time
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(parse_all(&v, &reqs, &bytes), want);
    }

    #[test]
    fn wrong_answers() {
        let v = Values::new(4);
        let good = value_answer(&v, 2);
        let wrong_data = String::from_utf8(good.clone())
            .unwrap()
            .replace("cdef", "cdeX");
        let wrong_key = String::from_utf8(value_answer(&v, 28)).unwrap(); // same data (28 % 26 == 2)
        let wrong_len = "VALUE key:0000000000000000000000000002 0 3\r\ncde\r\nEND\r\n";
        for (answer, ok) in [
            (String::from_utf8(good).unwrap(), true),
            (wrong_data, false),
            (wrong_key, false),
            (wrong_len.to_string(), false),
            (
                "VALUE key:0000000000000000000000000002 0 x\r\n".to_string(),
                false,
            ),
            ("ERROR\r\n".to_string(), false),
        ] {
            let len = answer.len();
            assert_eq!(
                v.parse(answer.as_bytes(), Req::Get(2)),
                Parsed::Answer { len, ok },
                "{answer:?}"
            );
            assert_eq!(
                v.parse(&answer.as_bytes()[..len - 1], Req::Get(2)),
                Parsed::Incomplete
            );
        }
        assert_eq!(
            v.parse(b"NOT_STORED\r\n", Req::Set(2)),
            Parsed::Answer { len: 12, ok: false }
        );
        assert_eq!(v.parse(b"STORED\r", Req::Set(2)), Parsed::Incomplete);
    }
}
