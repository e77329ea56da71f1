#!/usr/bin/env python3
"""Bytes of RSS per item: memcached and wasmcached (any plugins) storing the
same items, a fresh server for every measurement.

For each value size (default 10 B, 100 B, 1 KiB, 10 KiB; 32 B keys) each
server is started afresh with the same flags (-t 1 -c 1024 -m generous: the
data with room to spare, so nothing is evicted), loaded with ITEMS pipelined
`set`s (replies read back, every one must be STORED), and then, once its hash
table is no longer expanding and its RSS has settled, VmRSS is read from
/proc/PID/status. The script checks `curr_items` == ITEMS and `evictions`
== 0 and prints

  bytes/item  = RSS after loading / ITEMS       (what the issue asks for)
  growth/item = (RSS after - RSS before loading) / ITEMS
  ratio       = bytes/item / memcached's bytes/item

Values are seeded pseudo-random bytes, a different value per item, so that a
store that compresses cannot gain (--compressible: ASCII digits instead).
Default item counts: 1M at 10 B, 100 B and 1 KiB, 100k at 10 KiB (the
counts are per size, --items).

Standard library only; servers on 127.0.0.1, free ports, always stopped.
Examples:
  scripts/mem-per-item.py
  scripts/mem-per-item.py --sizes 100 --items 1000000 --plugin target/examples/c-sieve.wasm
  scripts/mem-per-item.py --plugin old=target/bench/old-store.wasm --json /tmp/mem.json
"""

import argparse
import importlib.util
import json
import math
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def _load_hit_ratio():
    spec = importlib.util.spec_from_file_location("hit_ratio", os.path.join(HERE, "hit-ratio.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


hr = _load_hit_ratio()
ROOT, MIB = hr.ROOT, hr.MIB
DEFAULT_SIZES = [10, 100, 1024, 10240]
DEFAULT_ITEMS = [1_000_000, 1_000_000, 1_000_000, 100_000]


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    return 0


def generous_mb(items, key_size, value_size):
    """-m with room to spare for any store's per-item overhead."""
    return max(64, math.ceil(items * (key_size + value_size + 128) * 1.5 / MIB) + 32)


def load(client, items, key_size, value_size, compressible, seed, batch_bytes=1 << 20):
    """Pipelined sets of items 0..items-1; returns how many were STORED."""
    fmt = "key:%0" + str(key_size - 4) + "d"
    rng = random.Random(seed * 1000003 + value_size)
    fixed = hr.value_bytes(value_size, "digits")
    head = b" 0 0 %d\r\n" % value_size
    per = max(1, batch_bytes // (key_size + value_size + 20))
    stored = 0
    for start in range(0, items, per):
        end = min(items, start + per)
        if compressible:
            parts = [b"set " + (fmt % i).encode() + head + fixed + b"\r\n" for i in range(start, end)]
        else:
            rb = rng.randbytes
            parts = [b"set " + (fmt % i).encode() + head + rb(value_size) + b"\r\n" for i in range(start, end)]
        client.send(b"".join(parts))
        for _ in range(end - start):
            ln = client.line()
            if ln == b"STORED\r\n":
                stored += 1
            elif not ln.startswith(b"SERVER_ERROR"):
                raise ValueError("set answered %r" % ln)
    return stored


def settle(srv, max_wait=15.0):
    """Waits until the hash table is not expanding and RSS stops moving."""
    t_end = time.time() + max_wait
    while time.time() < t_end and srv.client.stats().get("hash_is_expanding", "0") not in ("0",):
        time.sleep(0.2)
    prev = rss_kb(srv.pid)
    while time.time() < t_end:
        time.sleep(0.5)
        cur = rss_kb(srv.pid)
        if abs(cur - prev) <= max(64, prev // 1000):
            return cur
        prev = cur
    return rss_kb(srv.pid)


def measure(cmd, items, value_size, key_size=32, threads=1, mem_mb=None, compressible=False, seed=1):
    """One fresh server: load, settle, read RSS. Returns a dict."""
    mem_mb = mem_mb or generous_mb(items, key_size, value_size)
    flags = ["-m", str(mem_mb), "-t", str(threads), "-c", "1024"]
    with hr.Server(cmd + flags) as srv:
        time.sleep(0.3)
        rss0 = rss_kb(srv.pid)
        t0 = time.time()
        stored = load(srv.client, items, key_size, value_size, compressible, seed)
        t_load = time.time() - t0
        rss1 = settle(srv)
        st = srv.client.stats()
        if srv.proc.poll() is not None:
            raise hr.ServerError("server exited")
    curr, ev = int(st.get("curr_items", -1)), int(st.get("evictions", -1))
    r = {"items": items, "value_size": value_size, "key_size": key_size, "mem_mb": mem_mb,
         "stored": stored, "curr_items": curr, "evictions": ev,
         "rss_before_kb": rss0, "rss_after_kb": rss1, "load_seconds": round(t_load, 2),
         "bytes_per_item": rss1 * 1024.0 / items, "growth_per_item": (rss1 - rss0) * 1024.0 / items,
         "ok": stored == items and curr == items and ev == 0}
    if not r["ok"]:
        r["error"] = "stored %d, curr_items %d, evictions %d of %d items" % (stored, curr, ev, items)
    return r


def servers_from_args(a):
    out = []
    if not a.no_memcached:
        out.append(("memcached", hr.memcached_cmd(a.memcached)))
    if a.no_default and not a.plugin:
        return out
    if not os.path.exists(a.wasmcached):
        sys.exit("no %s: cargo build --release -p wasmcached" % a.wasmcached)
    wasmcached = hr.pin(a.wasmcached)[0]  # one build for the whole run
    if not a.no_default:
        out.append(("wasmcached", [wasmcached]))
    for p in a.plugin:
        label, path = hr.parse_plugin(p)
        out.append((label, [wasmcached, "--plugin", hr.pin(path)[0]]))
    return out


def ints(s):
    return [int(float(x)) for x in s.split(",") if x]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=ints, default=DEFAULT_SIZES,
                    help="value sizes in bytes, comma-separated (default 10,100,1024,10240)")
    ap.add_argument("--items", type=ints, default=None,
                    help="items per size, comma-separated, or one count for all "
                         "(default 1000000 for 10 B, 100 B, 1 KiB and 100000 for 10 KiB)")
    ap.add_argument("--key-size", type=int, default=32)
    ap.add_argument("--compressible", action="store_true", help="values of ASCII digits instead of random bytes")
    ap.add_argument("--threads", type=int, default=1, help="-t for all servers (default 1)")
    ap.add_argument("--mem-mb", type=int, help="-m for all servers (default: generous, per size)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--memcached", default=os.environ.get("MEMCACHED_BIN", "/usr/bin/memcached"))
    ap.add_argument("--wasmcached", default=os.path.join(ROOT, "target", "release", "wasmcached"))
    ap.add_argument("--plugin", action="append", default=[], metavar="[LABEL=]FILE",
                    help="also measure wasmcached --plugin FILE (repeatable)")
    ap.add_argument("--no-memcached", action="store_true")
    ap.add_argument("--no-default", action="store_true", help="do not measure the embedded store")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    a = ap.parse_args()
    items = a.items or [dict(zip(DEFAULT_SIZES, DEFAULT_ITEMS)).get(s, 1_000_000) for s in a.sizes]
    if len(items) == 1:
        items = items * len(a.sizes)
    if len(items) != len(a.sizes):
        sys.exit("--items needs one count, or one per size")
    servers = servers_from_args(a)
    results = {}
    failed = False
    print("%d B keys, %s values; fresh server per measurement; -t %d -c 1024, -m %s"
          % (a.key_size, "compressible (digits)" if a.compressible else "pseudo-random", a.threads,
             a.mem_mb or "generous per size"), flush=True)
    for size, n in zip(a.sizes, items):
        for label, cmd in servers:
            try:
                r = measure(cmd, n, size, a.key_size, a.threads, a.mem_mb, a.compressible, a.seed)
            except (hr.ServerError, ValueError, ConnectionError, OSError) as e:
                r = {"items": n, "value_size": size, "ok": False, "error": str(e)}
            results.setdefault(label, {})[str(size)] = r
            if r.get("ok"):
                ref = results.get("memcached", {}).get(str(size), {})
                ratio = (" x%.2f of memcached" % (r["bytes_per_item"] / ref["bytes_per_item"])
                         if ref.get("ok") and label != "memcached" else "")
                print("value %6d B  %-12s items=%d -m %d rss %7.1f MiB -> %7.1f MiB  bytes/item=%.1f "
                      "(growth %.1f) load %.1fs%s"
                      % (size, label, n, r["mem_mb"], r["rss_before_kb"] / 1024, r["rss_after_kb"] / 1024,
                         r["bytes_per_item"], r["growth_per_item"], r["load_seconds"], ratio), flush=True)
            else:
                failed = True
                print("value %6d B  %-12s FAILED: %s" % (size, label, r.get("error")), flush=True)
    print()
    print(table(results, a.sizes, items))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"key_size": a.key_size, "compressible": a.compressible, "threads": a.threads,
                       "sizes": a.sizes, "items": items, "results": results}, f, indent=2)
    return 1 if failed else 0


def size_name(s):
    return "%d KiB" % (s // 1024) if s >= 1024 and s % 1024 == 0 else "%d B" % s


def table(results, sizes, items):
    """Markdown: one row per server, one column per value size."""
    hdr = "| bytes of RSS per item | " + " | ".join(
        "%s values (%s items)" % (size_name(s), ("%dM" % (n // 1000000)) if n % 1000000 == 0 else
                                  ("%dk" % (n // 1000)) if n % 1000 == 0 else n)
        for s, n in zip(sizes, items)) + " |"
    lines = [hdr, "|---|" + "---:|" * len(sizes)]
    for label, per in results.items():
        cells = []
        for s in sizes:
            r = per.get(str(s), {})
            ref = results.get("memcached", {}).get(str(s), {})
            if not r.get("ok"):
                cells.append("failed")
            elif label != "memcached" and ref.get("ok"):
                cells.append("%.0f (x%.2f)" % (r["bytes_per_item"], r["bytes_per_item"] / ref["bytes_per_item"]))
            else:
                cells.append("%.0f" % r["bytes_per_item"])
        lines.append("| %s | %s |" % (label, " | ".join(cells)))
    return "\n".join(lines)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
