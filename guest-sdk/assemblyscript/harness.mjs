// wasmcached AssemblyScript SDK: a test harness for a compiled plugin,
// run by Node.js (20+), with no server.
//
// AssemblyScript has no native build, so the harness drives the real
// .wasm through its exports, as the server does: it instantiates the
// module with node's WebAssembly API, provides the `wasmcached` imports
// (`now` returns a clock you set, `log` lines and `log_event` records are
// kept, `timer_set` requests are recorded), writes the init record,
// request batches and item chunks in the bytes of docs/plugin-abi.md into
// the buffer `wmc_input` gives, checks every answer as the host checks it
// (a response batch the host would refuse throws) and decodes it.
//
//   import { Harness, Op, Status, START } from "../../guest-sdk/assemblyscript/harness.mjs";
//   const h = await Harness.start("target/examples/as-lfu.wasm");
//   assert.equal(h.set("k", "v", 7, START + 10).status, Status.Stored);
//   assert.equal(h.get("k").text, "v");
//   h.advance(10);                                   // the clock, then one tick
//   assert.equal(h.get("k").status, Status.Miss);
//
// Keys and values are strings (UTF-8) or Uint8Arrays; CAS values, deltas
// and timer tokens are BigInts or numbers (answers carry BigInts). Each
// Harness is a fresh instance. What it cannot do is the host's memory cap:
// node gives an instance all the memory its module declares (up to 4 GiB).

import { readFileSync } from "node:fs";

/** The clock a harness starts at unless its config says otherwise. */
export const START = 1000;

export const Op = Object.freeze({
  Get: 1, Set: 2, Add: 3, Replace: 4, Append: 5, Prepend: 6, Cas: 7, Delete: 8,
  Incr: 9, Decr: 10, Touch: 11, Gat: 12, FlushAll: 13, MemLimit: 14,
});

export const Status = Object.freeze({
  Stored: 0, NotStored: 1, Exists: 2, NotFound: 3, Deleted: 4, Touched: 5, Hit: 6,
  Miss: 7, Number: 8, NonNumeric: 9, TooLarge: 10, OutOfMemory: 11, Ok: 12, Error: 13,
});
const STATUS_NAMES = Object.keys(Status);

export const MFlag = Object.freeze({
  NoValue: 1 << 0, NoBump: 1 << 1, Vivify: 1 << 2, Invalidate: 1 << 3, Recache: 1 << 4,
  KeyBinary: 1 << 5, SetTtl: 1 << 6, RecacheNewTtl: 1 << 7, HasCas: 1 << 8,
  MetaGet: 1 << 9, NoToken: 1 << 10, LogLookup: 1 << 11, LogEvictions: 1 << 12,
});

export const IFlag = Object.freeze({
  Fetched: 1 << 0, Stale: 1 << 1, TokenSent: 1 << 2, Won: 1 << 3, Created: 1 << 4,
  KeyBinary: 1 << 5,
});

export const StatsGroup = Object.freeze({ General: 0, Items: 1, Slabs: 2, Sizes: 3 });
export const LoadResult = Object.freeze({ Ok: 0, Full: 1, Unsupported: 2 });

const ABI_VERSION = 8;
const INIT_HEADER = 40, BATCH_HEADER = 4, REQUEST_HEADER = 40, RESPONSE_HEADER = 32;
const ITEM_HEADER = 28, ITER_HEADER = 16, ITEM_META_HEADER = 32, EVENT_HEADER = 24;

const utf8 = new TextEncoder();
const text = new TextDecoder();

function bytes(x) {
  if (x === undefined || x === null) return new Uint8Array(0);
  if (typeof x === "string") return utf8.encode(x);
  if (x instanceof Uint8Array) return x;
  throw new TypeError(`a key or value must be a string or a Uint8Array, not ${typeof x}`);
}

/** A server's default options and one shard (as the Rust harness's `config()`). */
export function defaultConfig() {
  return {
    shardId: 0,
    shardCount: 1,
    memoryBudget: 64 * 1024 * 1024,
    maxItemSize: 1024 * 1024,
    casEnabled: true,
    noEvict: false,
    now: START,
    config: "",
    chunkSize: 48,
    hashpower: 0,
  };
}

/** Grows as it is written: little-endian fields, as the ABI wants them. */
class Writer {
  constructor() { this.buf = new Uint8Array(256); this.len = 0; }
  room(n) {
    if (this.buf.length - this.len >= n) return;
    let cap = this.buf.length * 2;
    while (cap - this.len < n) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
  }
  u8(v) { this.room(1); this.buf[this.len++] = v & 0xff; }
  u16(v) { this.room(2); new DataView(this.buf.buffer).setUint16(this.len, v, true); this.len += 2; }
  u32(v) { this.room(4); new DataView(this.buf.buffer).setUint32(this.len, v >>> 0, true); this.len += 4; }
  u64(v) {
    this.room(8);
    new DataView(this.buf.buffer).setBigUint64(this.len, BigInt.asUintN(64, BigInt(v)), true);
    this.len += 8;
  }
  bytes(b) { this.room(b.length); this.buf.set(b, this.len); this.len += b.length; }
  done() { return this.buf.subarray(0, this.len); }
}

/** One decoded answer. */
export class Reply {
  constructor(fields) { Object.assign(this, fields); }
  /** The status's name ("Hit", "Stored", ...). */
  get statusName() { return STATUS_NAMES[this.status]; }
  get isHit() { return this.status === Status.Hit; }
  /** The value as text: a Hit's value, a Number's digits, an Error's message. */
  get text() { return text.decode(this.value); }
  /** A Number's value as a BigInt; null for another status or not digits. */
  get number() {
    return this.status === Status.Number && /^[0-9]{1,20}$/.test(this.text) ? BigInt(this.text) : null;
  }
}

/** Thrown by Harness.start when the plugin's init refuses. */
export class InitRefused extends Error {
  constructor(code, message) {
    super(`wmc_init refused (code ${code}): ${message}`);
    this.code = code;
    this.reason = message;
  }
}

export class Harness {
  /**
   * Instantiates the plugin (a path, the bytes, or a WebAssembly.Module)
   * and starts it with `config` (fields over defaultConfig()). Throws
   * InitRefused, with the error line the plugin logged, when init refuses.
   */
  static async start(wasm, config = {}) {
    const module = wasm instanceof WebAssembly.Module
      ? wasm
      : await WebAssembly.compile(typeof wasm === "string" ? readFileSync(wasm) : wasm);
    const h = new Harness();
    const imports = {
      wasmcached: {
        log: (level, ptr, len) => h.#log(level, ptr, len),
        now: () => h.clock,
        timer_set: (token, delayMs) => h.timers.push({ token: BigInt.asUintN(64, token), delayMs }),
        log_event: (ptr, len) => h.#logEvent(ptr, len),
      },
    };
    const wanted = WebAssembly.Module.imports(module).filter((i) => i.module !== "wasmcached");
    if (wanted.length) {
      throw new Error(`the plugin imports ${wanted.map((i) => `${i.module}.${i.name}`).join(", ")}: ` +
        "the host links only module wasmcached (build with --use abort=)");
    }
    h.instance = await WebAssembly.instantiate(module, imports);
    h.x = h.instance.exports;
    h.#init({ ...defaultConfig(), ...config });
    return h;
  }

  constructor() {
    this.clock = START;
    /** Every line the plugin logged: { level, text }. */
    this.logs = [];
    /** v6 watch events: { kind (1 lookup, 2 eviction, 3 stored), flags, key, request, ... }. */
    this.events = [];
    /** Timers the plugin asked for: { token (BigInt), delayMs }. */
    this.timers = [];
  }

  // ---- memory

  #mem() { return new Uint8Array(this.x.memory.buffer); }
  #view() { return new DataView(this.x.memory.buffer); }

  #log(level, ptr, len) {
    const line = text.decode(this.#mem().slice(ptr >>> 0, (ptr >>> 0) + len));
    this.logs.push({ level, text: line });
    if (process.env.WMC_H_VERBOSE) console.error(`plugin log ${level}: ${line}`);
  }

  #logEvent(ptr, len) {
    const at = ptr >>> 0;
    if (len < EVENT_HEADER || at + len > this.#mem().length) return;
    const v = this.#view();
    const kind = v.getUint8(at), keyLen = v.getUint16(at + 2, true);
    // A malformed record, or one that does not fill len, is ignored (as the host does).
    if (kind < 1 || kind > 3 || keyLen > 250 || len !== EVENT_HEADER + keyLen) return;
    this.events.push({
      kind,
      flags: v.getUint8(at + 1),
      key: this.#mem().slice(at + EVENT_HEADER, at + EVENT_HEADER + keyLen),
      request: v.getUint32(at + 4, true),
      valueLen: v.getUint32(at + 8, true),
      clientFlags: v.getUint32(at + 12, true),
      exptime: v.getUint32(at + 16, true),
      lastAccess: v.getUint32(at + 20, true),
    });
  }

  /** Writes `b` where wmc_input says. */
  #input(b) {
    const at = this.x.wmc_input(b.length) >>> 0;
    if (at === 0) throw new Error(`wmc_input(${b.length}) answered 0: the plugin has no memory`);
    this.#mem().set(b, at);
  }

  /** The bytes of a (ptr << 32) | len answer (a copy), checked to lie in memory. */
  #answer(packed, what) {
    const p = BigInt.asUintN(64, packed);
    const ptr = Number(p >> 32n), len = Number(p & 0xffffffffn);
    const mem = this.#mem();
    if (ptr + len > mem.length) {
      throw new Error(`${what}: answer at ${ptr} (${len} bytes) lies outside the plugin's memory`);
    }
    return mem.slice(ptr, ptr + len);
  }

  // ---- start

  #init(c) {
    if (this.x.wmc_abi_version() !== ABI_VERSION) {
      throw new Error(`wmc_abi_version() is ${this.x.wmc_abi_version()}; this harness speaks ${ABI_VERSION}`);
    }
    this.clock = c.now;
    const config = utf8.encode(c.config);
    const hints = new Writer();
    hints.u16(2); hints.u16(4); hints.u32(c.chunkSize); // -n
    hints.u16(3); hints.u16(4); hints.u32(c.hashpower); // -o hashpower
    const w = new Writer();
    w.u32(ABI_VERSION);
    w.u32(c.shardId);
    w.u32(c.shardCount);
    w.u32((c.casEnabled ? 1 : 0) | (c.noEvict ? 2 : 0));
    w.u64(c.memoryBudget);
    w.u32(c.maxItemSize);
    w.u32(c.now);
    w.u32(hints.len);
    w.u32(config.length);
    w.bytes(config);
    w.bytes(hints.done());
    const record = w.done();
    this.#input(record);
    const before = this.logs.length;
    const code = this.x.wmc_init(record.length);
    if (code !== 0) {
      const err = this.logs.slice(before).reverse().find((l) => l.level === 0);
      throw new InitRefused(code, err ? err.text : "(nothing logged at level error)");
    }
  }

  // ---- requests

  /**
   * Sends `reqs` ({ op, key, value, flags, exptime, cas, delta, mflags, aux },
   * missing fields 0) as one batch; the answers, in order.
   */
  batch(reqs) {
    const w = new Writer();
    w.u32(reqs.length);
    for (const r of reqs) {
      const key = bytes(r.key), value = bytes(r.value);
      w.u8(r.op);
      w.u8(0);
      w.u16(key.length);
      w.u32(value.length);
      w.u32(r.flags ?? 0);
      w.u32(r.exptime ?? 0);
      w.u64(r.cas ?? 0);
      w.u64(r.delta ?? 0);
      w.u32(r.mflags ?? 0);
      w.u32(r.aux ?? 0);
      w.bytes(key);
      w.bytes(value);
    }
    const batch = w.done();
    this.#input(batch);
    const b = this.#answer(this.x.wmc_batch(batch.length), "wmc_batch");
    // The host's checks (wasmcached_abi::check_responses).
    const refuse = (why) => { throw new Error(`the host would refuse this response batch: ${why}`); };
    if (b.length < BATCH_HEADER) refuse("short response batch");
    const v = new DataView(b.buffer, b.byteOffset, b.length);
    const count = v.getUint32(0, true);
    if (count !== reqs.length) refuse(`${count} responses for ${reqs.length} requests`);
    const out = [];
    let pos = BATCH_HEADER;
    for (let i = 0; i < count; i++) {
      if (b.length - pos < RESPONSE_HEADER) refuse(`malformed response record ${i}`);
      const status = v.getUint8(pos), iflags = v.getUint8(pos + 1);
      const keyLen = v.getUint16(pos + 2, true), valueLen = v.getUint32(pos + 4, true);
      if (iflags & 0x40) refuse(`response ${i} holds its value (VALUE_REF), which the SDK never does`);
      if (RESPONSE_HEADER + keyLen + valueLen > b.length - pos) refuse(`malformed response record ${i}`);
      if (status > Status.Error) refuse(`unknown response status ${status}`);
      const k = pos + RESPONSE_HEADER;
      out.push(new Reply({
        status,
        iflags,
        key: b.slice(k, k + keyLen),
        value: b.slice(k + keyLen, k + keyLen + valueLen),
        flags: v.getUint32(pos + 8, true),
        exptime: v.getUint32(pos + 12, true),
        cas: v.getBigUint64(pos + 16, true),
        lastAccess: v.getUint32(pos + 24, true),
        prevExptime: v.getUint32(pos + 28, true),
      }));
      pos = k + keyLen + valueLen;
    }
    return out;
  }

  /** One request in a batch of its own. */
  send(req) { return this.batch([req])[0]; }

  get(key) { return this.send({ op: Op.Get, key }); }
  /** Several keys in one batch, as a multiget. */
  getMany(keys) { return this.batch(keys.map((key) => ({ op: Op.Get, key }))); }
  /** exptime: server time (0 = never; see now). */
  set(key, value, flags = 0, exptime = 0) { return this.store(Op.Set, key, value, flags, exptime); }
  /** Op.Set, Add, Replace, Append or Prepend. */
  store(op, key, value, flags = 0, exptime = 0) { return this.send({ op, key, value, flags, exptime }); }
  cas(key, value, flags, exptime, cas) { return this.send({ op: Op.Cas, key, value, flags, exptime, cas }); }
  delete(key) { return this.send({ op: Op.Delete, key }); }
  incr(key, delta) { return this.send({ op: Op.Incr, key, delta }); }
  decr(key, delta) { return this.send({ op: Op.Decr, key, delta }); }
  touch(key, exptime) { return this.send({ op: Op.Touch, key, exptime }); }
  gat(key, exptime) { return this.send({ op: Op.Gat, key, exptime }); }
  flushAll(when = 0) { return this.send({ op: Op.FlushAll, exptime: when }); }
  memLimit(bytes) { return this.send({ op: Op.MemLimit, delta: bytes }); }

  // ---- clock and timers

  /** The server clock the plugin sees. */
  get now() { return this.clock; }
  /** Sets the clock; calls nothing on the plugin. */
  setNow(now) { this.clock = now; }
  /** Moves the clock `secs` on, then calls wmc_tick once; the new time. */
  advance(secs) {
    this.clock += secs;
    this.x.wmc_tick(this.clock);
    return this.clock;
  }
  /** wmc_tick at the current time. */
  tick() { this.x.wmc_tick(this.clock); }
  /** wmc_timer(token), as the host does when a timer fires. */
  fireTimer(token) { this.x.wmc_timer(BigInt.asIntN(64, BigInt(token))); }

  /** Whether the plugin logged a line containing `part`. */
  logged(part) { return this.logs.some((l) => l.text.includes(part)); }

  // ---- stats

  /** The `name value` lines of `group` as [name, value] pairs (declarations skipped). */
  stats(group = StatsGroup.General) {
    const lines = text.decode(this.#answer(this.x.wmc_stats(group), "wmc_stats")).split("\n");
    const out = [];
    for (const l of lines) {
      const sp = l.indexOf(" ");
      if (sp > 0) out.push([l.slice(0, sp), l.slice(sp + 1)]);
    }
    return out;
  }

  /** The value of stat `name` (a string), or undefined. */
  stat(name, group = StatsGroup.General) {
    const hit = this.stats(group).find(([n]) => n === name);
    return hit ? hit[1] : undefined;
  }

  /** The value of stat `name` as a number; throws if missing or not a number. */
  statNumber(name, group = StatsGroup.General) {
    const v = this.stat(name, group);
    if (v === undefined || !/^[0-9]+$/.test(v)) throw new Error(`stat ${name} is ${v}, not a number`);
    return Number(v);
  }

  // ---- dump, load, listing

  /** Every item through wmc_dump in chunks of at most chunkBytes; null if it cannot dump. */
  dump(chunkBytes = 1 << 20) {
    const items = [];
    for (let chunk = 0; chunk < 1_000_000; chunk++) {
      const r = this.x.wmc_dump(chunkBytes);
      if (r === -1n) return null;
      if (r === -2n) throw new Error("wmc_dump failed (-2: no memory for the chunk)");
      const b = this.#answer(r, "wmc_dump");
      if (b.length === 0) return items;
      const v = new DataView(b.buffer, b.byteOffset, b.length);
      const count = v.getUint32(0, true);
      if (count === 0) return items;
      let pos = BATCH_HEADER;
      for (let i = 0; i < count; i++) {
        if (b.length - pos < ITEM_HEADER) throw new Error(`malformed dump chunk: record ${i}`);
        const keyLen = v.getUint16(pos + 22, true), valueLen = v.getUint32(pos + 24, true);
        if (keyLen < 1 || keyLen > 250 || ITEM_HEADER + keyLen + valueLen > b.length - pos) {
          throw new Error(`malformed dump chunk: record ${i}`);
        }
        const k = pos + ITEM_HEADER;
        items.push({
          clientFlags: v.getUint32(pos, true),
          exptime: v.getUint32(pos + 4, true),
          cas: v.getBigUint64(pos + 8, true),
          lastAccess: v.getUint32(pos + 16, true),
          iflags: v.getUint8(pos + 20),
          refs: v.getUint8(pos + 21),
          key: b.slice(k, k + keyLen),
          value: b.slice(k + keyLen, k + keyLen + valueLen),
        });
        pos = k + keyLen + valueLen;
      }
      if (pos !== b.length) throw new Error("malformed dump chunk: bytes after the records");
    }
    throw new Error("the dump did not end after a million chunks");
  }

  /** Loads `items` (as dump gives them) in one chunk: a LoadResult. */
  load(items) {
    const w = new Writer();
    w.u32(items.length);
    for (const it of items) {
      const key = bytes(it.key), value = bytes(it.value);
      w.u32(it.clientFlags ?? 0);
      w.u32(it.exptime ?? 0);
      w.u64(it.cas ?? 0);
      w.u32(it.lastAccess ?? 0);
      w.u8(it.iflags ?? 0);
      w.u8(it.refs ?? 0);
      w.u16(key.length);
      w.u32(value.length);
      w.bytes(key);
      w.bytes(value);
    }
    const chunk = w.done();
    this.#input(chunk);
    const code = this.x.wmc_load(chunk.length);
    if (code < 0 || code > 2) throw new Error(`wmc_load answered ${code} for a well-formed chunk`);
    return code;
  }

  /** Every item through wmc_iter, following the cursor; null if it cannot list. */
  list(chunkBytes = 64 * 1024) {
    const items = [];
    let cursor = 0n;
    for (let chunk = 0; chunk < 1_000_000; chunk++) {
      const r = this.x.wmc_iter(cursor, chunkBytes);
      if (r === -1n) return null;
      if (r === -2n) throw new Error("wmc_iter failed (-2: no memory for the chunk)");
      const b = this.#answer(r, "wmc_iter");
      if (b.length === 0) return items;
      if (b.length < ITER_HEADER) throw new Error("malformed listing chunk");
      const v = new DataView(b.buffer, b.byteOffset, b.length);
      const count = v.getUint32(0, true), next = v.getBigUint64(8, true);
      let pos = ITER_HEADER;
      for (let i = 0; i < count; i++) {
        if (b.length - pos < ITEM_META_HEADER) throw new Error(`malformed listing chunk: record ${i}`);
        const keyLen = v.getUint16(pos + 30, true);
        if (keyLen < 1 || keyLen > 250 || ITEM_META_HEADER + keyLen > b.length - pos) {
          throw new Error(`malformed listing chunk: record ${i}`);
        }
        items.push({
          exptime: v.getUint32(pos, true),
          lastAccess: v.getUint32(pos + 4, true),
          cas: v.getBigUint64(pos + 8, true),
          clientFlags: v.getUint32(pos + 16, true),
          valueLen: v.getUint32(pos + 20, true),
          size: v.getUint32(pos + 24, true),
          iflags: v.getUint8(pos + 28),
          slabClass: v.getUint8(pos + 29),
          key: b.slice(pos + ITEM_META_HEADER, pos + ITEM_META_HEADER + keyLen),
        });
        pos += ITEM_META_HEADER + keyLen;
      }
      if (pos !== b.length) throw new Error("malformed listing chunk: bytes after the records");
      if (next === 0n) return items;
      cursor = next;
    }
    throw new Error("the listing did not end after a million chunks");
  }

  // ---- metrics

  /**
   * The metrics as the host reads them (after updateMetrics):
   * [{ kind: "counter" | "gauge" | "histogram", name, help, bounds, value }],
   * value a BigInt (a histogram's: { buckets, count, sum }).
   */
  metrics() {
    if (typeof this.x.wmc_metrics !== "function") return [];
    const b = this.#answer(this.x.wmc_metrics(), "wmc_metrics");
    if (b.length === 0) return [];
    const v = new DataView(b.buffer, b.byteOffset, b.length);
    const mem = this.#view();
    const count = v.getUint32(0, true);
    const out = [];
    let pos = 4;
    for (let i = 0; i < count; i++) {
      if (b.length - pos < 12) throw new Error(`malformed metrics block: descriptor ${i}`);
      const kind = v.getUint8(pos), nameLen = v.getUint8(pos + 1), helpLen = v.getUint16(pos + 2, true);
      const at = v.getUint32(pos + 4, true), nbounds = v.getUint32(pos + 8, true);
      if (kind < 1 || kind > 3 || nbounds > 64 || 12 + nameLen + helpLen + 8 * nbounds > b.length - pos) {
        throw new Error(`malformed metrics block: descriptor ${i}`);
      }
      if (at === 0 || at % 8 !== 0) throw new Error(`metric ${i}: value offset ${at}`);
      let p = pos + 12;
      const name = text.decode(b.slice(p, p + nameLen));
      p += nameLen;
      const help = text.decode(b.slice(p, p + helpLen));
      p += helpLen;
      const bounds = [];
      for (let k = 0; k < nbounds; k++, p += 8) bounds.push(v.getFloat64(p, true));
      let value;
      if (kind === 1) value = mem.getBigUint64(at, true);
      else if (kind === 2) value = mem.getBigInt64(at, true);
      else {
        const buckets = [];
        for (let k = 0; k <= nbounds; k++) buckets.push(mem.getBigUint64(at + 8 * k, true));
        value = {
          buckets,
          count: buckets.reduce((a, x) => a + x, 0n),
          sum: mem.getBigUint64(at + 8 * (nbounds + 1), true),
        };
      }
      out.push({ kind: ["", "counter", "gauge", "histogram"][kind], name, help, bounds, value });
      pos = p;
    }
    return out;
  }

  /** Metric `name` (see metrics()), or undefined. */
  metric(name) { return this.metrics().find((m) => m.name === name); }
}
