"""pymemcache (PyPI, unchanged) against a text-protocol server.

Usage: python3 pymemcache_text.py PORT [PORT PORT ...]

Drives the base Client on 127.0.0.1:PORT through set/get/get_many/add/
replace/append/prepend/cas/gets/incr/decr/delete/touch/flush_all/stats/
version and asserts every result; with more than one port, also spreads
keys over all of them with HashClient (client-side consistent hashing) and
reads them back. Exits 0 when every check passed; any failed check raises
(non-zero exit, traceback on stderr). Run by tests/clients.rs.
"""

import sys

from pymemcache.client.base import Client
from pymemcache.client.hash import HashClient


def check(what, got, want):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")
    print(f"ok  {what}")


def base_client(port):
    c = Client(("127.0.0.1", port), connect_timeout=5, timeout=10,
               default_noreply=False)
    check("flush_all", c.flush_all(), True)
    check("version", c.version().startswith(b"1."), True)

    check("set", c.set("k1", b"v1"), True)
    check("get", c.get("k1"), b"v1")
    check("get miss", c.get("nope"), None)
    check("set with expire", c.set("k2", b"v2", expire=300), True)
    check("set bytes", c.set("bin", bytes(range(256)) * 4), True)
    check("get bytes", c.get("bin"), bytes(range(256)) * 4)
    check("get_many", c.get_many(["k1", "k2", "nope", "bin"]),
          {"k1": b"v1", "k2": b"v2", "bin": bytes(range(256)) * 4})
    big = b"x" * 500_000
    check("set 500 KB", c.set("big", big), True)
    check("get 500 KB", c.get("big"), big)

    check("add existing", c.add("k1", b"other"), False)
    check("add new", c.add("k3", b"v3"), True)
    check("get after add", c.get("k3"), b"v3")
    check("replace missing", c.replace("nope", b"x"), False)
    check("replace existing", c.replace("k3", b"v3b"), True)
    check("get after replace", c.get("k3"), b"v3b")
    check("append", c.append("k3", b"-tail"), True)
    check("prepend", c.prepend("k3", b"head-"), True)
    check("get after append/prepend", c.get("k3"), b"head-v3b-tail")

    value, cas = c.gets("k1")
    check("gets value", value, b"v1")
    check("gets cas is a number", isinstance(cas, bytes) and cas.isdigit(), True)
    check("cas with right token", c.cas("k1", b"v1-new", cas), True)
    check("get after cas", c.get("k1"), b"v1-new")
    check("cas with stale token", c.cas("k1", b"v1-stale", cas), False)
    check("get after stale cas", c.get("k1"), b"v1-new")
    check("cas on missing key", c.cas("nope", b"x", b"1"), None)
    check("gets miss", c.gets("nope"), (None, None))
    many = c.gets_many(["k1", "k2"])
    check("gets_many keys", sorted(many), ["k1", "k2"])

    check("set counter", c.set("n", b"10"), True)
    check("incr", c.incr("n", 5), 15)
    check("decr", c.decr("n", 20), 0)
    check("incr after floor", c.incr("n", 2**64 - 1), 2**64 - 1)
    check("incr wraps", c.incr("n", 1), 0)
    check("incr missing", c.incr("nope", 1), None)
    check("decr missing", c.decr("nope", 1), None)
    # memcached rewrites a shrinking incr/decr result in place, blank-padded
    check("get counter", c.get("n").rstrip(b" "), b"0")

    check("touch existing", c.touch("k2", expire=600), True)
    check("touch missing", c.touch("nope", expire=600), False)
    check("delete existing", c.delete("k2"), True)
    check("delete missing", c.delete("k2"), False)
    check("get after delete", c.get("k2"), None)

    # default noreply=True for storage commands, as applications use it
    c2 = Client(("127.0.0.1", port), connect_timeout=5, timeout=10)
    c2.set("nr", b"quiet")
    check("get after noreply set", c2.get("nr"), b"quiet")
    c2.close()

    stats = c.stats()
    for name in (b"pid", b"uptime", b"curr_items", b"total_items",
                 b"cmd_get", b"cmd_set", b"get_hits", b"get_misses",
                 b"curr_connections"):
        check(f"stats has {name.decode()}", name in stats, True)
    # k1, bin, big, k3, n, nr
    check("stats curr_items", stats[b"curr_items"], 6)
    check("stats get_hits > 0", stats[b"get_hits"] > 0, True)
    check("stats settings has maxbytes", b"maxbytes" in c.stats("settings"), True)

    check("flush_all", c.flush_all(), True)
    check("get after flush_all", c.get("k1"), None)
    check("get_many after flush_all", c.get_many(["k1", "k3", "n"]), {})
    # (curr_items may still count flushed items: memcached reclaims them lazily)
    c.close()


def hash_client(ports):
    servers = [("127.0.0.1", p) for p in ports]
    hc = HashClient(servers, connect_timeout=5, timeout=10,
                    default_noreply=False, use_pooling=False)
    keys = [f"hash-key-{i}" for i in range(300)]
    for k in keys:
        if not hc.set(k, k.encode()):
            raise AssertionError(f"HashClient set {k} failed")
    got = hc.get_many(keys)
    check("HashClient get_many all keys", len(got), len(keys))
    for k in keys:
        if got[k] != k.encode():
            raise AssertionError(f"HashClient {k}: got {got[k]!r}")
    per_server = []
    for p in ports:
        c = Client(("127.0.0.1", p), connect_timeout=5, timeout=10)
        per_server.append(len(c.get_many(keys)))
        c.close()
    print(f"HashClient spread: {per_server}")
    check("HashClient total items", sum(per_server), len(keys))
    check("HashClient used every server", all(n > 0 for n in per_server), True)


def main():
    ports = [int(a) for a in sys.argv[1:]]
    if not ports:
        sys.exit("usage: pymemcache_text.py PORT [PORT ...]")
    base_client(ports[0])
    if len(ports) > 1:
        hash_client(ports)
    print("ALL OK")


if __name__ == "__main__":
    main()
