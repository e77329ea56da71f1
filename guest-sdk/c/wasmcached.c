/*
 * wasmcached C SDK: the ABI glue. See wasmcached.h for the API and
 * docs/plugin-abi.md for the bytes this file reads and writes.
 *
 * Needs -mbulk-memory (memcpy/memmove/memset become memory.copy/fill).
 *
 * The same file also compiles natively (gcc or clang for the build
 * machine, no __wasm__), for tests through harness/wmc_harness.c. What
 * differs is kept to a few #if blocks (see "native build" below): the
 * linear memory is a static arena, the host imports are plain functions
 * the harness defines, libc provides mem*, and nothing is exported by name.
 */
#include "wasmcached.h"

#ifndef WMC_ABI
#define WMC_ABI 8
#endif
#if WMC_ABI < 1 || WMC_ABI > 8
#error "WMC_ABI must be 1 to 8"
#endif

#ifdef __wasm__
#define WMC_EXPORT(name) __attribute__((export_name(name)))
#define WMC_IMPORT(name) __attribute__((import_module("wasmcached"), import_name(name)))
#else
/* Native: the exports are ordinary functions (declared in wasmcached.h),
 * the imports ordinary functions a harness defines (harness/wmc_host.c). */
#define WMC_EXPORT(name)
#define WMC_IMPORT(name)
#endif

#define INIT_HEADER 40u
#define BATCH_HEADER 4u
#define REQUEST_HEADER 40u
#define RESPONSE_HEADER 32u
#define MAX_KEY 250u
#define ITEM_HEADER 28u
#define ITER_HEADER 16u
#define ITEM_META_HEADER 32u
#define EVENT_HEADER 24u

/* ------------------------------------------------------------ host imports */

WMC_IMPORT("log") void wmc__host_log(int32_t level, const void *ptr, int32_t len);
WMC_IMPORT("now") int32_t wmc__host_now(void);
WMC_IMPORT("timer_set") void wmc__host_timer_set(int64_t token, int32_t delay_ms);
#if WMC_ABI >= 6
WMC_IMPORT("log_event") void wmc__host_log_event(const void *ptr, int32_t len);
#endif

void wmc_log(int level, const char *msg, uint32_t len) { wmc__host_log(level, msg, (int32_t)len); }
void wmc_logs(int level, const char *msg) { wmc_log(level, msg, (uint32_t)wmc_strlen(msg)); }
uint32_t wmc_now(void) { return (uint32_t)wmc__host_now(); }
void wmc_timer_set(uint64_t token, uint32_t delay_ms) {
    wmc__host_timer_set((int64_t)token, (int32_t)delay_ms);
}

/* ------------------------------------------------------------ libc bits */

#ifdef __wasm__
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
#endif /* natively libc's mem* (string.h, from wasmcached.h) are used */

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

#ifdef __wasm__
extern unsigned char __heap_base;
#define HEAP_BASE ((uintptr_t)&__heap_base)
#define MEMORY_PAGES() ((size_t)__builtin_wasm_memory_size(0))
#define MEMORY_GROW(pages) ((size_t)__builtin_wasm_memory_grow(0, (pages)))
/* An address as the ABI carries it: a 32-bit offset into memory 0. */
#define WMC_ADDR(p) ((uint32_t)(uintptr_t)(p))
#else
/*
 * native build: the linear memory.
 *
 * The ABI carries addresses as 32-bit offsets into the module's memory
 * (what wmc_input returns, the ptr of every (ptr << 32) | len an export
 * returns, a metric's value offset). A native pointer is 64 bits, so the
 * native build emulates the memory: a static arena of WMC_NATIVE_MEMORY
 * bytes (256 MiB of .bss by default, which the OS maps only as it is
 * touched; at most 2 GiB) on which the allocator grows its heap page by
 * page as it grows memory 0 in wasm, up to a cap the harness sets (the
 * host's memory cap: wmc_malloc then returns NULL, as in wasm). The
 * exports encode every address as its distance from the arena's base
 * (WMC_ADDR), so the encoding code is the same in both builds and the
 * harness reads an answer at wmc_native_memory() + offset, as the host
 * reads the instance's memory. The distance is signed: a metric kept in a
 * static of the plugin lies outside the arena, in the same executable
 * image, within 2 GiB of it (wmc_native_addr decodes both).
 * Offset 0 is never a block (the heap starts at offset 16): 0 stays NULL.
 * Imports (log, log_event) get real pointers: they are called natively.
 */
#ifndef WMC_NATIVE_MEMORY
#define WMC_NATIVE_MEMORY (256u << 20)
#endif
#if WMC_NATIVE_MEMORY > (2048u << 20) || WMC_NATIVE_MEMORY < (1u << 20)
#error "WMC_NATIVE_MEMORY must be 1 MiB to 2 GiB"
#endif
static unsigned char native_memory[WMC_NATIVE_MEMORY] __attribute__((aligned(PAGE)));
static size_t native_pages = 1;
static size_t native_max_pages = WMC_NATIVE_MEMORY / PAGE;
#define HEAP_BASE ((uintptr_t)native_memory + 16u)
#define MEMORY_PAGES() native_pages
#define MEMORY_GROW(pages) native_grow(pages)
#define WMC_ADDR(p) ((uint32_t)((uintptr_t)(p) - (uintptr_t)native_memory))

static size_t native_grow(size_t pages) {
    if (pages > native_max_pages - native_pages) return (size_t)-1;
    size_t old = native_pages;
    native_pages += pages;
    return old;
}

uint8_t *wmc_native_memory(void) { return native_memory; }
size_t wmc_native_memory_size(void) { return native_pages * PAGE; }
void *wmc_native_addr(uint32_t addr) { return native_memory + (int32_t)addr; }

void wmc_native_set_memory_cap(size_t bytes) {
    size_t pages = bytes / PAGE;
    if (pages > WMC_NATIVE_MEMORY / PAGE) pages = WMC_NATIVE_MEMORY / PAGE;
    if (pages < native_pages) pages = native_pages;
    native_max_pages = pages;
}
#endif

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

size_t wmc_heap_bytes(void) { return MEMORY_PAGES() * PAGE; }

void *wmc_malloc(size_t n) {
    if (n > 0x7ffffff0u) return 0;
    size_t size;
    uint32_t c = class_of(n + ALLOC_HEADER, &size);
    uint8_t *block = free_lists[c];
    if (block) {
        free_lists[c] = *(void **)(block + ALLOC_HEADER);
    } else {
        if (!heap_top) {
            heap_top = (HEAP_BASE + 15u) & ~(uintptr_t)15u;
#ifdef __wasm__
            heap_end = MEMORY_PAGES() * PAGE;
#else
            heap_end = (uintptr_t)native_memory + MEMORY_PAGES() * PAGE;
#endif
        }
        if (heap_end - heap_top < size) {
            size_t need = size - (heap_end - heap_top);
            size_t pages = (need + PAGE - 1) / PAGE;
            if (MEMORY_GROW(pages) == (size_t)-1) return 0;
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
    return (int64_t)(((uint64_t)WMC_ADDR(ptr) << 32) | len);
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
    return (int32_t)WMC_ADDR(input.ptr);
}

static void dump_reset(void);

static void hints_default(wmc_hints *h) {
    memset(h, 0, sizeof *h);
    h->growth_factor = 1.25;
    h->chunk_size = 48;
    h->hash_expand = 1;
    h->hash_algorithm = 1;
    h->slab_reassign = 1;
    h->slab_automove = 1;
    h->slab_automove_ratio = 0.8;
    h->slab_automove_window = 30;
    h->slab_automove_freeratio = 0.01;
    h->slab_chunk_max = 524288;
    h->lru_crawler = 1;
    h->lru_crawler_sleep = 100;
    h->lru_maintainer = 1;
    h->lru_segmented = 1;
    h->hot_lru_pct = 20;
    h->warm_lru_pct = 40;
    h->hot_max_factor = 0.2;
    h->warm_max_factor = 2.0;
    h->temporary_ttl = 61;
}

#if WMC_ABI >= 5
/* Reads a v5 hints block (docs/plugin-abi.md "Hints (v5)"): unknown tags
 * and records of a known tag with the wrong length are skipped; 0 when a
 * record runs past the block. */
static int hints_decode(const uint8_t *b, uint32_t len, wmc_hints *h) {
    hints_default(h);
    uint32_t pos = 0;
    while (pos < len) {
        if (len - pos < 4) return 0;
        uint16_t tag = rd_u16(b + pos), n = rd_u16(b + pos + 2);
        const uint8_t *v = b + pos + 4;
        if (n > len - pos - 4) return 0;
        pos += 4u + n;
        uint32_t *u = 0;
        int *flag = 0;
        double *f = 0;
        switch (tag) {
        case 1: f = &h->growth_factor; break;
        case 2: u = &h->chunk_size; break;
        case 3: u = &h->hashpower; break;
        case 4: flag = &h->hash_expand; break;
        case 5: u = &h->hash_algorithm; break;
        case 6: flag = &h->slab_reassign; break;
        case 7: u = &h->slab_automove; break;
        case 8: f = &h->slab_automove_ratio; break;
        case 9: u = &h->slab_automove_window; break;
        case 10: f = &h->slab_automove_freeratio; break;
        case 11: u = &h->slab_chunk_max; break;
        case 12:
            if (n % 4 == 0) {
                uint32_t count = n / 4u;
                if (count > WMC_HINTS_MAX_SLAB_SIZES) count = WMC_HINTS_MAX_SLAB_SIZES;
                for (uint32_t i = 0; i < count; i++) h->slab_sizes[i] = rd_u32(v + 4 * i);
                h->slab_sizes_len = count;
            }
            break;
        case 13: flag = &h->lru_crawler; break;
        case 14: u = &h->lru_crawler_sleep; break;
        case 15: u = &h->lru_crawler_tocrawl; break;
        case 16: flag = &h->lru_maintainer; break;
        case 17: flag = &h->lru_segmented; break;
        case 18: u = &h->hot_lru_pct; break;
        case 19: u = &h->warm_lru_pct; break;
        case 20: f = &h->hot_max_factor; break;
        case 21: f = &h->warm_max_factor; break;
        case 22: flag = &h->temp_lru; break;
        case 23: u = &h->temporary_ttl; break;
        case 24: u = &h->tail_repair_time; break;
        case 25: flag = &h->large_pages; break;
        default: break;
        }
        if (u && n == 4) *u = rd_u32(v);
        if (flag && n == 4) *flag = rd_u32(v) != 0;
        if (f && n == 8) {
            uint64_t bits = rd_u64(v);
            memcpy(f, &bits, 8);
        }
    }
    return 1;
}
#endif

/* 0 accepted, 1 bad record, 2 ABI mismatch, 3 plugin refused (as the Rust SDK). */
WMC_EXPORT("wmc_init") int32_t wmc_init(int32_t len_) {
    uint32_t len = (uint32_t)len_;
    dump_reset();
    if (len > input.cap || len < INIT_HEADER) return 1;
    const uint8_t *b = input.ptr;
    uint32_t config_len = rd_u32(b + 36);
    if (config_len > len - INIT_HEADER) return 1;
    static wmc_config cfg; /* big (the hints): not on the small C stack */
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
#if WMC_ABI >= 5
    /* v5: bytes 32..36 are the length of the hints block after the config */
    uint32_t hints_len = rd_u32(b + 32);
    if (hints_len > len - INIT_HEADER - config_len) return 1;
    if (!hints_decode(b + INIT_HEADER + config_len, hints_len, &cfg.hints)) return 1;
#else
    hints_default(&cfg.hints);
#endif
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
    /* bits 0..5; bit 6 (v4 VALUE_REF) is never used: values are copied */
    h[1] = r->iflags & 0x3fu;
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

/* The request wmc_batch is running (for the v6 reports): its index and
 * mflags; UINT32_MAX and 0 outside a batch (nothing is reported). */
static uint32_t running_index = 0xffffffffu, running_mflags;

/* v2 flags a request may carry without the plugin's say-so: advisory ones
 * and the v6 report requests. */
#if WMC_ABI >= 2
#define MFLAGS_REFUSED(req) ((req)->mflags & WMC_MFLAG_V2_CHECKED & ~plugin->meta_flags)
#else
#define MFLAGS_REFUSED(req) 0u
#endif

WMC_EXPORT("wmc_batch") int64_t wmc_batch(int32_t len_) {
    uint32_t len = (uint32_t)len_;
    dump_reset();
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
            req.index = i;
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
        } else if (MFLAGS_REFUSED(&req)) {
            wmc_respond_error(&out, "storage plugin does not support this meta flag");
        } else {
            running_index = i;
            running_mflags = req.mflags;
            f(&req, &out);
            running_index = 0xffffffffu;
            running_mflags = 0;
            if (!out.answered) wmc_respond_error(&out, "plugin gave no answer");
        }
        count++;
    }
    wr_u32(output.ptr, count);
    return pack(output.ptr, output.len);
}

WMC_EXPORT("wmc_tick") void wmc_tick(int32_t now) {
    dump_reset();
    if (plugin && plugin->tick) plugin->tick((uint32_t)now);
}

WMC_EXPORT("wmc_timer") void wmc_timer(int64_t token) {
    dump_reset();
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

/* The declaration and its stat line go in together or not at all. */
static void stat_typed_u64(wmc_stats_out *s, const char *declaration, const char *name,
                           uint64_t value) {
    uint32_t mark = output.len;
    stats_put_str(s, declaration);
    wmc_stat_u64(s, name, value);
    if (s->full) output.len = mark;
}

void wmc_stat_counter(wmc_stats_out *s, const char *name, uint64_t value) {
    stat_typed_u64(s, "#counter\n", name, value);
}

void wmc_stat_gauge(wmc_stats_out *s, const char *name, uint64_t value) {
    stat_typed_u64(s, "#gauge\n", name, value);
}

void wmc_stat_max(wmc_stats_out *s, const char *name, uint64_t value) {
    stat_typed_u64(s, "#max\n", name, value);
}

void wmc_stat_text(wmc_stats_out *s, const char *name, const char *value) {
    uint32_t mark = output.len;
    stats_put_str(s, "#text\n");
    wmc_stat_str(s, name, value);
    if (s->full) output.len = mark;
}

WMC_EXPORT("wmc_stats") int64_t wmc_stats(int32_t group) {
    dump_reset();
    output.len = 0;
    if (plugin && plugin->stats) {
        wmc_stats_out s = {0};
        plugin->stats(group, &s);
    }
    return pack(output.ptr, output.len);
}

/* ------------------------------------------------------------ v6 watch reports */

int wmc_logging(uint32_t mflag) {
#if WMC_ABI >= 6
    return (running_mflags & mflag) != 0;
#else
    (void)mflag;
    return 0;
#endif
}

#if WMC_ABI >= 6
/* One event record (docs/plugin-abi.md "Watch events (v6)"). */
static void report(uint8_t kind, uint8_t flags, const uint8_t *key, uint32_t key_len,
                   uint32_t value_len, uint32_t client_flags, uint32_t exptime,
                   uint32_t last_access) {
    uint8_t rec[EVENT_HEADER + MAX_KEY];
    if (key_len > MAX_KEY) key_len = MAX_KEY;
    rec[0] = kind;
    rec[1] = flags;
    wr_u16(rec + 2, (uint16_t)key_len);
    wr_u32(rec + 4, running_index);
    wr_u32(rec + 8, value_len);
    wr_u32(rec + 12, client_flags);
    wr_u32(rec + 16, exptime);
    wr_u32(rec + 20, last_access);
    if (key_len) memcpy(rec + EVENT_HEADER, key, key_len);
    wmc__host_log_event(rec, (int32_t)(EVENT_HEADER + key_len));
}
#endif

void wmc_log_lookup(const uint8_t *key, uint32_t key_len, int found, uint32_t value_len,
                    uint32_t client_flags) {
#if WMC_ABI >= 6
    if (!wmc_logging(WMC_MFLAG_LOG_LOOKUP)) return;
    if (found) report(1, 1, key, key_len, value_len, client_flags, 0, 0);
    else report(1, 0, key, key_len, 0, 0, 0, 0);
#else
    (void)key, (void)key_len, (void)found, (void)value_len, (void)client_flags;
#endif
}

void wmc_log_stored(const uint8_t *key, uint32_t key_len, uint32_t value_len,
                    uint32_t client_flags, uint32_t exptime) {
#if WMC_ABI >= 6
    if (wmc_logging(WMC_MFLAG_LOG_LOOKUP))
        report(3, 0, key, key_len, value_len, client_flags, exptime, 0);
#else
    (void)key, (void)key_len, (void)value_len, (void)client_flags, (void)exptime;
#endif
}

void wmc_log_eviction(const uint8_t *key, uint32_t key_len, int fetched, uint32_t exptime,
                      uint32_t last_access, uint32_t client_flags, uint32_t value_len) {
#if WMC_ABI >= 6
    if (wmc_logging(WMC_MFLAG_LOG_EVICTIONS))
        report(2, fetched ? 1 : 0, key, key_len, value_len, client_flags, exptime, last_access);
#else
    (void)key, (void)key_len, (void)fetched, (void)exptime, (void)last_access,
        (void)client_flags, (void)value_len;
#endif
}

/* ------------------------------------------------------------ v3 dump and load */

#define DUMP_UNSUPPORTED (-1)
#define DUMP_FAILED (-2)
#define LOAD_MALFORMED 3

/* The running dump's position, kept between wmc_dump calls; any other
 * export (but wmc_input) starts the next dump from the beginning. */
static uint64_t dump_cursor;
static int dump_done;

static void dump_reset(void) {
    dump_cursor = 0;
    dump_done = 0;
}

/* Whether the plugin's walk gave a usable item. */
static int item_ok(const wmc_item *it) {
    return it->key && it->key_len >= 1 && it->key_len <= MAX_KEY &&
           (it->value || it->value_len == 0);
}

static void put_item(const wmc_item *it) {
    uint8_t *h = output.ptr + output.len;
    wr_u32(h, it->client_flags);
    wr_u32(h + 4, it->exptime);
    wr_u64(h + 8, it->cas);
    wr_u32(h + 16, it->last_access);
    h[20] = it->iflags & WMC_ITEM_IFLAGS;
#if WMC_ABI >= 7
    h[21] = it->refs;
#else
    h[21] = 0;
#endif
    wr_u16(h + 22, (uint16_t)it->key_len);
    wr_u32(h + 24, it->value_len);
    memcpy(h + ITEM_HEADER, it->key, it->key_len);
    if (it->value_len) memcpy(h + ITEM_HEADER + it->key_len, it->value, it->value_len);
    output.len += ITEM_HEADER + it->key_len + it->value_len;
}

/* Returns the next chunk of item records (at most about max_bytes, at least
 * one item while any remain), 0 when no item is left, -1 when the plugin
 * cannot dump, -2 when the chunk's memory could not be had. */
WMC_EXPORT("wmc_dump") int64_t wmc_dump(int32_t max_bytes_) {
    uint32_t max_bytes = max_bytes_ < 0 ? 0 : (uint32_t)max_bytes_;
    if (!plugin || !plugin->walk) return DUMP_UNSUPPORTED;
    if (dump_done) return 0;
    output.len = 0;
    if (!out_reserve(BATCH_HEADER)) return DUMP_FAILED;
    output.len = BATCH_HEADER;
    uint32_t count = 0;
    for (;;) {
        wmc_item it = WMC_ITEM_INIT;
        uint64_t next = 0;
        int r = plugin->walk(WMC_WALK_DUMP, dump_cursor, &it, &next);
        if (r == WMC_WALK_UNSUPPORTED) {
            dump_reset();
            output.len = 0;
            return DUMP_UNSUPPORTED;
        }
        if (r == WMC_WALK_MORE) {
            if (next == 0) r = WMC_WALK_END;
            else {
                dump_cursor = next;
                continue;
            }
        }
        if (r != WMC_WALK_ITEM) {
            dump_done = 1;
            break;
        }
        if (!item_ok(&it)) {
            /* a plugin bug: leave the item out rather than break the chunk */
            if (next == 0) {
                dump_done = 1;
                break;
            }
            dump_cursor = next;
            continue;
        }
        uint64_t rec = (uint64_t)ITEM_HEADER + it.key_len + it.value_len;
        if (count > 0 && output.len + rec > max_bytes) break; /* comes first next time */
        if (output.len + rec > 0x7fffffffu || !out_reserve((uint32_t)rec)) {
            if (count == 0) {
                output.len = 0;
                return DUMP_FAILED; /* the position stays: the host abandons the reload */
            }
            break;
        }
        put_item(&it);
        count++;
        if (next == 0) {
            dump_done = 1;
            break;
        }
        dump_cursor = next;
    }
    if (count == 0) {
        output.len = 0;
        return 0;
    }
    wr_u32(output.ptr, count);
    return pack(output.ptr, output.len);
}

/* Stores the chunk of item records in the input buffer: 0 every record
 * taken, 1 out of memory, 2 cannot load, 3 malformed chunk. */
WMC_EXPORT("wmc_load") int32_t wmc_load(int32_t len_) {
    uint32_t len = (uint32_t)len_;
    dump_reset();
    if (!plugin || !plugin->load) return WMC_LOAD_UNSUPPORTED;
    if (len > input.cap || len < BATCH_HEADER) return LOAD_MALFORMED;
    const uint8_t *b = input.ptr;
    uint32_t count = rd_u32(b);
    /* the whole chunk is checked before anything is stored */
    uint32_t pos = BATCH_HEADER;
    for (uint32_t i = 0; i < count; i++) {
        if (len - pos < ITEM_HEADER) return LOAD_MALFORMED;
        uint32_t key_len = rd_u16(b + pos + 22), value_len = rd_u32(b + pos + 24);
        if (key_len < 1 || key_len > MAX_KEY) return LOAD_MALFORMED;
        uint64_t end = (uint64_t)pos + ITEM_HEADER + key_len + value_len;
        if (end > len) return LOAD_MALFORMED;
        pos = (uint32_t)end;
    }
    if (pos != len) return LOAD_MALFORMED;
    pos = BATCH_HEADER;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *h = b + pos;
        wmc_item it = WMC_ITEM_INIT;
        it.client_flags = rd_u32(h);
        it.exptime = rd_u32(h + 4);
        it.cas = rd_u64(h + 8);
        it.last_access = rd_u32(h + 16);
        it.iflags = h[20] & WMC_ITEM_IFLAGS;
#if WMC_ABI >= 7
        it.refs = h[21];
#endif
        it.key_len = rd_u16(h + 22);
        it.value_len = rd_u32(h + 24);
        it.key = h + ITEM_HEADER;
        it.value = it.key + it.key_len;
        pos += ITEM_HEADER + it.key_len + it.value_len;
        int r = plugin->load(&it);
        if (r == WMC_LOAD_FULL) return WMC_LOAD_FULL;
        if (r != WMC_LOAD_OK) return WMC_LOAD_UNSUPPORTED;
    }
    return WMC_LOAD_OK;
}

/* ------------------------------------------------------------ v5 item listing */

/* WMC_WALK_MORE answers one wmc_iter call follows before it returns a chunk
 * with the place to go on from: bounds the work of one call. */
#define ITER_MAX_MORE 4

/* The chunk of the listing that starts at `cursor` (0: the start): header
 * (count, 0, next cursor; 0 = complete), then ItemMeta records. -1 when the
 * plugin cannot list, -2 when the chunk's memory could not be had. */
WMC_EXPORT("wmc_iter") int64_t wmc_iter(int64_t cursor_, int32_t max_bytes_) {
    uint32_t max_bytes = max_bytes_ < 0 ? 0 : (uint32_t)max_bytes_;
    uint64_t cursor = (uint64_t)cursor_;
    dump_reset();
    if (!plugin || !plugin->walk) return DUMP_UNSUPPORTED;
    output.len = 0;
    if (!out_reserve(ITER_HEADER)) return DUMP_FAILED;
    memset(output.ptr, 0, ITER_HEADER);
    output.len = ITER_HEADER;
    uint32_t count = 0, more = 0;
    uint64_t resume = 0;
    for (;;) {
        wmc_item it = WMC_ITEM_INIT;
        uint64_t next = 0;
        int r = plugin->walk(WMC_WALK_LIST, cursor, &it, &next);
        if (r == WMC_WALK_UNSUPPORTED) {
            output.len = 0;
            return DUMP_UNSUPPORTED;
        }
        if (r == WMC_WALK_MORE) {
            if (next == 0) break;
            cursor = next;
            if (++more >= ITER_MAX_MORE) {
                resume = cursor;
                break;
            }
            continue;
        }
        if (r != WMC_WALK_ITEM) break;
        if (it.key && it.key_len >= 1 && it.key_len <= MAX_KEY) {
            uint32_t rec = ITEM_META_HEADER + it.key_len;
            if (count > 0 && output.len + rec > max_bytes) {
                resume = cursor; /* this item comes first next time */
                break;
            }
            if (!out_reserve(rec)) {
                if (count == 0) {
                    output.len = 0;
                    return DUMP_FAILED;
                }
                resume = cursor;
                break;
            }
            uint8_t *h = output.ptr + output.len;
            wr_u32(h, it.exptime);
            wr_u32(h + 4, it.last_access);
            wr_u64(h + 8, it.cas);
            wr_u32(h + 12 + 4, it.client_flags);
            wr_u32(h + 20, it.value_len);
            wr_u32(h + 24, it.size);
            h[28] = it.iflags & WMC_ITEM_IFLAGS;
            h[29] = it.slab_class <= 63 ? it.slab_class : 0;
            wr_u16(h + 30, (uint16_t)it.key_len);
            memcpy(h + ITEM_META_HEADER, it.key, it.key_len);
            output.len += rec;
            count++;
        }
        if (next == 0) break;
        cursor = next;
    }
    wr_u32(output.ptr, count);
    wr_u32(output.ptr + 4, 0);
    wr_u64(output.ptr + 8, resume);
    return pack(output.ptr, output.len);
}

/* ------------------------------------------------------------ v8 metrics */

#define MAX_METRICS 256u
#define MAX_METRIC_NAME 64u
#define MAX_METRIC_HELP 256u
#define MAX_METRIC_BOUNDS 64u
#define DESCRIPTOR_HEADER 12u

enum { KIND_COUNTER = 1, KIND_GAUGE = 2, KIND_HISTOGRAM = 3 };

typedef struct {
    uint8_t kind;
    const char *name, *help;
    const void *value;
    const double *bounds;
    uint32_t nbounds;
} metric_t;

/* The registry lives in linear memory like everything else (no Wasm
 * global), so a warm restart's memory image keeps it. */
static metric_t metrics[MAX_METRICS];
static uint32_t nmetrics;

static int metric_name_ok(const char *n) {
    uint32_t len = (uint32_t)wmc_strlen(n);
    if (len == 0 || len > MAX_METRIC_NAME) return 0;
    for (uint32_t i = 0; i < len; i++) {
        char c = n[i];
        int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return 0;
    }
    return 1;
}

static int metric_help_ok(const char *h) {
    uint32_t len = (uint32_t)wmc_strlen(h);
    if (len > MAX_METRIC_HELP) return 0;
    for (uint32_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)h[i];
        if (c < 0x20 || c == 0x7f) return 0;
    }
    return 1;
}

static int metric_add(uint8_t kind, const void *value, const char *name, const char *help,
                      const double *bounds, uint32_t nbounds) {
    if (!help) help = "";
    for (uint32_t i = 0; i < nmetrics; i++) {
        if (metrics[i].value == value) return 0;
    }
    if (nmetrics == MAX_METRICS || !value || ((uintptr_t)value & 7) || !name ||
        !metric_name_ok(name) || !metric_help_ok(help) || nbounds > MAX_METRIC_BOUNDS)
        return -1;
    for (uint32_t i = 0; i < nbounds; i++) {
        double b = bounds[i];
        if (b != b || b - b != 0.0 || (i > 0 && !(b > bounds[i - 1]))) return -1;
    }
    uint32_t len = (uint32_t)wmc_strlen(name);
    for (uint32_t i = 0; i < nmetrics; i++) {
        if (wmc_strlen(metrics[i].name) == len && memcmp(metrics[i].name, name, len) == 0)
            return -1;
    }
    metric_t *m = &metrics[nmetrics++];
    m->kind = kind;
    m->name = name;
    m->help = help;
    m->value = value;
    m->bounds = bounds;
    m->nbounds = nbounds;
    return 0;
}

int wmc_register_counter(wmc_counter *c, const char *name, const char *help) {
    return metric_add(KIND_COUNTER, c, name, help, 0, 0);
}

int wmc_register_gauge(wmc_gauge *g, const char *name, const char *help) {
    return metric_add(KIND_GAUGE, g, name, help, 0, 0);
}

int wmc_register_histogram(wmc_histogram *h, const char *name, const char *help) {
    if (!h) return -1;
    return metric_add(KIND_HISTOGRAM, h->values, name, help, h->bounds, h->nbounds);
}

#if WMC_ABI >= 8
/* Apart from `output`, so that asking for the metrics disturbs no answer
 * and no dump. */
static buf_t metrics_block;

static void put_le(uint8_t *p, uint64_t v, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

WMC_EXPORT("wmc_metrics") int64_t wmc_metrics(void) {
    if (plugin && plugin->update_metrics) plugin->update_metrics();
    if (nmetrics == 0) return 0;
    uint32_t need = 4;
    for (uint32_t i = 0; i < nmetrics; i++) {
        need += DESCRIPTOR_HEADER + (uint32_t)wmc_strlen(metrics[i].name) +
                (uint32_t)wmc_strlen(metrics[i].help) + 8 * metrics[i].nbounds;
    }
    if (metrics_block.cap < need) {
        uint8_t *p = wmc_realloc(metrics_block.ptr, need);
        if (!p) return 0; /* no memory: no metrics this time */
        metrics_block.ptr = p;
        metrics_block.cap = need;
    }
    uint8_t *o = metrics_block.ptr;
    put_le(o, nmetrics, 4);
    o += 4;
    for (uint32_t i = 0; i < nmetrics; i++) {
        const metric_t *m = &metrics[i];
        uint32_t nl = (uint32_t)wmc_strlen(m->name), hl = (uint32_t)wmc_strlen(m->help);
        o[0] = m->kind;
        o[1] = (uint8_t)nl;
        put_le(o + 2, hl, 2);
        put_le(o + 4, WMC_ADDR(m->value), 4);
        put_le(o + 8, m->nbounds, 4);
        o += DESCRIPTOR_HEADER;
        memcpy(o, m->name, nl);
        o += nl;
        memcpy(o, m->help, hl);
        o += hl;
        for (uint32_t b = 0; b < m->nbounds; b++) {
            uint64_t bits;
            memcpy(&bits, &m->bounds[b], 8);
            put_le(o, bits, 8);
            o += 8;
        }
    }
    metrics_block.len = need;
    return pack(metrics_block.ptr, need);
}
#endif
