// wasmcached AssemblyScript SDK: write a storage plugin as a class.
//
// The SDK implements the byte-level plugin ABI (docs/plugin-abi.md), version
// 8: it owns the input and output buffers, decodes each request record of a
// batch into a `Request`, calls your `Plugin`, and encodes what you answer
// through `Out` into response records. It also runs the optional parts of
// the ABI for you when your plugin implements them:
//
//   - item dump and load (v3, v7 `refs`): `Plugin.nextItem` walks your
//     items, the SDK encodes them into `wmc_dump` chunks; `Plugin.load`
//     gets each item of a `wmc_load` chunk, checked and decoded. A `plugin
//     reload` (or a warm restart) then keeps the items.
//   - item listing (v5, `wmc_iter`): the same `Plugin.nextItem` walk serves
//     `lru_crawler metadump` and `stats cachedump`.
//   - init hints (v5): `Config.hints`.
//   - watch events (v6): `logLookup`, `logStored`, `logEviction` report to
//     `watch fetchers|mutations|evictions` when the request asks.
//   - metrics (v8, `wmc_metrics`): `Counter`, `Gauge` and `Histogram`
//     (metrics.ts) keep their values in linear memory, where the host
//     reads them; `Plugin.updateMetrics` sets gauges right before.
//   - meta flags (v2): `Request.mflags`/`aux` carry them, `Out` answers
//     with the v2 iflags and prev_exptime. Flags a plugin does not declare
//     in `Plugin.supportedMFlags()` are answered Error by the SDK.
//
// Held values (v4 VALUE_REF) are not offered: values are always copied.
//
// Usage (your entry file, e.g. assembly/index.ts):
//
//   import { Plugin, Request, Out, Config, Status, register } from "<path>/wasmcached";
//   class MyStore extends Plugin { ... override what you support ... }
//   register(new MyStore());
//   export { wmc_abi_version, wmc_input, wmc_init, wmc_batch, wmc_tick, wmc_timer,
//            wmc_stats, wmc_dump, wmc_load, wmc_iter, wmc_metrics } from "<path>/wasmcached";
//
// Build with assemblyscript 0.28:
//   npx asc assembly/index.ts -O3 --runtime incremental --noAssert --use abort= -o plugin.wasm
// (`--use abort=` drops the `env.abort` import the host would not provide.)
//
// Every request method of Plugin has a default that answers Error ("not
// supported"), which clients see as SERVER_ERROR. Answer each request
// exactly once; a second answer is ignored and a missing one becomes an
// Error. A request's key and value live in the host's input buffer and are
// valid only during the call: use keyBytes()/valueBytes()/keyString() to
// keep a copy.
//
// Memory: buffers come from `heap.alloc`; GC-managed objects from the
// runtime. The host caps the instance's memory; when AssemblyScript's
// runtime cannot grow, it traps, and the host restarts the shard empty (a
// fault, counted in `stats` as plugin_traps). Keep your store within
// Config.memoryBudget to stay clear of the cap.

import { metricsBlock } from "./metrics";
export { Counter, Gauge, Histogram } from "./metrics";

// ---------------------------------------------------------------- constants

export const ABI_VERSION: i32 = 8;

export namespace Op {
  export const Get: u8 = 1;
  export const Set: u8 = 2;
  export const Add: u8 = 3;
  export const Replace: u8 = 4;
  export const Append: u8 = 5;
  export const Prepend: u8 = 6;
  export const Cas: u8 = 7;
  export const Delete: u8 = 8;
  export const Incr: u8 = 9;
  export const Decr: u8 = 10;
  export const Touch: u8 = 11;
  export const Gat: u8 = 12;
  export const FlushAll: u8 = 13;
  export const MemLimit: u8 = 14;
}

export namespace Status {
  export const Stored: u8 = 0;
  export const NotStored: u8 = 1;
  export const Exists: u8 = 2;
  export const NotFound: u8 = 3;
  export const Deleted: u8 = 4;
  export const Touched: u8 = 5;
  export const Hit: u8 = 6;
  export const Miss: u8 = 7;
  export const Number: u8 = 8;
  export const NonNumeric: u8 = 9;
  export const TooLarge: u8 = 10;
  export const OutOfMemory: u8 = 11;
  export const Ok: u8 = 12;
  export const Error: u8 = 13;
}

/** Request mflags (docs/plugin-abi.md, "Meta flags (v2)"). */
export namespace MFlag {
  /** The caller does not need the value bytes. */
  export const NoValue: u32 = 1 << 0;
  /** Do not update LRU position / access time. */
  export const NoBump: u32 = 1 << 1;
  /** v2 Get/Gat: on a miss create an empty item expiring at `aux` (meta
   *  `mg N`); Incr/Decr: on a miss store the value bytes (meta `ma N J`). */
  export const Vivify: u32 = 1 << 2;
  /** v2 Delete: mark stale instead (meta `md I`); Cas: store a lower CAS
   *  as stale (meta `ms C I`). */
  export const Invalidate: u32 = 1 << 3;
  /** v2 Get/Gat: win the recache token below the threshold in `delta`. */
  export const Recache: u32 = 1 << 4;
  /** v2 stores: the key is binary (report IFlag.KeyBinary). */
  export const KeyBinary: u32 = 1 << 5;
  /** v2 Incr/Decr (and invalidating Delete): also set the exptime. */
  export const SetTtl: u32 = 1 << 6;
  /** v2 Gat with Recache: compare the exptime after the update. */
  export const RecacheNewTtl: u32 = 1 << 7;
  /** v2 Delete: `cas` is a compare value even when 0. */
  export const HasCas: u32 = 1 << 8;
  /** v2 Get/Gat: a meta get (takes a stale item's win token). Advisory. */
  export const MetaGet: u32 = 1 << 9;
  /** v2 Get/Gat: never hand out or mark the win token. Advisory. */
  export const NoToken: u32 = 1 << 10;
  /** v6: report this request's lookups through logLookup/logStored. */
  export const LogLookup: u32 = 1 << 11;
  /** v6: report the items this request evicts through logEviction. */
  export const LogEvictions: u32 = 1 << 12;
  /** What Plugin.supportedMFlags() answers by default: the flags a store
   *  may ignore or that only ask for reports. */
  export const ADVISORY: u32 = NoValue | NoBump | MetaGet | NoToken | LogLookup | LogEvictions;
}

/** Response iflags; the item record bits (Fetched, Stale, TokenSent,
 *  KeyBinary) also travel in dumps and listings. */
export namespace IFlag {
  /** The item had been read before this request. */
  export const Fetched: u8 = 1 << 0;
  /** v2: the item is stale (meta X). */
  export const Stale: u8 = 1 << 1;
  /** v2: its win token had been sent before this request (meta Z). */
  export const TokenSent: u8 = 1 << 2;
  /** v2: this request won the recache token (meta W). */
  export const Won: u8 = 1 << 3;
  /** v2: this request created the item (Vivify). */
  export const Created: u8 = 1 << 4;
  /** v2: the key was stored as binary. */
  export const KeyBinary: u8 = 1 << 5;
  /** The bits an item record (dump, load, listing) carries. */
  export const ITEM: u8 = Fetched | Stale | TokenSent | KeyBinary;
}

export namespace StatsGroup {
  export const General: i32 = 0;
  export const Items: i32 = 1;
  export const Slabs: i32 = 2;
  export const Sizes: i32 = 3;
}

export namespace LogLevel {
  export const Error: i32 = 0;
  export const Warn: i32 = 1;
  export const Info: i32 = 2;
  export const Debug: i32 = 3;
}

/** What Plugin.nextItem answers. */
export namespace Walk {
  /** No item at `cursor` or after it: the walk is complete. */
  export const End: i32 = 0;
  /** `item` holds the next item; `item.next` is where the walk resumes. */
  export const Found: i32 = 1;
  /** Nothing found yet, but enough places looked at for one call: resume
   *  at `item.next` (a listing returns its chunk there; a dump goes on). */
  export const Pause: i32 = 2;
  /** The plugin cannot walk its items (the default): no dump, no listing. */
  export const Unsupported: i32 = -1;
}

/** What Plugin.load answers. */
export namespace Load {
  /** The item was stored, or dropped because it is expired or too large. */
  export const Ok: i32 = 0;
  /** No memory for it: the host stops loading (the items taken stay). */
  export const Full: i32 = 1;
  /** The plugin cannot load items (the default). */
  export const Unsupported: i32 = 2;
}

const INIT_HEADER: u32 = 40;
const BATCH_HEADER: u32 = 4;
const REQUEST_HEADER: u32 = 40;
const RESPONSE_HEADER: u32 = 32;
const ITEM_HEADER: u32 = 28;
const ITER_HEADER: u32 = 16;
const ITEM_META_HEADER: u32 = 32;
const EVENT_HEADER: u32 = 24;
const MAX_KEY: u32 = 250;
const MAX_BUF: u64 = 0x7ffffff0;
const OOM_MSG = "out of memory writing get response";
const OOM_LEN: u32 = 34;
/** Room kept per request so that an out-of-memory answer always fits. */
const RESERVE: u32 = RESPONSE_HEADER + OOM_LEN;
/** `prevExptime` default of Out.hit/number: the item's exptime (unchanged). */
const SAME: u32 = 0xffffffff;
/** Response iflags a plugin may set (bits 0-5; VALUE_REF is not offered). */
const RESPONSE_IFLAGS: u8 = 0x3f;
/** wmc_dump / wmc_iter codes that are not chunks. */
const CHUNK_UNSUPPORTED: i64 = -1;
const CHUNK_FAILED: i64 = -2;
/** wmc_load codes. */
const LOAD_MALFORMED: i32 = 3;

// ---------------------------------------------------------------- host imports

// @ts-ignore: decorator
@external("wasmcached", "log")
declare function host_log(level: i32, ptr: usize, len: i32): void;
// @ts-ignore: decorator
@external("wasmcached", "now")
declare function host_now(): i32;
// @ts-ignore: decorator
@external("wasmcached", "timer_set")
declare function host_timer_set(token: i64, delay_ms: i32): void;
// @ts-ignore: decorator
@external("wasmcached", "log_event")
declare function host_log_event(ptr: usize, len: i32): void;

/** Writes a message to the server log (level 0 shows with -v). */
export function log(level: i32, msg: string): void {
  const b = String.UTF8.encode(msg);
  host_log(level, changetype<usize>(b), b.byteLength);
}

/** The server clock: seconds since the server started. */
export function now(): u32 {
  return <u32>host_now();
}

/** Asks the host to call Plugin.timer(token) after delayMs milliseconds. */
export function timerSet(token: u64, delayMs: u32): void {
  host_timer_set(<i64>token, <i32>delayMs);
}

// ---------------------------------------------------------------- watch events (v6)

/** Index in the running batch and mflags of the request being handled
 *  (0xFFFFFFFF and 0 outside wmc_batch: nothing is reported). */
let runIndex: u32 = 0xffffffff;
let runMflags: u32 = 0;
const eventBuf: usize = memory.data(<i32>(EVENT_HEADER + MAX_KEY));

/** Whether the running request asked for the reports of `mflag`
 *  (MFlag.LogLookup, MFlag.LogEvictions): the host asks only while someone
 *  runs `watch`, so a plugin may skip gathering what it would report. */
export function logging(mflag: u32): bool {
  return (runMflags & mflag) != 0;
}

function event(kind: u8, flags: u8, keyPtr: usize, keyLen: u32, valueLen: u32,
               clientFlags: u32, exptime: u32, lastAccess: u32): void {
  if (keyLen > MAX_KEY) keyLen = MAX_KEY;
  const b = eventBuf;
  store<u8>(b, kind);
  store<u8>(b, flags, 1);
  store<u16>(b, <u16>keyLen, 2);
  store<u32>(b, runIndex, 4);
  store<u32>(b, valueLen, 8);
  store<u32>(b, clientFlags, 12);
  store<u32>(b, exptime, 16);
  store<u32>(b, lastAccess, 20);
  memory.copy(b + EVENT_HEADER, keyPtr, keyLen);
  host_log_event(b, <i32>(EVENT_HEADER + keyLen));
}

/** Reports the lookup of the running request's key (memcached's
 *  `do_item_get`, shown by `watch fetchers`): `found` a live item (with its
 *  value length and flags) or nothing (expired and flushed items are
 *  nothing). Does nothing unless the request asked (MFlag.LogLookup).
 *  Call it once per lookup memcached makes: one for a get, gat, touch,
 *  delete, incr/decr and each store (not for a set refused as too large). */
export function logLookup(req: Request, found: bool, valueLen: u32 = 0, clientFlags: u32 = 0): void {
  if (!logging(MFlag.LogLookup)) return;
  event(1, found ? 1 : 0, req.keyPtr, req.keyLen, found ? valueLen : 0, found ? clientFlags : 0, 0, 0);
}

/** Reports a store the host cannot see the size of: an Append/Prepend that
 *  left `valueLen` bytes, or the item an Incr/Decr with Vivify created.
 *  Does nothing unless the request asked (MFlag.LogLookup). */
export function logStored(req: Request, valueLen: u32, clientFlags: u32, exptime: u32): void {
  if (!logging(MFlag.LogLookup)) return;
  event(3, 0, req.keyPtr, req.keyLen, valueLen, clientFlags, exptime, 0);
}

/** Reports an item evicted to make room (`watch evictions`). Does nothing
 *  unless the running request asked (MFlag.LogEvictions). */
export function logEviction(key: Uint8Array, fetched: bool, exptime: u32, lastAccess: u32,
                            clientFlags: u32, valueLen: u32): void {
  if (!logging(MFlag.LogEvictions)) return;
  event(2, fetched ? 1 : 0, key.dataStart, <u32>key.length, valueLen, clientFlags, exptime, lastAccess);
}

// ---------------------------------------------------------------- types

/** memcached's allocator, hash table and LRU settings (v5 init hints), as
 *  the server was started with them: honour those that map onto your store,
 *  ignore the rest. A hint the host did not send keeps memcached 1.6.18's
 *  default (the initial values below). */
export class Hints {
  /** -f growth factor. */
  growthFactor: f64 = 1.25;
  /** -n chunk size (bytes). */
  chunkSize: u32 = 48;
  /** -o hashpower (0: not given). */
  hashpower: u32 = 0;
  /** The hash table may expand (-o no_hashexpand clears it). */
  hashExpand: bool = true;
  /** -o hash_algorithm: 0 jenkins, 1 murmur3, 2 xxh3. */
  hashAlgorithm: u32 = 1;
  slabReassign: bool = true;
  slabAutomove: u32 = 1;
  slabAutomoveRatio: f64 = 0.8;
  slabAutomoveWindow: u32 = 30;
  slabAutomoveFreeratio: f64 = 0.01;
  slabChunkMax: u32 = 524288;
  /** -o slab_sizes (empty: from -f and -n). */
  slabSizes: u32[] = [];
  lruCrawler: bool = true;
  lruCrawlerSleep: u32 = 100;
  lruCrawlerTocrawl: u32 = 0;
  lruMaintainer: bool = true;
  lruSegmented: bool = true;
  hotLruPct: u32 = 20;
  warmLruPct: u32 = 40;
  hotMaxFactor: f64 = 0.2;
  warmMaxFactor: f64 = 2.0;
  tempLru: bool = false;
  temporaryTtl: u32 = 61;
  tailRepairTime: u32 = 0;
  /** -L: huge pages asked for. */
  largePages: bool = false;
}

/** Decodes a hints block into `h`; false if a record runs past its end. */
function decodeHints(p: usize, len: u32, h: Hints): bool {
  let pos: u32 = 0;
  while (pos < len) {
    if (len - pos < 4) return false;
    const tag = <u32>load<u16>(p + pos);
    const n = <u32>load<u16>(p + pos, 2);
    if (n > len - pos - 4) return false;
    const v = p + pos + 4;
    pos += 4 + n;
    const isU = n == 4;
    const isF = n == 8;
    switch (tag) {
      case 1: if (isF) h.growthFactor = load<f64>(v); break;
      case 2: if (isU) h.chunkSize = load<u32>(v); break;
      case 3: if (isU) h.hashpower = load<u32>(v); break;
      case 4: if (isU) h.hashExpand = load<u32>(v) != 0; break;
      case 5: if (isU) h.hashAlgorithm = load<u32>(v); break;
      case 6: if (isU) h.slabReassign = load<u32>(v) != 0; break;
      case 7: if (isU) h.slabAutomove = load<u32>(v); break;
      case 8: if (isF) h.slabAutomoveRatio = load<f64>(v); break;
      case 9: if (isU) h.slabAutomoveWindow = load<u32>(v); break;
      case 10: if (isF) h.slabAutomoveFreeratio = load<f64>(v); break;
      case 11: if (isU) h.slabChunkMax = load<u32>(v); break;
      case 12: {
        if (n % 4 == 0) {
          const a = new Array<u32>(<i32>(n / 4));
          for (let i: u32 = 0; i < n / 4; i++) a[<i32>i] = load<u32>(v + (i << 2));
          h.slabSizes = a;
        }
        break;
      }
      case 13: if (isU) h.lruCrawler = load<u32>(v) != 0; break;
      case 14: if (isU) h.lruCrawlerSleep = load<u32>(v); break;
      case 15: if (isU) h.lruCrawlerTocrawl = load<u32>(v); break;
      case 16: if (isU) h.lruMaintainer = load<u32>(v) != 0; break;
      case 17: if (isU) h.lruSegmented = load<u32>(v) != 0; break;
      case 18: if (isU) h.hotLruPct = load<u32>(v); break;
      case 19: if (isU) h.warmLruPct = load<u32>(v); break;
      case 20: if (isF) h.hotMaxFactor = load<f64>(v); break;
      case 21: if (isF) h.warmMaxFactor = load<f64>(v); break;
      case 22: if (isU) h.tempLru = load<u32>(v) != 0; break;
      case 23: if (isU) h.temporaryTtl = load<u32>(v); break;
      case 24: if (isU) h.tailRepairTime = load<u32>(v); break;
      case 25: if (isU) h.largePages = load<u32>(v) != 0; break;
      default: break; // a tag this SDK does not know
    }
  }
  return true;
}

/** What the host told this shard at start-up. */
export class Config {
  abiVersion: u32 = 0;
  shardId: u32 = 0;
  shardCount: u32 = 1;
  /** CAS values are kept (memcached without -C). */
  casEnabled: bool = true;
  /** Never evict; answer OutOfMemory instead (memcached -M). */
  noEvict: bool = false;
  /** Bytes this shard may use for items (-m / shards). */
  memoryBudget: u64 = 0;
  /** -I in bytes. */
  maxItemSize: u32 = 0;
  /** Server time at init. */
  now: u32 = 0;
  /** --plugin-config. */
  config: string = "";
  /** v5: memcached's slab, hash table and LRU settings. */
  hints: Hints = new Hints();
}

/** One request of a batch. The object is reused for every request. */
export class Request {
  op: u8 = 0;
  /** Key and value: addresses in the input buffer, valid during the call. */
  keyPtr: usize = 0;
  keyLen: u32 = 0;
  valuePtr: usize = 0;
  valueLen: u32 = 0;
  clientFlags: u32 = 0;
  /** Server time; 0 = never; <= now means already expired. */
  exptime: u32 = 0;
  /** Compare value (Cas; Delete/Incr/Decr/Append/Prepend when non-zero). */
  cas: u64 = 0;
  /** Incr/Decr amount; MemLimit: the new budget in bytes; v2 Get/Gat with
   *  MFlag.Recache: the recache threshold (server time). */
  delta: u64 = 0;
  /** MFlag bits. */
  mflags: u32 = 0;
  /** v2: with MFlag.Vivify, the exptime of the item created on a miss. */
  aux: u32 = 0;
  /** v6: this request's index in the batch (what watch events carry). */
  index: u32 = 0;

  /** Whether every bit of `mflag` is set. */
  has(mflag: u32): bool {
    return (this.mflags & mflag) == mflag;
  }
  /** A copy of the key. */
  keyBytes(): Uint8Array {
    return copyBytes(this.keyPtr, this.keyLen);
  }
  /** A copy of the value. */
  valueBytes(): Uint8Array {
    return copyBytes(this.valuePtr, this.valueLen);
  }
  /** The key as a string of one char per byte (lossless for any bytes):
   *  usable as a Map key. */
  keyString(): string {
    return bytesToKeyString(this.keyPtr, this.keyLen);
  }
}

/** One item of a load chunk (v3), handed to Plugin.load. Reused for every
 *  item; key and value are in the input buffer, valid during the call. */
export class LoadedItem {
  keyPtr: usize = 0;
  keyLen: u32 = 0;
  valuePtr: usize = 0;
  valueLen: u32 = 0;
  clientFlags: u32 = 0;
  /** Server time the item expires at; 0 = never. */
  exptime: u32 = 0;
  /** The item's CAS unique: keep it, and hand out only CAS values above it. */
  cas: u64 = 0;
  /** Server time of its last store or access. */
  lastAccess: u32 = 0;
  /** IFlag.Fetched | Stale | TokenSent | KeyBinary (other bits cleared). */
  iflags: u8 = 0;
  /** v7: the item's recency count in the dumping plugin's policy, 0 =
   *  coldest (the default store: its CLOCK counter, 0..3; as-lfu: uses above
   *  its cache age, up to 255). Use it or ignore it. */
  refs: u8 = 0;

  keyBytes(): Uint8Array {
    return copyBytes(this.keyPtr, this.keyLen);
  }
  valueBytes(): Uint8Array {
    return copyBytes(this.valuePtr, this.valueLen);
  }
  keyString(): string {
    return bytesToKeyString(this.keyPtr, this.keyLen);
  }
}

const EMPTY = new Uint8Array(0);

/** What Plugin.nextItem fills in for the item it found. The SDK resets every
 *  field before each call and copies what it needs right after it, so the
 *  plugin may hand over its own arrays (no copy). */
export class WalkItem {
  /** Set by the SDK: true while a dump (v3) runs, which nothing interrupts
   *  (the store does not change until it is over: any order works, and the
   *  order items are dumped in is the order they are loaded in); false for
   *  a listing (v5), whose cursor must stay meaningful while items come and
   *  go between two calls. */
  dumping: bool = false;
  /** Where the walk resumes after this item (or after a Walk.Pause). Never
   *  0: 0 is the start of a walk. */
  next: u64 = 0;
  /** 1..=250 bytes (an item with another key length is skipped). */
  key: Uint8Array = EMPTY;
  /** The value; a listing only uses its length. */
  value: Uint8Array = EMPTY;
  clientFlags: u32 = 0;
  /** Server time the item expires at; 0 = never. */
  exptime: u32 = 0;
  cas: u64 = 0;
  /** Server time of its last store or access. */
  lastAccess: u32 = 0;
  /** IFlag.Fetched | Stale | TokenSent | KeyBinary. */
  iflags: u8 = 0;
  /** Dump only (v7): the item's recency count in your policy, 0 = coldest. */
  refs: u8 = 0;
  /** Listing only: the item's total size in your measure; 0 = let the host
   *  compute memcached's. */
  size: u32 = 0;
  /** Listing only: your slab class 1..=63; 0 = none (the host shows
   *  memcached's default class for the size). */
  cls: u8 = 0;

  reset(dumping: bool): void {
    this.dumping = dumping;
    this.next = 0;
    this.key = EMPTY;
    this.value = EMPTY;
    this.clientFlags = 0;
    this.exptime = 0;
    this.cas = 0;
    this.lastAccess = 0;
    this.iflags = 0;
    this.refs = 0;
    this.size = 0;
    this.cls = 0;
  }
}

/** A copy of `len` bytes at `ptr`. */
export function copyBytes(ptr: usize, len: u32): Uint8Array {
  const a = new Uint8Array(<i32>len);
  memory.copy(a.dataStart, ptr, len);
  return a;
}

/** A string with one UTF-16 unit per byte: a lossless, hashable key. */
export function bytesToKeyString(ptr: usize, len: u32): string {
  const s = changetype<string>(__new(<usize>len << 1, idof<string>()));
  const d = changetype<usize>(s);
  for (let i: usize = 0; i < <usize>len; i++) {
    store<u16>(d + (i << 1), load<u8>(ptr + i));
  }
  return s;
}

/** The result of parseU64: `ok` and, when ok, `value`. */
export class Parsed {
  ok: bool = false;
  value: u64 = 0;
}

function isSpace(c: u32): bool {
  return c == 32 || (c >= 9 && c <= 13);
}

/** memcached's safe_strtoull on `len` bytes at `ptr` (an item value):
 *  true and `out.value` when they are a number incr/decr accepts. */
export function parseU64(ptr: usize, len: u32, out: Parsed): bool {
  let i: u32 = 0;
  while (i < len && isSpace(load<u8>(ptr + i))) i++;
  let neg = false;
  if (i < len && (load<u8>(ptr + i) == 43 || load<u8>(ptr + i) == 45)) {
    neg = load<u8>(ptr + i) == 45;
    i++;
  }
  const digits = i;
  let value: u64 = 0;
  let overflow = false;
  while (i < len) {
    const c = <u32>load<u8>(ptr + i);
    if (c < 48 || c > 57) break;
    const d = <u64>(c - 48);
    if (value > (U64.MAX_VALUE - d) / 10) overflow = true;
    else value = value * 10 + d;
    i++;
  }
  out.ok = false;
  if (i == digits || overflow) return false;
  if (i < len) {
    const c = <u32>load<u8>(ptr + i);
    if (!isSpace(c) && c != 0) return false;
  }
  const result: u64 = neg ? 0 - value : value;
  if (<i64>result < 0) {
    for (let j: u32 = 0; j < len; j++) {
      const c = load<u8>(ptr + j);
      if (c == 0) break;
      if (c == 45) return false;
    }
  }
  out.ok = true;
  out.value = result;
  return true;
}

/** Decimal digits of v. */
export function fmtU64(v: u64): Uint8Array {
  const tmp = new Uint8Array(20);
  let n = 0;
  do {
    tmp[19 - n] = <u8>(48 + <u32>(v % 10));
    v /= 10;
    n++;
  } while (v != 0);
  return tmp.subarray(20 - n);
}

/** A well-mixed 64-bit hash (xxHash64 rounds + murmur3 fmix64). */
export function hash64(ptr: usize, len: u32): u64 {
  const P1: u64 = 0x9e3779b185ebca87;
  const P2: u64 = 0xc2b2ae3d27d4eb4f;
  const P3: u64 = 0x165667b19e3779f9;
  let h: u64 = 0x243f6a8885a308d3 ^ (<u64>len * P1);
  let i: u32 = 0;
  for (; i + 8 <= len; i += 8) {
    h = rotl<u64>(h ^ (rotl<u64>(load<u64>(ptr + i) * P2, 31) * P1), 27) * P1 + P3;
  }
  if (i < len) {
    let lane: u64 = 0;
    for (let j: u32 = 0; i + j < len; j++) lane |= (<u64>load<u8>(ptr + i + j)) << (j * 8);
    h = rotl<u64>(h ^ (rotl<u64>(lane * P2, 31) * P1), 27) * P1 + P3;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccd;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53;
  return h ^ (h >> 33);
}

// ---------------------------------------------------------------- buffers

let inPtr: usize = 0;
let inCap: u32 = 0;
let outPtr: usize = 0;
let outLen: u32 = 0;
let outCap: u32 = 0;
/** Requests of the current batch still to answer after the current one. */
let pending: u32 = 0;

function outReserve(extra: u32): bool {
  if (outCap - outLen >= extra) return true;
  const want = <u64>outLen + extra;
  if (want > MAX_BUF) return false;
  let cap: u64 = outCap ? <u64>outCap : 256;
  while (cap < want) cap *= 2;
  if (cap > MAX_BUF) cap = want;
  // heap.realloc traps when memory cannot grow; the reserve made at the
  // start of a batch keeps error answers possible up to that point.
  outPtr = outPtr ? heap.realloc(outPtr, <usize>cap) : heap.alloc(<usize>cap);
  outCap = <u32>cap;
  return true;
}

function pack(ptr: usize, len: u32): i64 {
  return <i64>((<u64>ptr << 32) | <u64>len);
}

// ---------------------------------------------------------------- responses

/** The answer channel of one request. */
export class Out {
  answered: bool = false;

  /** Writes a full response; returns the address of its value bytes
   *  (valueLen of them) for the caller to fill, or 0 if already answered. */
  private begin(status: u8, iflags: u8, keyLen: u32, valueLen: u32, clientFlags: u32,
                exptime: u32, cas: u64, lastAccess: u32, prevExptime: u32): usize {
    if (this.answered) return 0;
    this.answered = true;
    const total = <u64>RESPONSE_HEADER + keyLen + valueLen + <u64>pending * RESERVE;
    if (total > MAX_BUF || !outReserve(<u32>total)) {
      writeHeader(Status.Error, 0, 0, OOM_LEN, 0, 0, 0, 0, 0);
      const b = String.UTF8.encode(OOM_MSG);
      memory.copy(outPtr + outLen, changetype<usize>(b), OOM_LEN);
      outLen += OOM_LEN;
      return 0;
    }
    writeHeader(status, iflags, keyLen, valueLen, clientFlags, exptime, cas, lastAccess,
      prevExptime);
    const p = outPtr + outLen;
    outLen += keyLen + valueLen;
    return p;
  }

  /** A bare status: NotFound, NotStored, Exists, Miss, Ok, ... */
  status(s: u8): void {
    this.begin(s, 0, 0, 0, 0, 0, 0, 0, 0);
  }

  /** Stored, with the item's new CAS and exptime (and v2 iflags, e.g.
   *  IFlag.KeyBinary). */
  stored(cas: u64, exptime: u32, iflags: u8 = 0): void {
    this.begin(Status.Stored, iflags, 0, 0, 0, exptime, cas, 0, 0);
  }

  /** Deleted; v2: `prevExptime` the item's exptime before the request. */
  deleted(prevExptime: u32 = 0, cas: u64 = 0): void {
    this.begin(Status.Deleted, 0, 0, 0, 0, 0, cas, 0, prevExptime);
  }

  /** Touched, with the item's CAS and new exptime. */
  touched(cas: u64, exptime: u32): void {
    this.begin(Status.Touched, 0, 0, 0, 0, exptime, cas, 0, 0);
  }

  /** Number (incr/decr): the new value. v2: `prevExptime` is the item's
   *  exptime before the request (default: `exptime`, i.e. unchanged);
   *  `iflags` e.g. IFlag.Created for a vivified item. */
  number(value: u64, cas: u64, exptime: u32, prevExptime: u32 = SAME, iflags: u8 = 0): void {
    const d = fmtU64(value);
    const p = this.begin(Status.Number, iflags, 0, <u32>d.length, 0, exptime, cas, 0,
      prevExptime == SAME ? exptime : prevExptime);
    if (p) memory.copy(p, d.dataStart, <usize>d.length);
  }

  /** A Hit. Pass an empty value for requests with MFlag.NoValue. v2:
   *  `iflags` may carry every IFlag bit; `prevExptime` is the item's exptime
   *  before the request (a Gat changes it; default: `exptime`). */
  hit(key: Uint8Array, value: Uint8Array, clientFlags: u32, exptime: u32, cas: u64,
      lastAccess: u32, iflags: u8, prevExptime: u32 = SAME): void {
    const p = this.begin(Status.Hit, iflags, <u32>key.length, <u32>value.length, clientFlags,
      exptime, cas, lastAccess, prevExptime == SAME ? exptime : prevExptime);
    if (p) {
      memory.copy(p, key.dataStart, <usize>key.length);
      memory.copy(p + <usize>key.length, value.dataStart, <usize>value.length);
    }
  }

  /** An Error: the client sees `SERVER_ERROR <msg>`. */
  error(msg: string): void {
    const b = Uint8Array.wrap(String.UTF8.encode(msg));
    const p = this.begin(Status.Error, 0, 0, <u32>b.length, 0, 0, 0, 0, 0);
    if (p) memory.copy(p, b.dataStart, <usize>b.length);
  }
}

function writeHeader(status: u8, iflags: u8, keyLen: u32, valueLen: u32, clientFlags: u32,
                     exptime: u32, cas: u64, lastAccess: u32, prevExptime: u32): void {
  const h = outPtr + outLen;
  store<u8>(h, status);
  store<u8>(h, iflags & RESPONSE_IFLAGS, 1);
  store<u16>(h, <u16>keyLen, 2);
  store<u32>(h, valueLen, 4);
  store<u32>(h, clientFlags, 8);
  store<u32>(h, exptime, 12);
  store<u64>(h, cas, 16);
  store<u32>(h, lastAccess, 24);
  store<u32>(h, prevExptime, 28);
  outLen += RESPONSE_HEADER;
}

/** Collects `name value` stat lines.
 *
 *  The host combines each stat over the shards. `stat` and `text` leave
 *  the rule to the name (summed; the largest shard's for names ending in
 *  `age`, `_time`, `chunk_size`, `_running`, ...). The typed calls say it:
 *  `counter` (events) and `gauge` (a level: items, bytes) are summed
 *  whatever the name, `max` (a high-water mark, a size, a time) is the
 *  largest shard's, `label` is shown per shard only (`stats shards`). */
export class StatsOut {
  /** Adds the line `name value`. */
  stat(name: string, value: u64): void {
    this.line(name, value.toString());
  }
  /** Adds the line `name value` with a text value (untyped: the first
   *  shard's shows in `stats plugin`). */
  text(name: string, value: string): void {
    this.line(name, value);
  }
  /** A count of events: summed over the shards. */
  counter(name: string, value: u64): void {
    this.line(name, value.toString(), "#counter\n");
  }
  /** A level (items, bytes held): summed over the shards. */
  gauge(name: string, value: u64): void {
    this.line(name, value.toString(), "#gauge\n");
  }
  /** A high-water mark, a size or a time: the largest shard's. */
  max(name: string, value: u64): void {
    this.line(name, value.toString(), "#max\n");
  }
  /** A text stat shown per shard only (`stats shards`), never combined. */
  label(name: string, value: string): void {
    this.line(name, value, "#text\n");
  }
  /** `declaration`: the line typing this one; hosts that predate typed
   *  stats skip it (it has no space). */
  private line(name: string, value: string, declaration: string = ""): void {
    const b = String.UTF8.encode(declaration + name + " " + value + "\n");
    const n = <u32>b.byteLength;
    outReserve(n);
    memory.copy(outPtr + outLen, changetype<usize>(b), n);
    outLen += n;
  }
}

// ---------------------------------------------------------------- plugin

/** A storage engine: override what you support. One instance per shard. */
export class Plugin {
  /** Builds the shard's store. Return null to accept, or a message to refuse
   *  (logged; the server does not start). */
  init(config: Config): string | null {
    return null;
  }
  /** The request mflags this plugin implements or may ignore. A request
   *  with any other bit is answered Error by the SDK without reaching the
   *  plugin (as the ABI asks of a plugin that does not implement a meta
   *  flag). Default: MFlag.ADVISORY. */
  supportedMFlags(): u32 {
    return MFlag.ADVISORY;
  }
  /** Get and Gat (req.op == Op.Gat: new exptime in req.exptime). */
  get(req: Request, out: Out): void {
    out.error("get is not supported by this plugin");
  }
  /** Set, Add, Replace, Append, Prepend, Cas (req.op tells which). */
  store(req: Request, out: Out): void {
    out.error("storing is not supported by this plugin");
  }
  delete(req: Request, out: Out): void {
    out.error("delete is not supported by this plugin");
  }
  /** Incr and Decr (req.op), amount in req.delta. */
  arith(req: Request, out: Out): void {
    out.error("incr/decr is not supported by this plugin");
  }
  touch(req: Request, out: Out): void {
    out.error("touch is not supported by this plugin");
  }
  /** FlushAll: req.exptime is when (0 = now). Answer Status.Ok. */
  flushAll(req: Request, out: Out): void {
    out.error("flush_all is not supported by this plugin");
  }
  /** MemLimit: req.delta is the new budget in bytes. Answer Status.Ok. */
  memLimit(req: Request, out: Out): void {
    out.error("memory limit changes are not supported by this plugin");
  }
  /** Once a second with the server time. */
  tick(now: u32): void {}
  /** A timer set with timerSet fired. */
  timer(token: u64): void {}
  /** Stat lines of `group` (StatsGroup.*). */
  stats(group: i32, out: StatsOut): void {}

  /** The item walk behind dumps (v3 wmc_dump, for `plugin reload` and warm
   *  restarts) and listings (v5 wmc_iter: `lru_crawler metadump`, `stats
   *  cachedump`). Fill `item` with the first live item (not expired, not
   *  flushed) at position `cursor` or after it, set `item.next` to the
   *  position after it and answer Walk.Found; Walk.End when none remain.
   *  `cursor` is 0 at the start of a walk, then a `next` you set: its
   *  meaning is yours (a slot number, ...). Must not change the store (no
   *  LRU bump, no access time, no expiry work). A listing's cursor must stay
   *  meaningful while items come and go between calls (an item stored or
   *  removed meanwhile may be listed or not; one that stays is listed once);
   *  `item.dumping` tells a dump, during which nothing else runs. After
   *  looking at a few thousand empty places, answer Walk.Pause with
   *  `item.next` set, so one call stays short. The SDK keeps the dump's
   *  cursor between wmc_dump calls, packs items into chunks of about the
   *  host's max_bytes (at least one item each) and encodes the records.
   *  Default: Walk.Unsupported (no dump: a reload starts the new plugin
   *  empty; no listing: memcached's refusal). */
  nextItem(cursor: u64, item: WalkItem): i32 {
    return Walk.Unsupported;
  }
  /** v3 load: store one item of a dump keeping its flags, exptime, CAS,
   *  last access and iflags (and, if you understand it, its v7 `refs`); from
   *  then on hand out only CAS values above every loaded one. An item
   *  already expired or too large may be dropped (Load.Ok). Items come in
   *  dump order. Answer Load.Full when out of memory. Default:
   *  Load.Unsupported. */
  load(item: LoadedItem): i32 {
    return Load.Unsupported;
  }
  /** v8: called right before the host reads the metrics (Counter, Gauge,
   *  Histogram): set the gauges that are cheaper to compute when asked
   *  than to keep up to date. */
  updateMetrics(): void {}
}

let registered: Plugin | null = null;
let ready = false;
let supported: u32 = 0;

/** Registers the plugin instance; call once from your entry file. */
export function register(p: Plugin): void {
  registered = p;
}

// ---------------------------------------------------------------- exports

export function wmc_abi_version(): i32 {
  return ABI_VERSION;
}

export function wmc_input(size: i32): i32 {
  const n = <u32>size;
  if (n > inCap || inPtr == 0) {
    if (inPtr) heap.free(inPtr);
    const cap = n < 64 ? <u32>64 : n;
    inPtr = heap.alloc(<usize>cap);
    inCap = cap;
  }
  return <i32>inPtr;
}

/** 0 accepted, 1 bad record, 2 ABI mismatch, 3 refused (as the Rust SDK). */
export function wmc_init(len: i32): i32 {
  endDump();
  const n = <u32>len;
  if (n > inCap || n < INIT_HEADER) return 1;
  const b = inPtr;
  const abiVersion = load<u32>(b);
  const configLen = load<u32>(b, 36);
  if (configLen > n - INIT_HEADER) return 1;
  // v5: bytes 32..36 are the length of the hints block after the config.
  const hintsLen = abiVersion >= 5 ? load<u32>(b, 32) : 0;
  if (hintsLen > n - INIT_HEADER - configLen) return 1;
  const c = new Config();
  c.abiVersion = abiVersion;
  c.shardId = load<u32>(b, 4);
  c.shardCount = load<u32>(b, 8);
  const flags = load<u32>(b, 12);
  c.casEnabled = (flags & 1) != 0;
  c.noEvict = (flags & 2) != 0;
  c.memoryBudget = load<u64>(b, 16);
  c.maxItemSize = load<u32>(b, 24);
  c.now = load<u32>(b, 28);
  c.config = String.UTF8.decodeUnsafe(b + INIT_HEADER, configLen);
  if (!decodeHints(b + INIT_HEADER + configLen, hintsLen, c.hints)) return 1;
  if (c.abiVersion != <u32>ABI_VERSION) return 2;
  const p = registered;
  if (p === null) {
    log(LogLevel.Error, "no plugin registered: call register(new MyPlugin()) in the entry file");
    return 3;
  }
  const err = p.init(c);
  if (err !== null) {
    log(LogLevel.Error, err);
    return 3;
  }
  supported = p.supportedMFlags() | MFlag.ADVISORY;
  ready = true;
  return 0;
}

const req = new Request();

export function wmc_batch(len: i32): i64 {
  endDump();
  const n = <u32>len;
  outLen = 0;
  outReserve(BATCH_HEADER);
  store<u32>(outPtr, 0);
  outLen = BATCH_HEADER;
  if (n > inCap || n < BATCH_HEADER) return pack(outPtr, outLen);
  const announced = load<u32>(inPtr);
  if (<u64>announced * RESERVE > MAX_BUF) return pack(outPtr, outLen);
  outReserve(announced * RESERVE);
  let pos: u32 = BATCH_HEADER;
  let count: u32 = 0;
  for (let i: u32 = 0; i < announced; i++) {
    pending = announced - i - 1;
    const out = new Out();
    let ok = n - pos >= REQUEST_HEADER;
    if (ok) {
      const h = inPtr + pos;
      req.op = load<u8>(h);
      req.keyLen = <u32>load<u16>(h, 2);
      req.valueLen = load<u32>(h, 4);
      req.clientFlags = load<u32>(h, 8);
      req.exptime = load<u32>(h, 12);
      req.cas = load<u64>(h, 16);
      req.delta = load<u64>(h, 24);
      req.mflags = load<u32>(h, 32);
      req.aux = load<u32>(h, 36);
      req.index = i;
      const end = <u64>pos + REQUEST_HEADER + req.keyLen + req.valueLen;
      ok = end <= <u64>n;
      if (ok) {
        req.keyPtr = h + REQUEST_HEADER;
        req.valuePtr = req.keyPtr + req.keyLen;
        pos = <u32>end;
      }
    }
    count++;
    if (!ok) {
      out.error("malformed request record");
      break;
    }
    const p = registered;
    if (!ready || p === null) {
      out.error("plugin not initialised");
      continue;
    }
    if (req.keyLen > MAX_KEY) {
      out.error("key too long");
      continue;
    }
    const refused = req.mflags & ~supported;
    if (refused != 0) {
      out.error("storage plugin does not support meta flag bits 0x" + refused.toString(16));
      continue;
    }
    runIndex = i;
    runMflags = req.mflags;
    switch (req.op) {
      case Op.Get:
      case Op.Gat:
        p.get(req, out);
        break;
      case Op.Set:
      case Op.Add:
      case Op.Replace:
      case Op.Append:
      case Op.Prepend:
      case Op.Cas:
        p.store(req, out);
        break;
      case Op.Delete:
        p.delete(req, out);
        break;
      case Op.Incr:
      case Op.Decr:
        p.arith(req, out);
        break;
      case Op.Touch:
        p.touch(req, out);
        break;
      case Op.FlushAll:
        p.flushAll(req, out);
        break;
      case Op.MemLimit:
        p.memLimit(req, out);
        break;
      default:
        out.error("unknown operation");
    }
    runIndex = 0xffffffff;
    runMflags = 0;
    if (!out.answered) out.error("plugin gave no answer");
  }
  store<u32>(outPtr, count);
  return pack(outPtr, outLen);
}

export function wmc_tick(now: i32): void {
  endDump();
  const p = registered;
  if (ready && p !== null) p.tick(<u32>now);
}

export function wmc_timer(token: i64): void {
  endDump();
  const p = registered;
  if (ready && p !== null) p.timer(<u64>token);
}

export function wmc_stats(group: i32): i64 {
  endDump();
  outLen = 0;
  outReserve(0);
  const p = registered;
  if (ready && p !== null) p.stats(group, new StatsOut());
  return pack(outPtr, outLen);
}

/** v8: the metrics descriptor block (see metrics.ts) as (ptr << 32) | len.
 *  Leaves a running dump alone: it writes no buffer of the dump's. */
export function wmc_metrics(): i64 {
  const p = registered;
  if (ready && p !== null) p.updateMetrics();
  return metricsBlock();
}

// ---------------------------------------------------------------- dump, load, listing

const walkItem = new WalkItem();
const loadedItem = new LoadedItem();
/** The running dump's position; any export but wmc_dump and wmc_input
 *  restarts it (as the Rust SDK does). */
let dumpCursor: u64 = 0;
/** The running dump has returned its last chunk. */
let dumpDone = false;

function endDump(): void {
  dumpCursor = 0;
  dumpDone = false;
}

function validKey(k: Uint8Array): bool {
  return k.length >= 1 && <u32>k.length <= MAX_KEY;
}

/** v3: the next chunk of item records as (ptr << 32) | len; 0 once no items
 *  remain; -1 the plugin cannot dump; -2 the dump failed. */
export function wmc_dump(maxBytes: i32): i64 {
  const p = registered;
  outLen = 0;
  if (!ready || p === null) return CHUNK_UNSUPPORTED;
  if (dumpDone) return 0;
  const max: u64 = maxBytes < 0 ? 0 : <u64>maxBytes;
  outReserve(BATCH_HEADER);
  store<u32>(outPtr, 0);
  outLen = BATCH_HEADER;
  let cur = dumpCursor;
  let count: u32 = 0;
  while (true) {
    walkItem.reset(true);
    const r = p.nextItem(cur, walkItem);
    if (r == Walk.End) {
      dumpDone = true;
      break;
    }
    if (r == Walk.Pause) {
      cur = walkItem.next;
      continue;
    }
    if (r != Walk.Found) {
      outLen = 0;
      // Unsupported before anything was dumped: the plugin has no dump.
      return r == Walk.Unsupported && cur == 0 && count == 0 ? CHUNK_UNSUPPORTED : CHUNK_FAILED;
    }
    const it = walkItem;
    if (!validKey(it.key)) {
      cur = it.next;
      continue;
    }
    const klen = <u32>it.key.length;
    const vlen = <u32>it.value.length;
    const recLen = <u64>ITEM_HEADER + klen + vlen;
    // A chunk holds at least one item, then stops at about max_bytes; the
    // item that did not fit comes first in the next chunk.
    if (count > 0 && <u64>outLen + recLen > max) break;
    if (<u64>outLen + recLen > MAX_BUF) {
      outLen = 0;
      return CHUNK_FAILED;
    }
    outReserve(<u32>recLen);
    const h = outPtr + outLen;
    store<u32>(h, it.clientFlags);
    store<u32>(h, it.exptime, 4);
    store<u64>(h, it.cas, 8);
    store<u32>(h, it.lastAccess, 16);
    store<u8>(h, it.iflags & IFlag.ITEM, 20);
    store<u8>(h, it.refs, 21);
    store<u16>(h, <u16>klen, 22);
    store<u32>(h, vlen, 24);
    memory.copy(h + ITEM_HEADER, it.key.dataStart, klen);
    memory.copy(h + ITEM_HEADER + klen, it.value.dataStart, vlen);
    outLen += <u32>recLen;
    count++;
    cur = it.next;
    if (cur == 0) {
      // Found with next 0 would restart the walk: take it as the last item.
      dumpDone = true;
      break;
    }
  }
  dumpCursor = cur;
  if (count == 0) {
    dumpDone = true;
    outLen = 0;
    return 0;
  }
  store<u32>(outPtr, count);
  return pack(outPtr, outLen);
}

/** v3: stores the chunk of item records in the input buffer. 0 every record
 *  taken, 1 out of memory, 2 the plugin cannot load, 3 malformed chunk. */
export function wmc_load(len: i32): i32 {
  endDump();
  const p = registered;
  if (!ready || p === null) return Load.Unsupported;
  const n = <u32>len;
  if (n > inCap || n < BATCH_HEADER) return LOAD_MALFORMED;
  const count = load<u32>(inPtr);
  // Check the whole chunk first: a malformed one stores nothing.
  let pos: u32 = BATCH_HEADER;
  for (let i: u32 = 0; i < count; i++) {
    if (n - pos < ITEM_HEADER) return LOAD_MALFORMED;
    const h = inPtr + pos;
    const klen = <u32>load<u16>(h, 22);
    const vlen = load<u32>(h, 24);
    if (klen == 0 || klen > MAX_KEY) return LOAD_MALFORMED;
    const end = <u64>pos + ITEM_HEADER + klen + vlen;
    if (end > <u64>n) return LOAD_MALFORMED;
    pos = <u32>end;
  }
  if (pos != n) return LOAD_MALFORMED;
  pos = BATCH_HEADER;
  const it = loadedItem;
  for (let i: u32 = 0; i < count; i++) {
    const h = inPtr + pos;
    it.clientFlags = load<u32>(h);
    it.exptime = load<u32>(h, 4);
    it.cas = load<u64>(h, 8);
    it.lastAccess = load<u32>(h, 16);
    it.iflags = load<u8>(h, 20) & IFlag.ITEM;
    it.refs = load<u8>(h, 21);
    it.keyLen = <u32>load<u16>(h, 22);
    it.valueLen = load<u32>(h, 24);
    it.keyPtr = h + ITEM_HEADER;
    it.valuePtr = it.keyPtr + it.keyLen;
    pos += ITEM_HEADER + it.keyLen + it.valueLen;
    const r = p.load(it);
    if (r == Load.Full) return Load.Full;
    if (r != Load.Ok) return Load.Unsupported;
  }
  return Load.Ok;
}

/** v5: the listing chunk that starts at `cursor`, as (ptr << 32) | len;
 *  -1 the plugin cannot list. */
export function wmc_iter(cursor: i64, maxBytes: i32): i64 {
  endDump();
  const p = registered;
  outLen = 0;
  if (!ready || p === null) return CHUNK_UNSUPPORTED;
  const max: u64 = maxBytes < 0 ? 0 : <u64>maxBytes;
  outReserve(ITER_HEADER);
  outLen = ITER_HEADER;
  let cur = <u64>cursor;
  let next: u64 = 0;
  let count: u32 = 0;
  while (true) {
    walkItem.reset(false);
    const r = p.nextItem(cur, walkItem);
    if (r == Walk.End) {
      next = 0;
      break;
    }
    if (r == Walk.Pause) {
      next = walkItem.next;
      break;
    }
    if (r != Walk.Found) {
      outLen = 0;
      return r == Walk.Unsupported ? CHUNK_UNSUPPORTED : CHUNK_FAILED;
    }
    const it = walkItem;
    if (!validKey(it.key)) {
      cur = it.next;
      continue;
    }
    const klen = <u32>it.key.length;
    const recLen = ITEM_META_HEADER + klen;
    if (count > 0 && <u64>outLen + recLen > max) {
      next = cur;
      break;
    }
    outReserve(recLen);
    const h = outPtr + outLen;
    store<u32>(h, it.exptime);
    store<u32>(h, it.lastAccess, 4);
    store<u64>(h, it.cas, 8);
    store<u32>(h, it.clientFlags, 16);
    store<u32>(h, <u32>it.value.length, 20);
    store<u32>(h, it.size, 24);
    store<u8>(h, it.iflags & IFlag.ITEM, 28);
    store<u8>(h, it.cls <= 63 ? it.cls : 0, 29);
    store<u16>(h, <u16>klen, 30);
    memory.copy(h + ITEM_META_HEADER, it.key.dataStart, klen);
    outLen += recLen;
    count++;
    cur = it.next;
    if (cur == 0) {
      // A plugin that answers Found with next 0 ends the listing here.
      next = 0;
      break;
    }
  }
  store<u32>(outPtr, count);
  store<u32>(outPtr, 0, 4);
  store<u64>(outPtr, next, 8);
  return pack(outPtr, outLen);
}
