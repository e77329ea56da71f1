//! The workers' side of an item listing (see `crate::listing`): run one
//! chunk on a shard owned here, append a rendered chunk to its client's
//! slot, and send the job on; hold it back while the client reads slowly.

use super::{deliver, Worker};
use crate::batch::Msg;
use crate::clock;
use crate::conn::Ticket;
use crate::listing::{render_chunk, End, Listing, LIST_HIGH_WATER};
use crate::plugin::{ListStep, LIST_CHUNK_BYTES};
use crate::proto::text_cmd::TextConn;
use crate::reply::Delivery;
use wasmcached_protocol::text::Limits;

impl Worker {
    /// Runs one chunk of a listing on a shard owned here, then hands the
    /// lines to the connection's worker.
    pub(super) fn list_step(&mut self, mut job: Box<Listing>) {
        let shards = self.core.shared.router.shards();
        let limits = Limits {
            item_size_max: self.core.shared.settings.item_size_max,
            cas_enabled: self.core.shared.settings.use_cas,
        };
        let started = clock::process_started();
        job.out.clear();
        match self.shards[job.shard as usize].as_mut() {
            // Routed to the wrong worker (never): nothing to list here.
            None => job.cursor = 0,
            Some(shard) => {
                let first = job.generation.is_none();
                if job.generation.is_some_and(|g| g != shard.generation) {
                    // The instance restarted or was replaced: its items
                    // are not where the cursor points. This shard is done.
                    job.cursor = 0;
                } else {
                    job.generation = Some(shard.generation);
                    match shard.list(job.cursor, LIST_CHUNK_BYTES) {
                        Ok(ListStep::Unsupported) => {
                            job.cursor = 0;
                            if first && job.shard == 0 {
                                job.end = Some(End::Unsupported);
                            }
                        }
                        Ok(ListStep::Chunk { cursor, chunk }) => {
                            job.cursor = cursor;
                            if !chunk.is_empty() {
                                render_chunk(&mut job, chunk, &limits, started);
                            }
                        }
                        Err(f) => {
                            job.cursor = 0;
                            job.out.extend_from_slice(b"SERVER_ERROR ");
                            job.out.extend_from_slice(f.0.as_bytes());
                            job.out.extend_from_slice(b"\r\n");
                        }
                    }
                }
                super::schedule_guest_timers(&mut self.base, shard);
            }
        }
        if job.end.is_none() && job.cursor == 0 {
            job.shard += 1;
            job.generation = None;
            if job.shard >= shards {
                job.end = Some(End::Done);
            }
        }
        if job.origin == self.core.id {
            self.list_out(job);
        } else {
            let origin = job.origin;
            self.core.outbox.post(origin, Msg::ListOut(job));
        }
    }

    /// Appends a chunk's lines to the connection's slot; ends the reply, or
    /// sends the job on for the next chunk (or parks it while the client
    /// has enough to read).
    pub(super) fn list_out(&mut self, mut job: Box<Listing>) {
        let t = job.ticket;
        let Some(conn) = self.slab.get_gen(t.conn, t.gen) else {
            // The client went away: the listing ends with it.
            return;
        };
        conn.extend_slot(t.seq, &job.out);
        job.out.clear();
        self.touched.push(t.conn);
        match job.end {
            Some(End::Done) => self.finish(t, b"END\r\n"),
            Some(End::Unsupported) => {
                let line = format!("{}\r\n", job.refusal());
                self.finish(t, line.as_bytes());
            }
            None if backed_up(conn, t.seq) => self.listings.push(job),
            None => self.core.send_list_step(job),
        }
    }

    /// Completes a listing's slot with its last line.
    fn finish(&mut self, t: Ticket, text: &[u8]) {
        if let Some(conn) = self.slab.get_gen(t.conn, t.gen) {
            // What the slot buffered while it waited behind another reply
            // goes out before the end.
            conn.extend_slot(t.seq, b"");
        }
        let shared = &self.core.shared;
        let st = &shared.threads[self.core.id];
        deliver(
            &mut self.slab,
            &mut self.touched,
            shared,
            st,
            t,
            Delivery::Line(text),
        );
    }

    /// Sends on the parked listings whose clients have read enough, and
    /// drops those whose connection closed. Called once per loop iteration.
    pub(super) fn resume_listings(&mut self) {
        if self.listings.is_empty() {
            return;
        }
        for job in std::mem::take(&mut self.listings) {
            let t = job.ticket;
            match self.slab.get_gen(t.conn, t.gen) {
                None => {}
                Some(conn) if backed_up(conn, t.seq) => self.listings.push(job),
                Some(_) => self.core.send_list_step(job),
            }
        }
    }
}

/// Whether the client has enough of a listing to read for now. A UDP
/// reply leaves only once complete, so it never waits.
fn backed_up(conn: &TextConn, seq: u64) -> bool {
    if conn.stream.is_udp() {
        return false;
    }
    let held = conn.slot(seq).map_or(0, |s| s.buf.len());
    conn.unwritten() + held > LIST_HIGH_WATER
}
