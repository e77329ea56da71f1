/*
 * {{name}}: a wasmcached storage plugin in C, on the C SDK (wasmcached.h).
 *
 * A tiny key-value store: Get, Set, Delete and an immediate flush_all, with
 * client flags, expiry, CAS values and a memory budget. It never evicts: a
 * full store answers out of memory. Everything else (add, cas, incr, touch,
 * gat, delayed flush_all, ...) is answered with an error, the ABI's answer
 * for what a plugin does not implement; the SDK also refuses the meta flags
 * this store does not list in `meta_flags`.
 *
 * Items live in a chained hash table that doubles when it gets full. Each
 * item is one allocation: the header, then the key, then the value.
 */
#include "wasmcached.h"

typedef struct item {
    struct item *next; /* the next item of the same bucket */
    uint64_t hash;
    uint64_t cas;
    uint32_t key_len;
    uint32_t value_len;
    uint32_t client_flags;
    uint32_t exptime;     /* server time it expires at; 0 = never */
    uint32_t last_access; /* server time of the last store or fetch */
    uint8_t fetched;      /* fetched since it was stored */
    uint8_t data[];       /* key_len bytes of key, then the value */
} item;

static item **table;
static uint32_t nbuckets; /* a power of two */
static uint32_t nitems;
static uint64_t used;   /* bytes the items take from the allocator */
static uint64_t budget; /* bytes they may take (-m / shards; MemLimit) */
static uint32_t max_item_size;
static uint64_t next_cas;

static int live(const item *it, uint32_t now) { return it->exptime == 0 || it->exptime > now; }

static uint64_t cost(const item *it) {
    return wmc_alloc_size(sizeof(item) + it->key_len + it->value_len);
}

/* The link that points at the item with this key (or at the NULL ending its
 * bucket): what a removal rewrites. */
static item **find(const uint8_t *key, uint32_t len, uint64_t hash) {
    item **at = &table[hash & (nbuckets - 1)];
    while (*at && !((*at)->hash == hash && (*at)->key_len == len &&
                    memcmp((*at)->data, key, len) == 0))
        at = &(*at)->next;
    return at;
}

static void unlink_free(item **at) {
    item *it = *at;
    *at = it->next;
    used -= cost(it);
    nitems--;
    wmc_free(it);
}

/* Doubles the table; a failed allocation keeps the old one (longer chains). */
static void grow(void) {
    uint32_t n = nbuckets * 2;
    item **t = wmc_calloc(n * sizeof(item *));
    if (!t) return;
    for (uint32_t b = 0; b < nbuckets; b++) {
        item *it = table[b];
        while (it) {
            item *next = it->next;
            it->next = t[it->hash & (n - 1)];
            t[it->hash & (n - 1)] = it;
            it = next;
        }
    }
    wmc_free(table);
    table = t;
    nbuckets = n;
}

static void drop_expired(uint32_t now) {
    for (uint32_t b = 0; b < nbuckets; b++) {
        item **at = &table[b];
        while (*at) {
            if (live(*at, now)) at = &(*at)->next;
            else unlink_free(at);
        }
    }
}

static int store_init(const wmc_config *cfg) {
    nbuckets = 1024;
    table = wmc_calloc(nbuckets * sizeof(item *));
    if (!table) {
        wmc_logs(WMC_LOG_ERROR, "{{name}}: no memory for the hash table");
        return 1;
    }
    budget = cfg->memory_budget;
    max_item_size = cfg->max_item_size;
    return 0;
}

static void store_get(const wmc_request *r, wmc_out *out) {
    if (r->op != WMC_OP_GET) {
        wmc_respond_error(out, "gat is not supported by this store");
        return;
    }
    uint32_t now = wmc_now();
    item *it = *find(r->key, r->key_len, wmc_hash(r->key, r->key_len));
    if (!it || !live(it, now)) {
        wmc_respond_status(out, WMC_MISS);
        return;
    }
    wmc_response hit = WMC_RESPONSE_INIT;
    hit.status = WMC_HIT;
    hit.iflags = it->fetched ? WMC_IFLAG_FETCHED : 0;
    hit.key = it->data;
    hit.key_len = it->key_len;
    hit.value = it->data + it->key_len;
    hit.value_len = (r->mflags & WMC_MFLAG_NO_VALUE) ? 0 : it->value_len;
    hit.client_flags = it->client_flags;
    hit.exptime = it->exptime;
    hit.cas = it->cas;
    hit.last_access = it->last_access;
    hit.prev_exptime = it->exptime; /* what `mg t` shows: a get leaves it */
    wmc_respond(out, &hit);
    if (!(r->mflags & WMC_MFLAG_NO_BUMP)) {
        it->fetched = 1;
        it->last_access = now;
    }
}

static void store_set(const wmc_request *r, wmc_out *out) {
    /* A Set with a CAS value is a compare-and-swap, which this store does
     * not do; nor add, replace, append, prepend or cas. */
    if (r->op != WMC_OP_SET || r->cas != 0) {
        wmc_respond_error(out, "not supported by this store");
        return;
    }
    uint64_t hash = wmc_hash(r->key, r->key_len);
    /* A set that fails still removes the old value, as in memcached. */
    item **at = find(r->key, r->key_len, hash);
    if (*at) unlink_free(at);
    if ((uint64_t)r->key_len + r->value_len > max_item_size) {
        wmc_respond_status(out, WMC_TOO_LARGE);
        return;
    }
    uint64_t need = wmc_alloc_size(sizeof(item) + r->key_len + r->value_len);
    uint32_t now = wmc_now();
    if (used + need > budget) drop_expired(now);
    item *it = used + need > budget ? 0 : wmc_malloc(sizeof(item) + r->key_len + r->value_len);
    if (!it) {
        wmc_respond_status(out, WMC_OUT_OF_MEMORY);
        return;
    }
    it->hash = hash;
    it->cas = ++next_cas;
    it->key_len = r->key_len;
    it->value_len = r->value_len;
    it->client_flags = r->client_flags;
    it->exptime = r->exptime;
    it->last_access = now;
    it->fetched = 0;
    memcpy(it->data, r->key, r->key_len);
    memcpy(it->data + r->key_len, r->value, r->value_len);
    if (nitems >= nbuckets) grow();
    at = &table[hash & (nbuckets - 1)];
    it->next = *at;
    *at = it;
    nitems++;
    used += need;
    wmc_respond_stored(out, it->cas, it->exptime);
}

static void store_delete(const wmc_request *r, wmc_out *out) {
    if (r->cas != 0) {
        wmc_respond_error(out, "delete with a CAS value is not supported by this store");
        return;
    }
    item **at = find(r->key, r->key_len, wmc_hash(r->key, r->key_len));
    int found = *at && live(*at, wmc_now());
    if (*at) unlink_free(at);
    wmc_respond_status(out, found ? WMC_DELETED : WMC_NOT_FOUND);
}

static void store_flush_all(const wmc_request *r, wmc_out *out) {
    if (r->exptime != 0) {
        wmc_respond_error(out, "a delayed flush_all is not supported by this store");
        return;
    }
    for (uint32_t b = 0; b < nbuckets; b++) {
        while (table[b]) unlink_free(&table[b]);
    }
    wmc_respond_status(out, WMC_OK);
}

static void store_mem_limit(const wmc_request *r, wmc_out *out) {
    budget = r->delta;
    wmc_respond_status(out, WMC_OK);
}

static void store_stats(int group, wmc_stats_out *out) {
    /* memcached's names: `stats` shows them in their usual places. */
    if (group == WMC_STATS_GENERAL) {
        wmc_stat_u64(out, "curr_items", nitems);
        wmc_stat_u64(out, "bytes", used);
    }
}

static const wmc_plugin plugin = {
    .init = store_init,
    .get = store_get,
    .store = store_set,
    .del = store_delete,
    .flush_all = store_flush_all,
    .mem_limit = store_mem_limit,
    .stats = store_stats,
};
WMC_PLUGIN(plugin)
