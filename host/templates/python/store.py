"""{{name}}: a wasmcached storage plugin in Python, a component of the
wasmcached:store world (wit/store.wit), built with componentize-py
(build.sh).

A tiny key-value store: get, set, delete and an immediate flush_all, with
client flags, expiry, CAS values and a memory budget. It never evicts: a
full store answers out of memory. Everything else (add, cas, incr, touch,
gat, delayed flush_all, ...) is answered with an error, the world's answer
for what a plugin does not implement.

The world carries a batch's keys and values in one bytes object and the
answers' values in another, with spans (offset, length) into them in the
records: `Batch` turns them into bytes and back, so the store itself reads
and writes plain bytes.
"""

import wit_world
from wit_world.imports import host
from wit_world.imports.types import Answers, Response, Span

# Operations and statuses: the numbers of wit/store.wit.
GET, SET, DELETE, FLUSH_ALL, MEM_LIMIT = 1, 2, 8, 13, 14
STORED, NOT_FOUND, DELETED, HIT, MISS = 0, 3, 4, 6, 7
TOO_LARGE, OUT_OF_MEMORY, OK, ERROR = 10, 11, 12, 13
# Request flags (mflags): the two this store honours, the ones it may
# ignore (no stale items, no recache tokens, no `watch` reports) and
# HAS_CAS (a compare, which it does not do). Any other bit is an error.
NO_VALUE, NO_BUMP, HAS_CAS = 1 << 0, 1 << 1, 1 << 8
IGNORED = (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12)
# The answer flag: the item had been fetched before.
FETCHED = 1 << 0
# What an item costs beyond its key and value: the store's bookkeeping.
ITEM_OVERHEAD = 64


class Item:
    __slots__ = ("value", "flags", "exptime", "cas", "last_access", "fetched")

    def __init__(self, value, flags, exptime, cas, now):
        self.value = value
        self.flags = flags
        self.exptime = exptime  # server time it expires at; 0 = never
        self.cas = cas
        self.last_access = now
        self.fetched = False

    def live(self, now):
        return self.exptime == 0 or self.exptime > now


class Batch:
    """One `handle` call's bytes: `key` and `value` read a request's from
    the batch's data; `answer` makes a response, its value appended to the
    answers' data."""

    def __init__(self, data):
        self.data = data
        self.out = bytearray()

    def key(self, r):
        return self.data[r.key.offset:r.key.offset + r.key.len]

    def value(self, r):
        return self.data[r.value.offset:r.value.offset + r.value.len]

    def answer(self, status, value=b"", flags=0, exptime=0, cas=0, iflags=0,
               last_access=0, prev_exptime=0):
        span = Span(0, 0)
        if value:
            span = Span(len(self.out), len(value))
            self.out += value
        return Response(status, iflags, span, flags, exptime, cas, last_access, prev_exptime)

    def answers(self, responses):
        return Answers(bytes(self.out), responses)


class Store:
    """One shard's items (the server runs one instance per shard)."""

    def __init__(self, config):
        self.items = {}
        self.used = 0
        self.budget = config.memory_budget
        self.max_item_size = config.max_item_size
        self.cas_enabled = config.cas_enabled
        # CAS values unique across shards: shard + k * shard_count.
        self.next_cas = config.shard_id + 1
        self.cas_step = max(config.shard_count, 1)

    def handle(self, data, requests):
        now = host.now()
        batch = Batch(data)
        return batch.answers([self.one(batch, r, now) for r in requests])

    def one(self, batch, r, now):
        if r.mflags & ~(NO_VALUE | NO_BUMP | IGNORED):
            return batch.answer(ERROR, b"meta flag not supported by this store")
        if r.op == GET:
            return self.get(batch, r, now)
        # A set with a CAS value is a compare-and-swap: not done here.
        if r.op == SET and r.cas == 0:
            return self.set(batch, r, now)
        if r.op == DELETE and r.cas == 0:
            item = self.remove(batch.key(r))
            return batch.answer(DELETED if item and item.live(now) else NOT_FOUND)
        # Only flush_all without a delay (exptime 0 = now).
        if r.op == FLUSH_ALL and r.exptime == 0:
            self.items.clear()
            self.used = 0
            return batch.answer(OK)
        if r.op == MEM_LIMIT:
            self.budget = r.delta
            return batch.answer(OK)
        return batch.answer(ERROR, b"not supported by this store")

    def get(self, batch, r, now):
        item = self.items.get(batch.key(r))
        if item is None or not item.live(now):
            return batch.answer(MISS)
        value = b"" if r.mflags & NO_VALUE else item.value
        resp = batch.answer(HIT, value, item.flags, item.exptime, item.cas,
                            FETCHED if item.fetched else 0, item.last_access,
                            item.exptime)
        if not r.mflags & NO_BUMP:
            item.fetched = True
            item.last_access = now
        return resp

    def set(self, batch, r, now):
        key, value = batch.key(r), batch.value(r)
        # A set that fails still removes the old value, as in memcached.
        self.remove(key)
        if len(key) + len(value) > self.max_item_size:
            return batch.answer(TOO_LARGE)
        cost = len(key) + len(value) + ITEM_OVERHEAD
        if self.used + cost > self.budget:
            for k in [k for k, i in self.items.items() if not i.live(now)]:
                self.remove(k)
        if self.used + cost > self.budget:
            return batch.answer(OUT_OF_MEMORY)
        cas = 0
        if self.cas_enabled:
            cas, self.next_cas = self.next_cas, self.next_cas + self.cas_step
        self.items[key] = Item(value, r.client_flags, r.exptime, cas, now)
        self.used += cost
        return batch.answer(STORED, cas=cas, exptime=r.exptime)

    def remove(self, key):
        item = self.items.pop(key, None)
        if item is not None:
            self.used -= len(key) + len(item.value) + ITEM_OVERHEAD
        return item

    def stats(self, group):
        # memcached's names: `stats` shows them in their usual places.
        if group != 0:
            return []
        return [("curr_items", str(len(self.items))), ("bytes", str(self.used))]


# componentize-py makes a new WitWorld for every call: the shard's store
# lives here, made by `init`.
STORE = None


class WitWorld(wit_world.WitWorld):
    """The exports of the wasmcached:store world."""

    def wit_version(self) -> int:
        return 2

    def init(self, config) -> None:
        global STORE
        STORE = Store(config)

    def handle(self, data, requests):
        return STORE.handle(data, requests)

    def tick(self, now: int) -> None:
        pass

    def timer(self, token: int) -> None:
        pass

    def stats(self, group: int):
        return STORE.stats(group)

    def dump(self, cursor: int, max: int):
        return None  # not called yet: items do not survive a reload

    def load(self, items) -> bool:
        return False
