/*
 * wasmcached C SDK: the ABI glue. See wasmcached.h for the API and
 * docs/plugin-abi.md for the bytes this file reads and writes.
 *
 * Needs -mbulk-memory (memcpy/memmove/memset become memory.copy/fill).
 */
#include "wasmcached.h"

#ifndef WMC_ABI
#define WMC_ABI 1
#endif
#if WMC_ABI != 1 && WMC_ABI != 2
#error "WMC_ABI must be 1 or 2"
#endif

#define WMC_EXPORT(name) __attribute__((export_name(name)))
#define WMC_IMPORT(name) __attribute__((import_module("wasmcached"), import_name(name)))

#define INIT_HEADER 40u
#define BATCH_HEADER 4u
#define REQUEST_HEADER 40u
#define RESPONSE_HEADER 32u
#define MAX_KEY 250u

/* ------------------------------------------------------------ host imports */

WMC_IMPORT("log") void wmc__host_log(int32_t level, const void *ptr, int32_t len);
WMC_IMPORT("now") int32_t wmc__host_now(void);
WMC_IMPORT("timer_set") void wmc__host_timer_set(int64_t token, int32_t delay_ms);

void wmc_log(int level, const char *msg, uint32_t len) { wmc__host_log(level, msg, (int32_t)len); }
void wmc_logs(int level, const char *msg) { wmc_log(level, msg, (uint32_t)wmc_strlen(msg)); }
uint32_t wmc_now(void) { return (uint32_t)wmc__host_now(); }
void wmc_timer_set(uint64_t token, uint32_t delay_ms) {
    wmc__host_timer_set((int64_t)token, (int32_t)delay_ms);
}

/* ------------------------------------------------------------ libc bits */

void *memcpy(void *dst, const void *src, size_t n) { return __builtin_memcpy(dst, src, n); }
void *memmove(void *dst, const void *src, size_t n) { return __builtin_memmove(dst, src, n); }
void *memset(void *dst, int c, size_t n) { return __builtin_memset(dst, c, n); }

int memcmp(const void *a, const void *b, size_t n) {
    const volatile uint8_t *x = a;
    const volatile uint8_t *y = b;
    for (size_t i = 0; i < n; i++) {
        if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
    }
    return 0;
}

/* LLVM turns `memcmp(...) == 0` into bcmp. */
int bcmp(const void *a, const void *b, size_t n) { return memcmp(a, b, n); }

size_t wmc_strlen(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

/* ------------------------------------------------------------ allocator
 *
 * Blocks come in size classes: 16, 32, 48, 64, then four classes per power
 * of two (80, 96, 112, 128, 160, 192, ...), so at most 25 % is lost to
 * rounding. A block is an 8-byte header (its class) and the payload. Freed
 * blocks go to their class's free list and are reused as they are; fresh
 * ones are cut from the top of the heap, which grows with memory.grow. When
 * the host's memory cap is reached, memory.grow fails and wmc_malloc
 * returns NULL: a plugin checks it and answers OutOfMemory or evicts.
 */

#define ALLOC_HEADER 8u
#define NUM_CLASSES 108u
#define PAGE 65536u

extern unsigned char __heap_base;

static void *free_lists[NUM_CLASSES];
static uintptr_t heap_top;
static uintptr_t heap_end;

static uint32_t class_of(size_t total, size_t *class_size) {
    if (total <= 64) {
        uint32_t c = total <= 16 ? 0 : (uint32_t)((total - 1) / 16);
        *class_size = (size_t)(c + 1) * 16;
        return c;
    }
    size_t m = total - 1;
    uint32_t k = 31u - (uint32_t)__builtin_clz((unsigned)m);
    uint32_t sub = (uint32_t)(m >> (k - 2)) & 3u;
    *class_size = (size_t)(5u + sub) << (k - 2);
    return 4u + (k - 6u) * 4u + sub;
}

size_t wmc_alloc_size(size_t n) {
    size_t size;
    if (n > 0x7ffffff0u) return n;
    class_of(n + ALLOC_HEADER, &size);
    return size;
}

size_t wmc_heap_bytes(void) { return __builtin_wasm_memory_size(0) * PAGE; }

void *wmc_malloc(size_t n) {
    if (n > 0x7ffffff0u) return 0;
    size_t size;
    uint32_t c = class_of(n + ALLOC_HEADER, &size);
    uint8_t *block = free_lists[c];
    if (block) {
        free_lists[c] = *(void **)(block + ALLOC_HEADER);
    } else {
        if (!heap_top) {
            heap_top = ((uintptr_t)&__heap_base + 15u) & ~(uintptr_t)15u;
            heap_end = __builtin_wasm_memory_size(0) * PAGE;
        }
        if (heap_end - heap_top < size) {
            size_t need = size - (heap_end - heap_top);
            size_t pages = (need + PAGE - 1) / PAGE;
            if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1) return 0;
            heap_end += pages * PAGE;
        }
        block = (uint8_t *)heap_top;
        heap_top += size;
    }
    *(uint32_t *)block = c;
    *(uint32_t *)(block + 4) = 0x574d4321u; /* "!CMW": a cheap double-free check */
    return block + ALLOC_HEADER;
}

void *wmc_calloc(size_t n) {
    void *p = wmc_malloc(n);
    if (p) memset(p, 0, n);
    return p;
}

void wmc_free(void *p) {
    if (!p) return;
    uint8_t *block = (uint8_t *)p - ALLOC_HEADER;
    uint32_t c = *(uint32_t *)block;
    if (c >= NUM_CLASSES || *(uint32_t *)(block + 4) != 0x574d4321u) __builtin_trap();
    *(uint32_t *)(block + 4) = 0;
    *(void **)p = free_lists[c];
    free_lists[c] = block;
}

void *wmc_realloc(void *p, size_t n) {
    if (!p) return wmc_malloc(n);
    uint8_t *block = (uint8_t *)p - ALLOC_HEADER;
    size_t size;
    class_of(n + ALLOC_HEADER, &size);
    uint32_t c = *(uint32_t *)block;
    size_t have;
    if (c < 4) {
        have = (size_t)(c + 1) * 16;
    } else {
        uint32_t k = (c - 4) / 4 + 6, sub = (c - 4) % 4;
        have = (size_t)(5u + sub) << (k - 2);
    }
    if (size <= have) return p;
    void *q = wmc_malloc(n);
    if (!q) return 0;
    memcpy(q, p, have - ALLOC_HEADER);
    wmc_free(p);
    return q;
}

/* ------------------------------------------------------------ helpers */

static uint64_t rd_u64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static uint32_t rd_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static uint16_t rd_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static void wr_u64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static void wr_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void wr_u16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }

static uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

uint64_t wmc_hash(const uint8_t *p, uint32_t len) {
    const uint64_t P1 = 0x9e3779b185ebca87ull, P2 = 0xc2b2ae3d27d4eb4full,
                   P3 = 0x165667b19e3779f9ull;
    uint64_t h = 0x243f6a8885a308d3ull ^ ((uint64_t)len * P1);
    uint32_t i = 0;
    for (; i + 8 <= len; i += 8) {
        h = rotl(h ^ (rotl(rd_u64(p + i) * P2, 31) * P1), 27) * P1 + P3;
    }
    if (i < len) {
        uint8_t b[8] = {0};
        memcpy(b, p + i, len - i);
        h = rotl(h ^ (rotl(rd_u64(b) * P2, 31) * P1), 27) * P1 + P3;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

static int is_space(uint8_t c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

int wmc_parse_u64(const uint8_t *v, uint32_t len, uint64_t *out) {
    uint32_t i = 0;
    while (i < len && is_space(v[i])) i++;
    int neg = 0;
    if (i < len && (v[i] == '+' || v[i] == '-')) {
        neg = v[i] == '-';
        i++;
    }
    uint32_t digits = i;
    uint64_t value = 0;
    int overflow = 0;
    while (i < len && v[i] >= '0' && v[i] <= '9') {
        uint64_t d = (uint64_t)(v[i] - '0');
        if (value > (UINT64_MAX - d) / 10) overflow = 1;
        else value = value * 10 + d;
        i++;
    }
    if (i == digits || overflow) return 0;
    if (i < len && !is_space(v[i]) && v[i] != 0) return 0;
    uint64_t result = neg ? (uint64_t)0 - value : value;
    if ((int64_t)result < 0) {
        for (uint32_t j = 0; j < len && v[j]; j++)
            if (v[j] == '-') return 0;
    }
    *out = result;
    return 1;
}

uint32_t wmc_fmt_u64(uint64_t v, uint8_t *buf) {
    uint8_t tmp[20];
    uint32_t n = 0;
    do {
        tmp[n++] = (uint8_t)('0' + v % 10);
        v /= 10;
    } while (v);
    for (uint32_t i = 0; i < n; i++) buf[i] = tmp[n - 1 - i];
    return n;
}

/* ------------------------------------------------------------ buffers */

typedef struct {
    uint8_t *ptr;
    uint32_t len, cap;
} buf_t;

static buf_t input, output;
static const wmc_plugin *plugin;

/* Makes room for `extra` more bytes in the output; 0 if the heap is full. */
static int out_reserve(uint32_t extra) {
    if (output.cap - output.len >= extra) return 1;
    uint64_t want = (uint64_t)output.len + extra;
    uint64_t cap = output.cap ? output.cap : 256;
    while (cap < want) cap *= 2;
    if (cap > 0x7ffffff0u) cap = want;
    if (cap > 0x7ffffff0u) return 0;
    uint8_t *p = wmc_realloc(output.ptr, (size_t)cap);
    if (!p) {
        /* the doubling failed: try the exact size */
        cap = want;
        p = wmc_realloc(output.ptr, (size_t)cap);
        if (!p) return 0;
    }
    output.ptr = p;
    output.cap = (uint32_t)cap;
    return 1;
}

static int64_t pack(const uint8_t *ptr, uint32_t len) {
    return (int64_t)(((uint64_t)(uintptr_t)ptr << 32) | len);
}

WMC_EXPORT("wmc_abi_version") int32_t wmc_abi_version(void) { return WMC_ABI; }

WMC_EXPORT("wmc_input") int32_t wmc_input(int32_t size_) {
    uint32_t size = (uint32_t)size_;
    if (size > input.cap) {
        wmc_free(input.ptr);
        input.ptr = 0;
        input.cap = 0;
        uint8_t *p = wmc_malloc(size);
        if (!p) return 0;
        input.ptr = p;
        input.cap = size;
    }
    if (!input.ptr) {
        input.ptr = wmc_malloc(64);
        if (!input.ptr) return 0;
        input.cap = 64;
    }
    return (int32_t)(uintptr_t)input.ptr;
}

/* 0 accepted, 1 bad record, 2 ABI mismatch, 3 plugin refused (as the Rust SDK). */
WMC_EXPORT("wmc_init") int32_t wmc_init(int32_t len_) {
    uint32_t len = (uint32_t)len_;
    if (len > input.cap || len < INIT_HEADER) return 1;
    const uint8_t *b = input.ptr;
    uint32_t config_len = rd_u32(b + 36);
    if (config_len > len - INIT_HEADER) return 1;
    wmc_config cfg;
    cfg.abi_version = rd_u32(b);
    cfg.shard_id = rd_u32(b + 4);
    cfg.shard_count = rd_u32(b + 8);
    cfg.flags = rd_u32(b + 12);
    cfg.cas_enabled = (cfg.flags & WMC_INIT_CAS) != 0;
    cfg.no_evict = (cfg.flags & WMC_INIT_NO_EVICT) != 0;
    cfg.memory_budget = rd_u64(b + 16);
    cfg.max_item_size = rd_u32(b + 24);
    cfg.now = rd_u32(b + 28);
    cfg.config = (const char *)(b + INIT_HEADER);
    cfg.config_len = config_len;
    if (cfg.abi_version != WMC_ABI) return 2;
    const wmc_plugin *p = wmc_sdk_plugin();
    if (!p || !p->init) return 3;
    if (p->init(&cfg) != 0) return 3;
    plugin = p;
    return 0;
}

/* ------------------------------------------------------------ responses */

struct wmc_out {
    int answered;
};

/* Requests of the current batch still to be answered after the current one. */
static uint32_t pending;

#define OOM_MSG "out of memory writing get response"
#define OOM_LEN 34u
/* Room kept per request so that the out-of-memory answer always fits. */
#define RESERVE_PER_RESPONSE (RESPONSE_HEADER + OOM_LEN)

static uint8_t *put_header(const wmc_response *r, uint32_t key_len, uint32_t value_len) {
    uint8_t *h = output.ptr + output.len;
    h[0] = r->status;
#if WMC_ABI == 1
    h[1] = r->iflags & WMC_IFLAG_FETCHED;
#else
    h[1] = r->iflags;
#endif
    wr_u16(h + 2, (uint16_t)key_len);
    wr_u32(h + 4, value_len);
    wr_u32(h + 8, r->client_flags);
    wr_u32(h + 12, r->exptime);
    wr_u64(h + 16, r->cas);
    wr_u32(h + 24, r->last_access);
#if WMC_ABI == 1
    wr_u32(h + 28, 0);
#else
    wr_u32(h + 28, r->prev_exptime);
#endif
    output.len += RESPONSE_HEADER;
    return h;
}

static void put_oom(void) {
    /* always fits: the batch reserved RESERVE_PER_RESPONSE per request */
    wmc_response e = WMC_RESPONSE_INIT;
    e.status = WMC_ERROR;
    put_header(&e, 0, OOM_LEN);
    memcpy(output.ptr + output.len, OOM_MSG, OOM_LEN);
    output.len += OOM_LEN;
}

/* Reserves a record with key and value room; returns the value pointer. */
static uint8_t *begin(wmc_out *out, const wmc_response *r, uint32_t value_len) {
    if (out->answered) return 0;
    out->answered = 1;
    uint32_t key_len = r->key_len > 0xffffu ? 0xffffu : r->key_len;
    uint64_t total = (uint64_t)RESPONSE_HEADER + key_len + value_len;
    /* keep the reserve of the requests after this one intact */
    uint64_t want = total + (uint64_t)pending * RESERVE_PER_RESPONSE;
    if (want > 0x7fffffffu || !out_reserve((uint32_t)want)) {
        put_oom();
        return 0;
    }
    put_header(r, key_len, value_len);
    if (key_len) memcpy(output.ptr + output.len, r->key, key_len);
    output.len += key_len;
    uint8_t *v = output.ptr + output.len;
    output.len += value_len;
    return v;
}

void wmc_respond(wmc_out *out, const wmc_response *r) {
    int first = !out->answered;
    uint8_t *v = begin(out, r, r->value_len);
    if (first && v && r->value_len) memcpy(v, r->value, r->value_len);
}

void wmc_respond_status(wmc_out *out, uint8_t status) {
    wmc_response r = WMC_RESPONSE_INIT;
    r.status = status;
    wmc_respond(out, &r);
}

void wmc_respond_stored(wmc_out *out, uint64_t cas, uint32_t exptime) {
    wmc_response r = WMC_RESPONSE_INIT;
    r.status = WMC_STORED;
    r.cas = cas;
    r.exptime = exptime;
    wmc_respond(out, &r);
}

void wmc_respond_touched(wmc_out *out, uint64_t cas, uint32_t exptime) {
    wmc_response r = WMC_RESPONSE_INIT;
    r.status = WMC_TOUCHED;
    r.cas = cas;
    r.exptime = exptime;
    wmc_respond(out, &r);
}

void wmc_respond_number(wmc_out *out, uint64_t value, uint64_t cas, uint32_t exptime) {
    uint8_t digits[20];
    wmc_response r = WMC_RESPONSE_INIT;
    r.status = WMC_NUMBER;
    r.value = digits;
    r.value_len = wmc_fmt_u64(value, digits);
    r.cas = cas;
    r.exptime = exptime;
    wmc_respond(out, &r);
}

void wmc_respond_hit(wmc_out *out, const uint8_t *key, uint32_t key_len, const uint8_t *value,
                     uint32_t value_len, uint32_t client_flags, uint32_t exptime, uint64_t cas,
                     uint32_t last_access, uint8_t iflags) {
    wmc_response r = WMC_RESPONSE_INIT;
    r.status = WMC_HIT;
    r.iflags = iflags;
    r.key = key;
    r.key_len = key_len;
    r.value = value;
    r.value_len = value_len;
    r.client_flags = client_flags;
    r.exptime = exptime;
    r.cas = cas;
    r.last_access = last_access;
    wmc_respond(out, &r);
}

uint8_t *wmc_respond_hit_begin(wmc_out *out, const uint8_t *key, uint32_t key_len,
                               uint32_t value_len, uint32_t client_flags, uint32_t exptime,
                               uint64_t cas, uint32_t last_access, uint8_t iflags) {
    wmc_response r = WMC_RESPONSE_INIT;
    r.status = WMC_HIT;
    r.iflags = iflags;
    r.key = key;
    r.key_len = key_len;
    r.client_flags = client_flags;
    r.exptime = exptime;
    r.cas = cas;
    r.last_access = last_access;
    return begin(out, &r, value_len);
}

void wmc_respond_error(wmc_out *out, const char *msg) {
    wmc_response r = WMC_RESPONSE_INIT;
    r.status = WMC_ERROR;
    r.value = (const uint8_t *)msg;
    r.value_len = (uint32_t)wmc_strlen(msg);
    wmc_respond(out, &r);
}

int wmc_answered(const wmc_out *out) { return out->answered; }

/* ------------------------------------------------------------ batch */

typedef void (*handler_t)(const wmc_request *, wmc_out *);

static handler_t handler_for(uint8_t op) {
    switch (op) {
    case WMC_OP_GET:
    case WMC_OP_GAT: return plugin->get;
    case WMC_OP_SET:
    case WMC_OP_ADD:
    case WMC_OP_REPLACE:
    case WMC_OP_APPEND:
    case WMC_OP_PREPEND:
    case WMC_OP_CAS: return plugin->store;
    case WMC_OP_DELETE: return plugin->del;
    case WMC_OP_INCR:
    case WMC_OP_DECR: return plugin->arith;
    case WMC_OP_TOUCH: return plugin->touch;
    case WMC_OP_FLUSH_ALL: return plugin->flush_all;
    case WMC_OP_MEM_LIMIT: return plugin->mem_limit;
    default: return 0;
    }
}

WMC_EXPORT("wmc_batch") int64_t wmc_batch(int32_t len_) {
    uint32_t len = (uint32_t)len_;
    output.len = 0;
    if (!out_reserve(BATCH_HEADER)) return pack(output.ptr, 0);
    wr_u32(output.ptr, 0);
    output.len = BATCH_HEADER;
    if (len > input.cap || len < BATCH_HEADER) return pack(output.ptr, output.len);
    const uint8_t *b = input.ptr;
    uint32_t announced = rd_u32(b);
    /* Room for an error answer to every request, up front; if even that
     * fails, an empty batch tells the host (which answers SERVER_ERROR). */
    if ((uint64_t)announced * RESERVE_PER_RESPONSE > 0x7fffffffu ||
        !out_reserve(announced * RESERVE_PER_RESPONSE))
        return pack(output.ptr, output.len);
    uint32_t pos = BATCH_HEADER, count = 0;
    for (uint32_t i = 0; i < announced; i++) {
        wmc_out out = {0};
        wmc_request req;
        pending = announced - i - 1;
        int ok = len - pos >= REQUEST_HEADER;
        if (ok) {
            const uint8_t *h = b + pos;
            req.op = h[0];
            req.key_len = rd_u16(h + 2);
            req.value_len = rd_u32(h + 4);
            req.client_flags = rd_u32(h + 8);
            req.exptime = rd_u32(h + 12);
            req.cas = rd_u64(h + 16);
            req.delta = rd_u64(h + 24);
            req.mflags = rd_u32(h + 32);
            req.aux = rd_u32(h + 36);
            uint64_t end = (uint64_t)pos + REQUEST_HEADER + req.key_len + req.value_len;
            ok = end <= len;
            if (ok) {
                req.key = h + REQUEST_HEADER;
                req.value = req.key + req.key_len;
                pos = (uint32_t)end;
            }
        }
        if (!ok) {
            wmc_respond_error(&out, "malformed request record");
            count++;
            break;
        }
        handler_t f = plugin ? handler_for(req.op) : 0;
        if (!plugin) {
            wmc_respond_error(&out, "plugin not initialised");
        } else if (req.op < WMC_OP_GET || req.op > WMC_OP_MEM_LIMIT) {
            wmc_respond_error(&out, "unknown operation");
        } else if (!f) {
            wmc_respond_error(&out, "operation not supported by this plugin");
        } else if (req.key_len > MAX_KEY) {
            wmc_respond_error(&out, "key too long");
        } else {
            f(&req, &out);
            if (!out.answered) wmc_respond_error(&out, "plugin gave no answer");
        }
        count++;
    }
    wr_u32(output.ptr, count);
    return pack(output.ptr, output.len);
}

WMC_EXPORT("wmc_tick") void wmc_tick(int32_t now) {
    if (plugin && plugin->tick) plugin->tick((uint32_t)now);
}

WMC_EXPORT("wmc_timer") void wmc_timer(int64_t token) {
    if (plugin && plugin->timer) plugin->timer((uint64_t)token);
}

/* ------------------------------------------------------------ stats */

struct wmc_stats_out {
    int full;
};

static void stats_put(wmc_stats_out *s, const void *p, uint32_t n) {
    if (s->full) return;
    if (!out_reserve(n)) {
        s->full = 1;
        return;
    }
    memcpy(output.ptr + output.len, p, n);
    output.len += n;
}

static void stats_put_str(wmc_stats_out *s, const char *str) {
    stats_put(s, str, (uint32_t)wmc_strlen(str));
}

void wmc_stat_str(wmc_stats_out *s, const char *name, const char *value) {
    uint32_t mark = output.len;
    stats_put_str(s, name);
    stats_put(s, " ", 1);
    stats_put_str(s, value);
    stats_put(s, "\n", 1);
    if (s->full) output.len = mark; /* never leave half a line */
}

void wmc_stat_u64_parts(wmc_stats_out *s, const char *prefix, const uint8_t *mid,
                        uint32_t mid_len, const char *suffix, uint64_t value) {
    uint8_t digits[20];
    uint32_t n = wmc_fmt_u64(value, digits);
    uint32_t mark = output.len;
    stats_put_str(s, prefix);
    /* a stat name is one word: anything but visible ASCII becomes '_' */
    for (uint32_t i = 0; i < mid_len; i++) {
        uint8_t c = mid[i] > ' ' && mid[i] < 127 ? mid[i] : '_';
        stats_put(s, &c, 1);
    }
    stats_put_str(s, suffix);
    stats_put(s, " ", 1);
    stats_put(s, digits, n);
    stats_put(s, "\n", 1);
    if (s->full) output.len = mark;
}

void wmc_stat_u64(wmc_stats_out *s, const char *name, uint64_t value) {
    wmc_stat_u64_parts(s, name, 0, 0, "", value);
}

WMC_EXPORT("wmc_stats") int64_t wmc_stats(int32_t group) {
    output.len = 0;
    if (plugin && plugin->stats) {
        wmc_stats_out s = {0};
        plugin->stats(group, &s);
    }
    return pack(output.ptr, output.len);
}
