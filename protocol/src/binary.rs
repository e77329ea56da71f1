//! The memcached binary protocol parser (pure, no I/O), as memcached 1.6.18's
//! `proto_bin.c` reads it.
//!
//! A request is a 24-byte header, then `extlen` bytes of extras, `keylen`
//! bytes of key and the value (`bodylen - extlen - keylen` bytes). memcached
//! dispatches a command once the header, extras and key are in; only the
//! storage commands then read a value. [`parse`] mirrors that: it waits for
//! header + extras + key, and [`decode`] says what the command is, how many
//! value bytes it reads, and the error memcached answers for a malformed one.
//!
//! Quirks kept on purpose, because clients see them:
//! - the body of an unknown opcode is swallowed *after* its extras and key
//!   were consumed (memcached swallows `bodylen` more bytes);
//! - commands other than the storage ones never consume value bytes: a body
//!   longer than extras + key (where memcached does not refuse it) leaves
//!   the rest to be read as the next request;
//! - opcodes 0x1b (verbosity) and the SASL ones are unknown commands when
//!   SASL is off (memcached 1.6.18 has no verbosity handler).

/// Magic byte of a request.
pub const REQ_MAGIC: u8 = 0x80;
/// Magic byte of a response.
pub const RES_MAGIC: u8 = 0x81;
/// Size of the request and response headers.
pub const HEADER_LEN: usize = 24;
pub use crate::limits::KEY_MAX_LENGTH;

/// Opcodes (`protocol_binary_command`).
pub mod opcode {
    pub const GET: u8 = 0x00;
    pub const SET: u8 = 0x01;
    pub const ADD: u8 = 0x02;
    pub const REPLACE: u8 = 0x03;
    pub const DELETE: u8 = 0x04;
    pub const INCREMENT: u8 = 0x05;
    pub const DECREMENT: u8 = 0x06;
    pub const QUIT: u8 = 0x07;
    pub const FLUSH: u8 = 0x08;
    pub const GETQ: u8 = 0x09;
    pub const NOOP: u8 = 0x0a;
    pub const VERSION: u8 = 0x0b;
    pub const GETK: u8 = 0x0c;
    pub const GETKQ: u8 = 0x0d;
    pub const APPEND: u8 = 0x0e;
    pub const PREPEND: u8 = 0x0f;
    pub const STAT: u8 = 0x10;
    pub const SETQ: u8 = 0x11;
    pub const ADDQ: u8 = 0x12;
    pub const REPLACEQ: u8 = 0x13;
    pub const DELETEQ: u8 = 0x14;
    pub const INCREMENTQ: u8 = 0x15;
    pub const DECREMENTQ: u8 = 0x16;
    pub const QUITQ: u8 = 0x17;
    pub const FLUSHQ: u8 = 0x18;
    pub const APPENDQ: u8 = 0x19;
    pub const PREPENDQ: u8 = 0x1a;
    pub const VERBOSITY: u8 = 0x1b;
    pub const TOUCH: u8 = 0x1c;
    pub const GAT: u8 = 0x1d;
    pub const GATQ: u8 = 0x1e;
    pub const SASL_LIST_MECHS: u8 = 0x20;
    pub const SASL_AUTH: u8 = 0x21;
    pub const SASL_STEP: u8 = 0x22;
    pub const GATK: u8 = 0x23;
    pub const GATKQ: u8 = 0x24;
}

/// Response status codes (`protocol_binary_response_status`).
pub mod status {
    pub const SUCCESS: u16 = 0x00;
    pub const KEY_ENOENT: u16 = 0x01;
    pub const KEY_EEXISTS: u16 = 0x02;
    pub const E2BIG: u16 = 0x03;
    pub const EINVAL: u16 = 0x04;
    pub const NOT_STORED: u16 = 0x05;
    pub const DELTA_BADVAL: u16 = 0x06;
    pub const AUTH_ERROR: u16 = 0x20;
    pub const AUTH_CONTINUE: u16 = 0x21;
    pub const UNKNOWN_COMMAND: u16 = 0x81;
    pub const ENOMEM: u16 = 0x82;
    pub const EINTERNAL: u16 = 0x84;

    /// The body memcached's `write_bin_error` sends with a status.
    pub fn message(status: u16) -> &'static str {
        match status {
            ENOMEM => "Out of memory",
            UNKNOWN_COMMAND => "Unknown command",
            KEY_ENOENT => "Not found",
            EINVAL => "Invalid arguments",
            KEY_EEXISTS => "Data exists for key.",
            E2BIG => "Too large.",
            DELTA_BADVAL => "Non-numeric server-side value for incr or decr",
            NOT_STORED => "Not stored.",
            AUTH_ERROR => "Auth failure.",
            _ => "Internal error",
        }
    }
}

/// A request header, in host byte order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub magic: u8,
    pub opcode: u8,
    pub keylen: u16,
    pub extlen: u8,
    pub datatype: u8,
    pub vbucket: u16,
    pub bodylen: u32,
    pub opaque: u32,
    pub cas: u64,
}

impl Header {
    /// Reads a header from the first 24 bytes of `b` (which must have them).
    pub fn read(b: &[u8]) -> Header {
        Header {
            magic: b[0],
            opcode: b[1],
            keylen: u16::from_be_bytes([b[2], b[3]]),
            extlen: b[4],
            datatype: b[5],
            vbucket: u16::from_be_bytes([b[6], b[7]]),
            bodylen: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
            opaque: u32::from_be_bytes([b[12], b[13], b[14], b[15]]),
            cas: u64::from_be_bytes([b[16], b[17], b[18], b[19], b[20], b[21], b[22], b[23]]),
        }
    }

    /// Encodes a request header (tests and clients).
    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(self.magic);
        out.push(self.opcode);
        out.extend_from_slice(&self.keylen.to_be_bytes());
        out.push(self.extlen);
        out.push(self.datatype);
        out.extend_from_slice(&self.vbucket.to_be_bytes());
        out.extend_from_slice(&self.bodylen.to_be_bytes());
        out.extend_from_slice(&self.opaque.to_be_bytes());
        out.extend_from_slice(&self.cas.to_be_bytes());
    }
}

/// The result of looking at the start of a binary connection's buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// Fewer than `need` bytes: read more.
    Incomplete { need: usize },
    /// The first byte is not 0x80: memcached closes the connection.
    BadMagic,
    /// Header, extras and key are in; `consumed` = 24 + extlen + keylen.
    Packet {
        header: Header,
        extras: &'a [u8],
        key: &'a [u8],
        consumed: usize,
    },
}

/// Reads the header, extras and key at the start of `buf`.
pub fn parse(buf: &[u8]) -> Parsed<'_> {
    if buf.len() < HEADER_LEN {
        // memcached checks the magic only once a whole header is in.
        return Parsed::Incomplete { need: HEADER_LEN };
    }
    let header = Header::read(buf);
    if header.magic != REQ_MAGIC {
        return Parsed::BadMagic;
    }
    let consumed = HEADER_LEN + header.extlen as usize + header.keylen as usize;
    if buf.len() < consumed {
        return Parsed::Incomplete { need: consumed };
    }
    let ext_end = HEADER_LEN + header.extlen as usize;
    Parsed::Packet {
        header,
        extras: &buf[HEADER_LEN..ext_end],
        key: &buf[ext_end..consumed],
        consumed,
    }
}

/// Whether `buf` starts with one whole binary request (header and body):
/// a UDP datagram that does is answered even when the request is quiet.
pub fn whole_request(buf: &[u8]) -> bool {
    buf.len() >= HEADER_LEN && buf[0] == REQ_MAGIC && {
        let h = Header::read(buf);
        buf.len() - HEADER_LEN >= h.bodylen as usize
    }
}

/// Set, add or replace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    Set,
    Add,
    Replace,
}

/// What a request asks for, once [`decode`] checked its lengths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// get/getq/getk/getkq (no `exptime`), gat/gatq/gatk/gatkq and touch
    /// (`exptime`: the raw extras value).
    Get {
        key: &'a [u8],
        quiet: bool,
        with_key: bool,
        exptime: Option<u32>,
        /// False for touch: the hit answer carries the flags but no value.
        with_value: bool,
    },
    /// set/add/replace (+q); then `vlen` value bytes.
    Store {
        kind: StoreKind,
        key: &'a [u8],
        flags: u32,
        exptime: u32,
        cas: u64,
        vlen: usize,
        quiet: bool,
    },
    /// append/prepend (+q); then `vlen` value bytes.
    Concat {
        append: bool,
        key: &'a [u8],
        cas: u64,
        vlen: usize,
        quiet: bool,
    },
    Delete {
        key: &'a [u8],
        cas: u64,
        quiet: bool,
    },
    /// incr/decr (+q). `exptime == 0xffffffff`: no initial value is created.
    Arith {
        incr: bool,
        key: &'a [u8],
        delta: u64,
        initial: u64,
        exptime: u32,
        cas: u64,
        quiet: bool,
    },
    /// flush/flushq with an optional delay.
    Flush {
        exptime: u32,
        quiet: bool,
    },
    Noop,
    Version,
    Quit {
        quiet: bool,
    },
    /// `key`: the stats group ("" for the general stats).
    Stat {
        key: &'a [u8],
    },
    /// An error answer (always sent, quiet or not). `swallow`: value bytes
    /// to discard after it; `close`: close the connection once it is written.
    Error {
        status: u16,
        swallow: usize,
        close: bool,
    },
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

/// What memcached's `dispatch_bin_command` makes of a packet.
pub fn decode<'a>(h: &Header, extras: &'a [u8], key: &'a [u8]) -> Command<'a> {
    use opcode::*;
    let extlen = h.extlen as usize;
    let keylen = h.keylen as usize;
    let bodylen = h.bodylen as usize;
    let protocol_error = Command::Error {
        status: status::EINVAL,
        swallow: 0,
        close: true,
    };
    if keylen > bodylen || keylen + extlen > bodylen {
        return Command::Error {
            status: status::UNKNOWN_COMMAND,
            swallow: 0,
            close: true,
        };
    }
    if keylen > KEY_MAX_LENGTH {
        return protocol_error;
    }
    let quiet = matches!(
        h.opcode,
        SETQ | ADDQ
            | REPLACEQ
            | DELETEQ
            | INCREMENTQ
            | DECREMENTQ
            | QUITQ
            | FLUSHQ
            | APPENDQ
            | PREPENDQ
            | GETQ
            | GETKQ
            | GATQ
            | GATKQ
    );
    let vlen = bodylen - keylen - extlen;
    match h.opcode {
        VERSION if extlen == 0 && keylen == 0 && bodylen == 0 => Command::Version,
        FLUSH | FLUSHQ if keylen == 0 && bodylen == extlen && (extlen == 0 || extlen == 4) => {
            Command::Flush {
                exptime: if extlen == 4 { be32(extras) } else { 0 },
                quiet,
            }
        }
        NOOP if extlen == 0 && keylen == 0 && bodylen == 0 => Command::Noop,
        SET | SETQ | ADD | ADDQ | REPLACE | REPLACEQ
            if extlen == 8 && keylen != 0 && bodylen >= keylen + 8 =>
        {
            Command::Store {
                kind: match h.opcode {
                    SET | SETQ => StoreKind::Set,
                    ADD | ADDQ => StoreKind::Add,
                    _ => StoreKind::Replace,
                },
                key,
                flags: be32(extras),
                exptime: be32(&extras[4..]),
                cas: h.cas,
                vlen,
                quiet,
            }
        }
        GET | GETQ | GETK | GETKQ if extlen == 0 && bodylen == keylen && keylen > 0 => {
            Command::Get {
                key,
                quiet,
                with_key: matches!(h.opcode, GETK | GETKQ),
                exptime: None,
                with_value: true,
            }
        }
        DELETE | DELETEQ if keylen > 0 && extlen == 0 && bodylen == keylen => Command::Delete {
            key,
            cas: h.cas,
            quiet,
        },
        INCREMENT | INCREMENTQ | DECREMENT | DECREMENTQ
            if keylen > 0 && extlen == 20 && bodylen == keylen + extlen =>
        {
            Command::Arith {
                incr: matches!(h.opcode, INCREMENT | INCREMENTQ),
                key,
                delta: be64(extras),
                initial: be64(&extras[8..]),
                exptime: be32(&extras[16..]),
                cas: h.cas,
                quiet,
            }
        }
        APPEND | APPENDQ | PREPEND | PREPENDQ if keylen > 0 && extlen == 0 => Command::Concat {
            append: matches!(h.opcode, APPEND | APPENDQ),
            key,
            cas: h.cas,
            vlen,
            quiet,
        },
        STAT if extlen == 0 => Command::Stat { key },
        QUIT | QUITQ if keylen == 0 && extlen == 0 && bodylen == 0 => Command::Quit { quiet },
        // SASL is off: memcached answers these as unknown, swallowing the value.
        SASL_LIST_MECHS if extlen == 0 && keylen == 0 && bodylen == 0 => Command::Error {
            status: status::UNKNOWN_COMMAND,
            swallow: 0,
            close: false,
        },
        SASL_AUTH | SASL_STEP if extlen == 0 && keylen != 0 => Command::Error {
            status: status::UNKNOWN_COMMAND,
            swallow: bodylen - keylen,
            close: false,
        },
        TOUCH | GAT | GATQ | GATK | GATKQ if extlen == 4 && keylen != 0 => Command::Get {
            key,
            quiet,
            with_key: matches!(h.opcode, GATK | GATKQ),
            exptime: Some(be32(extras)),
            with_value: h.opcode != TOUCH,
        },
        VERSION | FLUSH | FLUSHQ | NOOP | SET | SETQ | ADD | ADDQ | REPLACE | REPLACEQ | GET
        | GETQ | GETK | GETKQ | DELETE | DELETEQ | INCREMENT | INCREMENTQ | DECREMENT
        | DECREMENTQ | APPEND | APPENDQ | PREPEND | PREPENDQ | STAT | QUIT | QUITQ
        | SASL_LIST_MECHS | SASL_AUTH | SASL_STEP | TOUCH | GAT | GATQ | GATK | GATKQ => {
            protocol_error
        }
        // memcached swallows `bodylen` bytes past the extras and key it already read.
        _ => Command::Error {
            status: status::UNKNOWN_COMMAND,
            swallow: bodylen,
            close: false,
        },
    }
}

/// Appends a response header.
#[allow(clippy::too_many_arguments)]
pub fn write_response_header(
    out: &mut Vec<u8>,
    opcode: u8,
    status: u16,
    extlen: u8,
    keylen: u16,
    bodylen: u32,
    opaque: u32,
    cas: u64,
) {
    let mut h = [0u8; HEADER_LEN];
    h[0] = RES_MAGIC;
    h[1] = opcode;
    h[2..4].copy_from_slice(&keylen.to_be_bytes());
    h[4] = extlen;
    h[6..8].copy_from_slice(&status.to_be_bytes());
    h[8..12].copy_from_slice(&bodylen.to_be_bytes());
    h[12..16].copy_from_slice(&opaque.to_be_bytes());
    h[16..24].copy_from_slice(&cas.to_be_bytes());
    out.extend_from_slice(&h);
}

/// Appends a whole response: header, extras, key, value.
#[allow(clippy::too_many_arguments)]
pub fn write_response(
    out: &mut Vec<u8>,
    opcode: u8,
    status: u16,
    opaque: u32,
    cas: u64,
    extras: &[u8],
    key: &[u8],
    value: &[u8],
) {
    write_response_header(
        out,
        opcode,
        status,
        extras.len() as u8,
        key.len() as u16,
        (extras.len() + key.len() + value.len()) as u32,
        opaque,
        cas,
    );
    out.extend_from_slice(extras);
    out.extend_from_slice(key);
    out.extend_from_slice(value);
}

/// Appends memcached's error response for `status` (body: its message).
pub fn write_error(out: &mut Vec<u8>, opcode: u8, status: u16, opaque: u32) {
    write_response(
        out,
        opcode,
        status,
        opaque,
        0,
        &[],
        &[],
        status::message(status).as_bytes(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_request_needs_header_and_body() {
        let mut get = vec![REQ_MAGIC, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        get.extend_from_slice(&[0; 12]);
        assert!(!whole_request(&get), "the key is missing");
        get.push(b'k');
        assert!(whole_request(&get));
        get[0] = RES_MAGIC;
        assert!(!whole_request(&get));
        assert!(!whole_request(b"get k\r\n"));
        assert!(!whole_request(&[]));
    }
    use proptest::prelude::*;

    fn packet(op: u8, extras: &[u8], key: &[u8], value: &[u8], cas: u64) -> Vec<u8> {
        let mut out = Vec::new();
        Header {
            magic: REQ_MAGIC,
            opcode: op,
            keylen: key.len() as u16,
            extlen: extras.len() as u8,
            bodylen: (extras.len() + key.len() + value.len()) as u32,
            opaque: 0xdeadbeef,
            cas,
            ..Default::default()
        }
        .write(&mut out);
        out.extend_from_slice(extras);
        out.extend_from_slice(key);
        out.extend_from_slice(value);
        out
    }

    fn decoded(buf: &[u8]) -> (Command<'_>, usize) {
        match parse(buf) {
            Parsed::Packet {
                header,
                extras,
                key,
                consumed,
            } => (decode(&header, extras, key), consumed),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn header_round_trips() {
        let h = Header {
            magic: REQ_MAGIC,
            opcode: 7,
            keylen: 0x0102,
            extlen: 3,
            datatype: 4,
            vbucket: 0x0506,
            bodylen: 0x0708090a,
            opaque: 0x0b0c0d0e,
            cas: 0x0f10111213141516,
        };
        let mut b = Vec::new();
        h.write(&mut b);
        assert_eq!(b.len(), HEADER_LEN);
        assert_eq!(Header::read(&b), h);
    }

    #[test]
    fn waits_for_header_extras_and_key() {
        let p = packet(opcode::SET, &[0, 0, 0, 1, 0, 0, 0, 0], b"key", b"value", 0);
        for n in 0..HEADER_LEN {
            assert_eq!(parse(&p[..n]), Parsed::Incomplete { need: HEADER_LEN });
        }
        for n in HEADER_LEN..HEADER_LEN + 11 {
            assert_eq!(
                parse(&p[..n]),
                Parsed::Incomplete {
                    need: HEADER_LEN + 11
                }
            );
        }
        let (cmd, consumed) = decoded(&p);
        assert_eq!(consumed, HEADER_LEN + 11);
        assert_eq!(
            cmd,
            Command::Store {
                kind: StoreKind::Set,
                key: b"key",
                flags: 1,
                exptime: 0,
                cas: 0,
                vlen: 5,
                quiet: false
            }
        );
    }

    #[test]
    fn bad_magic_closes() {
        let mut p = packet(opcode::NOOP, &[], &[], &[], 0);
        p[0] = 0x81;
        assert_eq!(parse(&p), Parsed::BadMagic);
        assert_eq!(
            parse(b"get foo\r\nget bar\r\nget baz\r\n"),
            Parsed::BadMagic
        );
        // Text shorter than a header waits, as memcached does.
        assert_eq!(
            parse(b"get foo\r\n"),
            Parsed::Incomplete { need: HEADER_LEN }
        );
    }

    #[test]
    fn commands_decode() {
        let p = packet(opcode::GETKQ, &[], b"k", &[], 0);
        assert_eq!(
            decoded(&p).0,
            Command::Get {
                key: b"k",
                quiet: true,
                with_key: true,
                exptime: None,
                with_value: true
            }
        );
        let p = packet(opcode::TOUCH, &[0, 0, 0, 9], b"k", &[], 0);
        assert_eq!(
            decoded(&p).0,
            Command::Get {
                key: b"k",
                quiet: false,
                with_key: false,
                exptime: Some(9),
                with_value: false
            }
        );
        let mut ext = Vec::new();
        ext.extend_from_slice(&5u64.to_be_bytes());
        ext.extend_from_slice(&7u64.to_be_bytes());
        ext.extend_from_slice(&u32::MAX.to_be_bytes());
        let p = packet(opcode::DECREMENTQ, &ext, b"n", &[], 3);
        assert_eq!(
            decoded(&p).0,
            Command::Arith {
                incr: false,
                key: b"n",
                delta: 5,
                initial: 7,
                exptime: u32::MAX,
                cas: 3,
                quiet: true
            }
        );
        let p = packet(opcode::FLUSHQ, &[0, 0, 0, 2], &[], &[], 0);
        assert_eq!(
            decoded(&p).0,
            Command::Flush {
                exptime: 2,
                quiet: true
            }
        );
        let p = packet(opcode::PREPEND, &[], b"k", b"vv", 0);
        assert_eq!(
            decoded(&p).0,
            Command::Concat {
                append: false,
                key: b"k",
                cas: 0,
                vlen: 2,
                quiet: false
            }
        );
        assert_eq!(
            decoded(&packet(opcode::NOOP, &[], &[], &[], 0)).0,
            Command::Noop
        );
        assert_eq!(
            decoded(&packet(opcode::VERSION, &[], &[], &[], 0)).0,
            Command::Version
        );
        assert_eq!(
            decoded(&packet(opcode::QUITQ, &[], &[], &[], 0)).0,
            Command::Quit { quiet: true }
        );
        assert_eq!(
            decoded(&packet(opcode::STAT, &[], b"items", &[], 0)).0,
            Command::Stat { key: b"items" }
        );
        assert_eq!(
            decoded(&packet(opcode::DELETEQ, &[], b"d", &[], 8)).0,
            Command::Delete {
                key: b"d",
                cas: 8,
                quiet: true
            }
        );
    }

    #[test]
    fn errors_as_memcached_answers_them() {
        let einval = Command::Error {
            status: status::EINVAL,
            swallow: 0,
            close: true,
        };
        // Wrong extras for a get, a key too long, a noop with a body.
        assert_eq!(decoded(&packet(opcode::GET, &[1], b"k", &[], 0)).0, einval);
        assert_eq!(
            decoded(&packet(opcode::GET, &[], &[b'a'; 251], &[], 0)).0,
            einval
        );
        assert_eq!(decoded(&packet(opcode::NOOP, &[], &[], b"x", 0)).0, einval);
        assert_eq!(
            decoded(&packet(opcode::SET, &[0; 4], b"k", b"v", 0)).0,
            einval
        );
        // Unknown opcodes (verbosity included) swallow the whole body length.
        assert_eq!(
            decoded(&packet(opcode::VERBOSITY, &[0, 0, 0, 1], &[], &[], 0)).0,
            Command::Error {
                status: status::UNKNOWN_COMMAND,
                swallow: 4,
                close: false
            }
        );
        assert_eq!(
            decoded(&packet(opcode::SASL_AUTH, &[], b"PLAIN", b"abc", 0)).0,
            Command::Error {
                status: status::UNKNOWN_COMMAND,
                swallow: 3,
                close: false
            }
        );
        // A body shorter than extras + key.
        let mut p = packet(opcode::GET, &[], b"key", &[], 0);
        p[11] = 2;
        assert_eq!(
            decoded(&p).0,
            Command::Error {
                status: status::UNKNOWN_COMMAND,
                swallow: 0,
                close: true
            }
        );
    }

    #[test]
    fn responses_encode() {
        let mut out = Vec::new();
        write_error(&mut out, opcode::GET, status::KEY_ENOENT, 0x01020304);
        assert_eq!(out.len(), HEADER_LEN + 9);
        assert_eq!(out[0], RES_MAGIC);
        assert_eq!(&out[6..8], &[0, 1]);
        assert_eq!(&out[8..12], &[0, 0, 0, 9]);
        assert_eq!(&out[12..16], &[1, 2, 3, 4]);
        assert_eq!(&out[24..], b"Not found");
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(buf in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut rest = &buf[..];
            // Walk the buffer as the worker does.
            while let Parsed::Packet { header, extras, key, consumed } = parse(rest) {
                prop_assert_eq!(consumed, HEADER_LEN + extras.len() + key.len());
                let _ = decode(&header, extras, key);
                rest = &rest[consumed..];
            }
        }

        #[test]
        fn valid_packets_survive_incremental_feeding(
            op in 0u8..0x30,
            key in proptest::collection::vec(any::<u8>(), 0..300),
            extras in proptest::collection::vec(any::<u8>(), 0..24),
            value in proptest::collection::vec(any::<u8>(), 0..64),
            cas in any::<u64>(),
        ) {
            let p = packet(op, &extras, &key, &value, cas);
            let whole = match parse(&p) {
                Parsed::Packet { header, extras, key, consumed } => {
                    (decode(&header, extras, key), consumed)
                }
                other => panic!("{other:?}"),
            };
            prop_assert_eq!(whole.1, HEADER_LEN + extras.len() + key.len());
            for n in 0..whole.1 {
                match parse(&p[..n]) {
                    Parsed::Incomplete { need } => prop_assert!(need > n && need <= whole.1),
                    other => panic!("prefix {n}: {other:?}"),
                }
            }
            // Whatever the command, a value it reads fits in the body.
            match whole.0 {
                Command::Store { vlen, .. } | Command::Concat { vlen, .. } => {
                    prop_assert_eq!(vlen, value.len());
                }
                Command::Error { swallow, .. } => prop_assert!(swallow <= p.len()),
                _ => {}
            }
        }
    }
}
