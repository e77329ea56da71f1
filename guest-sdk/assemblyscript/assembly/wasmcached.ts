// wasmcached AssemblyScript SDK: write a storage plugin as a class.
//
// The SDK implements the byte-level plugin ABI (docs/plugin-abi.md), version
// 1: it owns the input and output buffers, decodes each request record of a
// batch into a `Request`, calls your `Plugin`, and encodes what you answer
// through `Out` into response records.
//
// Usage (your entry file, e.g. assembly/index.ts):
//
//   import { Plugin, Request, Out, Config, Status, register } from "<path>/wasmcached";
//   class MyStore extends Plugin { ... override what you support ... }
//   register(new MyStore());
//   export { wmc_abi_version, wmc_input, wmc_init, wmc_batch, wmc_tick,
//            wmc_timer, wmc_stats } from "<path>/wasmcached";
//
// Build with assemblyscript 0.28:
//   npx asc assembly/index.ts -O3 --runtime incremental --noAssert --use abort= -o plugin.wasm
// (`--use abort=` drops the `env.abort` import the host would not provide.)
//
// Every Plugin method has a default that answers Error ("not supported"),
// which clients see as SERVER_ERROR. Answer each request exactly once; a
// second answer is ignored and a missing one becomes an Error. A request's
// key and value live in the host's input buffer and are valid only during
// the call: use keyBytes()/valueBytes()/keyString() to keep a copy.
//
// Memory: buffers come from `heap.alloc`; GC-managed objects from the
// runtime. The host caps the instance's memory; when AssemblyScript's
// runtime cannot grow, it traps, and the host restarts the shard empty (a
// fault, counted in `stats` as plugin_traps). Keep your store within
// Config.memoryBudget to stay clear of the cap.

// ---------------------------------------------------------------- constants

export const ABI_VERSION: i32 = 1;

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

export namespace MFlag {
  /** The caller does not need the value bytes. */
  export const NoValue: u32 = 1 << 0;
  /** Do not update LRU position / access time. */
  export const NoBump: u32 = 1 << 1;
}

export namespace IFlag {
  /** The item had been read before this request. */
  export const Fetched: u8 = 1 << 0;
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

const INIT_HEADER: u32 = 40;
const BATCH_HEADER: u32 = 4;
const REQUEST_HEADER: u32 = 40;
const RESPONSE_HEADER: u32 = 32;
const MAX_KEY: u32 = 250;
const OOM_MSG = "out of memory writing get response";
const OOM_LEN: u32 = 34;
/** Room kept per request so that an out-of-memory answer always fits. */
const RESERVE: u32 = RESPONSE_HEADER + OOM_LEN;

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

// ---------------------------------------------------------------- types

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
  /** Incr/Decr amount; MemLimit: the new budget in bytes. */
  delta: u64 = 0;
  mflags: u32 = 0;
  aux: u32 = 0;

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
  if (want > 0x7ffffff0) return false;
  let cap: u64 = outCap ? <u64>outCap : 256;
  while (cap < want) cap *= 2;
  if (cap > 0x7ffffff0) cap = want;
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
                exptime: u32, cas: u64, lastAccess: u32): usize {
    if (this.answered) return 0;
    this.answered = true;
    const total = <u64>RESPONSE_HEADER + keyLen + valueLen + <u64>pending * RESERVE;
    if (total > 0x7ffffff0 || !outReserve(<u32>total)) {
      writeHeader(Status.Error, 0, 0, OOM_LEN, 0, 0, 0, 0);
      const b = String.UTF8.encode(OOM_MSG);
      memory.copy(outPtr + outLen, changetype<usize>(b), OOM_LEN);
      outLen += OOM_LEN;
      return 0;
    }
    writeHeader(status, iflags, keyLen, valueLen, clientFlags, exptime, cas, lastAccess);
    const p = outPtr + outLen;
    outLen += keyLen + valueLen;
    return p;
  }

  /** A bare status: NotFound, NotStored, Exists, Deleted, Miss, Ok, ... */
  status(s: u8): void {
    this.begin(s, 0, 0, 0, 0, 0, 0, 0);
  }

  /** Stored, with the item's new CAS and exptime. */
  stored(cas: u64, exptime: u32): void {
    this.begin(Status.Stored, 0, 0, 0, 0, exptime, cas, 0);
  }

  /** Touched, with the item's CAS and new exptime. */
  touched(cas: u64, exptime: u32): void {
    this.begin(Status.Touched, 0, 0, 0, 0, exptime, cas, 0);
  }

  /** Number (incr/decr): the new value. */
  number(value: u64, cas: u64, exptime: u32): void {
    const d = fmtU64(value);
    const p = this.begin(Status.Number, 0, 0, <u32>d.length, 0, exptime, cas, 0);
    if (p) memory.copy(p, d.dataStart, <usize>d.length);
  }

  /** A Hit. Pass an empty value for requests with MFlag.NoValue. */
  hit(key: Uint8Array, value: Uint8Array, clientFlags: u32, exptime: u32, cas: u64,
      lastAccess: u32, iflags: u8): void {
    const p = this.begin(Status.Hit, iflags, <u32>key.length, <u32>value.length, clientFlags,
      exptime, cas, lastAccess);
    if (p) {
      memory.copy(p, key.dataStart, <usize>key.length);
      memory.copy(p + <usize>key.length, value.dataStart, <usize>value.length);
    }
  }

  /** An Error: the client sees `SERVER_ERROR <msg>`. */
  error(msg: string): void {
    const b = Uint8Array.wrap(String.UTF8.encode(msg));
    const p = this.begin(Status.Error, 0, 0, <u32>b.length, 0, 0, 0, 0);
    if (p) memory.copy(p, b.dataStart, <usize>b.length);
  }
}

function writeHeader(status: u8, iflags: u8, keyLen: u32, valueLen: u32, clientFlags: u32,
                     exptime: u32, cas: u64, lastAccess: u32): void {
  const h = outPtr + outLen;
  store<u8>(h, status);
  store<u8>(h, iflags & IFlag.Fetched, 1); // v1: only FETCHED
  store<u16>(h, <u16>keyLen, 2);
  store<u32>(h, valueLen, 4);
  store<u32>(h, clientFlags, 8);
  store<u32>(h, exptime, 12);
  store<u64>(h, cas, 16);
  store<u32>(h, lastAccess, 24);
  store<u32>(h, 0, 28); // reserved in v1
  outLen += RESPONSE_HEADER;
}

/** Collects `name value` stat lines. */
export class StatsOut {
  /** Adds the line `name value`. */
  stat(name: string, value: u64): void {
    this.line(name, value.toString());
  }
  /** Adds the line `name value` with a text value. */
  text(name: string, value: string): void {
    this.line(name, value);
  }
  private line(name: string, value: string): void {
    const b = String.UTF8.encode(name + " " + value + "\n");
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
}

let registered: Plugin | null = null;
let ready = false;

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
  const n = <u32>len;
  if (n > inCap || n < INIT_HEADER) return 1;
  const b = inPtr;
  const configLen = load<u32>(b, 36);
  if (configLen > n - INIT_HEADER) return 1;
  const c = new Config();
  c.abiVersion = load<u32>(b);
  c.shardId = load<u32>(b, 4);
  c.shardCount = load<u32>(b, 8);
  const flags = load<u32>(b, 12);
  c.casEnabled = (flags & 1) != 0;
  c.noEvict = (flags & 2) != 0;
  c.memoryBudget = load<u64>(b, 16);
  c.maxItemSize = load<u32>(b, 24);
  c.now = load<u32>(b, 28);
  c.config = String.UTF8.decodeUnsafe(b + INIT_HEADER, configLen);
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
  ready = true;
  return 0;
}

const req = new Request();

export function wmc_batch(len: i32): i64 {
  const n = <u32>len;
  outLen = 0;
  outReserve(BATCH_HEADER);
  store<u32>(outPtr, 0);
  outLen = BATCH_HEADER;
  if (n > inCap || n < BATCH_HEADER) return pack(outPtr, outLen);
  const announced = load<u32>(inPtr);
  if (<u64>announced * RESERVE > 0x7ffffff0) return pack(outPtr, outLen);
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
    if (!out.answered) out.error("plugin gave no answer");
  }
  store<u32>(outPtr, count);
  return pack(outPtr, outLen);
}

export function wmc_tick(now: i32): void {
  const p = registered;
  if (ready && p !== null) p.tick(<u32>now);
}

export function wmc_timer(token: i64): void {
  const p = registered;
  if (ready && p !== null) p.timer(<u64>token);
}

export function wmc_stats(group: i32): i64 {
  outLen = 0;
  outReserve(0);
  const p = registered;
  if (ready && p !== null) p.stats(group, new StatsOut());
  return pack(outPtr, outLen);
}
