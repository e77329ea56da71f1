//! The framing loop: a connection's buffered bytes become one command after
//! another, in the protocol the connection speaks.
//!
//! This is memcached's read side of `drive_machine` (`conn_parse_cmd`,
//! `conn_swallow`, and the protocol chosen once by
//! `try_read_command_negotiate`) without the I/O: the host's worker runs it
//! over a connection's read buffer and executes what it hands over, and the
//! fuzz targets run the very same loop with checking sinks, so what is fuzzed
//! is the loop the server runs.

use crate::binary::REQ_MAGIC;

/// The protocol a connection speaks, fixed once chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Text, which includes the meta commands.
    Text,
    Binary,
}

impl Protocol {
    /// memcached's negotiation (`-B auto`): a binary request starts with the
    /// request magic, anything else is text.
    pub fn negotiate(first: u8) -> Protocol {
        if first == REQ_MAGIC {
            Protocol::Binary
        } else {
            Protocol::Text
        }
    }
}

/// What the sink made of the command at the start of the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The command occupied `consumed` bytes (at least one); `swallow` bytes
    /// after it belong to a refused data block and are dropped unread.
    Done { consumed: usize, swallow: usize },
    /// The command is not whole yet; `need` is how many bytes from its start
    /// it takes to go on (0: not known, e.g. a line without its end).
    Incomplete { need: usize },
    /// The connection closes: nothing more is read from it.
    Close,
}

/// Whether the loop may take one more command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Go,
    /// Stop until the replies drain (back-pressure); the input stays.
    Pause,
    /// Stop to let other connections have their turn (`-R`); the input stays.
    Yield,
}

/// The worker executes commands; a fuzz target checks them.
pub trait Sink {
    /// Asked before each command.
    fn flow(&mut self) -> Flow {
        Flow::Go
    }
    /// The first byte chose the protocol (`-vv` logs it).
    fn negotiated(&mut self, _protocol: Protocol) {}
    /// Handles the command at the start of `input` (every unparsed byte).
    fn command(&mut self, protocol: Protocol, input: &[u8]) -> Step;
}

/// Where the loop left a connection's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rest {
    /// Every command was taken; bytes of an unfinished one may remain
    /// (`need` as in [`Step::Incomplete`], 0 when nothing or a partial line
    /// is left).
    Read { need: usize },
    /// The input ended inside a refused data block: this many bytes are
    /// still to drop.
    Swallow(usize),
    /// The sink stopped the loop ([`Flow::Pause`] or [`Flow::Yield`]).
    Stopped(Flow),
    /// The sink closed the connection; all input was taken.
    Closed,
}

/// What [`run`] did: the bytes taken from the input's start, and where it stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Framed {
    pub consumed: usize,
    pub rest: Rest,
}

/// Runs the commands in `input` one after another: first drops `swallow`
/// bytes left of a refused data block, chooses the protocol from the first
/// byte if `protocol` is still `None`, then hands each command to `sink`
/// until the input runs out, a command is incomplete, or the sink stops.
pub fn run(
    protocol: &mut Option<Protocol>,
    input: &[u8],
    mut swallow: usize,
    sink: &mut impl Sink,
) -> Framed {
    let mut pos = 0;
    loop {
        let n = swallow.min(input.len() - pos);
        pos += n;
        swallow -= n;
        if swallow > 0 {
            return framed(pos, Rest::Swallow(swallow));
        }
        if pos == input.len() {
            return framed(pos, Rest::Read { need: 0 });
        }
        match sink.flow() {
            Flow::Go => {}
            stop => return framed(pos, Rest::Stopped(stop)),
        }
        let p = match *protocol {
            Some(p) => p,
            None => {
                let p = Protocol::negotiate(input[pos]);
                *protocol = Some(p);
                sink.negotiated(p);
                p
            }
        };
        match sink.command(p, &input[pos..]) {
            Step::Done {
                consumed,
                swallow: s,
            } => {
                debug_assert!(consumed > 0 && consumed <= input.len() - pos);
                pos += consumed;
                swallow = s;
            }
            Step::Incomplete { need } => return framed(pos, Rest::Read { need }),
            Step::Close => return framed(input.len(), Rest::Closed),
        }
    }
}

fn framed(consumed: usize, rest: Rest) -> Framed {
    Framed { consumed, rest }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Commands are `x` + a length digit: that many bytes follow; `r` + a
    /// digit: refused, that many bytes are swallowed; `q` closes.
    struct Toy {
        seen: Vec<(Protocol, u8)>,
        budget: usize,
    }

    impl Sink for Toy {
        fn flow(&mut self) -> Flow {
            if self.budget == 0 {
                return Flow::Yield;
            }
            self.budget -= 1;
            Flow::Go
        }
        fn command(&mut self, p: Protocol, input: &[u8]) -> Step {
            let Some(&len) = input.get(1) else {
                return Step::Incomplete { need: 2 };
            };
            let len = (len - b'0') as usize;
            self.seen.push((p, input[0]));
            match input[0] {
                b'q' => Step::Close,
                b'r' => Step::Done {
                    consumed: 2,
                    swallow: len,
                },
                _ if input.len() < 2 + len => Step::Incomplete { need: 2 + len },
                _ => Step::Done {
                    consumed: 2 + len,
                    swallow: 0,
                },
            }
        }
    }

    fn toy(budget: usize) -> Toy {
        Toy {
            seen: Vec::new(),
            budget,
        }
    }

    #[test]
    fn pipelined_swallowed_and_incomplete() {
        let mut p = None;
        let mut s = toy(10);
        let f = run(&mut p, b"x2abr3defx", 0, &mut s);
        assert_eq!(p, Some(Protocol::Text));
        assert_eq!(f.consumed, 9);
        assert_eq!(f.rest, Rest::Read { need: 2 });
        // A swallow that outlasts the input carries over to the next read.
        let f = run(&mut p, b"r9abc", 0, &mut s);
        assert_eq!(f, framed(5, Rest::Swallow(6)));
        let f = run(&mut p, b"abcdefx0", 6, &mut s);
        assert_eq!(f, framed(8, Rest::Read { need: 0 }));
    }

    #[test]
    fn first_byte_decides_once() {
        let mut p = None;
        let mut s = toy(10);
        run(&mut p, &[REQ_MAGIC, b'0'], 0, &mut s);
        run(&mut p, b"x0", 0, &mut s);
        assert_eq!(
            s.seen,
            [(Protocol::Binary, REQ_MAGIC), (Protocol::Binary, b'x')]
        );
    }

    #[test]
    fn yield_keeps_input_and_close_takes_all() {
        let mut p = Some(Protocol::Text);
        let f = run(&mut p, b"x0x0x0", 0, &mut toy(2));
        assert_eq!(f, framed(4, Rest::Stopped(Flow::Yield)));
        let f = run(&mut p, b"x0q0x0", 0, &mut toy(9));
        assert_eq!(f, framed(6, Rest::Closed));
    }
}
