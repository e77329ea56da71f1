// An LRU item store for wasmcached, in JavaScript: memcached's semantics
// (flags, expiry, CAS, add/replace/append/prepend/cas, incr/decr, touch,
// gat, flush_all with a delay, -M) with least-recently-used eviction within
// the shard's memory budget. A port of examples/python-lru/store.py.
//
// It is a component of the wasmcached:store world (wit/store.wit), built
// with componentize-js (build.sh). The server hands `handle` a batch of
// requests and sends the answers, one per request, back to the clients.
// The world carries a batch's keys and values in one Uint8Array and the
// answers' values in another, with spans ({offset, len}) into them in the
// records: `Batch` below turns them into bytes and back, so the store
// itself reads and writes plain Uint8Arrays.
//
// How the world's types look here (componentize-js / jco bindings):
// records are objects with camelCase fields, list<u8> is a Uint8Array,
// u64 a BigInt, u8/u32/s32 a Number, option<T> is T or undefined,
// tuple<a, b> a two-element array, and result<_, string> a normal return or
// a thrown string (not an Error: that aborts the instance).

import { now as hostNow, log as hostLog } from 'wasmcached:store/host@0.2.0';

// Operations and statuses: the numbers of wit/store.wit.
const GET = 1, SET = 2, ADD = 3, REPLACE = 4, APPEND = 5, PREPEND = 6, CAS = 7, DELETE = 8;
const INCR = 9, DECR = 10, TOUCH = 11, GAT = 12, FLUSH_ALL = 13, MEM_LIMIT = 14;
const STORED = 0, NOT_STORED = 1, EXISTS = 2, NOT_FOUND = 3, DELETED = 4, TOUCHED = 5;
const HIT = 6, MISS = 7, NUMBER = 8, NON_NUMERIC = 9, TOO_LARGE = 10, OUT_OF_MEMORY = 11;
const OK = 12, ERROR = 13;
// Request flags (mflags) this store honours, and the answer flag it sets.
const NO_VALUE = 1 << 0, NO_BUMP = 1 << 1, VIVIFY = 1 << 2, SET_TTL = 1 << 6;
// A store's key was binary (sent base64 by a meta client): the item keeps
// the mark, and hits and listings answer it (as iflag KEY_BINARY), so that
// `mg` gives the key back base64 and `stats cachedump` leaves it out.
const KEY_BINARY = 1 << 5;
const FETCHED = 1 << 0;
// What an item costs beyond its key and value: the store's own bookkeeping.
const ITEM_OVERHEAD = 64;
const MAX_U64 = (1n << 64n) - 1n;
// How many slots one `iter` call looks at, at most: a call's work is bounded
// however sparse the slots are.
const ITER_SLOTS = 16384;
const EMPTY = new Uint8Array(0);

// Bytes <-> strings, one char per byte (latin1): a key's string is a Map
// key that works for binary keys, and its length is the key's length.
function latin1(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 4096) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 4096));
  }
  return s;
}

function ascii(s) {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function concat(a, b) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

// A u64 counter's digits: 1 to 20 ASCII digits.
function isDigits(bytes) {
  if (bytes.length === 0 || bytes.length > 20) return false;
  for (const b of bytes) {
    if (b < 0x30 || b > 0x39) return false;
  }
  return true;
}

const UNKNOWN_OP = ascii('unknown operation');
const NON_NUMERIC_MSG = ascii('cannot increment or decrement non-numeric value');

class Item {
  constructor(value, flags, exptime, cas, now, slot) {
    this.value = value;
    this.flags = flags;
    this.exptime = exptime;
    this.cas = cas;
    this.storedAt = now;
    this.lastAccess = now;
    this.fetched = false;
    this.slot = slot; // its index in Store.slots
    this.binary = false; // stored with a binary key
  }

  iflags() {
    return (this.fetched ? FETCHED : 0) | (this.binary ? KEY_BINARY : 0);
  }
}

const NO_BYTES = { offset: 0, len: 0 };

// One `handle` call's bytes: `key` and `value` read a request's from the
// batch's data; `answer` makes a response, its value appended to the
// answers' data.
class Batch {
  constructor(data) {
    this.data = data;
    this.out = new Uint8Array(256);
    this.used = 0;
  }

  // A latin1 string (see above): the key of the store's Map.
  key(r) {
    return latin1(this.data.subarray(r.key.offset, r.key.offset + r.key.len));
  }

  // A view, not a copy: a stored value keeps its batch's data alive, which
  // for a set is little more than the value, while a copy would double
  // what a set costs: nothing is collected inside the component (README,
  // "Limits"), so a copy brings the server's renewal of the instance twice
  // as often.
  value(r) {
    return this.data.subarray(r.value.offset, r.value.offset + r.value.len);
  }

  answer(status, {
    value = EMPTY, flags = 0, exptime = 0, cas = 0n, iflags = 0, lastAccess = 0, prevExptime = 0,
  } = {}) {
    let span = NO_BYTES;
    if (value.length > 0) {
      if (this.used + value.length > this.out.length) {
        const grown = new Uint8Array(Math.max(2 * this.out.length, this.used + value.length));
        grown.set(this.out.subarray(0, this.used), 0);
        this.out = grown;
      }
      this.out.set(value, this.used);
      span = { offset: this.used, len: value.length };
      this.used += value.length;
    }
    return { status, iflags, value: span, clientFlags: flags, exptime, cas, lastAccess, prevExptime };
  }

  answers(responses) {
    return { data: this.out.subarray(0, this.used), responses };
  }
}

// One shard's items.
class Store {
  constructor(config) {
    this.items = new Map(); // key string -> Item, least recently used first
    // Every item's key at a fixed index, for `iter`: its cursor is a slot
    // index, which LRU moves, stores and removals leave meaningful.
    this.slots = []; // key string, or null for a free slot
    this.free = []; // the free slots' indices, reused first
    this.used = 0;
    this.budget = Number(config.memoryBudget);
    this.maxItemSize = config.maxItemSize;
    this.noEvict = config.noEvict;
    this.casEnabled = config.casEnabled;
    // CAS values are unique across shards: shard + k * shard_count.
    this.nextCas = BigInt(config.shardId) + 1n;
    this.casStep = BigInt(Math.max(config.shardCount, 1));
    this.flushAt = 0;
    this.evictions = 0;
    this.expired = 0;
    this.totalItems = 0;
    this.dumpKeys = []; // the keys of a running dump, in LRU order
    hostLog(2, `js-lru: shard ${config.shardId} of ${config.shardCount}, ${config.memoryBudget} bytes`);
  }

  // -- the item table ------------------------------------------------------

  // Whether `item` expired or was flushed: a get would miss it.
  gone(item, now) {
    return (item.exptime !== 0 && item.exptime <= now) ||
      (this.flushAt !== 0 && this.flushAt <= now && item.storedAt <= this.flushAt);
  }

  // The live item under `key`, dropping it if it expired or was flushed.
  live(key, now) {
    const item = this.items.get(key);
    if (item === undefined) return undefined;
    if (this.gone(item, now)) {
      this.remove(key);
      this.expired += 1;
      return undefined;
    }
    return item;
  }

  remove(key) {
    const item = this.items.get(key);
    this.items.delete(key);
    this.used -= key.length + item.value.length + ITEM_OVERHEAD;
    this.slots[item.slot] = null;
    this.free.push(item.slot);
    return item;
  }

  // Makes `key` the most recently used.
  bump(key) {
    const item = this.items.get(key);
    this.items.delete(key);
    this.items.set(key, item);
  }

  newCas() {
    if (!this.casEnabled) return 0n;
    const cas = this.nextCas;
    this.nextCas += this.casStep;
    return cas;
  }

  // Stores an item, evicting the least recently used ones for room.
  // Returns its status and the item (undefined unless stored).
  put(key, value, flags, exptime, now) {
    if (this.items.has(key)) this.remove(key);
    if (key.length + value.length > this.maxItemSize) return [TOO_LARGE, undefined];
    const cost = key.length + value.length + ITEM_OVERHEAD;
    while (this.used + cost > this.budget && this.items.size > 0) {
      const [oldKey, old] = this.items.entries().next().value;
      const dead = old.exptime !== 0 && old.exptime <= now;
      if (this.noEvict && !dead) break;
      this.remove(oldKey);
      if (dead) this.expired += 1;
      else this.evictions += 1;
    }
    if (this.used + cost > this.budget) return [OUT_OF_MEMORY, undefined];
    let slot;
    if (this.free.length > 0) {
      slot = this.free.pop();
      this.slots[slot] = key;
    } else {
      slot = this.slots.length;
      this.slots.push(key);
    }
    const item = new Item(value, flags, exptime, this.newCas(), now, slot);
    this.items.set(key, item);
    this.used += cost;
    this.totalItems += 1;
    return [STORED, item];
  }

  // -- requests --------------------------------------------------------------

  handle(data, requests) {
    const now = hostNow();
    const batch = new Batch(data);
    return batch.answers(requests.map((r) => this.one(batch, r, now)));
  }

  one(batch, r, now) {
    const answer = batch.answer.bind(batch);
    const op = r.op;
    const key = batch.key(r);
    switch (op) {
      case FLUSH_ALL:
        if (r.exptime === 0 || r.exptime <= now) {
          this.items.clear();
          this.slots = [];
          this.free = [];
          this.used = 0;
          this.flushAt = 0;
        } else {
          this.flushAt = r.exptime - 1;
        }
        return answer(OK);
      case MEM_LIMIT:
        this.budget = Number(r.delta);
        return answer(OK);
      case GET:
      case GAT:
        return this.get(batch, r, key, now);
      case TOUCH: {
        const item = this.live(key, now);
        if (item === undefined) return answer(NOT_FOUND);
        item.exptime = r.exptime;
        this.bump(key);
        return answer(TOUCHED);
      }
      case SET: case ADD: case REPLACE: case APPEND: case PREPEND: case CAS:
        return this.store(batch, r, op, key, now);
      case DELETE: {
        const item = this.live(key, now);
        if (item === undefined) return answer(NOT_FOUND);
        if (r.cas !== 0n && r.cas !== item.cas) return answer(EXISTS);
        this.remove(key);
        return answer(DELETED);
      }
      case INCR:
      case DECR:
        return this.arith(batch, r, op, key, now);
      default:
        return answer(ERROR, { value: UNKNOWN_OP });
    }
  }

  get(batch, r, key, now) {
    const answer = batch.answer.bind(batch);
    const item = this.live(key, now);
    if (item === undefined) return answer(MISS);
    const prev = item.exptime;
    if (r.op === GAT) item.exptime = r.exptime;
    const resp = answer(HIT, {
      value: (r.mflags & NO_VALUE) ? EMPTY : item.value,
      flags: item.flags,
      exptime: item.exptime,
      cas: item.cas,
      iflags: item.iflags(),
      lastAccess: item.lastAccess,
      prevExptime: prev,
    });
    if (!(r.mflags & NO_BUMP)) {
      item.fetched = true;
      item.lastAccess = now;
      this.bump(key);
    }
    return resp;
  }

  store(batch, r, op, key, now) {
    const answer = batch.answer.bind(batch);
    if (op === SET && r.cas !== 0n) op = CAS;
    const old = this.live(key, now);
    let value = batch.value(r), flags = r.clientFlags, exptime = r.exptime;
    if (op === ADD && old !== undefined) {
      this.bump(key);
      return answer(NOT_STORED);
    }
    if ((op === REPLACE || op === APPEND || op === PREPEND) && old === undefined) {
      return answer(NOT_STORED);
    }
    if (op === CAS) {
      if (old === undefined) return answer(NOT_FOUND);
      if (old.cas !== r.cas) return answer(EXISTS);
    }
    if (op === APPEND || op === PREPEND) {
      value = op === APPEND ? concat(old.value, value) : concat(value, old.value);
      flags = old.flags;
      exptime = old.exptime;
    }
    const [status, item] = this.put(key, value, flags, exptime, now);
    if (item === undefined) return answer(status);
    item.binary = (r.mflags & KEY_BINARY) !== 0;
    return answer(STORED, { cas: item.cas, exptime: item.exptime });
  }

  arith(batch, r, op, key, now) {
    const answer = batch.answer.bind(batch);
    const item = this.live(key, now);
    if (item === undefined) {
      if (!(r.mflags & VIVIFY)) return answer(NOT_FOUND);
      // ma's N: the missing counter is created with the initial value
      // (the request's value) and the TTL in `aux`.
      const [status, made] = this.put(key, batch.value(r), 0, r.aux, now);
      if (made === undefined) return answer(status);
      made.binary = (r.mflags & KEY_BINARY) !== 0;
      return answer(NUMBER, { value: made.value, cas: made.cas, exptime: made.exptime });
    }
    if (r.cas !== 0n && r.cas !== item.cas) return answer(EXISTS);
    // A number written in place keeps the old length, padded with spaces.
    let end = item.value.length;
    while (end > 0 && item.value[end - 1] === 0x20) end--;
    const digits = item.value.subarray(0, end);
    if (!isDigits(digits) || BigInt(latin1(digits)) > MAX_U64) {
      return answer(NON_NUMERIC, { value: NON_NUMERIC_MSG });
    }
    let n = BigInt(latin1(digits));
    if (op === INCR) {
      n = (n + r.delta) & MAX_U64;
    } else {
      n = n > r.delta ? n - r.delta : 0n;
    }
    const newValue = ascii(n.toString());
    const prev = item.exptime;
    // memcached writes a number that still fits over the old one, padded
    // with spaces ("10" decremented to 9 reads back "9 "), and ma's T sets
    // its TTL; a longer number is a new item with the old TTL.
    let value = newValue;
    let exptime = prev;
    if (newValue.length <= item.value.length) {
      value = new Uint8Array(item.value.length).fill(0x20);
      value.set(newValue, 0);
      if (r.mflags & SET_TTL) exptime = r.exptime;
    }
    const [status, stored] = this.put(key, value, item.flags, exptime, now);
    if (stored === undefined) return answer(status);
    // Written over the old number, the item keeps its binary-key mark;
    // memcached's new item for a longer number does not.
    stored.binary = item.binary && newValue.length <= item.value.length;
    stored.fetched = item.fetched;
    stored.lastAccess = item.lastAccess;
    return answer(NUMBER, { value: newValue, cas: stored.cas, exptime, prevExptime: prev });
  }

  // -- dump and load: a reload or a warm restart keeps the items ----------

  // Up to `max` live items from `cursor` on, least recently used first, and
  // the cursor to go on from (0n: done). The server calls nothing else
  // during a dump, so the keys listed when it starts stay valid; the cursor
  // is a position in that list.
  dump(cursor, max) {
    if (cursor === 0n) this.dumpKeys = Array.from(this.items.keys());
    const now = hostNow();
    const out = [];
    let at = Number(cursor);
    while (at < this.dumpKeys.length && out.length < max) {
      const key = this.dumpKeys[at];
      at += 1;
      const item = this.items.get(key);
      if (item === undefined || this.gone(item, now)) continue;
      out.push({
        key: ascii(key), value: item.value, clientFlags: item.flags, exptime: item.exptime, cas: item.cas,
      });
    }
    if (at >= this.dumpKeys.length) {
      this.dumpKeys = [];
      at = 0;
    }
    return [BigInt(at), out];
  }

  // Stores handed-over items as sets would, in dump order (so the last is
  // the most recent), keeping their CAS values: new ones are handed out
  // above every loaded one.
  load(items) {
    const now = hostNow();
    for (const it of items) {
      if (it.exptime !== 0 && it.exptime <= now) continue;
      const [, item] = this.put(latin1(it.key), it.value, it.clientFlags, it.exptime, now);
      if (item === undefined) continue;
      item.cas = this.casEnabled ? it.cas : 0n;
      if (it.cas >= this.nextCas) {
        this.nextCas += ((it.cas - this.nextCas) / this.casStep + 1n) * this.casStep;
      }
    }
    return true;
  }

  // -- listing: lru_crawler metadump, stats cachedump ----------------------

  // Up to `max` live items from slot `cursor` on, and the slot to go on from
  // (0n: done; a call with `max` > 0 has passed slot 0, so 0 cannot mean "go
  // on from there"). Requests run between calls, so it only reads: the items
  // a get would miss (expired, flushed) are left out, not reclaimed.
  iter(cursor, max) {
    const now = hostNow();
    const out = [];
    let at = Number(cursor);
    const end = Math.min(this.slots.length, at + ITER_SLOTS);
    while (at < end && out.length < max) {
      const key = this.slots[at];
      at += 1;
      if (key === null) continue;
      const item = this.items.get(key);
      if (this.gone(item, now)) continue;
      out.push({
        key: ascii(key),
        exptime: item.exptime,
        lastAccess: item.lastAccess,
        cas: item.cas,
        clientFlags: item.flags,
        valueLen: item.value.length,
        size: 0,
        iflags: item.iflags(),
        class: 0,
      });
    }
    if (at >= this.slots.length) at = 0;
    return [BigInt(at), out];
  }

  stats(group) {
    if (group !== 0) return [];
    return [
      ['curr_items', String(this.items.size)],
      ['bytes', String(this.used)],
      ['total_items', String(this.totalItems)],
      ['evictions', String(this.evictions)],
      ['expired_unfetched', '0'],
      ['js_lru_expired', String(this.expired)],
    ];
  }
}

// The exports of the wasmcached:store world. One component instance per
// shard: the shard's store lives here, made by `init`.
let STORE;

export function witVersion() {
  return 2;
}

export function init(config) {
  STORE = new Store(config);
}

export function handle(data, requests) {
  return STORE.handle(data, requests);
}

export function tick(now) {}

export function timer(token) {}

export function stats(group) {
  return STORE.stats(group);
}

export function dump(cursor, max) {
  return STORE.dump(cursor, max);
}

export function load(items) {
  return STORE.load(items);
}

export function iter(cursor, max) {
  return STORE.iter(cursor, max);
}
