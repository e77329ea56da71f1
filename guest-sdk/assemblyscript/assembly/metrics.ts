// ABI v8 metrics for AssemblyScript plugins: Counter, Gauge and Histogram.
//
// Each metric's value lives in a block from `heap.alloc` that is never
// freed, at an 8-aligned address that never moves: updating it is a plain
// load and store, with no host call. Constructing a metric registers it;
// the SDK's `wmc_metrics` export then describes every registered metric to
// the host, which reads the values itself when it is scraped or asked for
// `stats plugin` (docs/plugin-abi.md, "Metrics (v8)"). Create them once, as
// module-level constants:
//
//   const refused = new Counter("refused_total", "Stores refused");
//   const sizes = new Histogram("value_bytes", "Sizes stored", [64, 1024, 16384]);
//   refused.inc(); sizes.observe(len);
//
// A bad name ([a-zA-Z_][a-zA-Z0-9_]*, at most 64 bytes), help over 256
// bytes or with control characters, bad bounds (finite, strictly
// increasing, at most 64), a name already taken or a 257th metric is
// logged and left out: the metric still counts, the host never sees it.

// @ts-ignore: decorator
@external("wasmcached", "log")
declare function host_log(level: i32, ptr: usize, len: i32): void;

const MAX_METRICS: i32 = 256;
const MAX_NAME: i32 = 64;
const MAX_HELP: i32 = 256;
const MAX_BOUNDS: i32 = 64;
const DESCRIPTOR_HEADER: i32 = 12;

class Entry {
  constructor(
    public kind: u8,
    public name: ArrayBuffer,
    public help: ArrayBuffer,
    public ptr: usize,
    public bounds: StaticArray<f64>,
  ) {}
}

const entries: Array<Entry> = [];

function logError(msg: string): void {
  const b = String.UTF8.encode(msg);
  host_log(0, changetype<usize>(b), b.byteLength);
}

/** `words` zeroed u64s at an 8-aligned address that stays allocated. */
function allocValues(words: i32): usize {
  const raw = heap.alloc(<usize>(words * 8 + 8));
  const p = (raw + 7) & ~(<usize>7);
  memory.fill(p, 0, <usize>(words * 8));
  return p;
}

function nameOk(n: ArrayBuffer): bool {
  const len = n.byteLength;
  if (len == 0 || len > MAX_NAME) return false;
  const p = changetype<usize>(n);
  for (let i = 0; i < len; i++) {
    const c = load<u8>(p + <usize>i);
    const alpha = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c == 0x5f;
    if (!alpha && !(i > 0 && c >= 0x30 && c <= 0x39)) return false;
  }
  return true;
}

function helpOk(h: ArrayBuffer): bool {
  if (h.byteLength > MAX_HELP) return false;
  const p = changetype<usize>(h);
  for (let i = 0; i < h.byteLength; i++) {
    const c = load<u8>(p + <usize>i);
    if (c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

function boundsOk(b: StaticArray<f64>): bool {
  if (b.length > MAX_BOUNDS) return false;
  for (let i = 0; i < b.length; i++) {
    if (!isFinite(b[i]) || (i > 0 && !(b[i] > b[i - 1]))) return false;
  }
  return true;
}

function add(kind: u8, name: string, help: string, ptr: usize, bounds: StaticArray<f64>): void {
  const n = String.UTF8.encode(name);
  const h = String.UTF8.encode(help);
  let why: string | null = null;
  if (entries.length >= MAX_METRICS) why = "more than 256 metrics";
  else if (!nameOk(n)) why = "not [a-zA-Z_][a-zA-Z0-9_]* of at most 64 bytes";
  else if (!helpOk(h)) why = "help over 256 bytes or with control characters";
  else if (!boundsOk(bounds)) why = "bounds not finite and strictly increasing (at most 64)";
  else {
    for (let i = 0; i < entries.length; i++) {
      if (entries[i].name.byteLength == n.byteLength &&
          memory.compare(changetype<usize>(entries[i].name), changetype<usize>(n),
                         <usize>n.byteLength) == 0) {
        why = "the name is already registered";
      }
    }
  }
  if (why !== null) {
    logError("metric " + name + " left out: " + why);
    return;
  }
  entries.push(new Entry(kind, n, h, ptr, bounds));
}

/** A count that only goes up (a u64 in linear memory). */
export class Counter {
  readonly ptr: usize;
  constructor(name: string, help: string = "") {
    this.ptr = allocValues(1);
    add(1, name, help, this.ptr, new StaticArray<f64>(0));
  }
  @inline inc(): void {
    store<u64>(this.ptr, load<u64>(this.ptr) + 1);
  }
  @inline add(n: u64): void {
    store<u64>(this.ptr, load<u64>(this.ptr) + n);
  }
  get(): u64 {
    return load<u64>(this.ptr);
  }
}

/** A level that goes up and down (an i64 in linear memory). */
export class Gauge {
  readonly ptr: usize;
  constructor(name: string, help: string = "") {
    this.ptr = allocValues(1);
    add(2, name, help, this.ptr, new StaticArray<f64>(0));
  }
  @inline set(v: i64): void {
    store<i64>(this.ptr, v);
  }
  @inline add(n: i64): void {
    store<i64>(this.ptr, load<i64>(this.ptr) + n);
  }
  get(): i64 {
    return load<i64>(this.ptr);
  }
}

/** Observations over finite upper bounds: a count per bound and one for
 *  +Inf (a value equal to a bound counts in that bound's bucket), then
 *  the sum, as the host reads them. */
export class Histogram {
  readonly ptr: usize;
  readonly bounds: StaticArray<f64>;
  constructor(name: string, help: string, bounds: Array<f64>) {
    this.bounds = StaticArray.fromArray<f64>(bounds);
    this.ptr = allocValues(bounds.length + 2);
    add(3, name, help, this.ptr, this.bounds);
  }
  observe(v: u64): void {
    const x = <f64>v;
    const n = this.bounds.length;
    let i = 0;
    while (i < n && x > unchecked(this.bounds[i])) i++;
    const slot = this.ptr + <usize>(i * 8);
    store<u64>(slot, load<u64>(slot) + 1);
    const sum = this.ptr + <usize>((n + 1) * 8);
    store<u64>(sum, load<u64>(sum) + v);
  }
  /** Bucket `i`'s count (i == bounds.length: +Inf). */
  count(i: i32): u64 {
    return load<u64>(this.ptr + <usize>(i * 8));
  }
  sum(): u64 {
    return load<u64>(this.ptr + <usize>((this.bounds.length + 1) * 8));
  }
}

let blockPtr: usize = 0;
let blockCap: i32 = 0;

/** The descriptor block of every registered metric, as (ptr << 32) | len;
 *  0 when there is none. Used by the SDK's wmc_metrics. */
export function metricsBlock(): i64 {
  const count = entries.length;
  if (count == 0) return 0;
  let need = 4;
  for (let i = 0; i < count; i++) {
    const e = entries[i];
    need += DESCRIPTOR_HEADER + e.name.byteLength + e.help.byteLength + 8 * e.bounds.length;
  }
  if (need > blockCap) {
    blockPtr = blockPtr ? heap.realloc(blockPtr, <usize>need) : heap.alloc(<usize>need);
    blockCap = need;
  }
  let o = blockPtr;
  store<u32>(o, <u32>count);
  o += 4;
  for (let i = 0; i < count; i++) {
    const e = entries[i];
    store<u8>(o, e.kind);
    store<u8>(o, <u8>e.name.byteLength, 1);
    store<u16>(o, <u16>e.help.byteLength, 2);
    store<u32>(o, <u32>e.ptr, 4);
    store<u32>(o, <u32>e.bounds.length, 8);
    o += DESCRIPTOR_HEADER;
    memory.copy(o, changetype<usize>(e.name), <usize>e.name.byteLength);
    o += <usize>e.name.byteLength;
    memory.copy(o, changetype<usize>(e.help), <usize>e.help.byteLength);
    o += <usize>e.help.byteLength;
    for (let b = 0; b < e.bounds.length; b++) {
      store<f64>(o, e.bounds[b]);
      o += 8;
    }
  }
  return <i64>((<u64>blockPtr << 32) | <u64>need);
}
