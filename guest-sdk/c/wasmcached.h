/*
 * wasmcached C SDK: write a wasmcached storage plugin as plain C callbacks.
 *
 * The SDK (wasmcached.c) implements the byte-level ABI of docs/plugin-abi.md:
 * it exports wmc_abi_version, wmc_input, wmc_init, wmc_batch, wmc_tick,
 * wmc_timer, wmc_stats, wmc_dump, wmc_load, wmc_iter, wmc_metrics and the memory,
 * decodes the request records of each batch into `wmc_request` values, calls your callbacks, and encodes the
 * answers you give through `wmc_out` into response records.
 *
 * ABI version: the SDK speaks version 8 (the current one) by default:
 *  - v2: the meta-protocol request bits (mflags 2..10, `aux`) and response
 *    fields (iflags STALE.., `prev_exptime`) reach your callbacks. The SDK
 *    answers Error for a request carrying a v2 mflag your table does not
 *    list in `meta_flags` (the advisory META_GET / NO_TOKEN never count), so
 *    a plugin that implements none of them is still correct.
 *  - v3: item dump and load (a `plugin reload` or warm restart keeps the
 *    items) when the table has `walk` and `load` callbacks.
 *  - v5: the init record's hints (wmc_config.hints) and the item listing
 *    behind `lru_crawler metadump` / `stats cachedump`, from the same `walk`.
 *  - v6: `watch` reports through wmc_log_lookup / wmc_log_stored /
 *    wmc_log_eviction (they do nothing unless the running request asks).
 *  - v7: item records carry `refs`, the item's recency in your policy.
 *  - v8: metrics (counters, gauges, histograms) in your memory that the
 *    host reads without a call per update: wmc_register_counter & co.
 *  - v4 held values are not used: values are always copied into answers.
 * Build wasmcached.c with -DWMC_ABI=1 (or 2..7) to speak an older version
 * (below 8 the register functions still work, and the host reads nothing);
 * the host then never sends or asks what that version does not have.
 *
 * Freestanding: no libc is needed or linked. The SDK brings a small
 * allocator (wmc_malloc/wmc_free/wmc_realloc, power-of-two size classes on
 * top of memory.grow) and the memcpy/memmove/memset/memcmp the compiler may
 * call. Build (clang 14+ with lld):
 *
 *   clang --target=wasm32 -O2 -ffreestanding -nostdlib -mbulk-memory \
 *         -Wl,--no-entry -I guest-sdk/c \
 *         -o plugin.wasm plugin.c guest-sdk/c/wasmcached.c
 *
 * (The exports carry export_name attributes; nothing else is exported.)
 *
 * A plugin is a `wmc_plugin` table of callbacks registered with
 * WMC_PLUGIN(table). Every callback except `init` may be NULL: requests for
 * a missing one are answered with status Error ("not supported"), which the
 * client sees as `SERVER_ERROR`.
 *
 * Rules for request callbacks: answer exactly once through `out` (a second
 * answer is ignored; no answer becomes an Error "plugin gave no answer").
 * The request's key and value point into the host's input buffer and are
 * valid only during the callback: copy what you keep.
 */
#ifndef WASMCACHED_H
#define WASMCACHED_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- ops (request byte 0) ---- */
enum wmc_op {
    WMC_OP_GET = 1,
    WMC_OP_SET = 2,
    WMC_OP_ADD = 3,
    WMC_OP_REPLACE = 4,
    WMC_OP_APPEND = 5,
    WMC_OP_PREPEND = 6,
    WMC_OP_CAS = 7,
    WMC_OP_DELETE = 8,
    WMC_OP_INCR = 9,
    WMC_OP_DECR = 10,
    WMC_OP_TOUCH = 11,
    WMC_OP_GAT = 12,
    WMC_OP_FLUSH_ALL = 13,
    WMC_OP_MEM_LIMIT = 14
};

/* ---- response statuses ---- */
enum wmc_status {
    WMC_STORED = 0,
    WMC_NOT_STORED = 1,
    WMC_EXISTS = 2,
    WMC_NOT_FOUND = 3,
    WMC_DELETED = 4,
    WMC_TOUCHED = 5,
    WMC_HIT = 6,
    WMC_MISS = 7,
    WMC_NUMBER = 8,
    WMC_NON_NUMERIC = 9,
    WMC_TOO_LARGE = 10,
    WMC_OUT_OF_MEMORY = 11,
    WMC_OK = 12,
    WMC_ERROR = 13
};

/* ---- request mflags ---- */
#define WMC_MFLAG_NO_VALUE (1u << 0)        /* caller does not need the value bytes */
#define WMC_MFLAG_NO_BUMP (1u << 1)         /* do not update LRU / access time */
#define WMC_MFLAG_VIVIFY (1u << 2)          /* v2 */
#define WMC_MFLAG_INVALIDATE (1u << 3)      /* v2 */
#define WMC_MFLAG_RECACHE (1u << 4)         /* v2 */
#define WMC_MFLAG_KEY_BINARY (1u << 5)      /* v2 */
#define WMC_MFLAG_SET_TTL (1u << 6)         /* v2 */
#define WMC_MFLAG_RECACHE_NEW_TTL (1u << 7) /* v2 */
#define WMC_MFLAG_HAS_CAS (1u << 8)         /* v2 */
#define WMC_MFLAG_META_GET (1u << 9)        /* v2, advisory */
#define WMC_MFLAG_NO_TOKEN (1u << 10)       /* v2, advisory */
#define WMC_MFLAG_LOG_LOOKUP (1u << 11)     /* v6: see wmc_log_lookup */
#define WMC_MFLAG_LOG_EVICTIONS (1u << 12)  /* v6: see wmc_log_eviction */
/* The v2 bits a plugin implements or refuses (see wmc_plugin.meta_flags). */
#define WMC_MFLAG_V2_CHECKED                                                        \
    (WMC_MFLAG_VIVIFY | WMC_MFLAG_INVALIDATE | WMC_MFLAG_RECACHE | WMC_MFLAG_KEY_BINARY | \
     WMC_MFLAG_SET_TTL | WMC_MFLAG_RECACHE_NEW_TTL | WMC_MFLAG_HAS_CAS)

/* ---- response iflags ---- */
#define WMC_IFLAG_FETCHED (1u << 0)
#define WMC_IFLAG_STALE (1u << 1)      /* v2 */
#define WMC_IFLAG_TOKEN_SENT (1u << 2) /* v2 */
#define WMC_IFLAG_WON (1u << 3)        /* v2 */
#define WMC_IFLAG_CREATED (1u << 4)    /* v2 */
#define WMC_IFLAG_KEY_BINARY (1u << 5) /* v2 */
/* The iflags an item (dump record, listing record) carries. */
#define WMC_ITEM_IFLAGS \
    (WMC_IFLAG_FETCHED | WMC_IFLAG_STALE | WMC_IFLAG_TOKEN_SENT | WMC_IFLAG_KEY_BINARY)

/* ---- init flags, stats groups, log levels ---- */
#define WMC_INIT_CAS (1u << 0)
#define WMC_INIT_NO_EVICT (1u << 1)

#define WMC_STATS_GENERAL 0
#define WMC_STATS_ITEMS 1
#define WMC_STATS_SLABS 2
#define WMC_STATS_SIZES 3

#define WMC_LOG_ERROR 0
#define WMC_LOG_WARN 1
#define WMC_LOG_INFO 2
#define WMC_LOG_DEBUG 3

/* v5: memcached's slab, hash table and LRU settings as the server was
 * started with them (docs/plugin-abi.md "Hints (v5)"), to honour where they
 * map onto your store. A hint the host did not send keeps memcached
 * 1.6.18's default (the comment). Booleans are 0 or 1. */
#define WMC_HINTS_MAX_SLAB_SIZES 64
typedef struct wmc_hints {
    double growth_factor;           /* -f (1.25) */
    uint32_t chunk_size;            /* -n (48) */
    uint32_t hashpower;             /* -o hashpower; 0 = not given (0) */
    int hash_expand;                /* cleared by -o no_hashexpand (1) */
    uint32_t hash_algorithm;        /* 0 jenkins, 1 murmur3, 2 xxh3 (1) */
    int slab_reassign;              /* (1) */
    uint32_t slab_automove;         /* 0..2 (1) */
    double slab_automove_ratio;     /* (0.8) */
    uint32_t slab_automove_window;  /* (30) */
    double slab_automove_freeratio; /* (0.01) */
    uint32_t slab_chunk_max;        /* bytes (524288) */
    uint32_t slab_sizes_len;        /* -o slab_sizes: entries in slab_sizes (0) */
    uint32_t slab_sizes[WMC_HINTS_MAX_SLAB_SIZES];
    int lru_crawler;                /* (1) */
    uint32_t lru_crawler_sleep;     /* microseconds (100) */
    uint32_t lru_crawler_tocrawl;   /* 0 = all (0) */
    int lru_maintainer;             /* (1) */
    int lru_segmented;              /* hot/warm/cold (1) */
    uint32_t hot_lru_pct;           /* (20) */
    uint32_t warm_lru_pct;          /* (40) */
    double hot_max_factor;          /* (0.2) */
    double warm_max_factor;         /* (2.0) */
    int temp_lru;                   /* -o temporary_ttl given (0) */
    uint32_t temporary_ttl;         /* seconds (61) */
    uint32_t tail_repair_time;      /* seconds (0) */
    int large_pages;                /* -L (0) */
} wmc_hints;

/* What the host told this shard at start-up (the init record). */
typedef struct wmc_config {
    uint32_t abi_version;   /* the version the host speaks to us (= WMC_ABI) */
    uint32_t shard_id;      /* 0-based */
    uint32_t shard_count;
    uint32_t flags;         /* WMC_INIT_* */
    int cas_enabled;        /* flags & WMC_INIT_CAS: keep CAS values (no -C) */
    int no_evict;           /* flags & WMC_INIT_NO_EVICT: answer OutOfMemory (-M) */
    uint64_t memory_budget; /* bytes this shard may use for items (-m / shards) */
    uint32_t max_item_size; /* -I in bytes */
    uint32_t now;           /* server time at init */
    const char *config;     /* --plugin-config, NOT NUL-terminated; valid during init only */
    uint32_t config_len;
    wmc_hints hints;        /* v5 (defaults for older versions) */
} wmc_config;

/* One decoded request record. key/value point into the input buffer. */
typedef struct wmc_request {
    uint8_t op;             /* enum wmc_op (unknown ops are answered by the SDK) */
    const uint8_t *key;
    uint32_t key_len;       /* 0..250 */
    const uint8_t *value;
    uint32_t value_len;
    uint32_t client_flags;
    uint32_t exptime;       /* server time; 0 = never; <= now means already expired */
    uint64_t cas;           /* compare value (Cas; Delete/Arith/Append/Prepend when != 0) */
    uint64_t delta;         /* Incr/Decr amount; MemLimit: new budget in bytes */
    uint32_t mflags;        /* WMC_MFLAG_* */
    uint32_t aux;           /* v2: VIVIFY exptime */
    uint32_t index;         /* 0-based position of the request in its batch */
} wmc_request;

/* One response record. Unused fields must be 0: start from WMC_RESPONSE_INIT. */
typedef struct wmc_response {
    uint8_t status;          /* enum wmc_status */
    uint8_t iflags;          /* WMC_IFLAG_* */
    const uint8_t *key;      /* Hit: the item's key */
    uint32_t key_len;
    const uint8_t *value;    /* Hit: value; Number: digits; Error: message */
    uint32_t value_len;
    uint32_t client_flags;
    uint32_t exptime;
    uint64_t cas;
    uint32_t last_access;    /* Hit: server time of the previous access */
    uint32_t prev_exptime;   /* v2 */
} wmc_response;

#define WMC_RESPONSE_INIT {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

/* The answer channel of one request (opaque). */
typedef struct wmc_out wmc_out;

/* Writes a full response record. */
void wmc_respond(wmc_out *out, const wmc_response *r);
/* A bare status (NotFound, NotStored, Exists, Deleted, Miss, Ok, ...). */
void wmc_respond_status(wmc_out *out, uint8_t status);
/* Stored, with the item's new CAS and exptime. */
void wmc_respond_stored(wmc_out *out, uint64_t cas, uint32_t exptime);
/* Touched, with the item's CAS and new exptime. */
void wmc_respond_touched(wmc_out *out, uint64_t cas, uint32_t exptime);
/* Number: `value` in decimal (incr/decr). */
void wmc_respond_number(wmc_out *out, uint64_t value, uint64_t cas, uint32_t exptime);
/* A Hit. `value` may be NULL with value_len 0. */
void wmc_respond_hit(wmc_out *out, const uint8_t *key, uint32_t key_len,
                     const uint8_t *value, uint32_t value_len, uint32_t client_flags,
                     uint32_t exptime, uint64_t cas, uint32_t last_access, uint8_t iflags);
/* Starts a Hit whose value the plugin writes itself (e.g. decompresses):
 * returns a pointer to `value_len` bytes to fill before the callback returns,
 * or NULL when the request was already answered or there is no memory (it is
 * then answered with an error). The pointer is valid until the next wmc_*
 * call of this request's batch. */
uint8_t *wmc_respond_hit_begin(wmc_out *out, const uint8_t *key, uint32_t key_len,
                               uint32_t value_len, uint32_t client_flags, uint32_t exptime,
                               uint64_t cas, uint32_t last_access, uint8_t iflags);
/* Error: the client sees `SERVER_ERROR <msg>`. */
void wmc_respond_error(wmc_out *out, const char *msg);
/* Whether this request has been answered. */
int wmc_answered(const wmc_out *out);

/* Stat lines `name value\n` (opaque writer). */
typedef struct wmc_stats_out wmc_stats_out;
void wmc_stat_u64(wmc_stats_out *out, const char *name, uint64_t value);
void wmc_stat_str(wmc_stats_out *out, const char *name, const char *value);
/* name given as bytes (e.g. built from a key prefix): `prefix` + `name` + ' ' + value. */
void wmc_stat_u64_parts(wmc_stats_out *out, const char *prefix, const uint8_t *mid,
                        uint32_t mid_len, const char *suffix, uint64_t value);
/* Typed stats: how the host combines the shards' values. The lines above
 * leave it to the name (summed; the largest shard's for names ending in
 * `age`, `_time`, `chunk_size`, `_running`, ...). A counter (events) and a
 * gauge (a level: items, bytes) are summed whatever the name, a max (a
 * high-water mark, a size, a time) is the largest shard's, a text is shown
 * per shard only (`stats shards`). Each writes a declaration line
 * (`#counter`, ...) before the stat's line; hosts that predate it skip it. */
void wmc_stat_counter(wmc_stats_out *out, const char *name, uint64_t value);
void wmc_stat_gauge(wmc_stats_out *out, const char *name, uint64_t value);
void wmc_stat_max(wmc_stats_out *out, const char *name, uint64_t value);
void wmc_stat_text(wmc_stats_out *out, const char *name, const char *value);

/* ---- items: dump/load (v3) and listing (v5) ----
 *
 * One item as a dump moves it (all fields) or a listing shows it (no value
 * needed: `value` may be NULL, `value_len` must be right). Pointers must
 * stay valid until your callback returns to the SDK, which copies them. */
typedef struct wmc_item {
    const uint8_t *key;
    uint32_t key_len;       /* 1..250 */
    const uint8_t *value;
    uint32_t value_len;
    uint32_t client_flags;
    uint32_t exptime;       /* server time; 0 = never */
    uint64_t cas;           /* 0 if none */
    uint32_t last_access;   /* server time of the last store or access */
    uint8_t iflags;         /* WMC_ITEM_IFLAGS bits: FETCHED, STALE, TOKEN_SENT, KEY_BINARY */
    uint8_t refs;           /* v7: recency in your policy, 0 = coldest (a loader may ignore it) */
    uint8_t slab_class;     /* listing: your slab class 1..63; 0 = let the host pick memcached's */
    uint32_t size;          /* listing: the item's total size; 0 = let the host compute memcached's */
} wmc_item;

#define WMC_ITEM_INIT {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

/* What `walk` is asked for. */
#define WMC_WALK_DUMP 0 /* a dump for a reload or warm restart: nothing changes between calls */
#define WMC_WALK_LIST 1 /* a listing (metadump): items come and go between calls */

/* What `walk` answers. */
#define WMC_WALK_END 0          /* no live item at or after the cursor */
#define WMC_WALK_ITEM 1         /* *item is the first live item at or after it */
#define WMC_WALK_MORE 2         /* none found yet in a bounded look: go on from *next */
#define WMC_WALK_UNSUPPORTED (-1) /* this plugin cannot walk for `purpose` */

/* What `load` answers. */
#define WMC_LOAD_OK 0          /* stored, or dropped on purpose (expired, too large) */
#define WMC_LOAD_FULL 1        /* out of memory: the host stops loading */
#define WMC_LOAD_UNSUPPORTED 2

/* The plugin: a table of callbacks. Only `init` is required. */
typedef struct wmc_plugin {
    /* Builds the shard's store. Return 0 to accept; anything else refuses
     * (the server does not start; log the reason with wmc_log first). */
    int (*init)(const wmc_config *cfg);
    /* Get and Gat (Gat: req->op == WMC_OP_GAT, new exptime in req->exptime). */
    void (*get)(const wmc_request *req, wmc_out *out);
    /* Set, Add, Replace, Append, Prepend, Cas (req->op tells which). */
    void (*store)(const wmc_request *req, wmc_out *out);
    void (*del)(const wmc_request *req, wmc_out *out);
    /* Incr and Decr (req->op), amount in req->delta. */
    void (*arith)(const wmc_request *req, wmc_out *out);
    void (*touch)(const wmc_request *req, wmc_out *out);
    /* FlushAll: req->exptime is when (0 = now). Answer WMC_OK. */
    void (*flush_all)(const wmc_request *req, wmc_out *out);
    /* MemLimit: req->delta is the new budget. Answer WMC_OK. */
    void (*mem_limit)(const wmc_request *req, wmc_out *out);
    /* Once a second with the server time. */
    void (*tick)(uint32_t now);
    /* A timer set with wmc_timer_set fired. */
    void (*timer)(uint64_t token);
    /* Stat lines of `group` (WMC_STATS_*). */
    void (*stats)(int group, wmc_stats_out *out);

    /* v2: the mflags of WMC_MFLAG_V2_CHECKED your callbacks implement
     * (docs/plugin-abi.md "Meta flags (v2)"). The SDK answers a request that
     * carries any other of them with Error, as the ABI asks of a plugin that
     * does not implement a flag. 0: none (the client gets SERVER_ERROR for
     * meta commands that need them; plain text/binary commands never do). */
    uint32_t meta_flags;

    /* v3/v5: "the first live item at or after `cursor`". Fill *item, set
     * *next to the cursor just after it and answer WMC_WALK_ITEM; answer
     * WMC_WALK_END when none is left. A cursor is yours (a slot, an item's
     * address, a hash): 0 is always the start, and a *next of 0 ends the
     * walk. Only live items (not expired, not flushed), and only reads: no
     * LRU bump, no access time, no expiry work.
     *  - WMC_WALK_DUMP: the SDK walks from 0 to the end in chunks (wmc_dump)
     *    and keeps the cursor; nothing else runs between two calls. Walk in
     *    the order a loader should see (least recently used first, so that
     *    loading each item as the most recent one rebuilds your LRU).
     *  - WMC_WALK_LIST: the host keeps the cursor and runs requests between
     *    chunks, so it must stay meaningful while items come and go (an
     *    item present the whole time is listed once). Bound the work of one
     *    call: after a few thousand empty places answer WMC_WALK_MORE with
     *    where to go on.
     * NULL (or WMC_WALK_UNSUPPORTED): no dump, no listing; a reload starts
     * the new plugin empty and metadump answers memcached's refusal. */
    int (*walk)(int purpose, uint64_t cursor, wmc_item *item, uint64_t *next);
    /* v3: stores one item of a dump, keeping its flags, exptime, CAS, last
     * access and iflags (WMC_ITEM_IFLAGS). Items arrive in dump order.
     * If you keep CAS values, hand out only CAS values above every loaded
     * one from then on. Answer WMC_LOAD_OK (also for an item you drop, e.g.
     * expired or too large), WMC_LOAD_FULL when out of memory. NULL: no
     * load (the transfer does not happen). */
    int (*load)(const wmc_item *item);

    /* v8: called right before the host reads the registered metrics (a
     * scrape, `stats plugin`): set the gauges that are cheaper to compute
     * when asked than to keep up to date. NULL: nothing to set. */
    void (*update_metrics)(void);
} wmc_plugin;

/* Registers the plugin table: put `WMC_PLUGIN(my_table);` in one .c file. */
#define WMC_PLUGIN(table) \
    const wmc_plugin *wmc_sdk_plugin(void) { return &(table); }
const wmc_plugin *wmc_sdk_plugin(void);

/* ---- host services (imports from module "wasmcached") ---- */
void wmc_log(int level, const char *msg, uint32_t len);
void wmc_logs(int level, const char *msg); /* NUL-terminated */
uint32_t wmc_now(void);
void wmc_timer_set(uint64_t token, uint32_t delay_ms);

/* ---- v6 watch reports (memcached's `watch fetchers|mutations|evictions`).
 * Each does nothing unless the running request asked for it (the host asks
 * only while a watcher is connected); the SDK fills in the request index. */
/* Whether the running request asks for the reports of `mflag`
 * (WMC_MFLAG_LOG_LOOKUP, WMC_MFLAG_LOG_EVICTIONS): skip gathering otherwise. */
int wmc_logging(uint32_t mflag);
/* The lookup of `key` a request made (one per Get, Gat, Touch, Delete,
 * Incr/Decr and store; none for a Set refused as too large): `found` a
 * live item (with its value length and flags), else 0. */
void wmc_log_lookup(const uint8_t *key, uint32_t key_len, int found, uint32_t value_len,
                    uint32_t client_flags);
/* An Append/Prepend that stored (the value length it left), or an item an
 * Incr/Decr created with VIVIFY. */
void wmc_log_stored(const uint8_t *key, uint32_t key_len, uint32_t value_len,
                    uint32_t client_flags, uint32_t exptime);
/* An item evicted to make room (not a dead one reclaimed). */
void wmc_log_eviction(const uint8_t *key, uint32_t key_len, int fetched, uint32_t exptime,
                      uint32_t last_access, uint32_t client_flags, uint32_t value_len);

/* ---- v8 metrics (docs/plugin-abi.md "Metrics (v8)") ----
 *
 * A metric is a plain struct in your memory (a static, or wmc_malloc'd and
 * never freed): updating it is one add or store, with no host call. The
 * host asks the SDK's wmc_metrics export where every registered metric
 * lives and reads the values itself when it is scraped or asked for
 * `stats plugin`. Register in `init` (registering the same struct again
 * changes nothing). The register functions keep the `name` and `help`
 * pointers: pass string literals or memory you never free. They answer 0,
 * or -1 for a bad name ([a-zA-Z_][a-zA-Z0-9_]*, at most 64 bytes), help
 * over 256 bytes or with control characters, a name already registered,
 * bad bounds, or a 257th metric: the host would refuse the whole block.
 *
 *   static wmc_counter refused;
 *   WMC_HISTOGRAM_DEFINE(sizes, 64, 1024, 16384);
 *   ... in init:
 *   wmc_register_counter(&refused, "refused_total", "Stores refused");
 *   wmc_register_histogram(&sizes, "value_bytes", "Sizes of stored values");
 *   ... anywhere:
 *   wmc_counter_inc(&refused);
 *   wmc_histogram_observe(&sizes, r->value_len);
 */
typedef struct wmc_counter { uint64_t value; } wmc_counter;
typedef struct wmc_gauge { int64_t value; } wmc_gauge;
/* `values` holds nbounds + 2 words: a count per bound, the +Inf count,
 * then the sum (the layout the host reads). Use WMC_HISTOGRAM_DEFINE. */
typedef struct wmc_histogram {
    const double *bounds; /* finite, strictly increasing, at most 64 */
    uint32_t nbounds;
    uint64_t *values;
} wmc_histogram;
/* Defines `static wmc_histogram var` with the given upper bounds. */
#define WMC_HISTOGRAM_DEFINE(var, ...)                                                   \
    static const double var##_wmc_bounds[] = {__VA_ARGS__};                              \
    static uint64_t var##_wmc_values[sizeof(var##_wmc_bounds) / sizeof(double) + 2];     \
    static wmc_histogram var = {var##_wmc_bounds,                                        \
                                sizeof(var##_wmc_bounds) / sizeof(double), var##_wmc_values}

static inline void wmc_counter_inc(wmc_counter *c) { c->value++; }
static inline void wmc_counter_add(wmc_counter *c, uint64_t n) { c->value += n; }
static inline void wmc_gauge_set(wmc_gauge *g, int64_t v) { g->value = v; }
static inline void wmc_gauge_add(wmc_gauge *g, int64_t n) { g->value += n; }
/* Counts v in the first bucket whose bound is >= v (Prometheus' `le`). */
static inline void wmc_histogram_observe(wmc_histogram *h, uint64_t v) {
    double x = (double)v;
    uint32_t i = 0;
    while (i < h->nbounds && x > h->bounds[i]) i++;
    h->values[i]++;
    h->values[h->nbounds + 1] += v;
}
int wmc_register_counter(wmc_counter *c, const char *name, const char *help);
int wmc_register_gauge(wmc_gauge *g, const char *name, const char *help);
int wmc_register_histogram(wmc_histogram *h, const char *name, const char *help);

/* ---- allocator: power-of-two size classes on memory.grow; NULL when the
 * host's memory cap is reached (never traps) ---- */
void *wmc_malloc(size_t n);
void *wmc_calloc(size_t n);
void *wmc_realloc(void *p, size_t n);
void wmc_free(void *p);
/* Bytes the allocator actually reserves for a block of `n` (header + rounding). */
size_t wmc_alloc_size(size_t n);
/* Bytes of linear memory taken from the host so far. */
size_t wmc_heap_bytes(void);

/* ---- helpers ---- */
#ifdef __wasm__
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
#else
#include <string.h> /* a native build (tests: harness/wmc_harness.h) uses libc's */
#endif
size_t wmc_strlen(const char *s);
/* A well-mixed 64-bit hash (xxHash64 rounds + murmur3 fmix64). */
uint64_t wmc_hash(const uint8_t *p, uint32_t len);
/* memcached's safe_strtoull on an item value: 1 and *out on success. */
int wmc_parse_u64(const uint8_t *p, uint32_t len, uint64_t *out);
/* Decimal digits of v into buf (>= 20 bytes); returns the digit count. */
uint32_t wmc_fmt_u64(uint64_t v, uint8_t *buf);

#ifndef __wasm__
/* ---- native build only (tests through harness/wmc_harness.h) ----
 *
 * Compiled for the build machine, wasmcached.c keeps the ABI's 32-bit
 * addresses by emulating the linear memory: a static arena (-D
 * WMC_NATIVE_MEMORY=bytes, 256 MiB by default) the allocator grows its
 * heap on, page by page, up to a cap (memory.grow's failure: wmc_malloc
 * answers NULL). Every address an export returns is an offset from the
 * arena's base; wmc_native_addr turns one into a pointer. */
uint8_t *wmc_native_memory(void);
/* Bytes of the arena in use as memory (the wasm memory size). */
size_t wmc_native_memory_size(void);
/* The pointer an ABI address (an offset from the arena) stands for. */
void *wmc_native_addr(uint32_t addr);
/* The most the memory may grow to (the host's cap); at least its size now,
 * at most the arena. */
void wmc_native_set_memory_cap(size_t bytes);

/* The exports, as harness/wmc_harness.c calls them (docs/plugin-abi.md). */
int32_t wmc_abi_version(void);
int32_t wmc_input(int32_t size);
int32_t wmc_init(int32_t len);
int64_t wmc_batch(int32_t len);
void wmc_tick(int32_t now);
void wmc_timer(int64_t token);
int64_t wmc_stats(int32_t group);
int64_t wmc_dump(int32_t max_bytes);
int32_t wmc_load(int32_t len);
int64_t wmc_iter(int64_t cursor, int32_t max_bytes);
int64_t wmc_metrics(void);

/* The host imports (module "wasmcached"), which harness/wmc_host.c defines. */
void wmc__host_log(int32_t level, const void *ptr, int32_t len);
int32_t wmc__host_now(void);
void wmc__host_timer_set(int64_t token, int32_t delay_ms);
void wmc__host_log_event(const void *ptr, int32_t len);
#endif

#ifdef __cplusplus
}
#endif
#endif
