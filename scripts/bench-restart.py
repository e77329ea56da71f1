#!/usr/bin/env python3
"""Warm restart (-e) and plugin reload, wasmcached beside memcached.

Usage: scripts/bench-restart.py [--items N] [--rounds R] [--dir DIR]

For each server (memcached, then wasmcached, same flags:
`-p PORT -l 127.0.0.1 -U 0 -t THREADS -m 1024 -e DIR/FILE`, plus `-u root`
for memcached as root) and each round:
  1. store N items (32 B keys, 100 B values) through one pipelined connection;
  2. send SIGUSR1 and time until the process has exited ("shutdown");
  3. exec the server again and time until it answers `mg` for the last key
     stored with its value ("restart": both servers load the whole cache
     before serving, so the first answer means every item is back);
  4. read every key back and count the ones with the right value.
For wasmcached it then times `plugin reload` with the N items in place
(both sides the default store, so every item moves).

Prints one line per measurement and the medians; exits 1 if an item was
lost. Standard library only; loopback only; every server is stopped at the
end. The machines these run on are shared and noisy: compare the two
servers within one run, never one absolute time across runs.
"""

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VALUE = b"0123456789" * 10


def key(i):
    return b"key:%028d" % i


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect(port, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=60)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.002)


def pipeline(port, requests, answers_end):
    """Sends `requests` (an iterable of byte blobs) while a thread reads;
    returns everything read once it ends with `answers_end` count lines."""
    s = connect(port)
    got = bytearray()
    done = threading.Event()

    def reader():
        while not done.is_set():
            b = s.recv(1 << 20)
            if not b:
                break
            got.extend(b)
            if answers_end(got):
                break
        done.set()

    t = threading.Thread(target=reader)
    t.start()
    for blob in requests:
        s.sendall(blob)
    t.join(timeout=300)
    s.close()
    return bytes(got)


def fill(port, n):
    def blobs():
        batch = []
        for i in range(n):
            batch.append(b"set %s 0 0 100\r\n%s\r\n" % (key(i), VALUE))
            if len(batch) == 10000:
                yield b"".join(batch)
                batch = []
        if batch:
            yield b"".join(batch)

    out = pipeline(port, blobs(), lambda g: g.count(b"\r\n") >= n)
    return out.count(b"STORED\r\n")


def count_hits(port, n):
    def blobs():
        for start in range(0, n, 10000):
            yield b"".join(b"mg %s v\r\n" % key(i) for i in range(start, min(n, start + 10000)))
        yield b"mn\r\n"

    out = pipeline(port, blobs(), lambda g: g.endswith(b"MN\r\n"))
    return out.count(b"\r\n" + VALUE + b"\r\n")


def command(port, line, timeout=120):
    s = connect(port)
    s.settimeout(timeout)
    s.sendall(line)
    got = b""
    while not got.endswith(b"\r\n"):
        b = s.recv(65536)
        if not b:
            break
        got += b
    s.close()
    return got


class Server:
    def __init__(self, name, argv, log_path):
        self.name, self.argv, self.proc, self.log_path = name, argv, None, log_path

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=self.log)
        return time.monotonic()

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def first_hit(port, n, started):
    """Seconds from `started` until `mg` of the last key answers its value."""
    probe = b"mg %s v\r\n" % key(n - 1)
    while True:
        try:
            if command(port, probe, timeout=60).startswith(b"VA 100"):
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.002)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--dir", default="/dev/shm")
    ap.add_argument("--wasmcached", default=os.path.join(ROOT, "target/release/wasmcached"))
    ap.add_argument("--memcached", default=shutil.which("memcached") or "/usr/bin/memcached")
    a = ap.parse_args()
    n = a.items
    results = {}
    lost = 0
    for name, binary in (("memcached", a.memcached), ("wasmcached", a.wasmcached)):
        path = os.path.join(a.dir, "bench-restart-%s-%d" % (name, os.getpid()))
        port = free_port()
        argv = [binary, "-p", str(port), "-l", "127.0.0.1", "-U", "0", "-t", str(a.threads),
                "-m", "1024", "-c", "1024", "-e", path]
        if name == "memcached" and os.geteuid() == 0:
            argv += ["-u", "root"]
        if name == "wasmcached":
            argv += ["-A"]
        srv = Server(name, argv, path + ".log")
        r = results.setdefault(name, {"shutdown": [], "restart": [], "reload": []})
        try:
            srv.start()
            connect(port)
            stored = fill(port, n)
            if stored != n:
                sys.exit("%s stored %d of %d items" % (name, stored, n))
            for rnd in range(a.rounds):
                t0 = time.monotonic()
                srv.proc.send_signal(signal.SIGUSR1)
                srv.proc.wait(timeout=120)
                r["shutdown"].append(time.monotonic() - t0)
                # memcached refuses a restart within the second of its stop
                # ("restart incompatible due to setting for [stop_time]").
                time.sleep(1.1)
                started = srv.start()
                r["restart"].append(first_hit(port, n, started))
                hits = count_hits(port, n)
                lost += n - hits
                print("%-10s round %d: shutdown %.3f s, exec to all %d items served %.3f s, %d found"
                      % (name, rnd + 1, r["shutdown"][-1], n, r["restart"][-1], hits), flush=True)
            if name == "wasmcached":
                for rnd in range(a.rounds):
                    t0 = time.monotonic()
                    answer = command(port, b"plugin reload\r\n", timeout=300)
                    r["reload"].append(time.monotonic() - t0)
                    print("%-10s reload %d: %.3f s: %s" % (name, rnd + 1, r["reload"][-1],
                                                           answer.decode().strip()), flush=True)
                hits = count_hits(port, n)
                lost += n - hits
                print("%-10s after the reloads: %d found" % (name, hits))
        finally:
            srv.stop()
            with open(path + ".log", "rb") as f:
                log = f.read().decode(errors="replace").strip()
            if log:
                print("%s's log:\n  %s" % (name, log.replace("\n", "\n  ")))
            for f in os.listdir(a.dir):
                if f.startswith(os.path.basename(path)):
                    os.remove(os.path.join(a.dir, f))
    print()
    print("medians, %d items (32 B keys, 100 B values), -m 1024 -t %d, -e on %s:" % (n, a.threads, a.dir))
    for what in ("shutdown", "restart", "reload"):
        row = []
        for name in ("memcached", "wasmcached"):
            v = results[name][what]
            row.append("%s %s" % (name, "%.3f s" % statistics.median(v) if v else "-"))
        print("  %-9s %s" % (what, ", ".join(row)))
    if lost:
        sys.exit("%d items lost or changed" % lost)


if __name__ == "__main__":
    main()
