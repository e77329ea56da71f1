//! What one step of moving items between instances comes to, whichever
//! kind of guest answers it: a core module's `wmc_dump` / `wmc_load`
//! (transfer.rs) or a component's `dump` / `load` (component/items.rs).
//! Both speak the ABI's v3 item chunks, so reloads, renewals and warm
//! restarts handle them alike.

/// One step of a dump.
pub(super) enum DumpStep {
    /// A well-formed chunk of item records.
    Chunk(Vec<u8>),
    /// No more items.
    End,
    /// The plugin cannot dump (an answer allowed only for the first step).
    Unsupported,
}

/// What a load did with a chunk.
pub(super) enum Loaded {
    /// Took every record.
    All,
    /// Ran out of memory: loading stops here.
    Full,
    /// Cannot load items (an answer allowed only for the first chunk).
    Unsupported,
}

/// What a renewal (`Shard::renew`: a fresh instance of the same plugin
/// takes the running one's items) did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Renewal {
    /// A fresh instance runs, holding every item of the old one.
    Renewed { items: u64 },
    /// The old instance runs on, for this reason.
    Kept(&'static str),
}
