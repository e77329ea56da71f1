//! memcached's UDP frame header: every datagram (request or reply) starts
//! with 8 bytes, four big-endian `u16`s: request id, sequence number, total
//! number of datagrams, reserved. memcached accepts only single-datagram
//! requests (`total == 1`); the host answers others with
//! `SERVER_ERROR multi-packet request not supported`.

/// Size of the frame header.
pub const HEADER_LEN: usize = 8;

/// A parsed frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Echoed in every reply datagram.
    pub request_id: u16,
    /// Sequence number of this datagram (0-based).
    pub seq: u16,
    /// Number of datagrams in the request.
    pub total: u16,
    /// Reserved; memcached ignores it.
    pub reserved: u16,
}

impl Frame {
    /// memcached serves a request only if it fits one datagram.
    pub fn is_single(&self) -> bool {
        self.total == 1
    }

    /// The header's wire form.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..2].copy_from_slice(&self.request_id.to_be_bytes());
        h[2..4].copy_from_slice(&self.seq.to_be_bytes());
        h[4..6].copy_from_slice(&self.total.to_be_bytes());
        h[6..8].copy_from_slice(&self.reserved.to_be_bytes());
        h
    }
}

/// Splits a datagram into its frame header and payload; `None` if it is
/// shorter than the header (memcached drops such a datagram silently).
pub fn parse(datagram: &[u8]) -> Option<(Frame, &[u8])> {
    let (h, payload) = datagram.split_first_chunk::<HEADER_LEN>()?;
    let word = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
    let frame = Frame {
        request_id: word(0),
        seq: word(2),
        total: word(4),
        reserved: word(6),
    };
    Some((frame, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_datagrams_are_dropped() {
        for n in 0..HEADER_LEN {
            assert_eq!(parse(&[0u8; 16][..n]), None);
        }
    }

    #[test]
    fn header_fields_are_big_endian() {
        let d = b"\x12\x34\x00\x02\x00\x01\xab\xcdget k\r\n";
        let (f, payload) = parse(d).unwrap();
        assert_eq!(
            f,
            Frame {
                request_id: 0x1234,
                seq: 2,
                total: 1,
                reserved: 0xabcd
            }
        );
        assert!(f.is_single());
        assert_eq!(payload, b"get k\r\n");
        assert_eq!(&f.encode(), &d[..HEADER_LEN]);
    }

    #[test]
    fn header_only_datagram_has_empty_payload() {
        let (f, payload) = parse(&[0, 1, 0, 0, 0, 2, 0, 0]).unwrap();
        assert_eq!((f.request_id, f.total, f.is_single()), (1, 2, false));
        assert!(payload.is_empty());
    }
}
