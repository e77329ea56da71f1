#!/usr/bin/env python3
"""Storage engines side by side with memcached, in one run (issue 21):

  (a) bytes of RSS per item after storing N items of 32 B keys and 10 B,
      100 B, 1 KiB and 10 KiB values (1M items each, 100k at 10 KiB), fresh
      server per measurement (scripts/mem-per-item.py);
  (b) miss ratio of the live servers on the same request sequences, cache
      (-m) at 1 % and 10 % of the working set, on zipf 0.8, 1.0 and 1.2, a
      scan-polluted trace and a TTL-heavy trace (scripts/hit-ratio.py).

Servers: memcached (--memcached), wasmcached with its embedded store, and
wasmcached with each plugin given. Writes one JSON file (default
target/bench/store.json, rewritten after every measurement, so an
interrupted run keeps what it measured), renders it as an SVG
(scripts/store-chart.py; default: the JSON's name with .svg) and prints
markdown tables. docs/store-bench.md explains the traces and the method.

  scripts/store-bench.py --quick --examples          # end to end in minutes
  scripts/store-bench.py --examples                  # the full run, ~25 min
  scripts/store-bench.py --old-store target/bench/old-store.wasm \\
      --default-label "new store" --default-role new  # after the switch
  scripts/store-bench.py --new-store plugins/next-store.wasm --parts miss --traces ttl

Standard library only. Servers listen on 127.0.0.1 on free ports and are
stopped at exit, also on Ctrl-C, SIGTERM and errors. Exit status: 0 when
every measurement succeeded, 1 when one failed (it is recorded as such), 2
on a setup error.
"""

import argparse
import datetime
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def _load(name, file):
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, file))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


hr = _load("hit_ratio", "hit-ratio.py")
mpi = _load("mem_per_item", "mem-per-item.py")
ROOT, MIB = hr.ROOT, hr.MIB

EXAMPLES = ["c-sieve", "zig-s3fifo", "as-lfu", "c-quota"]
FULL = dict(keys=4_000_000, requests=4_000_000, ttl_requests=2_000_000, ttl_duration=40.0,
            mem_sizes=[10, 100, 1024, 10240], mem_items=[1_000_000, 1_000_000, 1_000_000, 100_000])
QUICK = dict(keys=1_600_000, requests=600_000, ttl_requests=240_000, ttl_duration=8.0,
             mem_sizes=[10, 100, 1024, 10240], mem_items=[100_000, 100_000, 20_000, 5_000])


def parse_traces(s):
    """zipf:0.8,zipf:1.0,scan,ttl:1.0 -> [(name, kind, alpha)]."""
    out = []
    for part in s.split(","):
        part = part.strip()
        if not part:
            continue
        kind, _, alpha = part.partition(":")
        if kind not in ("zipf", "scan", "ttl"):
            raise argparse.ArgumentTypeError("unknown trace %r (zipf[:ALPHA], scan[:ALPHA], ttl[:ALPHA])" % part)
        a = float(alpha) if alpha else 1.0
        name = "zipf %.1f" % a if kind == "zipf" else (kind if not alpha else "%s %.1f" % (kind, a))
        out.append((name, kind, a))
    return out


def floats(s):
    return [float(x) for x in s.split(",") if x]


def machine():
    cpu = "unknown"
    try:
        for ln in open("/proc/cpuinfo"):
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release()}


def cmd_out(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def servers_from_args(a):
    """[{label, role, cmd, file}] in run order."""
    out = []
    if not a.no_memcached:
        out.append({"label": "memcached", "role": "memcached", "cmd": hr.memcached_cmd(a.memcached)})
    # private copies: a concurrent build cannot change the code mid-run
    wasmcached, wid = hr.pin(a.wasmcached)
    a.wasmcached_sha256 = wid
    if not a.no_default:
        out.append({"label": a.default_label, "role": a.default_role, "cmd": [wasmcached],
                    "file": "(embedded)", "sha256": wid})
    plug = []
    if a.old_store:
        plug.append(("old store", a.old_store, "old"))
    if a.new_store:
        plug.append(("new store", a.new_store, "new"))
    for p in a.plugin:
        label, path = hr.parse_plugin(p)
        plug.append((label, path, "plugin"))
    if a.examples:
        for name in EXAMPLES:
            path = os.path.join(ROOT, "target", "examples", name + ".wasm")
            if os.path.exists(path):
                plug.append((name, path, "example"))
            else:
                print("store-bench: no %s (scripts/build-examples.sh %s); skipped" % (path, name),
                      file=sys.stderr)
    for label, path, role in plug:
        if not os.path.exists(path):
            raise SystemExit("store-bench: no plugin file %s" % path)
        copy, pid = hr.pin(path)
        out.append({"label": label, "role": role, "cmd": [wasmcached, "--plugin", copy],
                    "file": os.path.relpath(os.path.abspath(path), ROOT), "sha256": pid})
    order = {"memcached": 0, "old": 1, "default": 2, "new": 3}
    out.sort(key=lambda s: order.get(s["role"], 4))  # stable: plugins keep their order
    labels = [s["label"] for s in out]
    if len(set(labels)) != len(labels):
        raise SystemExit("store-bench: two servers share a label (%s); name them with --plugin LABEL=FILE"
                         % ", ".join(labels))
    return out


def pct(x):
    return "%.2f %%" % (100 * x) if x < 0.1 else "%.1f %%" % (100 * x)


def miss_table(data):
    """Markdown: one row per trace and cache size, one column per server."""
    labels = [s["label"] for s in data["servers"]]
    lagged = False
    lines = ["| trace | cache | " + " | ".join(labels) + " |", "|---|---|" + "---:|" * len(labels)]
    for run in data["miss"]["runs"]:
        res = run["results"]
        for key, suffix in (("miss_ratio", ""), ("zipf_miss_ratio", " (zipf gets only)")):
            if not any(key in r for r in res.values()):
                continue
            ref = res.get("memcached", {}).get(key)
            cells = []
            for lb in labels:
                r = res.get(lb)
                if r is None:
                    cells.append("")
                elif "error" in r:
                    cells.append("failed")
                elif ref and lb != "memcached":
                    cells.append("%s (%+.0f %%)" % (pct(r[key]), 100 * (r[key] - ref) / ref))
                else:
                    cells.append(pct(r[key]))
                if r and r.get("max_lag", 0) > 2:
                    cells[-1] += " *"
                    lagged = True
            lines.append("| %s%s | %.2f %% (-m %d) | %s |" % (run["trace"], suffix, 100 * run["fraction"],
                                                           run["mem_mb"], " | ".join(cells)))
    full = [r for r in data["miss"]["runs"]
            if r["results"] and all(x.get("evictions") == 0 for x in r["results"].values())]
    if full:
        lines.append("")
        lines.append("No server evicted anything in: %s. The cache held every key the trace requested, so "
                     "those rows count only first-time (and expiry) misses and cannot differ."
                     % ", ".join("%s at %.2f %%" % (r["trace"], 100 * r["fraction"]) for r in full))
    if lagged:
        lines.append("")
        lines.append("\\* the client fell more than 2 s behind the TTL trace's pacing (a busy machine): "
                     "items lived longer in requests than planned, so that run is not exactly comparable.")
    return "\n".join(lines)


def report(data):
    """The markdown tables of a run, on stdout."""
    print()
    print("## store-bench %s (%s, %s cores; memcached %s; git %s)%s"
          % (data["date"], data["machine"]["cpu"], data["machine"]["nproc"], data["memcached_version"],
             data["git"], " --quick" if data.get("quick") else ""))
    print()
    print("Servers: " + "; ".join("%s (%s%s)" % (s["label"], s.get("file", s["role"]).strip("()"),
                                                 ", sha256 " + s["sha256"] if s.get("sha256") else "")
                                  for s in data["servers"]))
    if data.get("mem"):
        print()
        print(mpi.table(data["mem"]["results"], data["mem"]["sizes"], data["mem"]["items"]))
    if data.get("miss") and data["miss"]["runs"]:
        print()
        print("Miss ratio (get_misses / gets after the %d %% warm-up; in brackets: relative to memcached's)"
              % round(100 * data["miss"]["warmup"]))
        print()
        print(miss_table(data))
    print()


def save(data, path):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="small sizes (1.6M keys, 600k requests, 100k items...): a few minutes")
    ap.add_argument("--out", default=os.path.join(ROOT, "target", "bench", "store.json"))
    ap.add_argument("--svg", help="chart path (default: --out with .svg); 'none' to skip")
    ap.add_argument("--parts", default="mem,miss", help="mem, miss or both (default mem,miss)")
    ap.add_argument("--memcached", default=os.environ.get("MEMCACHED_BIN", "/usr/bin/memcached"))
    ap.add_argument("--wasmcached", default=os.path.join(ROOT, "target", "release", "wasmcached"))
    ap.add_argument("--no-memcached", action="store_true")
    ap.add_argument("--no-default", action="store_true", help="do not run the embedded store")
    ap.add_argument("--default-label", default="default store",
                    help="label of the embedded store (default 'default store')")
    ap.add_argument("--default-role", choices=("default", "old", "new"), default="default",
                    help="its colour in the chart: default, old or new (default: default)")
    ap.add_argument("--old-store", metavar="FILE", help="a plugin labelled 'old store'")
    ap.add_argument("--new-store", metavar="FILE", help="a plugin labelled 'new store'")
    ap.add_argument("--plugin", action="append", default=[], metavar="[LABEL=]FILE",
                    help="wasmcached --plugin FILE (repeatable)")
    ap.add_argument("--examples", action="store_true",
                    help="also target/examples/{%s}.wasm" % ",".join(EXAMPLES))
    ap.add_argument("--traces", type=parse_traces, default=parse_traces("zipf:0.8,zipf:1.0,zipf:1.2,scan,ttl"),
                    help="miss-ratio traces (default zipf:0.8,zipf:1.0,zipf:1.2,scan,ttl; scan and ttl "
                         "take :ALPHA too, default 1.0)")
    ap.add_argument("--fractions", type=floats, default=[0.01, 0.10],
                    help="cache sizes as shares of the working set (default 0.01,0.1)")
    ap.add_argument("--keys", type=int, help="working-set keys (default 4000000; quick 1600000)")
    ap.add_argument("--requests", type=int, help="requests of zipf and scan traces (default 4000000; quick 600000)")
    ap.add_argument("--ttl-requests", type=int, help="requests of the ttl trace (default 2000000; quick 240000)")
    ap.add_argument("--ttl-duration", type=float, help="seconds the ttl trace is paced over (default 40; quick 8)")
    ap.add_argument("--ttl", type=int, default=5, help="the ttl trace's short TTL, s (default 5)")
    ap.add_argument("--short", type=float, default=0.9, help="share of keys with the short TTL (default 0.9)")
    ap.add_argument("--scan-every", type=int, help="scan: a scan every N requests (default requests/20)")
    ap.add_argument("--scan-len", type=int, help="scan: keys per scan (default scan-every/5)")
    ap.add_argument("--value-size", type=int, default=100, help="miss-ratio traces' value size (default 100)")
    ap.add_argument("--key-size", type=int, default=32)
    ap.add_argument("--warmup", type=float, default=0.5, help="share of requests not counted (default 0.5)")
    ap.add_argument("--batch", type=int, default=100, help="requests per pipelined batch (default 100)")
    ap.add_argument("--threads", type=int, default=1, help="-t for every server (default 1)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mem-sizes", type=mpi.ints, help="value sizes of the memory part (default 10,100,1024,10240)")
    ap.add_argument("--mem-items", type=mpi.ints,
                    help="items per value size (default 1M,1M,1M,100k; quick 100k,100k,20k,5k)")
    ap.add_argument("--compressible", action="store_true", help="memory part: digit values instead of random bytes")
    ap.add_argument("--from-json", metavar="FILE",
                    help="measure nothing: print the tables of an earlier run's JSON (and render its chart "
                         "with --svg FILE)")
    a = ap.parse_args()

    if a.from_json:
        data = json.load(open(a.from_json))
        report(data)
        if a.svg and a.svg != "none":
            return subprocess.call([sys.executable, os.path.join(HERE, "store-chart.py"), a.from_json, a.svg])
        return 0

    size = QUICK if a.quick else FULL
    keys = a.keys or size["keys"]
    requests = a.requests or size["requests"]
    ttl_requests = a.ttl_requests or size["ttl_requests"]
    ttl_duration = a.ttl_duration if a.ttl_duration is not None else size["ttl_duration"]
    mem_sizes = a.mem_sizes or size["mem_sizes"]
    mem_items = a.mem_items or (size["mem_items"] if a.mem_sizes is None else [size["mem_items"][1]])
    if len(mem_items) == 1:
        mem_items = mem_items * len(mem_sizes)
    if len(mem_items) != len(mem_sizes):
        sys.exit("store-bench: --mem-items needs one count, or one per size")
    parts = set(a.parts.split(","))
    if not parts <= {"mem", "miss"}:
        sys.exit("store-bench: --parts takes mem, miss")
    if not os.path.exists(a.wasmcached):
        sys.exit("store-bench: no %s: cargo build --release -p wasmcached" % a.wasmcached)
    if not a.no_memcached and not os.path.exists(a.memcached):
        sys.exit("store-bench: no %s: apt-get install memcached" % a.memcached)
    servers = servers_from_args(a)
    if not servers:
        sys.exit("store-bench: no servers to run")

    ws = keys * (a.key_size + a.value_size)
    caches = []
    for f in a.fractions:
        mb, real = hr.cache_mb(ws, f)
        if mb < 2:
            sys.exit("store-bench: %.1f %% of the working set is %.2f MiB; -m must be 2 or more: raise --keys"
                     % (100 * f, ws * f / MIB))
        caches.append((f, mb, real))

    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    t_start = time.time()
    data = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%MZ"),
        "machine": machine(),
        "memcached_version": (cmd_out([a.memcached, "-V"]).split() or ["?", "?"])[-1],
        "git": cmd_out(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]) or "unknown",
        "wasmcached": {"path": os.path.relpath(os.path.abspath(a.wasmcached), ROOT),
                       "sha256": a.wasmcached_sha256,
                       "mtime": datetime.datetime.fromtimestamp(os.path.getmtime(a.wasmcached),
                                                                datetime.timezone.utc).strftime("%Y-%m-%dT%H:%MZ")},
        "quick": a.quick,
        "threads": a.threads,
        "servers": [{k: v for k, v in s.items() if k != "cmd"} for s in servers],
        "mem": None,
        "miss": None,
    }
    print("store-bench: %s; servers: %s" % ("quick" if a.quick else "full size",
                                           ", ".join(s["label"] for s in servers)), flush=True)
    failed = False
    try:
        if "mem" in parts:
            mem = {"key_size": a.key_size, "compressible": a.compressible, "sizes": mem_sizes,
                   "items": mem_items, "results": {}}
            data["mem"] = mem
            print("== (a) RSS per item: %d B keys, values %s, items %s; fresh server each"
                  % (a.key_size, "/".join(mpi.size_name(s) for s in mem_sizes),
                     "/".join(str(n) for n in mem_items)), flush=True)
            for vs, n in zip(mem_sizes, mem_items):
                for s in servers:
                    try:
                        r = mpi.measure(s["cmd"], n, vs, a.key_size, a.threads, None, a.compressible, a.seed)
                    except (hr.ServerError, ValueError, ConnectionError, OSError) as e:
                        r = {"items": n, "value_size": vs, "ok": False, "error": str(e)}
                    mem["results"].setdefault(s["label"], {})[str(vs)] = r
                    if r.get("ok"):
                        print("  %-9s %-16s %8.1f bytes/item (RSS %.1f MiB, growth %.1f B/item, -m %d)"
                              % (mpi.size_name(vs), s["label"], r["bytes_per_item"], r["rss_after_kb"] / 1024,
                                 r["growth_per_item"], r["mem_mb"]), flush=True)
                    else:
                        failed = True
                        print("  %-9s %-16s FAILED: %s" % (mpi.size_name(vs), s["label"], r.get("error")),
                              flush=True)
                    save(data, a.out)

        if "miss" in parts:
            value = hr.value_bytes(a.value_size, "random", a.seed)
            miss = {"keys": keys, "key_size": a.key_size, "value_size": a.value_size, "values": "random",
                    "working_set_bytes": ws, "warmup": a.warmup, "batch": a.batch, "runs": []}
            data["miss"] = miss
            print("== (b) miss ratio: %d keys x (%d + %d) B = working set %.1f MiB; caches %s"
                  % (keys, a.key_size, a.value_size, ws / MIB,
                     ", ".join("%.2f %% (-m %d)" % (100 * real, mb) for _, mb, real in caches)), flush=True)
            for name, kind, alpha in a.traces:
                t0 = time.time()
                n = ttl_requests if kind == "ttl" else requests
                trace = hr.make_trace(kind, keys, n, alpha, a.seed, a.scan_every, a.scan_len, a.ttl, a.short, 0,
                                      ttl_duration if kind == "ttl" else None)
                distinct = len(set(trace.ids))
                print("-- %s: %s, %d requests, %d distinct keys (generated in %.1fs)"
                      % (name, trace.desc, n, distinct, time.time() - t0), flush=True)
                for f, mb, real in caches:
                    run = {"trace": name, "desc": trace.desc, "params": trace.params(),
                           "distinct_keys": distinct, "fraction_requested": f, "fraction": real, "mem_mb": mb,
                           "results": {}}
                    miss["runs"].append(run)
                    for s in servers:
                        flags = ["-m", str(mb), "-t", str(a.threads), "-c", "1024"]
                        try:
                            r = hr.measure(s["cmd"], trace, flags, a.key_size, value, a.batch, a.warmup,
                                           run_timeout=max(600, 3 * (trace.duration or 0)))
                            print("   %5.2f%% %s" % (100 * real, hr.describe(s["label"], r)), flush=True)
                        except (hr.ServerError, ValueError, ConnectionError, TimeoutError, OSError) as e:
                            r = {"error": str(e)}
                            failed = True
                            print("   %5.2f%% %-10s FAILED: %s" % (100 * real, s["label"], e), flush=True)
                        run["results"][s["label"]] = r
                        save(data, a.out)
                del trace
    except (KeyboardInterrupt, SystemExit) as e:  # Ctrl-C; SIGTERM/SIGHUP raise SystemExit
        data["interrupted"] = True
        failed = True
        print("store-bench: interrupted (%s); partial results kept" % (e.__class__.__name__,), file=sys.stderr)
    data["elapsed_seconds"] = round(time.time() - t_start)
    save(data, a.out)

    report(data)
    svg = a.svg or os.path.splitext(a.out)[0] + ".svg"
    if svg != "none":
        rc = subprocess.call([sys.executable, os.path.join(HERE, "store-chart.py"), a.out, svg])
        print("store-bench: wrote %s%s (%.0f min)" % (a.out, "" if rc else " and " + svg,
                                                     data["elapsed_seconds"] / 60))
    else:
        print("store-bench: wrote %s (%.0f min)" % (a.out, data["elapsed_seconds"] / 60))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
