/*
 * c-sieve: a wasmcached storage plugin in C whose eviction is SIEVE
 * (Zhang et al., "SIEVE is simpler than LRU", NSDI '24).
 *
 * All items sit in one FIFO queue, newest at the head, each with a visited
 * bit. A hit only sets the bit: no list surgery, so hits cost a store. To
 * evict, a hand walks from where it last stopped toward the head (wrapping
 * to the tail), clears the bits it passes and evicts the first item whose
 * bit is already clear. Items hit since the hand last passed them survive;
 * a scan of one-hit keys is evicted in FIFO order without pushing them out,
 * which is where LRU loses its hot set.
 *
 * Everything else follows memcached (see c-quota, whose structure this
 * shares): expiry, CAS, flush_all with memcached's oldest_live rule, the
 * shard's memory budget (evict before storing; -M answers OutOfMemory).
 *
 * Items survive a `plugin reload` and a warm restart: the SDK's dump and
 * load call s_walk and s_load. The dump starts at the hand, so a loader
 * that appends in dump order rebuilds the queue with the hand at its tail:
 * the items keep the order in which the hand would have met them, and the
 * visited bit travels in the item record's `refs`. s_walk also serves the
 * item listing behind `lru_crawler metadump`.
 *
 * Metrics (ABI v8, `stats plugin` and /metrics): sieve_evictions_total,
 * sieve_hand_steps_total and the gauge sieve_visited_items.
 */
#include "wasmcached.h"

/* memcached's item header (48) + CAS (8) + "\r\n" + NUL, for item_size_ok */
#define MC_OVERHEAD 59u

typedef struct item {
    struct item *hnext;       /* hash chain */
    struct item *prev, *next; /* the queue: prev toward the head (newer) */
    uint64_t cas;
    uint32_t exptime, atime, flags, vlen;
    uint8_t klen, fetched;
    uint8_t binary;           /* v2 KEY_BINARY: the key came base64-encoded */
    uint8_t visited;          /* SIEVE's bit: hit since the hand last passed */
    uint8_t data[];           /* key, then value */
} item;

static item **table;
static uint32_t nbuckets; /* power of two */
static item *q_head, *q_tail;
/* The next item the hand looks at; NULL stands for the tail, where a hand
 * that ran off the head starts over. */
static item *hand;
static uint64_t used, budget, cas_seq;
static uint32_t shard_id, shard_count, max_item_size;
static int cas_enabled, no_evict;
static uint32_t oldest_live;
static uint64_t oldest_cas;
static uint32_t crawl_pos;

static struct {
    uint64_t curr_items, total_items, bytes, reclaimed, get_expired, get_flushed, outofmemory;
} st;

/* ------------------------------------------------------------ metrics (ABI v8) */

/* The stats read these too, so each figure has one home. */
static wmc_counter m_evictions, m_hand_steps;
static wmc_gauge m_visited;

/* ------------------------------------------------------------ the queue */

static void mark_visited(item *it) {
    if (!it->visited) {
        it->visited = 1;
        wmc_gauge_add(&m_visited, 1);
    }
}

static void clear_visited(item *it) {
    if (it->visited) {
        it->visited = 0;
        wmc_gauge_add(&m_visited, -1);
    }
}

static void q_unlink(item *it) {
    /* The hand moves on to the next newer item, as if it had passed this
     * one: an item removed under it must not leave it dangling. */
    if (hand == it) hand = it->prev;
    if (it->prev) it->prev->next = it->next;
    else q_head = it->next;
    if (it->next) it->next->prev = it->prev;
    else q_tail = it->prev;
    it->prev = it->next = 0;
}

static void q_push(item *it) {
    it->prev = 0;
    it->next = q_head;
    if (q_head) q_head->prev = it;
    q_head = it;
    if (!q_tail) q_tail = it;
}

/* Puts `it` right on the head side of `old`, which is about to go: an
 * overwrite keeps the item's place in the queue, as a hit would. */
static void q_insert_before(item *old, item *it) {
    it->next = old;
    it->prev = old->prev;
    if (old->prev) old->prev->next = it;
    else q_head = it;
    old->prev = it;
}

/* ------------------------------------------------------------ items */

static uint64_t cost(uint32_t klen, uint32_t vlen) {
    return wmc_alloc_size(sizeof(item) + klen + vlen);
}

static uint64_t next_cas(void) {
    if (!cas_enabled) return 0;
    return (cas_seq++) * shard_count + shard_id + 1;
}

static uint8_t *ival(item *it) { return it->data + it->klen; }

static item **slot_of(const uint8_t *key, uint32_t klen) {
    return &table[wmc_hash(key, klen) & (nbuckets - 1)];
}

static void unlink_item(item *it) {
    item **pp = slot_of(it->data, it->klen);
    while (*pp != it) pp = &(*pp)->hnext;
    *pp = it->hnext;
    q_unlink(it);
    clear_visited(it);
    used -= cost(it->klen, it->vlen);
    st.bytes -= it->klen + it->vlen;
    st.curr_items--;
    wmc_free(it);
}

static void grow_table(void) {
    uint32_t n = nbuckets * 2;
    item **t = wmc_calloc(sizeof(item *) * n);
    if (!t) return; /* keep the longer chains */
    for (uint32_t b = 0; b < nbuckets; b++) {
        item *it = table[b];
        while (it) {
            item *next = it->hnext;
            item **s = &t[wmc_hash(it->data, it->klen) & (n - 1)];
            it->hnext = *s;
            *s = it;
            it = next;
        }
    }
    wmc_free(table);
    used -= wmc_alloc_size(sizeof(item *) * nbuckets);
    used += wmc_alloc_size(sizeof(item *) * n);
    table = t;
    nbuckets = n;
}

/* Links `it` into the table and the queue: in the place of `old` when it
 * replaces one (then unlinks `old`), else at the head. */
static void link_item(item *it, item *old) {
    item **s = slot_of(it->data, it->klen);
    it->hnext = *s;
    *s = it;
    if (it->visited) wmc_gauge_add(&m_visited, 1);
    used += cost(it->klen, it->vlen);
    st.bytes += it->klen + it->vlen;
    st.curr_items++;
    st.total_items++;
    if (old) {
        q_insert_before(old, it);
        unlink_item(old);
    } else {
        q_push(it);
    }
    if (st.curr_items > (uint64_t)nbuckets * 3 / 2) grow_table();
}

/* memcached's item_is_flushed */
static int is_flushed(const item *it, uint32_t now) {
    if (oldest_live == 0 || oldest_live > now) return 0;
    return it->atime <= oldest_live || (oldest_cas && it->cas && it->cas < oldest_cas);
}

static int is_dead(const item *it, uint32_t now) {
    return (it->exptime && it->exptime <= now) || is_flushed(it, now);
}

/* A live item, dropping an expired or flushed one on the way. */
static item *lookup(const uint8_t *key, uint32_t klen, uint32_t now) {
    item *it = *slot_of(key, klen);
    while (it && !(it->klen == klen && memcmp(it->data, key, klen) == 0)) it = it->hnext;
    if (!it) return 0;
    if (is_flushed(it, now)) {
        st.get_flushed++;
        unlink_item(it);
        return 0;
    }
    if (it->exptime && it->exptime <= now) {
        st.get_expired++;
        unlink_item(it);
        return 0;
    }
    return it;
}

/* An access the policy sees (a hit, touch, an add that found the item):
 * memcached bumps the item; SIEVE only sets its bit. */
static void accessed(item *it, uint32_t now) {
    it->fetched = 1;
    it->atime = now;
    mark_visited(it);
}

/* v6: reports the lookup of a request (only while a watcher asks). */
static void report_lookup(const uint8_t *key, uint32_t klen, const item *it) {
    if (it) wmc_log_lookup(key, klen, 1, it->vlen, it->flags);
    else wmc_log_lookup(key, klen, 0, 0, 0);
}

/* Evicts a live item (reported to `watch evictions`). */
static void evict(item *victim) {
    wmc_counter_inc(&m_evictions);
    wmc_log_eviction(victim->data, victim->klen, victim->fetched, victim->exptime,
                     victim->atime, victim->flags, victim->vlen);
    unlink_item(victim);
}

/*
 * SIEVE's hand: from where it stopped toward the head, clearing visited
 * bits, to the first item that is unvisited or dead (never `pin`, the item
 * a store is replacing). The hand stays on it; removing it moves the hand
 * to the next newer item. NULL when there is nothing but `pin`.
 *
 * Two rounds of the queue always suffice (the first clears every bit); the
 * bound ends the walk when `pin` is all there is, which would circle
 * forever.
 */
static item *sieve_victim(item *pin, uint32_t now) {
    item *h = hand ? hand : q_tail;
    for (uint64_t left = 2 * st.curr_items + 2; h && left; left--) {
        if (h != pin && (!h->visited || is_dead(h, now))) {
            hand = h;
            return h;
        }
        if (h != pin) {
            clear_visited(h);
            wmc_counter_inc(&m_hand_steps);
        }
        h = h->prev ? h->prev : q_tail;
    }
    hand = h;
    return 0;
}

/* Removes one item to make room: the hand's victim, or with -M only a dead
 * item at the tail (-M never evicts, so the hand does not move either).
 * Returns whether one went. */
static int free_one(item *pin, uint32_t now) {
    item *victim;
    if (no_evict) {
        victim = q_tail == pin && pin ? pin->prev : q_tail;
        if (!victim || !is_dead(victim, now)) return 0;
    } else {
        victim = sieve_victim(pin, now);
        if (!victim) return 0;
    }
    if (is_dead(victim, now)) {
        st.reclaimed++;
        unlink_item(victim);
    } else {
        evict(victim);
    }
    return 1;
}

/* Frees items (never `pin`) until `need` more bytes fit the budget. */
static int make_room(uint64_t need, item *pin, uint32_t now) {
    while (used + need > budget) {
        if (!free_one(pin, now)) return 0;
    }
    return 1;
}

/* Memory for an item of `size` bytes, freeing items (never `pin`) while the
 * heap (capped by the host) is full. */
static item *alloc_item(uint32_t size, item *pin, uint32_t now) {
    item *it = wmc_malloc(size);
    while (!it && free_one(pin, now)) it = wmc_malloc(size);
    return it;
}

/* Builds and links a new item replacing `old` (may be NULL). Value is
 * a then b (for append/prepend). Returns NULL when memory ran out. */
static item *put(const uint8_t *key, uint32_t klen, item *old, const uint8_t *a, uint32_t alen,
                 const uint8_t *b, uint32_t blen, uint32_t flags, uint32_t exptime,
                 uint32_t now) {
    uint32_t vlen = alen + blen;
    uint64_t need = cost(klen, vlen);
    uint64_t freed = old ? cost(old->klen, old->vlen) : 0;
    if (need > freed && !make_room(need - freed, old, now)) return 0;
    item *it = alloc_item((uint32_t)(sizeof(item) + klen + vlen), old, now);
    if (!it) return 0;
    it->klen = (uint8_t)klen;
    it->vlen = vlen;
    memcpy(it->data, key, klen);
    if (alen) memcpy(it->data + klen, a, alen);
    if (blen) memcpy(it->data + klen + alen, b, blen);
    it->flags = flags;
    it->exptime = exptime;
    it->atime = now;
    it->fetched = 0;
    it->binary = 0;
    /* A store to a present key is a request for it: as SIEVE counts any
     * request that finds the object, the new value is visited. */
    it->visited = old != 0;
    it->cas = next_cas();
    link_item(it, old);
    return it;
}

static int too_large(uint32_t klen, uint64_t vlen) {
    return MC_OVERHEAD + klen + vlen > max_item_size || cost(klen, (uint32_t)vlen) > budget;
}

/* ------------------------------------------------------------ callbacks */

static int s_init(const wmc_config *cfg) {
    if (cfg->config_len) {
        /* a typo'd setting must not pass silently */
        wmc_logs(WMC_LOG_ERROR, "c-sieve: takes no --plugin-config");
        return -1;
    }
    shard_id = cfg->shard_id;
    shard_count = cfg->shard_count ? cfg->shard_count : 1;
    budget = cfg->memory_budget;
    max_item_size = cfg->max_item_size;
    cas_enabled = cfg->cas_enabled;
    no_evict = cfg->no_evict;
    /* a restarted shard must not reuse CAS values its predecessor gave out */
    cas_seq = (uint64_t)cfg->now << 20;
    wmc_register_counter(&m_evictions, "sieve_evictions_total",
                         "Live items the SIEVE hand evicted to make room");
    wmc_register_counter(&m_hand_steps, "sieve_hand_steps_total",
                         "Items the SIEVE hand stepped over, clearing their visited bit, "
                         "to find victims");
    wmc_register_gauge(&m_visited, "sieve_visited_items",
                       "Items whose SIEVE visited bit is set (hit since the hand passed)");
    nbuckets = 1024;
    /* v5 hint: memcached's -o hashpower, the table's initial size */
    if (cfg->hints.hashpower >= 10 && cfg->hints.hashpower <= 24)
        nbuckets = 1u << cfg->hints.hashpower;
    table = wmc_calloc(sizeof(item *) * nbuckets);
    if (!table) return -1;
    used = wmc_alloc_size(sizeof(item *) * nbuckets);
    return 0;
}

static void s_get(const wmc_request *r, wmc_out *out) {
    uint32_t now = wmc_now();
    item *it = lookup(r->key, r->key_len, now);
    report_lookup(r->key, r->key_len, it);
    if (!it) {
        wmc_respond_status(out, WMC_MISS);
        return;
    }
    uint32_t last = it->atime, prev_exptime = it->exptime;
    uint8_t iflags = (it->fetched ? WMC_IFLAG_FETCHED : 0) | (it->binary ? WMC_IFLAG_KEY_BINARY : 0);
    if (r->op == WMC_OP_GAT) it->exptime = r->exptime;
    if (!(r->mflags & WMC_MFLAG_NO_BUMP)) accessed(it, now);
    int no_value = (r->mflags & WMC_MFLAG_NO_VALUE) != 0;
    wmc_response hit = WMC_RESPONSE_INIT;
    hit.status = WMC_HIT;
    hit.iflags = iflags;
    hit.key = it->data;
    hit.key_len = it->klen;
    hit.value = ival(it);
    hit.value_len = no_value ? 0 : it->vlen;
    hit.client_flags = it->flags;
    hit.exptime = it->exptime;
    hit.cas = it->cas;
    hit.last_access = last;
    hit.prev_exptime = prev_exptime; /* v2: what `mg t` shows for a gat */
    wmc_respond(out, &hit);
}

static void s_touch(const wmc_request *r, wmc_out *out) {
    uint32_t now = wmc_now();
    item *it = lookup(r->key, r->key_len, now);
    report_lookup(r->key, r->key_len, it);
    if (!it) {
        wmc_respond_status(out, WMC_NOT_FOUND);
        return;
    }
    it->exptime = r->exptime;
    if (!(r->mflags & WMC_MFLAG_NO_BUMP)) accessed(it, now);
    wmc_respond_touched(out, it->cas, it->exptime);
}

static void s_store(const wmc_request *r, wmc_out *out) {
    uint32_t now = wmc_now();
    uint8_t mode = r->op;
    if ((mode == WMC_OP_SET || mode == WMC_OP_REPLACE) && r->cas) mode = WMC_OP_CAS;
    item *old = lookup(r->key, r->key_len, now);
    if (too_large(r->key_len, r->value_len)) {
        /* memcached drops the old item when a set fails */
        if (r->op == WMC_OP_SET && old) unlink_item(old);
        wmc_respond_status(out, WMC_TOO_LARGE);
        return;
    }
    report_lookup(r->key, r->key_len, old);
    const uint8_t *a = r->value, *b = 0;
    uint32_t alen = r->value_len, blen = 0, flags = r->client_flags, exptime = r->exptime;
    switch (mode) {
    case WMC_OP_ADD:
        if (old) {
            /* memcached promotes the existing item; SIEVE marks it */
            old->atime = now;
            mark_visited(old);
            wmc_respond_status(out, WMC_NOT_STORED);
            return;
        }
        break;
    case WMC_OP_REPLACE:
        if (!old) {
            wmc_respond_status(out, WMC_NOT_STORED);
            return;
        }
        break;
    case WMC_OP_CAS:
        if (!old) {
            wmc_respond_status(out, WMC_NOT_FOUND);
            return;
        }
        if (r->cas == 0 || r->cas != old->cas) {
            wmc_respond_status(out, WMC_EXISTS);
            return;
        }
        break;
    case WMC_OP_APPEND:
    case WMC_OP_PREPEND:
        if (!old) {
            wmc_respond_status(out, WMC_NOT_STORED);
            return;
        }
        if (r->cas && r->cas != old->cas) {
            wmc_respond_status(out, WMC_EXISTS);
            return;
        }
        if (too_large(r->key_len, (uint64_t)old->vlen + r->value_len)) {
            wmc_respond_status(out, WMC_NOT_STORED);
            return;
        }
        flags = old->flags;
        exptime = old->exptime;
        if (mode == WMC_OP_APPEND) {
            a = ival(old);
            alen = old->vlen;
            b = r->value;
            blen = r->value_len;
        } else {
            b = ival(old);
            blen = old->vlen;
        }
        break;
    default:
        break;
    }
    item *it = put(r->key, r->key_len, old, a, alen, b, blen, flags, exptime, now);
    if (!it) {
        st.outofmemory++;
        if (r->op == WMC_OP_SET && (old = lookup(r->key, r->key_len, now))) unlink_item(old);
        wmc_respond_status(out, WMC_OUT_OF_MEMORY);
        return;
    }
    if (mode == WMC_OP_APPEND || mode == WMC_OP_PREPEND) {
        /* the new size, for `watch mutations` (memcached logs the result) */
        wmc_log_stored(it->data, it->klen, it->vlen, it->flags, it->exptime);
    } else {
        /* v2: a key the client sent base64-encoded (meta `b`) */
        it->binary = (r->mflags & WMC_MFLAG_KEY_BINARY) != 0;
    }
    wmc_respond_stored(out, it->cas, it->exptime);
}

static void s_delete(const wmc_request *r, wmc_out *out) {
    item *it = lookup(r->key, r->key_len, wmc_now());
    report_lookup(r->key, r->key_len, it);
    if (!it) {
        wmc_respond_status(out, WMC_NOT_FOUND);
        return;
    }
    /* v2 HAS_CAS (meta `md C0`): compare even a CAS of 0 */
    if ((r->cas || (r->mflags & WMC_MFLAG_HAS_CAS)) && r->cas != it->cas) {
        wmc_respond_status(out, WMC_EXISTS);
        return;
    }
    wmc_response d = WMC_RESPONSE_INIT;
    d.status = WMC_DELETED;
    d.prev_exptime = it->exptime;
    unlink_item(it);
    wmc_respond(out, &d);
}

/* Number, with the item's exptime before the request (v2 prev_exptime). */
static void respond_number(wmc_out *out, uint64_t v, const item *it, uint32_t prev_exptime) {
    uint8_t digits[20];
    wmc_response n = WMC_RESPONSE_INIT;
    n.status = WMC_NUMBER;
    n.value = digits;
    n.value_len = wmc_fmt_u64(v, digits);
    n.cas = it->cas;
    n.exptime = it->exptime;
    n.prev_exptime = prev_exptime;
    wmc_respond(out, &n);
}

static void s_arith(const wmc_request *r, wmc_out *out) {
    uint32_t now = wmc_now();
    item *it = lookup(r->key, r->key_len, now);
    report_lookup(r->key, r->key_len, it);
    if (!it) {
        wmc_respond_status(out, WMC_NOT_FOUND);
        return;
    }
    /* memcached compares the CAS before it looks at the number */
    if (r->cas && r->cas != it->cas) {
        wmc_respond_status(out, WMC_EXISTS);
        return;
    }
    uint64_t v;
    if (it->vlen == 0 || !wmc_parse_u64(ival(it), it->vlen, &v)) {
        wmc_respond_status(out, WMC_NON_NUMERIC);
        return;
    }
    v = r->op == WMC_OP_INCR ? v + r->delta : (v < r->delta ? 0 : v - r->delta);
    uint8_t digits[20];
    uint32_t n = wmc_fmt_u64(v, digits);
    uint32_t prev_exptime = it->exptime;
    if (n <= it->vlen) {
        /* in place, padded with spaces, as memcached does */
        memcpy(ival(it), digits, n);
        memset(ival(it) + n, ' ', it->vlen - n);
        it->cas = next_cas();
        /* memcached's do_item_update: an access, so SIEVE's bit too */
        it->atime = now;
        mark_visited(it);
        /* v2 SET_TTL (meta `ma T`) */
        if (r->mflags & WMC_MFLAG_SET_TTL) it->exptime = r->exptime;
        respond_number(out, v, it, prev_exptime);
        return;
    }
    item *nit = put(it->data, it->klen, it, digits, n, 0, 0, it->flags, it->exptime, now);
    if (!nit) {
        st.outofmemory++;
        wmc_respond_status(out, WMC_OUT_OF_MEMORY);
        return;
    }
    /* memcached 1.6.18: the new, longer item keeps the old exptime even
     * with SET_TTL, and its key is no longer marked binary */
    respond_number(out, v, nit, prev_exptime);
}

static void s_flush_all(const wmc_request *r, wmc_out *out) {
    uint32_t now = wmc_now();
    uint32_t when = r->exptime ? r->exptime : now;
    if (cas_enabled) {
        oldest_live = when - 1;
        if (oldest_live <= now) oldest_cas = next_cas();
    } else {
        oldest_live = when;
    }
    wmc_respond_status(out, WMC_OK);
}

static void s_mem_limit(const wmc_request *r, wmc_out *out) {
    budget = r->delta;
    if (!no_evict) make_room(0, 0, wmc_now());
    wmc_respond_status(out, WMC_OK);
}

/* Once a second: reclaim dead items in a slice of the table. */
static void s_tick(uint32_t now) {
    for (uint32_t n = 0; n < 256 && n < nbuckets; n++) {
        crawl_pos = (crawl_pos + 1) & (nbuckets - 1);
        item *it = table[crawl_pos];
        while (it) {
            item *next = it->hnext;
            if (is_dead(it, now)) {
                st.reclaimed++;
                unlink_item(it);
            }
            it = next;
        }
    }
}

static void s_stats(int group, wmc_stats_out *s) {
    if (group != WMC_STATS_GENERAL) return;
    wmc_stat_u64(s, "curr_items", st.curr_items);
    wmc_stat_u64(s, "total_items", st.total_items);
    wmc_stat_u64(s, "bytes", st.bytes);
    wmc_stat_u64(s, "evictions", m_evictions.value);
    wmc_stat_u64(s, "reclaimed", st.reclaimed);
    wmc_stat_u64(s, "get_expired", st.get_expired);
    wmc_stat_u64(s, "get_flushed", st.get_flushed);
    wmc_stat_u64(s, "sieve_hand_steps", m_hand_steps.value);
    wmc_stat_u64(s, "sieve_visited", (uint64_t)m_visited.value);
    wmc_stat_u64(s, "sieve_outofmemory", st.outofmemory);
    wmc_stat_u64(s, "sieve_heap_bytes", wmc_heap_bytes());
}

/* ------------------------------------------------------------ dump, load, listing */

static uint64_t bitrev64(uint64_t x) {
    x = ((x >> 1) & 0x5555555555555555ull) | ((x & 0x5555555555555555ull) << 1);
    x = ((x >> 2) & 0x3333333333333333ull) | ((x & 0x3333333333333333ull) << 2);
    x = ((x >> 4) & 0x0f0f0f0f0f0f0f0full) | ((x & 0x0f0f0f0f0f0f0f0full) << 4);
    x = ((x >> 8) & 0x00ff00ff00ff00ffull) | ((x & 0x00ff00ff00ff00ffull) << 8);
    x = ((x >> 16) & 0x0000ffff0000ffffull) | ((x & 0x0000ffff0000ffffull) << 16);
    return (x >> 32) | (x << 32);
}

static void describe(const item *it, wmc_item *out) {
    out->key = it->data;
    out->key_len = it->klen;
    out->value = it->data + it->klen;
    out->value_len = it->vlen;
    out->client_flags = it->flags;
    out->exptime = it->exptime;
    out->cas = it->cas;
    out->last_access = it->atime;
    out->iflags = (it->fetched ? WMC_IFLAG_FETCHED : 0) | (it->binary ? WMC_IFLAG_KEY_BINARY : 0);
    out->refs = it->visited; /* v7: 0 = the next pass of the hand evicts it */
}

/* Where a dump starts: the item the hand looks at next. */
static item *dump_start(void) { return hand ? hand : q_tail; }

/* The item after `it` in the order the hand meets them (toward the head,
 * then from the tail), or NULL once that comes back to the start. */
static item *dump_after(const item *it) {
    item *n = it->prev ? it->prev : q_tail;
    return n == dump_start() ? 0 : n;
}

/* Buckets one listing call looks at before it answers WMC_WALK_MORE. */
#define LIST_SCAN 4096u

/*
 * A dump walks the queue in the order the hand would meet the items: from
 * the hand to the head, then from the tail to just before the hand. The
 * loader appends each at the head and its hand starts at the tail, so the
 * next evictions come out the same. The cursor is the address of the next
 * item, which is safe because nothing runs between the calls of a dump
 * (and the SDK restarts it after any other call).
 *
 * A listing must survive stores, deletes and table growth between calls.
 * It visits items in ascending order of r = bitrev64(hash): the bucket of a
 * key is the low bits of its hash, i.e. the high bits of r, so the items of
 * one bucket are a contiguous range of r whatever the table size (Redis's
 * SCAN order). The cursor is the smallest r not yet listed: an item present
 * for the whole listing is listed exactly once (two keys whose 64-bit
 * hashes are equal would list only one of them).
 */
static int s_walk(int purpose, uint64_t cursor, wmc_item *out, uint64_t *next) {
    uint32_t now = wmc_now();
    if (purpose == WMC_WALK_DUMP) {
        item *it = cursor ? (item *)(uintptr_t)cursor : dump_start();
        while (it && is_dead(it, now)) it = dump_after(it);
        if (!it) return WMC_WALK_END;
        describe(it, out);
        item *n = dump_after(it);
        *next = n ? (uint64_t)(uintptr_t)n : 0;
        return WMC_WALK_ITEM;
    }
    if (purpose != WMC_WALK_LIST) return WMC_WALK_UNSUPPORTED;
    uint32_t bits = 31u - (uint32_t)__builtin_clz(nbuckets);
    uint64_t c = cursor;
    for (uint32_t scanned = 0; scanned < LIST_SCAN; scanned++) {
        item *best = 0;
        uint64_t best_r = 0;
        for (item *it = table[bitrev64(c) & (nbuckets - 1)]; it; it = it->hnext) {
            uint64_t r = bitrev64(wmc_hash(it->data, it->klen));
            if (r >= c && (!best || r < best_r) && !is_dead(it, now)) {
                best = it;
                best_r = r;
            }
        }
        if (best) {
            describe(best, out);
            *next = best_r + 1; /* 0 (the end) after r = 2^64 - 1 */
            return WMC_WALK_ITEM;
        }
        /* the start of the next bucket's range */
        uint64_t prefix = (c >> (64 - bits)) + 1;
        if (prefix >= nbuckets) return WMC_WALK_END;
        c = prefix << (64 - bits);
    }
    *next = c;
    return WMC_WALK_MORE;
}

/* Stores one item of a dump: its value, flags, exptime, CAS, last access,
 * FETCHED / KEY_BINARY bits and visited bit (any non-zero `refs`: another
 * plugin's "not the coldest"), at the head (dumps come in the order the
 * hand should meet them). Expired items and items too large for -I or the
 * budget are dropped, as a set would drop them. */
static int s_load(const wmc_item *in) {
    uint32_t now = wmc_now();
    if (in->exptime && in->exptime <= now) return WMC_LOAD_OK;
    if (in->key_len < 1 || in->key_len > 250 || too_large(in->key_len, in->value_len))
        return WMC_LOAD_OK;
    item *old = lookup(in->key, in->key_len, now);
    uint64_t need = cost(in->key_len, in->value_len);
    uint64_t had = old ? cost(old->klen, old->vlen) : 0;
    if (need > had && !make_room(need - had, old, now)) return WMC_LOAD_FULL;
    item *it = alloc_item((uint32_t)(sizeof(item) + in->key_len + in->value_len), old, now);
    if (!it) return WMC_LOAD_FULL;
    /* a key that comes twice keeps its last copy, at the head */
    if (old) unlink_item(old);
    it->klen = (uint8_t)in->key_len;
    it->vlen = in->value_len;
    memcpy(it->data, in->key, in->key_len);
    if (in->value_len) memcpy(it->data + in->key_len, in->value, in->value_len);
    it->flags = in->client_flags;
    it->exptime = in->exptime;
    it->atime = in->last_access;
    it->fetched = (in->iflags & WMC_IFLAG_FETCHED) != 0;
    it->binary = (in->iflags & WMC_IFLAG_KEY_BINARY) != 0;
    it->visited = in->refs != 0;
    it->cas = cas_enabled ? in->cas : 0;
    /* CAS values handed out from now on stay above every loaded one */
    if (it->cas && it->cas / shard_count + 1 > cas_seq) cas_seq = it->cas / shard_count + 1;
    link_item(it, 0);
    return WMC_LOAD_OK;
}

static const wmc_plugin sieve_plugin = {
    .init = s_init,
    .get = s_get,
    .store = s_store,
    .del = s_delete,
    .arith = s_arith,
    .touch = s_touch,
    .flush_all = s_flush_all,
    .mem_limit = s_mem_limit,
    .tick = s_tick,
    .stats = s_stats,
    .meta_flags = WMC_MFLAG_KEY_BINARY | WMC_MFLAG_HAS_CAS | WMC_MFLAG_SET_TTL,
    .walk = s_walk,
    .load = s_load,
};

WMC_PLUGIN(sieve_plugin)
