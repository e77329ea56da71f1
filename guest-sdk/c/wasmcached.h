/*
 * wasmcached C SDK: write a wasmcached storage plugin as plain C callbacks.
 *
 * The SDK (wasmcached.c) implements the byte-level ABI of docs/plugin-abi.md:
 * it exports wmc_abi_version, wmc_input, wmc_init, wmc_batch, wmc_tick,
 * wmc_timer, wmc_stats and the memory, decodes the request records of each
 * batch into `wmc_request` values, calls your callbacks, and encodes the
 * answers you give through `wmc_out` into response records.
 *
 * ABI version: the SDK speaks version 1 by default. Build wasmcached.c with
 * -DWMC_ABI=2 to speak version 2: the host then also sends the meta-protocol
 * bits (mflags 2..10, `aux`) and your callbacks must answer them (or answer
 * an error, see docs/plugin-abi.md "Meta flags (v2)"). A v1 plugin is never
 * sent them: the host answers such meta commands itself.
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

/* ---- response iflags ---- */
#define WMC_IFLAG_FETCHED (1u << 0)
#define WMC_IFLAG_STALE (1u << 1)      /* v2 */
#define WMC_IFLAG_TOKEN_SENT (1u << 2) /* v2 */
#define WMC_IFLAG_WON (1u << 3)        /* v2 */
#define WMC_IFLAG_CREATED (1u << 4)    /* v2 */
#define WMC_IFLAG_KEY_BINARY (1u << 5) /* v2 */

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
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t wmc_strlen(const char *s);
/* A well-mixed 64-bit hash (xxHash64 rounds + murmur3 fmix64). */
uint64_t wmc_hash(const uint8_t *p, uint32_t len);
/* memcached's safe_strtoull on an item value: 1 and *out on success. */
int wmc_parse_u64(const uint8_t *p, uint32_t len, uint64_t *out);
/* Decimal digits of v into buf (>= 20 bytes); returns the digit count. */
uint32_t wmc_fmt_u64(uint64_t v, uint8_t *buf);

#ifdef __cplusplus
}
#endif
#endif
