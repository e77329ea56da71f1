//! memcached's per-prefix statistics (`stats detail on|off|dump`, `-D`).
//!
//! A key's prefix is what comes before the first delimiter (`-D`, default
//! `:`); keys without one are not counted, as in memcached. Counted while
//! detail is on (`stats detail on`, or `-D` at start): gets and their hits
//! (text get/gets/gat/gats), stores (set/add/replace/append/prepend/cas) and
//! deletes, at the request as memcached counts them (hits when the answer
//! arrives). `stats detail dump` prints
//! `PREFIX <prefix> get <n> hit <n> set <n> del <n>` lines, then `END`.
//! With detail off the request path pays one relaxed load per command.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;

static ON: AtomicBool = AtomicBool::new(false);
static DELIMITER: AtomicU32 = AtomicU32::new(b':' as u32);
/// The prefixes in the order first seen, and where each one is.
type Table = (Vec<(Vec<u8>, [u64; 4])>, Option<HashMap<Vec<u8>, usize>>);
static PREFIXES: Mutex<Table> = Mutex::new((Vec::new(), None));

const GET: usize = 0;
const HIT: usize = 1;
const SET: usize = 2;
const DEL: usize = 3;

/// At start: `-D` (the delimiter, and detail on).
pub fn init(delimiter: char, on: bool) {
    DELIMITER.store(delimiter as u32, Ordering::Relaxed);
    ON.store(on, Ordering::Relaxed);
}

/// Is detail on (one relaxed load)?
#[inline]
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// `stats detail on|off`.
pub fn set(on: bool) {
    ON.store(on, Ordering::Relaxed);
}

fn record(key: &[u8], what: usize, n: u64) {
    let d = DELIMITER.load(Ordering::Relaxed);
    let Some(len) = key.iter().position(|&b| b as u32 == d) else {
        return;
    };
    let prefix = &key[..len];
    let mut table = PREFIXES.lock().unwrap_or_else(|e| e.into_inner());
    let (all, index) = &mut *table;
    let index = index.get_or_insert_with(HashMap::new);
    let i = match index.get(prefix) {
        Some(&i) => i,
        None => {
            all.push((prefix.to_vec(), [0; 4]));
            index.insert(prefix.to_vec(), all.len() - 1);
            all.len() - 1
        }
    };
    all[i].1[what] += n;
}

pub fn get(key: &[u8]) {
    record(key, GET, 1);
}

pub fn hit(key: &[u8]) {
    record(key, HIT, 1);
}

pub fn store(key: &[u8]) {
    record(key, SET, 1);
}

pub fn delete(key: &[u8]) {
    record(key, DEL, 1);
}

/// `stats reset` clears the prefixes, as memcached's does.
pub fn clear() {
    *PREFIXES.lock().unwrap_or_else(|e| e.into_inner()) = (Vec::new(), None);
}

/// `stats detail dump`: newest prefix first (memcached walks a hash table,
/// whose order this does not reproduce), then `END`.
pub fn dump(out: &mut Vec<u8>) {
    let table = PREFIXES.lock().unwrap_or_else(|e| e.into_inner());
    for (p, c) in table.0.iter().rev() {
        out.extend_from_slice(b"PREFIX ");
        out.extend_from_slice(p);
        out.extend_from_slice(
            format!(
                " get {} hit {} set {} del {}\r\n",
                c[GET], c[HIT], c[SET], c[DEL]
            )
            .as_bytes(),
        );
    }
    out.extend_from_slice(b"END\r\n");
}
