// {{name}}: a wasmcached storage plugin in JavaScript, a component of the
// wasmcached:store world (wit/store.wit), built with componentize-js
// (build.sh).
//
// A tiny key-value store: get, set, delete and an immediate flush_all, with
// client flags, expiry, CAS values and a memory budget. It never evicts: a
// full store answers out of memory. Everything else (add, cas, incr, touch,
// gat, delayed flush_all, ...) is answered with an error, the world's
// answer for what a plugin does not implement.
//
// The world carries a batch's keys and values in one Uint8Array and the
// answers' values in another, with spans ({offset, len}) into them in the
// records: `Batch` turns them into bytes and back. The world's types here:
// records are objects with camelCase fields, list<u8> a Uint8Array, u64 a
// BigInt, u8/u32/s32 a Number, option<T> T or undefined, tuple<a, b> a
// two-element array, result<_, string> a normal return or a thrown string.

import { now as hostNow } from 'wasmcached:store/host@0.2.0';

// Operations and statuses: the numbers of wit/store.wit.
const GET = 1, SET = 2, DELETE = 8, FLUSH_ALL = 13, MEM_LIMIT = 14;
const STORED = 0, NOT_FOUND = 3, DELETED = 4, HIT = 6, MISS = 7;
const TOO_LARGE = 10, OUT_OF_MEMORY = 11, OK = 12, ERROR = 13;
// Request flags (mflags): the two this store honours and the ones it may
// ignore (no stale items, no recache tokens, no `watch` reports). Any
// other bit is an error.
const NO_VALUE = 1 << 0, NO_BUMP = 1 << 1;
const IGNORED = (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);
// The answer flag: the item had been fetched before.
const FETCHED = 1 << 0;
// What an item costs beyond its key and value: the store's bookkeeping.
const ITEM_OVERHEAD = 64;
const EMPTY = new Uint8Array(0);
const utf8 = (s) => new TextEncoder().encode(s);

// A key's bytes as a string, one char per byte: a Map key that works for
// binary keys, as long as the key.
function latin1(bytes) {
  return String.fromCharCode.apply(null, bytes);
}

// One `handle` call's bytes: `key` and `value` read a request's from the
// batch's data; `answer` makes a response, its value appended to the
// answers' data.
class Batch {
  constructor(data) {
    this.data = data;
    this.values = [];
    this.used = 0;
  }

  key(r) {
    return latin1(this.data.subarray(r.key.offset, r.key.offset + r.key.len));
  }

  // A copy: the batch's data is not the store's.
  value(r) {
    return this.data.slice(r.value.offset, r.value.offset + r.value.len);
  }

  answer(status, {
    value = EMPTY, flags = 0, exptime = 0, cas = 0n, iflags = 0, lastAccess = 0, prevExptime = 0,
  } = {}) {
    let span = { offset: 0, len: 0 };
    if (value.length > 0) {
      span = { offset: this.used, len: value.length };
      this.values.push(value);
      this.used += value.length;
    }
    return { status, iflags, value: span, clientFlags: flags, exptime, cas, lastAccess, prevExptime };
  }

  answers(responses) {
    const data = new Uint8Array(this.used);
    let at = 0;
    for (const v of this.values) {
      data.set(v, at);
      at += v.length;
    }
    return { data, responses };
  }
}

const live = (item, now) => item.exptime === 0 || item.exptime > now;

// One shard's items (the server runs one instance per shard).
class Store {
  constructor(config) {
    this.items = new Map();
    this.used = 0;
    this.budget = Number(config.memoryBudget);
    this.maxItemSize = config.maxItemSize;
    this.casEnabled = config.casEnabled;
    // CAS values unique across shards: shard + k * shard_count.
    this.nextCas = BigInt(config.shardId) + 1n;
    this.casStep = BigInt(Math.max(config.shardCount, 1));
  }

  handle(data, requests) {
    const now = hostNow();
    const batch = new Batch(data);
    return batch.answers(requests.map((r) => this.one(batch, r, now)));
  }

  one(batch, r, now) {
    if (r.mflags & ~(NO_VALUE | NO_BUMP | IGNORED)) {
      return batch.answer(ERROR, { value: utf8('meta flag not supported by this store') });
    }
    if (r.op === GET) return this.get(batch, r, now);
    // A set with a CAS value is a compare-and-swap: not done here.
    if (r.op === SET && r.cas === 0n) return this.set(batch, r, now);
    if (r.op === DELETE && r.cas === 0n) {
      const item = this.remove(batch.key(r));
      return batch.answer(item !== undefined && live(item, now) ? DELETED : NOT_FOUND);
    }
    // Only flush_all without a delay (exptime 0 = now).
    if (r.op === FLUSH_ALL && r.exptime === 0) {
      this.items.clear();
      this.used = 0;
      return batch.answer(OK);
    }
    if (r.op === MEM_LIMIT) {
      this.budget = Number(r.delta);
      return batch.answer(OK);
    }
    return batch.answer(ERROR, { value: utf8('not supported by this store') });
  }

  get(batch, r, now) {
    const item = this.items.get(batch.key(r));
    if (item === undefined || !live(item, now)) return batch.answer(MISS);
    const resp = batch.answer(HIT, {
      value: (r.mflags & NO_VALUE) ? EMPTY : item.value,
      flags: item.flags,
      exptime: item.exptime,
      cas: item.cas,
      iflags: item.fetched ? FETCHED : 0,
      lastAccess: item.lastAccess,
      prevExptime: item.exptime,
    });
    if (!(r.mflags & NO_BUMP)) {
      item.fetched = true;
      item.lastAccess = now;
    }
    return resp;
  }

  set(batch, r, now) {
    const key = batch.key(r);
    const value = batch.value(r);
    // A set that fails still removes the old value, as in memcached.
    this.remove(key);
    if (key.length + value.length > this.maxItemSize) return batch.answer(TOO_LARGE);
    const cost = key.length + value.length + ITEM_OVERHEAD;
    if (this.used + cost > this.budget) {
      for (const [k, item] of [...this.items]) {
        if (!live(item, now)) this.remove(k);
      }
    }
    if (this.used + cost > this.budget) return batch.answer(OUT_OF_MEMORY);
    let cas = 0n;
    if (this.casEnabled) {
      cas = this.nextCas;
      this.nextCas += this.casStep;
    }
    const item = {
      value, flags: r.clientFlags, exptime: r.exptime, cas, lastAccess: now, fetched: false,
    };
    this.items.set(key, item);
    this.used += cost;
    return batch.answer(STORED, { cas, exptime: r.exptime });
  }

  remove(key) {
    const item = this.items.get(key);
    if (item !== undefined) {
      this.items.delete(key);
      this.used -= key.length + item.value.length + ITEM_OVERHEAD;
    }
    return item;
  }

  stats(group) {
    // memcached's names: `stats` shows them in their usual places.
    if (group !== 0) return [];
    return [['curr_items', String(this.items.size)], ['bytes', String(this.used)]];
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
  return undefined; // not called yet: items do not survive a reload
}

export function load(items) {
  return false;
}
