#!/usr/bin/env python3
"""Render scripts/store-bench.py results (target/bench/store.json) as a
self-contained SVG bar chart. Standard library only.

Usage: scripts/store-chart.py STORE.json OUT.svg

Panel 1: bytes of RSS per item, one group per value size. Panel 2: miss
ratio, one group per trace and cache size (for the scan trace also the miss
ratio of its zipf gets alone). One bar per server, one colour per server
(memcached grey, the old/default store blue, the new store orange, examples
and other plugins their own colours); each group is scaled to its largest
value, and every bar is labelled with its value and its ratio to memcached's
(green: lower than memcached's, red: higher; lower is better in both panels).
"""

import json
import sys
from xml.sax.saxutils import escape

ROLE_COLOUR = {"memcached": "#9aa5b1", "default": "#2f7ed8", "old": "#2f7ed8", "new": "#e8590c"}
PALETTE = ["#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#d62728", "#1f3a93"]
W = 900
LABEL_W = 200
BAR_W = 470
BAR_H = 12
BAR_GAP = 3


def colours(servers):
    used, out = set(), {}
    pal = iter(PALETTE)
    for s in servers:
        c = ROLE_COLOUR.get(s.get("role"))
        if c is None or c in used:
            c = next(pal, "#555555")
            while c in used:
                c = next(pal, "#555555")
                if c == "#555555":
                    break
        used.add(c)
        out[s["label"]] = c
    return out


def size_name(s):
    s = int(s)
    return "%d KiB" % (s // 1024) if s >= 1024 and s % 1024 == 0 else "%d B" % s


def count_name(n):
    return "%dM" % (n // 1000000) if n % 1000000 == 0 else "%dk" % (n // 1000) if n % 1000 == 0 else str(n)


def fmt_bytes(v):
    return "%.1f B" % v if v < 100 else "%.0f B" % v


def fmt_pct(v):
    return "%.2f %%" % (100 * v) if v < 0.1 else "%.1f %%" % (100 * v)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    data = json.load(open(sys.argv[1]))
    servers = data.get("servers", [])
    labels = [s["label"] for s in servers]
    col = colours(servers)

    panels = []
    mem = data.get("mem")
    if mem and mem.get("results"):
        groups = []
        for vs, n in zip(mem["sizes"], mem["items"]):
            bars = []
            for lb in labels:
                r = mem["results"].get(lb, {}).get(str(vs))
                bars.append((lb, r["bytes_per_item"] if r and r.get("ok") else None))
            groups.append(("%s values" % size_name(vs), "%s items" % count_name(n), bars, ""))
        panels.append(("Bytes of RSS per item, %d B keys%s (lower is better)"
                       % (mem.get("key_size", 32), ", compressible values" if mem.get("compressible") else
                          ", pseudo-random values"), fmt_bytes, groups))
    miss = data.get("miss")
    if miss and miss.get("runs"):
        groups = []
        for run in miss["runs"]:
            res = run["results"]
            for key, sub in (("miss_ratio", ""), ("zipf_miss_ratio", " (zipf gets)")):
                if not any(key in r for r in res.values()):
                    continue
                bars = [(lb, res[lb].get(key) if lb in res else None) for lb in labels]
                note = ("no evictions: all keys fit" if res and all(r.get("evictions") == 0 for r in res.values())
                        else "")
                groups.append(("%s%s" % (run["trace"], sub),
                               "cache %.2f %% (-m %d)" % (100 * run["fraction"], run["mem_mb"]), bars, note))
        panels.append(("Miss ratio of the live servers, %s keys, %d B values, same requests (lower is better)"
                       % (count_name(miss["keys"]), miss["value_size"]), fmt_pct, groups))

    out = []

    def text(x, yy, s, size=12, anchor="start", weight="normal", fill="#222"):
        out.append(f'<text x="{x}" y="{yy}" font-size="{size}" text-anchor="{anchor}" '
                   f'font-weight="{weight}" fill="{fill}">{escape(str(s))}</text>')

    y = 28
    text(20, y, "Storage engines vs memcached %s: memory per item and miss ratio"
         % data.get("memcached_version", ""), 18, weight="bold")
    y += 20
    m = data.get("machine", {})
    text(20, y, "%s, %s cores; %s; wasmcached %s; -t %s, same flags and requests for every server%s"
         % (m.get("cpu", "?"), m.get("nproc", "?"), data.get("date", "?"), data.get("git", "?"),
            data.get("threads", 1), "; --quick sizes" if data.get("quick") else ""), 11, fill="#555")
    # legend, wrapped
    y += 20
    x = 20
    for s in servers:
        lb = s["label"]
        width = 34 + 7 * len(lb)
        if x + width > W - 20:
            x = 20
            y += 18
        out.append(f'<rect x="{x}" y="{y - 10}" width="12" height="12" fill="{col[lb]}"/>')
        text(x + 18, y, lb, 11)
        x += width
    for title, fmt, groups in panels:
        y += 32
        text(20, y, title, 13, weight="bold")
        y += 10
        for glabel, gsub, bars, note in groups:
            top = y + 4
            h = len(bars) * (BAR_H + BAR_GAP)
            text(LABEL_W - 10, top + h / 2 - 2, glabel, 12, anchor="end")
            text(LABEL_W - 10, top + h / 2 + 12, gsub, 10, anchor="end", fill="#666")
            if note:
                text(LABEL_W - 10, top + h / 2 + 25, note, 9, anchor="end", fill="#b26b00")
            vals = [v for _, v in bars if v is not None]
            scale = max(vals + [1e-12])
            ref = dict(bars).get("memcached")
            for i, (lb, v) in enumerate(bars):
                yy = top + i * (BAR_H + BAR_GAP)
                if v is None:
                    text(LABEL_W + 4, yy + 10, "%s: n/a" % lb, 10, fill="#999")
                    continue
                w = max(1.0, BAR_W * v / scale) if v > 0 else 0
                out.append(f'<rect x="{LABEL_W}" y="{yy}" width="{w:.1f}" height="{BAR_H}" fill="{col[lb]}">'
                           f'<title>{escape(lb)}: {escape(fmt(v))}</title></rect>')
                label = fmt(v)
                tail = ""
                if ref and lb != "memcached":
                    r = v / ref
                    tail = f'<tspan fill="{"#1a7f37" if r <= 1 else "#b42318"}" font-weight="bold" dx="6">x{r:.2f}</tspan>'
                out.append(f'<text x="{LABEL_W + w + 6:.1f}" y="{yy + 10}" font-size="10" fill="#333">'
                           f'{escape(label)}{tail}</text>')
            y += h + 14
    y += 10
    notes = []
    if miss and miss.get("runs"):
        notes.append("Miss ratio: get_misses / gets from `stats` after a %d %% warm-up; scan gets always miss "
                     "(the '(zipf gets)' rows leave them out); the TTL trace runs paced in real time."
                     % round(100 * miss.get("warmup", 0.5)))
    notes.append("x: ratio to memcached. Generated by scripts/store-bench.py; docs/store-bench.md explains "
                 "the method.")
    for n in notes:
        text(20, y, n, 10, fill="#666")
        y += 14
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{y}" viewBox="0 0 {W} {y}" '
           f'font-family="Helvetica, Arial, sans-serif">\n'
           f'<rect width="100%" height="100%" fill="white"/>\n' + "\n".join(out) + "\n</svg>\n")
    with open(sys.argv[2], "w") as f:
        f.write(svg)


if __name__ == "__main__":
    main()
