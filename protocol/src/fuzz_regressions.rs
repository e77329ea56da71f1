//! Inputs the fuzz targets in `fuzz/` flagged, kept as regression tests (see
//! docs/fuzzing.md). Each test names the target and the input it found; the
//! fuzz harness was corrected where the parser was right.

use crate::text::Limits;
use crate::{binary, meta, text};

/// `meta`, input `01 01`: an empty `b` key. memcached's `base64_decode`
/// returns 0 for an empty result, so an empty key never round-trips: the
/// decoder answers `None` (memcached then says `CLIENT_ERROR bad data chunk`
/// / key error), and the encoder's empty output stays empty.
#[test]
fn meta_empty_base64_is_refused() {
    let mut enc = Vec::new();
    meta::base64_encode(b"", &mut enc);
    assert!(enc.is_empty());
    assert_eq!(meta::base64_decode(&enc), None);
    assert_eq!(meta::base64_decode(b"===="), None);
    assert_eq!(meta::base64_decode(b"Zg=="), Some(b"f".to_vec()));
    // What the target then parses: `ms` with a one-byte line tail.
    let buf = b"ms ";
    assert_eq!(
        text::parse(buf, &Limits::default()),
        text::Parsed::Incomplete { need: None }
    );
}

/// `binary`: a request whose header announces extras and a key. `need` is a
/// lower bound, not the exact size: first the 24-byte header (memcached
/// reads the header before it knows the rest), then header + extras + key.
#[test]
fn binary_need_is_a_lower_bound_that_grows() {
    let mut req = Vec::new();
    binary::Header {
        magic: binary::REQ_MAGIC,
        opcode: binary::opcode::SET,
        keylen: 3,
        extlen: 8,
        bodylen: 8 + 3 + 2,
        ..Default::default()
    }
    .write(&mut req);
    req.extend_from_slice(&[0; 8]);
    req.extend_from_slice(b"key");
    req.extend_from_slice(b"va");
    assert_eq!(
        binary::parse(&req[..5]),
        binary::Parsed::Incomplete { need: 24 }
    );
    assert_eq!(
        binary::parse(&req[..24]),
        binary::Parsed::Incomplete { need: 35 }
    );
    match binary::parse(&req) {
        binary::Parsed::Packet { key, consumed, .. } => {
            assert_eq!((key, consumed), (&b"key"[..], 35));
        }
        p => panic!("{p:?}"),
    }
}
