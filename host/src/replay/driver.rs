//! The replay loop: requests go to their shard's batch (routed as a server
//! with that many shards routes them), each batch runs when it is full or
//! the trace's clock moves on, and its answers are counted. A get that
//! missed is followed by a set of the trace's value size (the look-aside
//! "fill"), sent right after its batch, so a key missed twice within one
//! batch misses twice, as a pipelining client would see it.
//!
//! The server clock follows the trace: each trace second the clock moves
//! one second, every shard gets its `tick`, and guest timers fire at their
//! trace time. Nothing on the request path allocates: batch buffers, keys
//! and value bytes are reused.

use super::record::{Record, TraceOp};
use super::report::Report;
use crate::clock;
use crate::plugin::Shard;
use crate::router::Router;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use wasmcached_abi::{self as abi, Op, Status};

/// The server time the first trace second maps to (memcached's clock
/// starts above 1, which means "already expired").
pub const T0: u32 = 1000;
/// A batch runs early once its requests reach this many bytes, so a trace
/// of large values does not ask the plugin for huge input buffers.
const MAX_BATCH_BYTES: usize = 4 << 20;
/// At most this many seconds of a gap in the trace are ticked one by one;
/// the clock jumps over the rest.
const MAX_TICKED_GAP: u32 = 86_400;
/// Guest timers fired per trace second at most, so a plugin re-arming a
/// zero-delay timer cannot hold the replay.
const MAX_TIMERS_PER_SECOND: usize = 10_000;

/// How requests are sent.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub batch: u32,
    pub fill: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A read after the warm-up: counted as a hit or a miss.
    CountedGet,
    WarmGet,
    Write,
}

/// What the answer to a batched request needs: where its key sits in the
/// batch, and its fill's value size and exptime.
#[derive(Clone, Copy)]
struct Meta {
    kind: Kind,
    key_at: u32,
    key_len: u32,
    value_len: u32,
    exptime: u32,
}

/// One shard and its pending batch.
struct Lane {
    shard: Shard,
    reqs: Vec<u8>,
    count: u32,
    metas: Vec<Meta>,
    fills: Vec<u8>,
}

#[derive(Default)]
struct Counts {
    gets: u64,
    hits: u64,
    misses: u64,
    fills: u64,
    errors: u64,
    faults: u64,
}

/// A guest timer: due (server milliseconds), order, shard, generation, token.
type TimerEntry = Reverse<(u64, u64, usize, u64, u64)>;

pub struct Driver {
    lanes: Vec<Lane>,
    router: Router,
    opts: Options,
    /// Value bytes for every store: ASCII zeros, so incr and decr work.
    values: Vec<u8>,
    counts: Counts,
    first_time: Option<u64>,
    /// The server time now.
    now: u32,
    timers: BinaryHeap<TimerEntry>,
    timer_seq: u64,
}

impl Driver {
    /// `shards` in shard id order; `item_size_max` bounds the value bytes
    /// sent (larger values are sent one byte over, to be refused).
    pub fn new(shards: Vec<Shard>, item_size_max: usize, opts: Options) -> Driver {
        clock::set_now_for_check(T0);
        let router = Router::new(shards.len(), 1);
        let lanes = shards
            .into_iter()
            .map(|shard| {
                let mut reqs = Vec::with_capacity(64 << 10);
                abi::begin_batch(&mut reqs);
                Lane {
                    shard,
                    reqs,
                    count: 0,
                    metas: Vec::with_capacity(opts.batch as usize),
                    fills: Vec::with_capacity(64 << 10),
                }
            })
            .collect();
        let mut d = Driver {
            lanes,
            router,
            opts,
            values: vec![b'0'; item_size_max.saturating_add(1)],
            counts: Counts::default(),
            first_time: None,
            now: T0,
            timers: BinaryHeap::new(),
            timer_seq: 0,
        };
        for i in 0..d.lanes.len() {
            d.collect_timers(i, T0 as u64 * 1000);
        }
        d
    }

    /// Sends one request; `counted`: it is past the warm-up.
    #[inline]
    pub fn push(&mut self, rec: &Record, counted: bool) {
        let first = *self.first_time.get_or_insert(rec.time);
        // A trace running backwards stays in the current second.
        let secs = rec.time.saturating_sub(first).min((u32::MAX - T0) as u64) as u32;
        if T0 + secs > self.now {
            self.advance(T0 + secs);
        }
        let exptime = match rec.ttl {
            0 => 0,
            ttl => clock::realtime(ttl as i64),
        };
        let value_len = (rec.value_size as usize).min(self.values.len());
        let (op, value, delta, kind) = match rec.op {
            TraceOp::Get | TraceOp::Gets => (Op::Get, 0, 0, Kind::CountedGet),
            TraceOp::Gat => (Op::Gat, 0, 0, Kind::CountedGet),
            TraceOp::Set => (Op::Set, value_len, 0, Kind::Write),
            TraceOp::Add => (Op::Add, value_len, 0, Kind::Write),
            // The trace has no CAS tokens: a cas stores when the item is
            // there, as one with the right token would.
            TraceOp::Replace | TraceOp::Cas => (Op::Replace, value_len, 0, Kind::Write),
            TraceOp::Append => (Op::Append, value_len, 0, Kind::Write),
            TraceOp::Prepend => (Op::Prepend, value_len, 0, Kind::Write),
            TraceOp::Delete => (Op::Delete, 0, 0, Kind::Write),
            TraceOp::Incr => (Op::Incr, 0, 1, Kind::Write),
            TraceOp::Decr => (Op::Decr, 0, 1, Kind::Write),
            TraceOp::Touch => (Op::Touch, 0, 0, Kind::Write),
        };
        let kind = match kind {
            Kind::CountedGet if !counted => Kind::WarmGet,
            k => k,
        };
        if kind == Kind::CountedGet {
            self.counts.gets += 1;
        }
        let i = self.router.shard_of(&rec.key) as usize;
        let lane = &mut self.lanes[i];
        let key_at = (lane.reqs.len() + abi::REQUEST_HEADER) as u32;
        let sent_exptime = match op {
            Op::Set | Op::Add | Op::Replace | Op::Gat | Op::Touch => exptime,
            _ => 0,
        };
        // The replay never reads a value: spare the plugin copying it into
        // its answer (the item is still looked up and bumped as by a get).
        let mflags = match op {
            Op::Get | Op::Gat => abi::mflag::NO_VALUE,
            _ => 0,
        };
        abi::encode_request_header(
            &mut lane.reqs,
            op as u8,
            &rec.key,
            value as u32,
            0,
            sent_exptime,
            0,
            delta,
            mflags,
            0,
        );
        lane.reqs.extend_from_slice(&self.values[..value]);
        lane.metas.push(Meta {
            kind,
            key_at,
            key_len: rec.key.len() as u32,
            value_len: value_len as u32,
            exptime,
        });
        lane.count += 1;
        if lane.count >= self.opts.batch || lane.reqs.len() >= MAX_BATCH_BYTES {
            self.flush(i);
        }
    }

    /// Runs every pending batch.
    pub fn flush_all(&mut self) {
        for i in 0..self.lanes.len() {
            self.flush(i);
        }
    }

    /// Runs lane `i`'s batch, counts its answers and sends its fills.
    fn flush(&mut self, i: usize) {
        let lane = &mut self.lanes[i];
        if lane.count == 0 {
            return;
        }
        let c = &mut self.counts;
        abi::set_batch_count(&mut lane.reqs, lane.count);
        abi::begin_batch(&mut lane.fills);
        let mut fills = 0u32;
        match lane.shard.batch(&lane.reqs, lane.count) {
            Ok(answers) => {
                for (r, m) in answers.records().zip(&lane.metas) {
                    let status = r.status;
                    let miss = status == Status::Miss as u8;
                    match m.kind {
                        Kind::CountedGet if status == Status::Hit as u8 => c.hits += 1,
                        Kind::CountedGet if miss => c.misses += 1,
                        Kind::WarmGet if miss || status == Status::Hit as u8 => {}
                        Kind::Write if !failed(status) => {}
                        _ => c.errors += 1,
                    }
                    if miss && self.opts.fill {
                        let key = &lane.reqs[m.key_at as usize..(m.key_at + m.key_len) as usize];
                        abi::encode_request_header(
                            &mut lane.fills,
                            Op::Set as u8,
                            key,
                            m.value_len,
                            0,
                            m.exptime,
                            0,
                            0,
                            0,
                            0,
                        );
                        lane.fills
                            .extend_from_slice(&self.values[..m.value_len as usize]);
                        fills += 1;
                        if m.kind == Kind::CountedGet {
                            c.fills += 1;
                        }
                    }
                }
            }
            Err(_) => {
                c.faults += 1;
                c.errors += lane.count as u64;
            }
        }
        if fills > 0 {
            abi::set_batch_count(&mut lane.fills, fills);
            match lane.shard.batch(&lane.fills, fills) {
                Ok(answers) => {
                    c.errors += answers.records().filter(|r| failed(r.status)).count() as u64;
                }
                Err(_) => {
                    c.faults += 1;
                    c.errors += fills as u64;
                }
            }
        }
        abi::begin_batch(&mut lane.reqs);
        lane.metas.clear();
        lane.count = 0;
        self.collect_timers(i, self.now as u64 * 1000);
    }

    /// Moves the server clock to `to`, one second at a time: timers due by
    /// then fire, then every shard ticks.
    fn advance(&mut self, to: u32) {
        self.flush_all();
        let from = self.now.max(to.saturating_sub(MAX_TICKED_GAP));
        for sec in from + 1..=to {
            clock::set_now_for_check(sec);
            self.now = sec;
            self.fire_timers(sec as u64 * 1000);
            for i in 0..self.lanes.len() {
                self.lanes[i].shard.tick(sec);
                self.collect_timers(i, sec as u64 * 1000);
            }
        }
        clock::set_now_for_check(to);
        self.now = to;
    }

    fn fire_timers(&mut self, until_ms: u64) {
        for _ in 0..MAX_TIMERS_PER_SECOND {
            match self.timers.peek() {
                Some(Reverse((due, ..))) if *due <= until_ms => {}
                _ => return,
            }
            let Some(Reverse((due, _, i, generation, token))) = self.timers.pop() else {
                return;
            };
            // A timer of an instance a fault replaced is stale.
            if self.lanes[i].shard.generation == generation {
                self.lanes[i].shard.timer(token);
                self.collect_timers(i, due);
            }
        }
    }

    /// Queues the timers lane `i`'s guest asked for; `now_ms`: when.
    fn collect_timers(&mut self, i: usize, now_ms: u64) {
        let shard = &mut self.lanes[i].shard;
        let generation = shard.generation;
        for (token, delay_ms) in shard.take_timers() {
            self.timer_seq += 1;
            self.timers.push(Reverse((
                now_ms + delay_ms as u64,
                self.timer_seq,
                i,
                generation,
                token,
            )));
        }
    }

    /// Fills in what the run counted and what the plugins report.
    pub fn finish(&mut self, report: &mut Report) {
        self.flush_all();
        let c = &self.counts;
        report.gets = c.gets;
        report.hits = c.hits;
        report.misses = c.misses;
        report.fills = c.fills;
        report.errors = c.errors;
        report.plugin_faults = c.faults;
        report.trace_seconds = (self.now - T0) as u64;
        report.shards = self.lanes.len() as u32;
        let (mut evictions, mut expirations, mut items, mut memory) = (0u64, 0u64, 0u64, 0u64);
        for lane in &mut self.lanes {
            memory += lane.shard.memory_bytes();
            let lines = lane.shard.stats(abi::stats_group::GENERAL);
            for line in String::from_utf8_lossy(&lines).lines() {
                let Some((name, value)) = line.split_once(' ') else {
                    continue;
                };
                let Ok(v) = value.trim().parse::<u64>() else {
                    continue;
                };
                match name {
                    "evictions" => evictions += v,
                    "get_expired" | "reclaimed" | "crawler_reclaimed" => expirations += v,
                    "curr_items" => items += v,
                    _ => {}
                }
            }
        }
        report.evictions = evictions;
        report.expirations = expirations;
        report.curr_items = items;
        report.memory_bytes = memory;
    }
}

/// An answer that says the request could not be carried out at all.
fn failed(status: u8) -> bool {
    [Status::TooLarge, Status::OutOfMemory, Status::Error]
        .iter()
        .any(|s| *s as u8 == status)
}
