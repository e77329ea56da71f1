/*
 * c-quota: a wasmcached storage plugin in C that enforces per-key-prefix
 * quotas. The prefix of a key is everything before the first separator
 * (default ':'): "user:42" has prefix "user". --plugin-config gives each
 * prefix a byte quota (key + value bytes of its live items):
 *
 *   --plugin-config 'user=65536,img=1048576,*=4194304,sep=:'
 *
 * `*` is the quota of every prefix not listed (each such prefix gets it on
 * its own); without `*` unlisted prefixes are limited only by -m. A store
 * that would take a prefix over its quota is refused with
 * `SERVER_ERROR prefix quota exceeded` -- other prefixes never lose items to
 * make room for it. The shard's memory budget (-m) is enforced separately
 * with plain LRU eviction (or OutOfMemory with -M).
 *
 * Quotas are per shard, split evenly like -m: run with -o shards=1 (or
 * -t 1) for exact numbers. Everything else follows memcached.
 *
 * Items survive a `plugin reload` (and a warm restart): the SDK's dump and
 * load call q_walk and q_load, which move every live item with its value,
 * flags, exptime, CAS, last access and LRU position. q_walk also serves the
 * item listing behind `lru_crawler metadump`.
 *
 * Metrics (ABI v8, `stats plugin` and /metrics): quota_rejections_total,
 * and a gauge quota_used_bytes_<prefix> per prefix.
 */
#include "wasmcached.h"

#define MAX_PREFIXES 64
#define MAX_PREFIX_LEN 32
#define QUOTA_MSG "prefix quota exceeded"
/* memcached's item header (48) + CAS (8) + "\r\n" + NUL, for item_size_ok */
#define MC_OVERHEAD 59u

typedef struct item {
    struct item *hnext;        /* hash chain */
    struct item *prev, *next;  /* global LRU, head = most recent */
    struct item *pprev, *pnext;/* items of the same prefix */
    uint64_t cas;
    uint32_t exptime, atime, flags, vlen;
    uint16_t prefix;           /* index into prefixes[] */
    uint8_t klen, fetched;
    uint8_t binary;            /* v2 KEY_BINARY: the key came base64-encoded */
    uint8_t data[];            /* key, then value */
} item;

typedef struct {
    uint8_t name[MAX_PREFIX_LEN];
    uint32_t len;
    int limited;
    uint64_t quota, used, rejected, items;
    item *list;
    /* v8 metric quota_used_bytes_<prefix>, set from `used` when the host
     * reads the metrics (q_update_metrics) */
    wmc_gauge used_metric;
    char metric_name[MAX_PREFIX_LEN + 24];
} prefix_t;

static prefix_t prefixes[MAX_PREFIXES];
static uint32_t nprefixes;
static int default_limited;
static uint64_t default_quota;
static uint8_t sep = ':';

static item **table;
static uint32_t nbuckets; /* power of two */
static item *lru_head, *lru_tail;
static uint64_t used, budget, cas_seq;
static uint32_t shard_id, shard_count, max_item_size;
static int cas_enabled, no_evict;
static uint32_t oldest_live;
static uint64_t oldest_cas;
static uint32_t crawl_pos;

static struct {
    uint64_t curr_items, total_items, bytes, evictions, reclaimed, get_expired, get_flushed,
        quota_rejections, outofmemory;
} st;

/* ------------------------------------------------------------ metrics (ABI v8) */

static wmc_counter m_rejections;

/* Names a prefix's gauge quota_used_bytes_<prefix>, bytes a metric name
 * cannot hold as '_', and registers it (a name that two prefixes map to
 * is refused for the second: it keeps its stat lines only). */
static void register_prefix_metric(prefix_t *p) {
    static const char head[] = "quota_used_bytes_";
    uint32_t k = 0;
    for (; head[k]; k++) p->metric_name[k] = head[k];
    for (uint32_t i = 0; i < p->len; i++) {
        uint8_t c = p->name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        p->metric_name[k++] = ok ? (char)c : '_';
    }
    p->metric_name[k] = 0;
    wmc_register_gauge(&p->used_metric, p->metric_name,
                       "Key and value bytes of the live items of a quota prefix");
}

static void q_update_metrics(void) {
    for (uint32_t i = 1; i < nprefixes; i++)
        wmc_gauge_set(&prefixes[i].used_metric, (int64_t)prefixes[i].used);
}

/* ------------------------------------------------------------ config */

static int parse_u64_str(const char *p, uint32_t n, uint64_t *out) {
    if (n == 0 || n > 19) return 0;
    uint64_t v = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return 0;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    *out = v;
    return 1;
}

static void logerr(const char *msg, const char *what, uint32_t n) {
    uint8_t buf[200];
    uint32_t m = (uint32_t)wmc_strlen(msg), k = 0;
    for (uint32_t i = 0; i < m && k < sizeof buf; i++) buf[k++] = (uint8_t)msg[i];
    for (uint32_t i = 0; i < n && k < sizeof buf; i++) buf[k++] = (uint8_t)what[i];
    wmc_log(WMC_LOG_ERROR, (const char *)buf, k);
}

static int parse_config(const char *s, uint32_t n) {
    uint32_t i = 0;
    while (i < n) {
        uint32_t start = i;
        while (i < n && s[i] != ',' && s[i] != ' ') i++;
        uint32_t end = i;
        i++;
        if (end == start) continue;
        uint32_t eq = start;
        while (eq < end && s[eq] != '=') eq++;
        if (eq == end) {
            logerr("c-quota: expected prefix=bytes, got ", s + start, end - start);
            return -1;
        }
        const char *k = s + start, *v = s + eq + 1;
        uint32_t klen = eq - start, vlen = end - eq - 1;
        if (klen == 3 && k[0] == 's' && k[1] == 'e' && k[2] == 'p') {
            if (vlen != 1) {
                logerr("c-quota: sep wants one character, got ", v, vlen);
                return -1;
            }
            sep = (uint8_t)v[0];
            continue;
        }
        uint64_t q;
        if (!parse_u64_str(v, vlen, &q)) {
            logerr("c-quota: quota wants a number of bytes, got ", v, vlen);
            return -1;
        }
        if (klen == 1 && k[0] == '*') {
            default_limited = 1;
            default_quota = q;
            continue;
        }
        if (klen > MAX_PREFIX_LEN || nprefixes == MAX_PREFIXES) {
            logerr("c-quota: too many or too long prefixes at ", k, klen);
            return -1;
        }
        prefix_t *p = &prefixes[nprefixes++];
        memcpy(p->name, k, klen);
        p->len = klen;
        p->limited = 1;
        p->quota = q;
    }
    return 0;
}

/* The prefix slot of a key: a configured one, or one created on first use
 * for an unlisted prefix (sharing slot 0, "other", once all are taken). */
static uint16_t prefix_of(const uint8_t *key, uint32_t klen) {
    uint32_t n = 0;
    while (n < klen && key[n] != sep) n++;
    if (n == klen) n = 0; /* no separator: the empty prefix */
    for (uint32_t i = 1; i < nprefixes; i++) {
        if (prefixes[i].len == n && memcmp(prefixes[i].name, key, n) == 0) return (uint16_t)i;
    }
    if (n > MAX_PREFIX_LEN || nprefixes == MAX_PREFIXES) return 0;
    prefix_t *p = &prefixes[nprefixes];
    memcpy(p->name, key, n);
    p->len = n;
    p->limited = default_limited;
    p->quota = default_quota / shard_count;
    register_prefix_metric(p);
    return (uint16_t)nprefixes++;
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

static void lru_unlink(item *it) {
    if (it->prev) it->prev->next = it->next;
    else lru_head = it->next;
    if (it->next) it->next->prev = it->prev;
    else lru_tail = it->prev;
    it->prev = it->next = 0;
}

static void lru_push(item *it) {
    it->prev = 0;
    it->next = lru_head;
    if (lru_head) lru_head->prev = it;
    lru_head = it;
    if (!lru_tail) lru_tail = it;
}

static item **slot_of(const uint8_t *key, uint32_t klen) {
    return &table[wmc_hash(key, klen) & (nbuckets - 1)];
}

static void unlink_item(item *it) {
    item **pp = slot_of(it->data, it->klen);
    while (*pp != it) pp = &(*pp)->hnext;
    *pp = it->hnext;
    lru_unlink(it);
    prefix_t *p = &prefixes[it->prefix];
    if (it->pprev) it->pprev->pnext = it->pnext;
    else p->list = it->pnext;
    if (it->pnext) it->pnext->pprev = it->pprev;
    p->used -= it->klen + it->vlen;
    p->items--;
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

static void link_item(item *it) {
    item **s = slot_of(it->data, it->klen);
    it->hnext = *s;
    *s = it;
    lru_push(it);
    prefix_t *p = &prefixes[it->prefix];
    it->pprev = 0;
    it->pnext = p->list;
    if (p->list) p->list->pprev = it;
    p->list = it;
    p->used += it->klen + it->vlen;
    p->items++;
    used += cost(it->klen, it->vlen);
    st.bytes += it->klen + it->vlen;
    st.curr_items++;
    st.total_items++;
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

/* Reclaims dead items of prefix `p`; returns whether any went. */
static int reclaim_prefix(uint16_t p, uint32_t now) {
    int any = 0;
    item *it = prefixes[p].list;
    while (it) {
        item *next = it->pnext;
        if (is_dead(it, now)) {
            st.reclaimed++;
            unlink_item(it);
            any = 1;
        }
        it = next;
    }
    return any;
}

/* v6: reports the lookup of a request (only while a watcher asks). */
static void report_lookup(const uint8_t *key, uint32_t klen, const item *it) {
    if (it) wmc_log_lookup(key, klen, 1, it->vlen, it->flags);
    else wmc_log_lookup(key, klen, 0, 0, 0);
}

/* Evicts a live item (reported to `watch evictions`). */
static void evict(item *victim) {
    st.evictions++;
    wmc_log_eviction(victim->data, victim->klen, victim->fetched, victim->exptime,
                     victim->atime, victim->flags, victim->vlen);
    unlink_item(victim);
}

/* Frees the LRU tail (never `pin`) until `need` more bytes fit the budget. */
static int make_room(uint64_t need, item *pin, uint32_t now) {
    while (used + need > budget) {
        item *victim = lru_tail;
        if (victim == pin) victim = victim ? victim->prev : 0;
        if (!victim) return 0;
        if (is_dead(victim, now)) {
            st.reclaimed++;
            unlink_item(victim);
        } else {
            if (no_evict) return 0;
            evict(victim);
        }
    }
    return 1;
}

/* Memory for an item of `size` bytes, evicting from the LRU tail (never
 * `pin`) while the heap (capped by the host) is full. */
static item *alloc_item(uint32_t size, item *pin) {
    item *it = wmc_malloc(size);
    while (!it && !no_evict && lru_tail && !(lru_tail == pin && !pin->prev)) {
        evict(lru_tail == pin ? pin->prev : lru_tail);
        it = wmc_malloc(size);
    }
    return it;
}

/* Whether prefix p can take `add` more bytes while `freed` go away. */
static int quota_ok(uint16_t p, uint64_t add, uint64_t freed, uint32_t now) {
    prefix_t *q = &prefixes[p];
    if (!q->limited) return 1;
    if (q->used - freed + add <= q->quota) return 1;
    if (reclaim_prefix(p, now) && q->used - freed + add <= q->quota) return 1;
    return 0;
}

/* Builds and links a new item replacing `old` (may be NULL). Value is
 * a then b (for append/prepend). Returns NULL when memory ran out. */
static item *put(const uint8_t *key, uint32_t klen, uint16_t p, item *old, const uint8_t *a,
                 uint32_t alen, const uint8_t *b, uint32_t blen, uint32_t flags,
                 uint32_t exptime, uint32_t now) {
    uint32_t vlen = alen + blen;
    uint64_t need = cost(klen, vlen);
    uint64_t freed = old ? cost(old->klen, old->vlen) : 0;
    if (need > freed && !make_room(need - freed, old, now)) return 0;
    item *it = alloc_item((uint32_t)(sizeof(item) + klen + vlen), old);
    if (!it) return 0;
    it->klen = (uint8_t)klen;
    it->vlen = vlen;
    memcpy(it->data, key, klen);
    if (alen) memcpy(it->data + klen, a, alen);
    if (blen) memcpy(it->data + klen + alen, b, blen);
    if (old) unlink_item(old);
    it->prefix = p;
    it->flags = flags;
    it->exptime = exptime;
    it->atime = now;
    it->fetched = 0;
    it->binary = 0;
    it->cas = next_cas();
    link_item(it);
    return it;
}

static int too_large(uint32_t klen, uint64_t vlen) {
    return MC_OVERHEAD + klen + vlen > max_item_size || cost(klen, (uint32_t)vlen) > budget;
}

/* ------------------------------------------------------------ callbacks */

static int q_init(const wmc_config *cfg) {
    shard_id = cfg->shard_id;
    shard_count = cfg->shard_count ? cfg->shard_count : 1;
    budget = cfg->memory_budget;
    max_item_size = cfg->max_item_size;
    cas_enabled = cfg->cas_enabled;
    no_evict = cfg->no_evict;
    /* a restarted shard must not reuse CAS values its predecessor gave out */
    cas_seq = (uint64_t)cfg->now << 20;
    nprefixes = 1; /* slot 0: "other", unlimited, for overflow prefixes */
    prefixes[0].len = 0;
    if (parse_config(cfg->config, cfg->config_len) != 0) return -1;
    for (uint32_t i = 1; i < nprefixes; i++) prefixes[i].quota /= shard_count;
    wmc_register_counter(&m_rejections, "quota_rejections_total",
                         "Stores refused because they would take a prefix over its quota");
    for (uint32_t i = 1; i < nprefixes; i++) register_prefix_metric(&prefixes[i]);
    nbuckets = 1024;
    /* v5 hint: memcached's -o hashpower, the table's initial size */
    if (cfg->hints.hashpower >= 10 && cfg->hints.hashpower <= 24)
        nbuckets = 1u << cfg->hints.hashpower;
    table = wmc_calloc(sizeof(item *) * nbuckets);
    if (!table) return -1;
    used = wmc_alloc_size(sizeof(item *) * nbuckets);
    return 0;
}

static void q_get(const wmc_request *r, wmc_out *out) {
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
    if (!(r->mflags & WMC_MFLAG_NO_BUMP)) {
        it->fetched = 1;
        it->atime = now;
        lru_unlink(it);
        lru_push(it);
    }
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

static void q_touch(const wmc_request *r, wmc_out *out) {
    uint32_t now = wmc_now();
    item *it = lookup(r->key, r->key_len, now);
    report_lookup(r->key, r->key_len, it);
    if (!it) {
        wmc_respond_status(out, WMC_NOT_FOUND);
        return;
    }
    it->exptime = r->exptime;
    if (!(r->mflags & WMC_MFLAG_NO_BUMP)) {
        it->fetched = 1;
        it->atime = now;
        lru_unlink(it);
        lru_push(it);
    }
    wmc_respond_touched(out, it->cas, it->exptime);
}

static void q_store(const wmc_request *r, wmc_out *out) {
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
            old->atime = now; /* memcached promotes the existing item */
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
    uint16_t p = old ? old->prefix : prefix_of(r->key, r->key_len);
    uint64_t freed = old ? (uint64_t)old->klen + old->vlen : 0;
    if (!quota_ok(p, (uint64_t)r->key_len + alen + blen, freed, now)) {
        st.quota_rejections++;
        wmc_counter_inc(&m_rejections);
        prefixes[p].rejected++;
        if (r->op == WMC_OP_SET && old) unlink_item(old);
        wmc_respond_error(out, QUOTA_MSG);
        return;
    }
    item *it = put(r->key, r->key_len, p, old, a, alen, b, blen, flags, exptime, now);
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

static void q_delete(const wmc_request *r, wmc_out *out) {
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

static void q_arith(const wmc_request *r, wmc_out *out) {
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
        it->atime = now;
        /* v2 SET_TTL (meta `ma T`) */
        if (r->mflags & WMC_MFLAG_SET_TTL) it->exptime = r->exptime;
        respond_number(out, v, it, prev_exptime);
        return;
    }
    if (!quota_ok(it->prefix, (uint64_t)it->klen + n, (uint64_t)it->klen + it->vlen, now)) {
        st.quota_rejections++;
        wmc_counter_inc(&m_rejections);
        prefixes[it->prefix].rejected++;
        wmc_respond_error(out, QUOTA_MSG);
        return;
    }
    item *nit = put(it->data, it->klen, it->prefix, it, digits, n, 0, 0, it->flags,
                    it->exptime, now);
    if (!nit) {
        st.outofmemory++;
        wmc_respond_status(out, WMC_OUT_OF_MEMORY);
        return;
    }
    /* memcached 1.6.18: the new, longer item keeps the old exptime even
     * with SET_TTL, and its key is no longer marked binary */
    respond_number(out, v, nit, prev_exptime);
}

static void q_flush_all(const wmc_request *r, wmc_out *out) {
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

static void q_mem_limit(const wmc_request *r, wmc_out *out) {
    budget = r->delta;
    if (!no_evict) make_room(0, 0, wmc_now());
    wmc_respond_status(out, WMC_OK);
}

/* Once a second: reclaim dead items in a slice of the table. */
static void q_tick(uint32_t now) {
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

static void q_stats(int group, wmc_stats_out *s) {
    if (group != WMC_STATS_GENERAL) return;
    wmc_stat_u64(s, "curr_items", st.curr_items);
    wmc_stat_u64(s, "total_items", st.total_items);
    wmc_stat_u64(s, "bytes", st.bytes);
    wmc_stat_u64(s, "evictions", st.evictions);
    wmc_stat_u64(s, "reclaimed", st.reclaimed);
    wmc_stat_u64(s, "get_expired", st.get_expired);
    wmc_stat_u64(s, "get_flushed", st.get_flushed);
    wmc_stat_u64(s, "quota_rejections", st.quota_rejections);
    wmc_stat_u64(s, "quota_outofmemory", st.outofmemory);
    wmc_stat_u64(s, "quota_heap_bytes", wmc_heap_bytes());
    for (uint32_t i = 1; i < nprefixes; i++) {
        prefix_t *p = &prefixes[i];
        wmc_stat_u64_parts(s, "quota:", p->name, p->len, p->len ? ":bytes" : "_:bytes", p->used);
        wmc_stat_u64_parts(s, "quota:", p->name, p->len, p->len ? ":items" : "_:items", p->items);
        wmc_stat_u64_parts(s, "quota:", p->name, p->len, p->len ? ":rejected" : "_:rejected",
                           p->rejected);
        if (p->limited)
            wmc_stat_u64_parts(s, "quota:", p->name, p->len, p->len ? ":limit" : "_:limit",
                               p->quota);
    }
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
    out->refs = 0; /* plain LRU: the order of the dump carries the recency */
}

/* Buckets one listing call looks at before it answers WMC_WALK_MORE. */
#define LIST_SCAN 4096u

/*
 * A dump walks the LRU from its tail (least recently used) to its head; the
 * cursor is the address of the next item to give, which is safe because
 * nothing runs between the calls of a dump (and the SDK restarts it after
 * any other call). The loader links each item as the most recent one, so
 * the order comes out the same.
 *
 * A listing must survive stores, deletes and table growth between calls.
 * It visits items in ascending order of r = bitrev64(hash): the bucket of a
 * key is the low bits of its hash, i.e. the high bits of r, so the items of
 * one bucket are a contiguous range of r whatever the table size (Redis's
 * SCAN order). The cursor is the smallest r not yet listed: an item present
 * for the whole listing is listed exactly once (two keys whose 64-bit
 * hashes are equal would list only one of them).
 */
static int q_walk(int purpose, uint64_t cursor, wmc_item *out, uint64_t *next) {
    uint32_t now = wmc_now();
    if (purpose == WMC_WALK_DUMP) {
        item *it = cursor ? (item *)(uintptr_t)cursor : lru_tail;
        while (it && is_dead(it, now)) it = it->prev;
        if (!it) return WMC_WALK_END;
        describe(it, out);
        *next = it->prev ? (uint64_t)(uintptr_t)it->prev : 0;
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

/* Stores one item of a dump: its value, flags, exptime, CAS, last access
 * and FETCHED / KEY_BINARY bits, as the most recent item (dumps come least
 * recent first). Expired items, items too large for -I or the budget and
 * items over their prefix's quota are dropped, as a set would drop them. */
static int q_load(const wmc_item *in) {
    uint32_t now = wmc_now();
    if (in->exptime && in->exptime <= now) return WMC_LOAD_OK;
    if (in->key_len > 250 || too_large(in->key_len, in->value_len)) return WMC_LOAD_OK;
    item *old = lookup(in->key, in->key_len, now);
    uint16_t p = old ? old->prefix : prefix_of(in->key, in->key_len);
    uint64_t freed = old ? (uint64_t)old->klen + old->vlen : 0;
    if (!quota_ok(p, (uint64_t)in->key_len + in->value_len, freed, now)) return WMC_LOAD_OK;
    uint64_t need = cost(in->key_len, in->value_len);
    uint64_t had = old ? cost(old->klen, old->vlen) : 0;
    if (need > had && !make_room(need - had, old, now)) return WMC_LOAD_FULL;
    item *it = alloc_item((uint32_t)(sizeof(item) + in->key_len + in->value_len), old);
    if (!it) return WMC_LOAD_FULL;
    if (old) unlink_item(old);
    it->klen = (uint8_t)in->key_len;
    it->vlen = in->value_len;
    memcpy(it->data, in->key, in->key_len);
    if (in->value_len) memcpy(it->data + in->key_len, in->value, in->value_len);
    it->prefix = p;
    it->flags = in->client_flags;
    it->exptime = in->exptime;
    it->atime = in->last_access;
    it->fetched = (in->iflags & WMC_IFLAG_FETCHED) != 0;
    it->binary = (in->iflags & WMC_IFLAG_KEY_BINARY) != 0;
    it->cas = cas_enabled ? in->cas : 0;
    /* CAS values handed out from now on stay above every loaded one */
    if (it->cas && it->cas / shard_count + 1 > cas_seq) cas_seq = it->cas / shard_count + 1;
    link_item(it);
    return WMC_LOAD_OK;
}

static const wmc_plugin quota_plugin = {
    .init = q_init,
    .get = q_get,
    .store = q_store,
    .del = q_delete,
    .arith = q_arith,
    .touch = q_touch,
    .flush_all = q_flush_all,
    .mem_limit = q_mem_limit,
    .tick = q_tick,
    .stats = q_stats,
    .meta_flags = WMC_MFLAG_KEY_BINARY | WMC_MFLAG_HAS_CAS | WMC_MFLAG_SET_TTL,
    .walk = q_walk,
    .load = q_load,
    .update_metrics = q_update_metrics,
};

WMC_PLUGIN(quota_plugin)
