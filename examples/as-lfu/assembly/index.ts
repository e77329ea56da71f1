// as-lfu: a wasmcached storage plugin in AssemblyScript whose eviction is
// LFU with dynamic aging (LFU-DA) instead of memcached's LRU.
//
// Every item has a use count. A get, gat, touch or store of an existing key
// adds one; when the shard is over its memory budget, the item with the
// lowest count goes first (among equals, the least recently used one).
// Dynamic aging keeps yesterday's hot keys from living forever: the count
// of the last evicted item becomes the cache "age" L, and new items start
// at L + 1 instead of 1, so a key must keep being used to stay ahead.
// `--plugin-config aging=off` gives plain LFU (new items start at 1).
//
// The frequency structure is the O(1) LFU of Shah, Mitra and Matani: a
// list of count buckets in ascending order, each holding its items in
// recency order. Bump, insert and evict are constant time.
//
// Items survive `plugin reload` and warm restarts (ABI v3 dump/load): the
// dump walks the buckets from the least used item to the most used one and
// carries each item's uses above the cache age in the record's `refs` byte
// (v7, up to 255), so that after the load hot keys are still hot and the
// recency order inside each count is the same. Every item also has a slot
// in a table, which `lru_crawler metadump` walks (ABI v5 listing).

import {
  Config, Out, Plugin, Request, StatsOut, Op, Status, MFlag, IFlag, StatsGroup, Parsed,
  WalkItem, LoadedItem, Walk, Load,
  register, now, parseU64, fmtU64, logLookup, logStored, logEviction,
} from "../../../guest-sdk/assemblyscript/assembly/wasmcached";
import { Counter, Histogram } from "../../../guest-sdk/assemblyscript/assembly/metrics";

// ABI v8 metrics (stats plugin: metric:<name>; /metrics:
// wasmcached_plugin_<name>{shard}): what the LFU policy evicts.
const lfuEvictions = new Counter(
  "lfu_evictions_total", "Live items evicted to make room, least frequently used first");
const lfuEvictedUses = new Histogram(
  "lfu_evicted_uses", "How many times each evicted item had been used",
  [1.0, 2.0, 4.0, 16.0, 64.0, 256.0]);

/** memcached's item header (48) + CAS (8) + "\r\n" + NUL, for -I checks. */
const MC_OVERHEAD: u64 = 59;
/** What an item costs beyond its key and value: objects, map entry, the
 *  key again as a map string (2 bytes per byte). */
const ITEM_OVERHEAD: u64 = 160;
/** Empty or dead slots a listing call looks at before it pauses. */
const LIST_SCAN: i32 = 4096;
/** The dump cursor after the last item. */
const DUMP_END: u64 = U64.MAX_VALUE;
/** The item bits besides FETCHED an item keeps (v2 meta). */
const MARKS: u8 = IFlag.Stale | IFlag.TokenSent | IFlag.KeyBinary;

class Bucket {
  count: u64;
  head: Item | null = null; // most recently used
  tail: Item | null = null; // least recently used
  prev: Bucket | null = null;
  next: Bucket | null = null;
  constructor(count: u64) {
    this.count = count;
  }
}

class Item {
  mapKey: string;
  key: Uint8Array;
  value: Uint8Array;
  flags: u32 = 0;
  exptime: u32 = 0;
  atime: u32 = 0;
  cas: u64 = 0;
  fetched: bool = false;
  /** IFlag.Stale, TokenSent, KeyBinary. */
  marks: u8 = 0;
  /** Index in LfuStore.slots. */
  slot: i32 = -1;
  count: u64 = 0;
  bucket: Bucket | null = null;
  prev: Item | null = null;
  next: Item | null = null;
  constructor(mapKey: string, key: Uint8Array, value: Uint8Array) {
    this.mapKey = mapKey;
    this.key = key;
    this.value = value;
  }
  cost(): u64 {
    return costOf(<u64>this.key.length, <u64>this.value.length);
  }
  iflags(): u8 {
    return (this.fetched ? IFlag.Fetched : 0) | this.marks;
  }
}

function costOf(klen: u64, vlen: u64): u64 {
  return 3 * klen + vlen + ITEM_OVERHEAD;
}

class LfuStore extends Plugin {
  items: Map<string, Item> = new Map();
  /** Every item in a slot; the listing's cursor is a slot number. */
  slots: Array<Item | null> = [];
  freeSlots: Array<i32> = [];
  lowest: Bucket | null = null;
  budget: u64 = 0;
  used: u64 = 0;
  maxItemSize: u64 = 0;
  casEnabled: bool = true;
  noEvict: bool = false;
  shardId: u64 = 0;
  shardCount: u64 = 1;
  casSeq: u64 = 0;
  aging: bool = true;
  /** LFU-DA: the count of the last evicted item. */
  age: u64 = 0;
  oldestLive: u32 = 0;
  oldestCas: u64 = 0;
  parsed: Parsed = new Parsed();
  // stats
  totalItems: u64 = 0;
  bytes: u64 = 0;
  evictions: u64 = 0;
  reclaimed: u64 = 0;
  getExpired: u64 = 0;
  getFlushed: u64 = 0;
  evictedCountSum: u64 = 0;
  loaded: u64 = 0;
  /** The bucket the last loaded item went to (loads come in count order). */
  loadHint: Bucket | null = null;

  init(c: Config): string | null {
    if (c.shardCount == 0) return "as-lfu: bad shard count";
    this.budget = c.memoryBudget;
    this.maxItemSize = <u64>c.maxItemSize;
    this.casEnabled = c.casEnabled;
    this.noEvict = c.noEvict;
    this.shardId = <u64>c.shardId;
    this.shardCount = <u64>c.shardCount;
    // a restarted shard must not reuse CAS values its predecessor gave out
    this.casSeq = (<u64>c.now) << 20;
    const parts = c.config.split(",");
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i].trim();
      if (p.length == 0) continue;
      if (p == "aging=off") this.aging = false;
      else if (p == "aging=on") this.aging = true;
      else return "as-lfu: unknown setting '" + p + "' (known: aging=on|off)";
    }
    return null;
  }

  /** The meta flags handled here besides the advisory ones: binary keys,
   *  the TTL update of `ma T`, `md C0`. Vivify, invalidation and recache
   *  are answered Error by the SDK. */
  supportedMFlags(): u32 {
    return MFlag.ADVISORY | MFlag.KeyBinary | MFlag.SetTtl | MFlag.HasCas;
  }

  // ------------------------------------------------------------ buckets

  private unlinkFromBucket(it: Item): void {
    const b = it.bucket!;
    if (it.prev !== null) it.prev!.next = it.next;
    else b.head = it.next;
    if (it.next !== null) it.next!.prev = it.prev;
    else b.tail = it.prev;
    it.prev = null;
    it.next = null;
    it.bucket = null;
    if (b.head === null) {
      if (b.prev !== null) b.prev!.next = b.next;
      else this.lowest = b.next;
      if (b.next !== null) b.next!.prev = b.prev;
    }
  }

  private pushToBucket(it: Item, b: Bucket): void {
    it.bucket = b;
    it.count = b.count;
    it.prev = null;
    it.next = b.head;
    if (b.head !== null) b.head!.prev = it;
    b.head = it;
    if (b.tail === null) b.tail = it;
  }

  /** The bucket for `count`, inserted after `after` (null: at the front)
   *  when missing. Bucket counts ascend along the list. */
  private bucketAfter(after: Bucket | null, count: u64): Bucket {
    let prev = after;
    let next = after === null ? this.lowest : after.next;
    while (next !== null && next.count < count) {
      prev = next;
      next = next.next;
    }
    if (next !== null && next.count == count) return next;
    const b = new Bucket(count);
    b.prev = prev;
    b.next = next;
    if (prev !== null) prev.next = b;
    else this.lowest = b;
    if (next !== null) next.prev = b;
    return b;
  }

  /** One more use. */
  private bump(it: Item): void {
    const cur = it.bucket!;
    const target = this.bucketAfter(cur, it.count + 1);
    this.unlinkFromBucket(it);
    this.pushToBucket(it, target);
  }

  // ------------------------------------------------------------ items

  private nextCas(): u64 {
    if (!this.casEnabled) return 0;
    const c = this.casSeq * this.shardCount + this.shardId + 1;
    this.casSeq++;
    return c;
  }

  private isFlushed(it: Item, t: u32): bool {
    if (this.oldestLive == 0 || this.oldestLive > t) return false;
    return it.atime <= this.oldestLive ||
      (this.oldestCas != 0 && it.cas != 0 && it.cas < this.oldestCas);
  }

  private isDead(it: Item, t: u32): bool {
    return (it.exptime != 0 && it.exptime <= t) || this.isFlushed(it, t);
  }

  private addSlot(it: Item): void {
    if (this.freeSlots.length > 0) {
      it.slot = this.freeSlots.pop();
      this.slots[it.slot] = it;
    } else {
      it.slot = this.slots.length;
      this.slots.push(it);
    }
  }

  private remove(it: Item): void {
    this.items.delete(it.mapKey);
    this.slots[it.slot] = null;
    this.freeSlots.push(it.slot);
    it.slot = -1;
    this.unlinkFromBucket(it);
    this.used -= it.cost();
    this.bytes -= <u64>(it.key.length + it.value.length);
  }

  /** A live item; drops an expired or flushed one on the way. */
  private lookup(key: string, t: u32): Item | null {
    if (!this.items.has(key)) return null;
    const it = this.items.get(key);
    if (this.isFlushed(it, t)) {
      this.getFlushed++;
      this.remove(it);
      return null;
    }
    if (it.exptime != 0 && it.exptime <= t) {
      this.getExpired++;
      this.remove(it);
      return null;
    }
    return it;
  }

  /** lookup() of the request's key, reported to `watch fetchers` when the
   *  request asks (memcached's do_item_get). */
  private find(req: Request, key: string, t: u32): Item | null {
    const it = this.lookup(key, t);
    if (it !== null) logLookup(req, true, <u32>it.value.length, it.flags);
    else logLookup(req, false);
    return it;
  }

  /** Frees the least frequently used items (never `pin`) until `need`
   *  more bytes fit the budget. */
  private makeRoom(need: u64, pin: Item | null, t: u32): bool {
    while (this.used + need > this.budget) {
      let b = this.lowest;
      let victim: Item | null = null;
      while (b !== null) {
        victim = b.tail;
        if (victim === pin) victim = victim!.prev;
        if (victim !== null) break;
        b = b.next;
      }
      if (victim === null) return false;
      if (this.isDead(victim, t)) {
        this.reclaimed++;
      } else {
        if (this.noEvict) return false;
        logEviction(victim.key, victim.fetched, victim.exptime, victim.atime, victim.flags,
          <u32>victim.value.length);
        this.evictions++;
        this.evictedCountSum += victim.count;
        lfuEvictions.inc();
        lfuEvictedUses.observe(<u64>victim.count);
        if (this.aging) this.age = victim.count;
      }
      this.remove(victim);
    }
    return true;
  }

  private tooLarge(klen: u64, vlen: u64): bool {
    return MC_OVERHEAD + klen + vlen > this.maxItemSize || costOf(klen, vlen) > this.budget;
  }

  /** Writes `value` under the key, replacing `old` (keeping its count plus
   *  one use) or creating a new item at the cache's age + 1. */
  private put(req: Request, key: string, old: Item | null, value: Uint8Array, flags: u32,
              exptime: u32, t: u32, marks: u8): Item | null {
    const klen = <u64>req.keyLen;
    const need = costOf(klen, <u64>value.length);
    const freed = old !== null ? old.cost() : 0;
    if (need > freed && !this.makeRoom(need - freed, old, t)) return null;
    let it: Item;
    if (old !== null) {
      it = old;
      this.used -= old.cost();
      this.bytes -= <u64>(old.key.length + old.value.length);
      it.value = value;
      this.bump(it);
    } else {
      it = new Item(key, req.keyBytes(), value);
      this.items.set(key, it);
      this.addSlot(it);
      this.pushToBucket(it, this.bucketAfter(null, this.age + 1));
    }
    it.flags = flags;
    it.exptime = exptime;
    it.atime = t;
    it.fetched = false;
    it.marks = marks;
    it.cas = this.nextCas();
    this.used += it.cost();
    this.bytes += <u64>(it.key.length + it.value.length);
    this.totalItems++;
    return it;
  }

  // ------------------------------------------------------------ ops

  get(req: Request, out: Out): void {
    const t = now();
    const it = this.find(req, req.keyString(), t);
    if (it === null) {
      out.status(Status.Miss);
      return;
    }
    const last = it.atime;
    let iflags = it.iflags();
    // A stale item (loaded from a store that has them): the first meta get
    // wins its token.
    if ((it.marks & (IFlag.Stale | IFlag.TokenSent)) == IFlag.Stale &&
        (req.mflags & (MFlag.MetaGet | MFlag.NoToken)) == MFlag.MetaGet) {
      iflags |= IFlag.Won;
      it.marks |= IFlag.TokenSent;
    }
    const prevExptime = it.exptime;
    if (req.op == Op.Gat) it.exptime = req.exptime;
    if ((req.mflags & MFlag.NoBump) == 0) {
      it.fetched = true;
      it.atime = t;
      this.bump(it);
    }
    const value = (req.mflags & MFlag.NoValue) != 0 ? new Uint8Array(0) : it.value;
    out.hit(it.key, value, it.flags, it.exptime, it.cas, last, iflags, prevExptime);
  }

  touch(req: Request, out: Out): void {
    const t = now();
    const it = this.find(req, req.keyString(), t);
    if (it === null) {
      out.status(Status.NotFound);
      return;
    }
    it.exptime = req.exptime;
    if ((req.mflags & MFlag.NoBump) == 0) {
      it.fetched = true;
      it.atime = t;
      this.bump(it);
    }
    out.touched(it.cas, it.exptime);
  }

  store(req: Request, out: Out): void {
    const t = now();
    const key = req.keyString();
    let mode = req.op;
    if ((mode == Op.Set || mode == Op.Replace) && req.cas != 0) mode = Op.Cas;
    if (this.tooLarge(<u64>req.keyLen, <u64>req.valueLen)) {
      // memcached drops the old item when a set fails (no lookup reported:
      // the host reports the unlink)
      const gone = this.lookup(key, t);
      if (req.op == Op.Set && gone !== null) this.remove(gone);
      out.status(Status.TooLarge);
      return;
    }
    let old = this.find(req, key, t);
    // v2: a binary key is remembered by set/add/replace/cas, not by the
    // result of an append or prepend (as in memcached)
    let marks: u8 = 0;
    let flags = req.clientFlags;
    let exptime = req.exptime;
    let value: Uint8Array;
    if (mode == Op.Add && old !== null) {
      old.atime = t; // memcached promotes the existing item
      out.status(Status.NotStored);
      return;
    }
    if ((mode == Op.Replace || mode == Op.Append || mode == Op.Prepend) && old === null) {
      out.status(Status.NotStored);
      return;
    }
    if (mode == Op.Cas) {
      if (old === null) {
        out.status(Status.NotFound);
        return;
      }
      if (req.cas == 0 || req.cas != old.cas) {
        out.status(Status.Exists);
        return;
      }
    }
    if (mode == Op.Append || mode == Op.Prepend) {
      const o = old!;
      if (req.cas != 0 && req.cas != o.cas) {
        out.status(Status.Exists);
        return;
      }
      const total = <u64>o.value.length + <u64>req.valueLen;
      if (this.tooLarge(<u64>req.keyLen, total)) {
        out.status(Status.NotStored);
        return;
      }
      value = new Uint8Array(<i32>total);
      if (mode == Op.Append) {
        value.set(o.value, 0);
        memory.copy(value.dataStart + <usize>o.value.length, req.valuePtr, req.valueLen);
      } else {
        memory.copy(value.dataStart, req.valuePtr, req.valueLen);
        value.set(o.value, <i32>req.valueLen);
      }
      flags = o.flags;
      exptime = o.exptime;
    } else {
      value = req.valueBytes();
      if ((req.mflags & MFlag.KeyBinary) != 0) marks = IFlag.KeyBinary;
    }
    const it = this.put(req, key, old, value, flags, exptime, t, marks);
    if (it === null) {
      if (req.op == Op.Set) {
        old = this.lookup(key, t);
        if (old !== null) this.remove(old);
      }
      out.status(Status.OutOfMemory);
      return;
    }
    if (mode == Op.Append || mode == Op.Prepend) {
      logStored(req, <u32>it.value.length, it.flags, it.exptime);
    }
    out.stored(it.cas, it.exptime);
  }

  delete(req: Request, out: Out): void {
    const it = this.find(req, req.keyString(), now());
    if (it === null) {
      out.status(Status.NotFound);
      return;
    }
    // v2 HasCas (meta `md C0`): compare even a CAS of 0
    if ((req.cas != 0 || (req.mflags & MFlag.HasCas) != 0) && req.cas != it.cas) {
      out.status(Status.Exists);
      return;
    }
    this.remove(it);
    out.deleted(it.exptime);
  }

  arith(req: Request, out: Out): void {
    const t = now();
    const key = req.keyString();
    const it = this.find(req, key, t);
    if (it === null) {
      out.status(Status.NotFound);
      return;
    }
    const v = it.value;
    if (v.length == 0 || !parseU64(v.dataStart, <u32>v.length, this.parsed)) {
      out.status(Status.NonNumeric);
      return;
    }
    if (req.cas != 0 && req.cas != it.cas) {
      out.status(Status.Exists);
      return;
    }
    const cur = this.parsed.value;
    const n: u64 = req.op == Op.Incr ? cur + req.delta : (cur < req.delta ? 0 : cur - req.delta);
    const digits = fmtU64(n);
    if (digits.length <= v.length) {
      // in place, padded with spaces, as memcached does
      v.set(digits, 0);
      v.fill(32, digits.length);
      it.cas = this.nextCas();
      it.atime = t;
      this.bump(it);
      const prevExptime = it.exptime;
      // v2 SetTtl (meta `ma T`)
      if ((req.mflags & MFlag.SetTtl) != 0) it.exptime = req.exptime;
      out.number(n, it.cas, it.exptime, prevExptime);
      return;
    }
    const copy = new Uint8Array(digits.length);
    copy.set(digits, 0);
    // A longer number makes a new item, which keeps the old exptime even
    // with SetTtl (memcached 1.6.18) and does not keep a binary key mark.
    const prevExptime = it.exptime;
    const nit = this.put(req, key, it, copy, it.flags, it.exptime, t, 0);
    if (nit === null) {
      out.status(Status.OutOfMemory);
      return;
    }
    out.number(n, nit.cas, nit.exptime, prevExptime);
  }

  flushAll(req: Request, out: Out): void {
    const t = now();
    const when = req.exptime != 0 ? req.exptime : t;
    if (this.casEnabled) {
      this.oldestLive = when - 1;
      if (this.oldestLive <= t) this.oldestCas = this.nextCas();
    } else {
      this.oldestLive = when;
    }
    out.status(Status.Ok);
  }

  memLimit(req: Request, out: Out): void {
    this.budget = req.delta;
    if (!this.noEvict) this.makeRoom(0, null, now());
    out.status(Status.Ok);
  }

  /** Once a second: reclaim dead items among the least used ones. */
  tick(t: u32): void {
    let seen = 0;
    let b = this.lowest;
    while (b !== null && seen < 512) {
      const nextBucket = b.next;
      let it = b.tail;
      while (it !== null && seen < 512) {
        const prev = it.prev;
        seen++;
        if (this.isDead(it, t)) {
          this.reclaimed++;
          this.remove(it);
        }
        it = prev;
      }
      b = nextBucket;
    }
  }

  // ------------------------------------------------------------ dump, load, listing

  /** The walk behind dumps and listings. A dump goes from the least used
   *  item to the most used one, least recently used first within a count
   *  (the order a load rebuilds the buckets in); its cursor is the slot of
   *  the next item + 1 (nothing changes during a dump). A listing walks the
   *  slot table; its cursor is the slot to start at. */
  nextItem(cursor: u64, item: WalkItem): i32 {
    const t = now();
    if (item.dumping) {
      if (cursor == DUMP_END) return Walk.End;
      let it: Item | null;
      if (cursor == 0) {
        it = this.lowest !== null ? this.lowest!.tail : null;
      } else {
        const s = <i32>(cursor - 1);
        it = s < this.slots.length ? this.slots[s] : null;
      }
      while (it !== null && this.isDead(it, t)) it = this.dumpSuccessor(it);
      if (it === null) return Walk.End;
      const after = this.dumpSuccessor(it);
      item.next = after !== null ? <u64>after.slot + 1 : DUMP_END;
      this.describe(it, item);
      // v7 refs: the uses above the cache age (what a new item gets is 1)
      item.refs = it.count > this.age ? <u8>min<u64>(it.count - this.age, 255) : 0;
      return Walk.Found;
    }
    let s = cursor < <u64>this.slots.length ? <i32>cursor : this.slots.length;
    const stop = s + LIST_SCAN;
    while (s < this.slots.length) {
      if (s >= stop) {
        item.next = <u64>s;
        return Walk.Pause;
      }
      const it = this.slots[s];
      s++;
      if (it !== null && !this.isDead(it, t)) {
        item.next = <u64>s;
        this.describe(it, item);
        return Walk.Found;
      }
    }
    return Walk.End;
  }

  /** The item a dump takes after `it`: the next more recent one of its
   *  count, else the least recent one of the next count. */
  private dumpSuccessor(it: Item): Item | null {
    if (it.prev !== null) return it.prev;
    let b = it.bucket!.next;
    while (b !== null && b.tail === null) b = b.next;
    return b !== null ? b.tail : null;
  }

  private describe(it: Item, item: WalkItem): void {
    item.key = it.key;
    item.value = it.value;
    item.clientFlags = it.flags;
    item.exptime = it.exptime;
    item.cas = it.cas;
    item.lastAccess = it.atime;
    item.iflags = it.iflags();
  }

  /** One item of a dump: its count is its `refs` (uses above the dumping
   *  cache's age, which is 0 here); items come least used first, so each
   *  goes to the front of its count. */
  load(li: LoadedItem): i32 {
    const t = now();
    if (li.exptime != 0 && li.exptime <= t) return Load.Ok;
    const klen = <u64>li.keyLen;
    const vlen = <u64>li.valueLen;
    if (this.tooLarge(klen, vlen)) return Load.Ok;
    const key = li.keyString();
    if (this.items.has(key)) this.remove(this.items.get(key));
    if (!this.makeRoom(costOf(klen, vlen), null, t)) return Load.Full;
    const it = new Item(key, li.keyBytes(), li.valueBytes());
    it.flags = li.clientFlags;
    it.exptime = li.exptime;
    it.atime = li.lastAccess;
    it.fetched = (li.iflags & IFlag.Fetched) != 0;
    it.marks = li.iflags & MARKS;
    if (this.casEnabled) {
      it.cas = li.cas;
      // hand out only CAS values above every loaded one
      const seq = li.cas / this.shardCount + 1;
      if (seq > this.casSeq) this.casSeq = seq;
    }
    this.items.set(key, it);
    this.addSlot(it);
    const count = <u64>li.refs;
    let hint = this.loadHint;
    if (hint !== null && (hint.head === null || hint.count > count)) hint = null;
    const b = hint !== null ? this.bucketAfter(hint.prev, count) : this.bucketAfter(null, count);
    this.pushToBucket(it, b);
    this.loadHint = b;
    this.used += it.cost();
    this.bytes += klen + vlen;
    this.loaded++;
    return Load.Ok;
  }

  stats(group: i32, out: StatsOut): void {
    if (group != StatsGroup.General) return;
    out.stat("curr_items", <u64>this.items.size);
    out.stat("total_items", this.totalItems);
    out.stat("bytes", this.bytes);
    out.stat("evictions", this.evictions);
    out.stat("reclaimed", this.reclaimed);
    out.stat("get_expired", this.getExpired);
    out.stat("get_flushed", this.getFlushed);
    out.stat("lfu_age", this.age);
    out.stat("lfu_evicted_count_sum", this.evictedCountSum);
    let buckets: u64 = 0;
    let b = this.lowest;
    while (b !== null) {
      buckets++;
      b = b.next;
    }
    out.stat("lfu_buckets", buckets);
    out.stat("lfu_min_count", this.lowest !== null ? this.lowest!.count : 0);
    let maxCount: u64 = 0;
    b = this.lowest;
    while (b !== null) {
      maxCount = b.count;
      b = b.next;
    }
    out.stat("lfu_max_count", maxCount);
    out.stat("lfu_loaded_items", this.loaded);
  }
}

register(new LfuStore());

export {
  wmc_abi_version, wmc_input, wmc_init, wmc_batch, wmc_tick, wmc_timer, wmc_stats,
  wmc_dump, wmc_load, wmc_iter, wmc_metrics,
} from "../../../guest-sdk/assemblyscript/assembly/wasmcached";
