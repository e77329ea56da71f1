"""An LRU item store for wasmcached, in Python: memcached's semantics
(flags, expiry, CAS, add/replace/append/prepend/cas, incr/decr, touch,
gat, flush_all with a delay, -M) with least-recently-used eviction within
the shard's memory budget, reporting its lookups, stores and evictions to
`watch` while a watcher asks.

It is a component of the wasmcached:store world (wit/store.wit), built
with componentize-py (build.sh). The server hands `handle` a batch of
requests and sends the answers, one per request, back to the clients.
The world carries a batch's keys and values in one bytes object and the
answers' values in another, with spans (offset, length) into them in the
records: `Batch` below turns them into bytes and back, so the store
itself reads and writes plain bytes.
"""

from collections import OrderedDict

import wit_world
from wit_world.imports import events, host
from wit_world.imports.events import Event
from wit_world.imports.listing_types import ListedItem
from wit_world.imports.metric_types import (
    Histogram, Metric, Value_Counter, Value_Gauge, Value_Histogram)
from wit_world.imports.types import Answers, Item as DumpItem, Response, Span

# Operations and statuses: the numbers of wit/store.wit.
GET, SET, ADD, REPLACE, APPEND, PREPEND, CAS, DELETE = 1, 2, 3, 4, 5, 6, 7, 8
INCR, DECR, TOUCH, GAT, FLUSH_ALL, MEM_LIMIT = 9, 10, 11, 12, 13, 14
STORED, NOT_STORED, EXISTS, NOT_FOUND, DELETED, TOUCHED = 0, 1, 2, 3, 4, 5
HIT, MISS, NUMBER, NON_NUMERIC, TOO_LARGE, OUT_OF_MEMORY, OK, ERROR = 6, 7, 8, 9, 10, 11, 12, 13
# Request flags (mflags) this store honours, and the answer flag it sets.
NO_VALUE, NO_BUMP, VIVIFY, SET_TTL = 1 << 0, 1 << 1, 1 << 2, 1 << 6
# A store's key was binary (sent base64 by a meta client): the item keeps
# the mark, and hits and listings answer it (as iflag KEY_BINARY), so that
# `mg` gives the key back base64 and `stats cachedump` leaves it out.
KEY_BINARY = 1 << 5
FETCHED = 1 << 0
# `watch` (the world's events interface): while a watcher is connected the
# server sets these request flags, and the store reports what memcached's
# watch streams show: every lookup (fetchers; the size an append leaves, for
# mutations) and every eviction.
LOG_LOOKUP, LOG_EVICTIONS = 1 << 11, 1 << 12
EVENT_LOOKUP, EVENT_EVICTION, EVENT_STORED = 1, 2, 3
# What an item costs beyond its key and value: the store's own bookkeeping.
ITEM_OVERHEAD = 64
# The buckets of the stored-value-size histogram (bytes).
SIZE_BOUNDS = [64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0]
MAX_U64 = (1 << 64) - 1
# How many slots one `iter` call looks at, at most: a call's work is bounded
# however sparse the slots are.
ITER_SLOTS = 16384


class Item:
    __slots__ = ("value", "flags", "exptime", "cas", "stored_at", "last_access", "fetched",
                 "slot", "binary")

    def __init__(self, value, flags, exptime, cas, now, slot):
        self.value = value
        self.flags = flags
        self.exptime = exptime
        self.cas = cas
        self.stored_at = now
        self.last_access = now
        self.fetched = False
        self.slot = slot  # its index in Store.slots
        self.binary = False  # stored with a binary key

    def iflags(self):
        return (FETCHED if self.fetched else 0) | (KEY_BINARY if self.binary else 0)


NO_BYTES = Span(0, 0)


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
        span = NO_BYTES
        if value:
            span = Span(len(self.out), len(value))
            self.out += value
        return Response(status, iflags, span, flags, exptime, cas, last_access, prev_exptime)

    def answers(self, responses):
        return Answers(bytes(self.out), responses)


class Store:
    """One shard's items."""

    def __init__(self, config):
        self.items = OrderedDict()  # key -> Item, least recently used first
        # Every item's key at a fixed index, for `iter`: its cursor is a
        # slot index, which LRU moves, stores and removals leave meaningful.
        self.slots = []  # key, or None for a free slot
        self.free = []  # the free slots' indices, reused first
        self.used = 0
        self.budget = config.memory_budget
        self.max_item_size = config.max_item_size
        self.no_evict = config.no_evict
        self.cas_enabled = config.cas_enabled
        # CAS values are unique across shards: shard + k * shard_count.
        self.next_cas = config.shard_id + 1
        self.cas_step = max(config.shard_count, 1)
        self.flush_at = 0
        self.evictions = 0
        self.expired = 0
        self.total_items = 0
        self.dump_keys = []  # the keys of a running dump, in LRU order
        # The value sizes stored: one count per SIZE_BOUNDS bucket, +Inf last.
        self.size_counts = [0] * (len(SIZE_BOUNDS) + 1)
        self.size_sum = 0
        # The request running (its index in the batch and its flags), which
        # the watch events belong to; no flags outside `handle`.
        self.request = 0
        self.mflags = 0
        host.log(2, "python-lru: shard %d of %d, %d bytes"
                 % (config.shard_id, config.shard_count, config.memory_budget))

    # -- the item table --------------------------------------------------

    def gone(self, item, now):
        """Whether `item` expired or was flushed: a get would miss it."""
        return (item.exptime != 0 and item.exptime <= now) or (
            self.flush_at and self.flush_at <= now and item.stored_at <= self.flush_at)

    def live(self, key, now):
        """The live item under `key`, dropping it if it expired or was
        flushed: memcached's lookup, one a request."""
        item = self.items.get(key)
        if item is not None and self.gone(item, now):
            self.remove(key)
            self.expired += 1
            item = None
        if self.mflags & LOG_LOOKUP:
            self.log_lookup(key, item)
        return item

    # -- watch events ------------------------------------------------------

    def log_lookup(self, key, item):
        if item is None:
            events.log_event(Event(kind=EVENT_LOOKUP, bits=0, key=key, request=self.request,
                                   value_len=0, client_flags=0, exptime=0, last_access=0))
        else:
            events.log_event(Event(kind=EVENT_LOOKUP, bits=1, key=key, request=self.request,
                                   value_len=len(item.value), client_flags=item.flags,
                                   exptime=0, last_access=0))

    def log_stored(self, key, value_len, flags, exptime):
        """A store the server cannot see the size of (an append, a
        created counter), when lookups are watched."""
        if self.mflags & LOG_LOOKUP:
            events.log_event(Event(kind=EVENT_STORED, bits=0, key=key, request=self.request,
                                   value_len=value_len, client_flags=flags, exptime=exptime,
                                   last_access=0))

    def log_eviction(self, key, item):
        if self.mflags & LOG_EVICTIONS:
            events.log_event(Event(kind=EVENT_EVICTION, bits=1 if item.fetched else 0, key=key,
                                   request=self.request, value_len=len(item.value),
                                   client_flags=item.flags, exptime=item.exptime,
                                   last_access=item.last_access))

    def remove(self, key):
        item = self.items.pop(key)
        self.used -= len(key) + len(item.value) + ITEM_OVERHEAD
        self.slots[item.slot] = None
        self.free.append(item.slot)
        return item

    def new_cas(self):
        if not self.cas_enabled:
            return 0
        cas = self.next_cas
        self.next_cas += self.cas_step
        return cas

    def put(self, key, value, flags, exptime, now):
        """Stores an item, evicting the least recently used ones for room.
        Returns its status and the item (None unless stored)."""
        if key in self.items:
            self.remove(key)
        if len(key) + len(value) > self.max_item_size:
            return TOO_LARGE, None
        cost = len(key) + len(value) + ITEM_OVERHEAD
        while self.used + cost > self.budget and self.items:
            old_key, old = next(iter(self.items.items()))
            dead = (old.exptime != 0 and old.exptime <= now)
            if self.no_evict and not dead:
                break
            self.remove(old_key)
            if dead:
                self.expired += 1
            else:
                self.evictions += 1
                self.log_eviction(old_key, old)
        if self.used + cost > self.budget:
            return OUT_OF_MEMORY, None
        if self.free:
            slot = self.free.pop()
            self.slots[slot] = key
        else:
            slot = len(self.slots)
            self.slots.append(key)
        item = Item(value, flags, exptime, self.new_cas(), now, slot)
        self.items[key] = item
        self.used += cost
        self.total_items += 1
        bucket = 0
        while bucket < len(SIZE_BOUNDS) and len(value) > SIZE_BOUNDS[bucket]:
            bucket += 1
        self.size_counts[bucket] += 1
        self.size_sum += len(value)
        return STORED, item

    # -- requests ----------------------------------------------------------

    def handle(self, data, requests):
        now = host.now()
        batch = Batch(data)
        out = []
        for i, r in enumerate(requests):
            self.request, self.mflags = i, r.mflags
            out.append(self.one(batch, r, now))
        self.mflags = 0
        return batch.answers(out)

    def one(self, batch, r, now):
        answer = batch.answer
        op, key = r.op, batch.key(r)
        if op == FLUSH_ALL:
            if r.exptime == 0 or r.exptime <= now:
                self.items.clear()
                self.slots, self.free = [], []
                self.used = 0
                self.flush_at = 0
            else:
                self.flush_at = r.exptime - 1
            return answer(OK)
        if op == MEM_LIMIT:
            self.budget = r.delta
            return answer(OK)
        if op in (GET, GAT):
            return self.get(batch, r, key, now)
        if op == TOUCH:
            item = self.live(key, now)
            if item is None:
                return answer(NOT_FOUND)
            item.exptime = r.exptime
            self.items.move_to_end(key)
            return answer(TOUCHED)
        if op in (SET, ADD, REPLACE, APPEND, PREPEND, CAS):
            return self.store(batch, r, op, key, now)
        if op == DELETE:
            item = self.live(key, now)
            if item is None:
                return answer(NOT_FOUND)
            if r.cas and r.cas != item.cas:
                return answer(EXISTS)
            self.remove(key)
            return answer(DELETED)
        if op in (INCR, DECR):
            return self.arith(batch, r, op, key, now)
        return answer(ERROR, b"unknown operation")

    def get(self, batch, r, key, now):
        answer = batch.answer
        item = self.live(key, now)
        if item is None:
            return answer(MISS)
        prev = item.exptime
        if r.op == GAT:
            item.exptime = r.exptime
        resp = answer(HIT, b"" if r.mflags & NO_VALUE else item.value, item.flags,
                      item.exptime, item.cas, item.iflags(), item.last_access, prev)
        if not r.mflags & NO_BUMP:
            item.fetched = True
            item.last_access = now
            self.items.move_to_end(key)
        return resp

    def store(self, batch, r, op, key, now):
        answer = batch.answer
        if op == SET and r.cas:
            op = CAS
        old = self.live(key, now)
        value, flags, exptime = batch.value(r), r.client_flags, r.exptime
        if op == ADD and old is not None:
            self.items.move_to_end(key)
            return answer(NOT_STORED)
        if op in (REPLACE, APPEND, PREPEND) and old is None:
            return answer(NOT_STORED)
        if op == CAS:
            if old is None:
                return answer(NOT_FOUND)
            if old.cas != r.cas:
                return answer(EXISTS)
        if op in (APPEND, PREPEND):
            value = old.value + value if op == APPEND else value + old.value
            flags, exptime = old.flags, old.exptime
        status, item = self.put(key, value, flags, exptime, now)
        if item is None:
            return answer(status)
        if op in (APPEND, PREPEND):
            self.log_stored(key, len(value), flags, exptime)
        item.binary = bool(r.mflags & KEY_BINARY)
        return answer(STORED, cas=item.cas, exptime=item.exptime)

    def arith(self, batch, r, op, key, now):
        answer = batch.answer
        item = self.live(key, now)
        if item is None:
            if not r.mflags & VIVIFY:
                return answer(NOT_FOUND)
            # ma's N: the missing counter is created with the initial value
            # (the request's value) and the TTL in `aux`.
            status, made = self.put(key, batch.value(r), 0, r.aux, now)
            if made is None:
                return answer(status)
            made.binary = bool(r.mflags & KEY_BINARY)
            # memcached creates the counter with an `add`, which looks the
            # key up again.
            if self.mflags & LOG_LOOKUP:
                self.log_lookup(key, None)
            self.log_stored(key, len(made.value), 0, r.aux)
            return answer(NUMBER, made.value, cas=made.cas, exptime=made.exptime)
        if r.cas and r.cas != item.cas:
            return answer(EXISTS)
        digits = item.value.rstrip(b" ")
        if not digits.isdigit() or len(digits) > 20 or int(digits) > MAX_U64:
            return answer(NON_NUMERIC, b"cannot increment or decrement non-numeric value")
        n = int(digits)
        n = (n + r.delta) & MAX_U64 if op == INCR else max(n - r.delta, 0)
        new = str(n).encode()
        prev = item.exptime
        # memcached writes a number that still fits over the old one, padded
        # with spaces ("10" decremented to 9 reads back "9 "), and ma's T
        # sets its TTL; a longer number is a new item with the old TTL.
        if len(new) <= len(item.value):
            value = new.ljust(len(item.value))
            exptime = r.exptime if r.mflags & SET_TTL else prev
        else:
            value, exptime = new, prev
        status, stored = self.put(key, value, item.flags, exptime, now)
        if stored is not None:
            # Written over the old number, the item keeps its binary-key
            # mark; memcached's new item for a longer number does not.
            stored.binary = item.binary and len(new) <= len(item.value)
        if stored is None:
            return answer(status)
        stored.fetched, stored.last_access = item.fetched, item.last_access
        return answer(NUMBER, new, cas=stored.cas, exptime=exptime, prev_exptime=prev)

    # -- dump and load: a reload or a warm restart keeps the items --------

    def dump(self, cursor, max):
        """Up to `max` live items from `cursor` on, least recently used
        first, and the cursor to go on from (0: done). The server calls
        nothing else during a dump, so the keys listed when it starts stay
        valid; the cursor is a position in that list."""
        if cursor == 0:
            self.dump_keys = list(self.items.keys())
        now = host.now()
        out = []
        at = cursor
        while at < len(self.dump_keys) and len(out) < max:
            key = self.dump_keys[at]
            at += 1
            item = self.items.get(key)
            if item is None or self.gone(item, now):
                continue
            out.append(DumpItem(key, item.value, item.flags, item.exptime, item.cas))
        if at >= len(self.dump_keys):
            self.dump_keys = []
            at = 0
        return (at, out)

    def load(self, items):
        """Stores handed-over items as sets would, in dump order (so the
        last is the most recent), keeping their CAS values: new ones are
        handed out above every loaded one."""
        now = host.now()
        for it in items:
            if it.exptime != 0 and it.exptime <= now:
                continue
            status, item = self.put(bytes(it.key), bytes(it.value), it.client_flags, it.exptime, now)
            if item is None:
                continue
            item.cas = it.cas if self.cas_enabled else 0
            if it.cas >= self.next_cas:
                self.next_cas += ((it.cas - self.next_cas) // self.cas_step + 1) * self.cas_step
        return True

    # -- listing: lru_crawler metadump, stats cachedump ---------------------

    def iter(self, cursor, max):
        """Up to `max` live items from slot `cursor` on, and the slot to go
        on from (0: done; a call with `max` > 0 has passed slot 0, so 0
        cannot mean "go on from there"). Requests run between calls, so it
        only reads: the items a get would miss (expired, flushed) are left
        out, not reclaimed."""
        now = host.now()
        out = []
        at = cursor
        end = min(len(self.slots), cursor + ITER_SLOTS)
        while at < end and len(out) < max:
            key = self.slots[at]
            at += 1
            if key is None:
                continue
            item = self.items[key]
            if self.gone(item, now):
                continue
            out.append(ListedItem(key, item.exptime, item.last_access, item.cas, item.flags,
                                  len(item.value), 0, item.iflags(), 0))
        if at >= len(self.slots):
            at = 0
        return (at, out)

    def metrics(self):
        """The metrics of the store-with-metrics world: `stats plugin`
        shows them as metric:<name>, Prometheus as
        wasmcached_plugin_<name>."""
        return [
            Metric("python_lru_evictions", "Items evicted to make room.",
                   Value_Counter(self.evictions)),
            Metric("python_lru_items", "Items stored now.", Value_Gauge(len(self.items))),
            Metric("python_lru_value_bytes", "The sizes of the values stored, in bytes.",
                   Value_Histogram(Histogram(SIZE_BOUNDS, list(self.size_counts),
                                             self.size_sum))),
        ]

    def stats(self, group):
        if group != 0:
            return []
        return [("curr_items", str(len(self.items))),
                ("bytes", str(self.used)),
                ("total_items", str(self.total_items)),
                ("evictions", str(self.evictions)),
                ("expired_unfetched", "0"),
                ("python_lru_expired", str(self.expired))]


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
        return STORE.dump(cursor, max)

    def load(self, items) -> bool:
        return STORE.load(items)

    def iter(self, cursor: int, max: int):
        return STORE.iter(cursor, max)

    def metrics(self):
        return STORE.metrics()
