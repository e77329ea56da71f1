//! The core the three differential tests share (text: `differential`,
//! meta: `differential_meta`, binary: `differential_binary`): the reference
//! and target servers started side by side, and the CAS bijection their
//! answers are compared through.

use super::{testing_memcached, Server};
use std::collections::HashMap;
use std::fmt::Display;
use std::hash::Hash;

/// What the reference memcached runs with on top of the common flags: its
/// background LRU threads hold items now and then, which changes whether an
/// incr/decr rewrites a value in place; these flags change no answer.
pub const REF_ONLY_FLAGS: &[&str] = &["-o", "no_lru_crawler,no_lru_maintainer,slab_automove=0"];

/// The reference (Debian's memcached, `flags` + `ref_only`) and the target
/// (`flags` + `target_only`) started side by side. When the server under
/// test is itself a memcached binary (validating the tests), it gets the
/// reference's flags instead. The reference is required: this fails, never
/// skips, when it is missing.
pub fn start_pair(flags: &[&str], ref_only: &[&str], target_only: &[&str]) -> (Server, Server) {
    let ref_flags = [flags, ref_only].concat();
    let reference = Server::start_memcached(&ref_flags);
    let target = if testing_memcached() {
        Server::start(&ref_flags)
    } else {
        Server::start(&[flags, target_only].concat())
    };
    (reference, target)
}

/// Reference CAS <-> target CAS: the first time a reference CAS and a target
/// CAS stand at the same place they become a pair; every later appearance
/// of either must keep it.
#[derive(Debug)]
pub struct CasBijection<T> {
    r2t: HashMap<T, T>,
    t2r: HashMap<T, T>,
}

impl<T> Default for CasBijection<T> {
    fn default() -> Self {
        CasBijection {
            r2t: HashMap::new(),
            t2r: HashMap::new(),
        }
    }
}

impl<T: Eq + Hash + Clone + Display> CasBijection<T> {
    /// Ok(true) when (r, t) is a new pair, Ok(false) when it is a known one,
    /// Err (what broke) when either is paired with something else.
    pub fn check(&mut self, r: &T, t: &T) -> Result<bool, String> {
        match (self.r2t.get(r), self.t2r.get(t)) {
            (None, None) => {
                self.r2t.insert(r.clone(), t.clone());
                self.t2r.insert(t.clone(), r.clone());
                Ok(true)
            }
            (Some(t0), _) if t0 == t => Ok(false),
            (Some(t0), _) => Err(format!(
                "cas mapping broken: reference cas {r} was paired with target cas {t0}, now with {t}"
            )),
            (None, Some(r0)) => Err(format!(
                "cas mapping broken: target cas {t} was paired with reference cas {r0}, now with {r}"
            )),
        }
    }

    /// The target CAS paired with reference CAS `r`.
    pub fn target_of(&self, r: &T) -> Option<&T> {
        self.r2t.get(r)
    }

    /// How many pairs there are.
    pub fn len(&self) -> usize {
        self.r2t.len()
    }

    pub fn is_empty(&self) -> bool {
        self.r2t.is_empty()
    }
}
