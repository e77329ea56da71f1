// {{name}}: a wasmcached storage plugin in AssemblyScript.
//
// A tiny key-value store: Get, Set, Delete and an immediate flush_all, with
// client flags, expiry, CAS values and a memory budget. It never evicts: a
// full store answers out of memory. Everything else (add, cas, incr, touch,
// gat, delayed flush_all, ...) is answered with an error, the ABI's answer
// for what a plugin does not implement; the SDK also refuses the meta flags
// this store does not declare in supportedMFlags (by default it may ignore
// only the advisory ones, and honours NoValue and NoBump itself).

import {
  Config, Out, Plugin, Request, StatsOut, Op, Status, MFlag, IFlag, StatsGroup,
  register, now,
} from "./sdk/wasmcached";

/** What an item costs besides its key and value: the objects, the map entry
 *  and the key again as a map string (two bytes per byte). */
const ITEM_OVERHEAD: u64 = 128;

/** One stored value and what memcached keeps with it. */
class Item {
  key: Uint8Array;
  value: Uint8Array;
  clientFlags: u32 = 0;
  /** Server time it expires at; 0 = never. */
  exptime: u32 = 0;
  cas: u64 = 0;
  lastAccess: u32 = 0;
  fetched: bool = false;

  constructor(key: Uint8Array, value: Uint8Array) {
    this.key = key;
    this.value = value;
  }

  live(now: u32): bool {
    return this.exptime == 0 || this.exptime > now;
  }

  cost(): u64 {
    return <u64>this.key.length * 3 + <u64>this.value.length + ITEM_OVERHEAD;
  }
}

/** The store of one shard (the server runs one instance per shard). */
class Store extends Plugin {
  items: Map<string, Item> = new Map<string, Item>();
  nextCas: u64 = 0;
  used: u64 = 0;
  budget: u64 = 0;
  maxItemSize: u32 = 0;

  init(config: Config): string | null {
    this.budget = config.memoryBudget;
    this.maxItemSize = config.maxItemSize;
    return null;
  }

  get(req: Request, out: Out): void {
    if (req.op != Op.Get) {
      out.error("gat is not supported by this store");
      return;
    }
    const t = now();
    const key = req.keyString();
    if (!this.items.has(key)) {
      out.status(Status.Miss);
      return;
    }
    const item = this.items.get(key);
    if (!item.live(t)) {
      out.status(Status.Miss);
      return;
    }
    const value = req.has(MFlag.NoValue) ? new Uint8Array(0) : item.value;
    out.hit(item.key, value, item.clientFlags, item.exptime, item.cas, item.lastAccess,
      item.fetched ? IFlag.Fetched : 0);
    if (!req.has(MFlag.NoBump)) {
      item.fetched = true;
      item.lastAccess = t;
    }
  }

  store(req: Request, out: Out): void {
    // A Set with a CAS value is a compare-and-swap, which this store does
    // not do; nor add, replace, append, prepend or cas.
    if (req.op != Op.Set || req.cas != 0) {
      out.error("not supported by this store");
      return;
    }
    const key = req.keyString();
    // A set that fails still removes the old value, as in memcached.
    this.remove(key);
    if (<u64>req.keyLen + <u64>req.valueLen > <u64>this.maxItemSize) {
      out.status(Status.TooLarge);
      return;
    }
    const item = new Item(req.keyBytes(), req.valueBytes());
    if (this.used + item.cost() > this.budget) this.dropExpired();
    if (this.used + item.cost() > this.budget) {
      out.status(Status.OutOfMemory);
      return;
    }
    this.nextCas++;
    item.clientFlags = req.clientFlags;
    item.exptime = req.exptime;
    item.cas = this.nextCas;
    item.lastAccess = now();
    this.items.set(key, item);
    this.used += item.cost();
    out.stored(item.cas, item.exptime);
  }

  delete(req: Request, out: Out): void {
    if (req.cas != 0) {
      out.error("delete with a CAS value is not supported by this store");
      return;
    }
    const key = req.keyString();
    const found = this.items.has(key) && this.items.get(key).live(now());
    this.remove(key);
    out.status(found ? Status.Deleted : Status.NotFound);
  }

  flushAll(req: Request, out: Out): void {
    if (req.exptime != 0) {
      out.error("a delayed flush_all is not supported by this store");
      return;
    }
    this.items.clear();
    this.used = 0;
    out.status(Status.Ok);
  }

  memLimit(req: Request, out: Out): void {
    this.budget = req.delta;
    out.status(Status.Ok);
  }

  stats(group: i32, out: StatsOut): void {
    // memcached's names: `stats` shows them in their usual places.
    if (group == StatsGroup.General) {
      out.stat("curr_items", <u64>this.items.size);
      out.stat("bytes", this.used);
    }
  }

  remove(key: string): void {
    if (!this.items.has(key)) return;
    this.used -= this.items.get(key).cost();
    this.items.delete(key);
  }

  dropExpired(): void {
    const t = now();
    const keys = this.items.keys();
    for (let i = 0; i < keys.length; i++) {
      if (!this.items.get(keys[i]).live(t)) this.remove(keys[i]);
    }
  }
}

register(new Store());

// Every export of the ABI: the SDK answers dump, load and listing requests
// with "unsupported" and the metrics request with an empty block for a
// store that implements none of them.
export {
  wmc_abi_version, wmc_input, wmc_init, wmc_batch, wmc_tick, wmc_timer, wmc_stats,
  wmc_dump, wmc_load, wmc_iter, wmc_metrics,
} from "./sdk/wasmcached";
