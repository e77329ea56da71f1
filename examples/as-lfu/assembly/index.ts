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

import {
  Config, Out, Plugin, Request, StatsOut, Op, Status, MFlag, IFlag, StatsGroup, Parsed,
  register, now, parseU64, fmtU64,
} from "../../../guest-sdk/assemblyscript/assembly/wasmcached";

/** memcached's item header (48) + CAS (8) + "\r\n" + NUL, for -I checks. */
const MC_OVERHEAD: u64 = 59;
/** What an item costs beyond its key and value: objects, map entry, the
 *  key again as a map string (2 bytes per byte). */
const ITEM_OVERHEAD: u64 = 160;

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
}

function costOf(klen: u64, vlen: u64): u64 {
  return 3 * klen + vlen + ITEM_OVERHEAD;
}

class LfuStore extends Plugin {
  items: Map<string, Item> = new Map();
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

  private remove(it: Item): void {
    this.items.delete(it.mapKey);
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
        this.evictions++;
        this.evictedCountSum += victim.count;
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
              exptime: u32, t: u32): Item | null {
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
      this.pushToBucket(it, this.bucketAfter(null, this.age + 1));
    }
    it.flags = flags;
    it.exptime = exptime;
    it.atime = t;
    it.fetched = false;
    it.cas = this.nextCas();
    this.used += it.cost();
    this.bytes += <u64>(it.key.length + it.value.length);
    this.totalItems++;
    return it;
  }

  // ------------------------------------------------------------ ops

  get(req: Request, out: Out): void {
    const t = now();
    const it = this.lookup(req.keyString(), t);
    if (it === null) {
      out.status(Status.Miss);
      return;
    }
    const last = it.atime;
    const iflags: u8 = it.fetched ? IFlag.Fetched : 0;
    if (req.op == Op.Gat) it.exptime = req.exptime;
    if ((req.mflags & MFlag.NoBump) == 0) {
      it.fetched = true;
      it.atime = t;
      this.bump(it);
    }
    const value = (req.mflags & MFlag.NoValue) != 0 ? new Uint8Array(0) : it.value;
    out.hit(it.key, value, it.flags, it.exptime, it.cas, last, iflags);
  }

  touch(req: Request, out: Out): void {
    const t = now();
    const it = this.lookup(req.keyString(), t);
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
    let old = this.lookup(key, t);
    if (this.tooLarge(<u64>req.keyLen, <u64>req.valueLen)) {
      // memcached drops the old item when a set fails
      if (req.op == Op.Set && old !== null) this.remove(old);
      out.status(Status.TooLarge);
      return;
    }
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
    }
    const it = this.put(req, key, old, value, flags, exptime, t);
    if (it === null) {
      if (req.op == Op.Set) {
        old = this.lookup(key, t);
        if (old !== null) this.remove(old);
      }
      out.status(Status.OutOfMemory);
      return;
    }
    out.stored(it.cas, it.exptime);
  }

  delete(req: Request, out: Out): void {
    const it = this.lookup(req.keyString(), now());
    if (it === null) {
      out.status(Status.NotFound);
      return;
    }
    if (req.cas != 0 && req.cas != it.cas) {
      out.status(Status.Exists);
      return;
    }
    this.remove(it);
    out.status(Status.Deleted);
  }

  arith(req: Request, out: Out): void {
    const t = now();
    const key = req.keyString();
    const it = this.lookup(key, t);
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
      out.number(n, it.cas, it.exptime);
      return;
    }
    const copy = new Uint8Array(digits.length);
    copy.set(digits, 0);
    const nit = this.put(req, key, it, copy, it.flags, it.exptime, t);
    if (nit === null) {
      out.status(Status.OutOfMemory);
      return;
    }
    out.number(n, nit.cas, nit.exptime);
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
  }
}

register(new LfuStore());

export {
  wmc_abi_version, wmc_input, wmc_init, wmc_batch, wmc_tick, wmc_timer, wmc_stats,
} from "../../../guest-sdk/assemblyscript/assembly/wasmcached";
