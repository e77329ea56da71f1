//! The binary protocol's wire format, shared by the binary tests
//! (`binary_protocol`, `differential_binary`, `auth`'s SASL): opcodes,
//! status codes, one request builder and one response parser.

use std::io::{self, Read};

/// Request magic byte.
pub const REQ_MAGIC: u8 = 0x80;
/// Response magic byte.
pub const RES_MAGIC: u8 = 0x81;
/// Length of a request or response header.
pub const HEADER_LEN: usize = 24;

/// Opcodes.
pub mod op {
    pub const GET: u8 = 0x00;
    pub const SET: u8 = 0x01;
    pub const ADD: u8 = 0x02;
    pub const REPLACE: u8 = 0x03;
    pub const DELETE: u8 = 0x04;
    pub const INCR: u8 = 0x05;
    pub const DECR: u8 = 0x06;
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
    pub const INCRQ: u8 = 0x15;
    pub const DECRQ: u8 = 0x16;
    pub const QUITQ: u8 = 0x17;
    pub const FLUSHQ: u8 = 0x18;
    pub const APPENDQ: u8 = 0x19;
    pub const PREPENDQ: u8 = 0x1a;
    pub const VERBOSITY: u8 = 0x1b;
    pub const TOUCH: u8 = 0x1c;
    pub const GAT: u8 = 0x1d;
    pub const GATQ: u8 = 0x1e;
    pub const SASL_LIST: u8 = 0x20;
    pub const SASL_AUTH: u8 = 0x21;
    pub const SASL_STEP: u8 = 0x22;
    pub const GATK: u8 = 0x23;
    pub const GATKQ: u8 = 0x24;
}

/// Response status codes.
pub mod status {
    pub const SUCCESS: u16 = 0x00;
    pub const ENOENT: u16 = 0x01;
    pub const EEXISTS: u16 = 0x02;
    pub const E2BIG: u16 = 0x03;
    pub const EINVAL: u16 = 0x04;
    pub const NOT_STORED: u16 = 0x05;
    pub const DELTA_BADVAL: u16 = 0x06;
    pub const AUTH_ERROR: u16 = 0x20;
    pub const AUTH_CONTINUE: u16 = 0x21;
    pub const UNKNOWN: u16 = 0x81;
}

/// Appends a header. The fields are given as sent, so that a malformed
/// request can lie about its lengths or magic.
#[allow(clippy::too_many_arguments)]
pub fn write_header(
    out: &mut Vec<u8>,
    magic: u8,
    op: u8,
    keylen: u16,
    extlen: u8,
    bodylen: u32,
    opaque: u32,
    cas: u64,
) {
    out.push(magic);
    out.push(op);
    out.extend_from_slice(&keylen.to_be_bytes());
    out.push(extlen);
    out.push(0); // data type
    out.extend_from_slice(&[0, 0]); // vbucket
    out.extend_from_slice(&bodylen.to_be_bytes());
    out.extend_from_slice(&opaque.to_be_bytes());
    out.extend_from_slice(&cas.to_be_bytes());
}

/// A well-formed request.
pub fn packet(op: u8, extras: &[u8], key: &[u8], value: &[u8], cas: u64, opaque: u32) -> Vec<u8> {
    let mut p = Vec::with_capacity(HEADER_LEN + extras.len() + key.len() + value.len());
    write_header(
        &mut p,
        REQ_MAGIC,
        op,
        key.len() as u16,
        extras.len() as u8,
        (extras.len() + key.len() + value.len()) as u32,
        opaque,
        cas,
    );
    p.extend_from_slice(extras);
    p.extend_from_slice(key);
    p.extend_from_slice(value);
    p
}

/// The extras of set/add/replace: flags, exptime.
pub fn store_extras(flags: u32, exptime: u32) -> Vec<u8> {
    let mut e = flags.to_be_bytes().to_vec();
    e.extend_from_slice(&exptime.to_be_bytes());
    e
}

/// The extras of incr/decr: delta, initial value, exptime.
pub fn arith_extras(delta: u64, initial: u64, exptime: u32) -> Vec<u8> {
    let mut e = delta.to_be_bytes().to_vec();
    e.extend_from_slice(&initial.to_be_bytes());
    e.extend_from_slice(&exptime.to_be_bytes());
    e
}

/// A response exactly as received: every header field, and the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub magic: u8,
    pub op: u8,
    pub keylen: u16,
    pub extlen: u8,
    pub datatype: u8,
    pub status: u16,
    pub bodylen: u32,
    pub opaque: u32,
    pub cas: u64,
    pub body: Vec<u8>,
}

impl Frame {
    /// Parses a 24-byte header; the body is left empty.
    pub fn header(h: &[u8]) -> Frame {
        assert_eq!(h.len(), HEADER_LEN, "binary header length");
        Frame {
            magic: h[0],
            op: h[1],
            keylen: u16::from_be_bytes([h[2], h[3]]),
            extlen: h[4],
            datatype: h[5],
            status: u16::from_be_bytes([h[6], h[7]]),
            bodylen: u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
            opaque: u32::from_be_bytes([h[12], h[13], h[14], h[15]]),
            cas: u64::from_be_bytes(h[16..24].try_into().unwrap()),
            body: Vec::new(),
        }
    }

    /// Reads one response (header and body) from `r`.
    pub fn read(r: &mut impl Read) -> io::Result<Frame> {
        let mut h = [0u8; HEADER_LEN];
        r.read_exact(&mut h)?;
        let mut f = Frame::header(&h);
        f.body = vec![0u8; f.bodylen as usize];
        r.read_exact(&mut f.body)?;
        Ok(f)
    }

    /// The body cut into extras, key and value (a well-formed response:
    /// response magic, data type 0, lengths that fit the body).
    pub fn split(self) -> Resp {
        assert_eq!(self.magic, RES_MAGIC, "response magic: {self:?}");
        assert_eq!(self.datatype, 0, "data type: {self:?}");
        let (ext, key) = (self.extlen as usize, self.keylen as usize);
        assert!(
            ext + key <= self.body.len(),
            "lengths beyond the body: {self:?}"
        );
        Resp {
            op: self.op,
            status: self.status,
            extras: self.body[..ext].to_vec(),
            key: self.body[ext..ext + key].to_vec(),
            value: self.body[ext + key..].to_vec(),
            opaque: self.opaque,
            cas: self.cas,
        }
    }
}

/// A well-formed response, its body split up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resp {
    pub op: u8,
    pub status: u16,
    pub extras: Vec<u8>,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub opaque: u32,
    pub cas: u64,
}

/// Reads one well-formed response from `r`.
pub fn read_resp(r: &mut impl Read) -> io::Result<Resp> {
    Frame::read(r).map(Frame::split)
}
