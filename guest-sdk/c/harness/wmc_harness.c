/*
 * wasmcached C SDK: the native test harness (see wmc_harness.h). It plays
 * the host: it encodes the init record, request batches and item chunks in
 * the bytes of docs/plugin-abi.md into the buffer wmc_input returns, calls
 * the SDK's exports, checks what they return as the host does and decodes
 * it. The host imports (log, now, timer_set, log_event) are wmc_host.c's,
 * whose records it reads.
 *
 * Addresses an export returns are offsets into the SDK's emulated linear
 * memory (wasmcached.c, "native build"): wmc_native_addr makes them
 * pointers, and an answer must lie inside the memory's current size, as a
 * host checks it lies inside the instance's memory.
 */
#define _POSIX_C_SOURCE 200809L
#include "wmc_harness.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef WMC_ABI
#define WMC_ABI 8
#endif

#define BATCH_HEADER 4u
#define REQUEST_HEADER 40u
#define RESPONSE_HEADER 32u
#define INIT_HEADER 40u
#define ITEM_HEADER 28u
#define ITER_HEADER 16u
#define ITEM_META_HEADER 32u

#define FAIL(...) wmc_h_fail(__FILE__, __LINE__, __VA_ARGS__)

/* ------------------------------------------------------------ small tools */

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) FAIL("harness: out of memory (%zu bytes)", n);
    return p;
}

static void *xrealloc(void *p, size_t n) {
    p = realloc(p, n ? n : 1);
    if (!p) FAIL("harness: out of memory (%zu bytes)", n);
    return p;
}

/* A copy that lives until the process ends, NUL-terminated. */
static const uint8_t *keep(const uint8_t *p, uint32_t n) {
    uint8_t *c = xmalloc((size_t)n + 1);
    if (n) memcpy(c, p, n);
    c[n] = 0;
    return c;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

typedef struct {
    uint8_t *p;
    size_t len, cap;
} bytes_t;

static void put(bytes_t *b, const void *p, size_t n) {
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap - b->len < n) cap *= 2;
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
}
static void put8(bytes_t *b, uint8_t v) { put(b, &v, 1); }
static void put16(bytes_t *b, uint16_t v) {
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    put(b, x, 2);
}
static void put32(bytes_t *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, x, 4);
}
static void put64(bytes_t *b, uint64_t v) {
    put32(b, (uint32_t)v);
    put32(b, (uint32_t)(v >> 32));
}

/* ------------------------------------------------------------ the harness */

struct wmc_h {
    bytes_t buf;
    char **stat_names, **stat_values;
    uint32_t nstats;
};

/* One instance per process: the plugin's statics are its state. The host
 * imports' records are wmc_host.c's. */
static wmc_h the_harness;
static int started;
static char init_error[1024];

static wmc_h *host(void) { return &the_harness; }

/* ------------------------------------------------------------ memory */

/* Copies `b` into the buffer wmc_input gives for it. */
static void input(const bytes_t *b) {
    if (b->len > 0x7fffffffu) FAIL("harness: input of %zu bytes", b->len);
    int32_t at = wmc_input((int32_t)b->len);
    if (at == 0) FAIL("wmc_input(%zu) answered 0: the plugin's memory is full", b->len);
    if (b->len) memcpy(wmc_native_addr((uint32_t)at), b->p, b->len);
}

/* The bytes of a packed (ptr << 32) | len answer, checked to lie inside
 * the memory as the host checks it. */
static const uint8_t *answer(int64_t packed, uint32_t *len, const char *what) {
    uint32_t ptr = (uint32_t)((uint64_t)packed >> 32);
    *len = (uint32_t)packed;
    if ((uint64_t)ptr + *len > wmc_native_memory_size())
        FAIL("%s: answer at %u (%u bytes) lies outside the plugin's memory (%zu bytes)", what,
             ptr, *len, wmc_native_memory_size());
    return wmc_native_addr(ptr);
}

size_t wmc_h_memory(const wmc_h *h) {
    (void)h;
    return wmc_heap_bytes();
}

/* ------------------------------------------------------------ start */

wmc_h_config wmc_h_config_default(void) {
    wmc_h_config c;
    memset(&c, 0, sizeof c);
    c.shard_id = 0;
    c.shard_count = 1;
    c.memory_budget = 64u << 20;
    c.max_item_size = 1u << 20;
    c.cas_enabled = 1;
    c.no_evict = 0;
    c.now = WMC_H_START;
    c.config = NULL;
    c.chunk_size = 48;
    c.hashpower = 0;
    c.memory_cap = 0;
    return c;
}

const char *wmc_h_init_error(void) { return init_error; }

int wmc_h_start(const wmc_h_config *cfg, wmc_h **out) {
    wmc_h_config c = cfg ? *cfg : wmc_h_config_default();
    *out = NULL;
    if (started)
        FAIL("one plugin instance per process: start each in a test of its own (wmc_h_run)");
    started = 1;
    wmc_host_set_clock(c.now);
    if (wmc_abi_version() != WMC_ABI)
        FAIL("wmc_abi_version() is %d, the harness was built for %d: build both with the "
             "same -DWMC_ABI",
             wmc_abi_version(), WMC_ABI);
    size_t cap = c.memory_cap;
    if (!cap) {
        uint64_t host_cap = c.memory_budget + c.memory_budget / 2 + (32u << 20) +
                            4 * (uint64_t)c.max_item_size;
        cap = host_cap > (uint64_t)SIZE_MAX ? SIZE_MAX : (size_t)host_cap;
    }
    wmc_native_set_memory_cap(cap);

    wmc_h *h = host();
    const char *config = c.config ? c.config : "";
    uint32_t config_len = (uint32_t)strlen(config);
    bytes_t hints = {0};
#if WMC_ABI >= 5
    /* tag 2: -n, tag 3: hashpower; the others absent: memcached's defaults */
    put16(&hints, 2);
    put16(&hints, 4);
    put32(&hints, c.chunk_size);
    put16(&hints, 3);
    put16(&hints, 4);
    put32(&hints, c.hashpower);
#endif
    h->buf.len = 0;
    put32(&h->buf, WMC_ABI);
    put32(&h->buf, c.shard_id);
    put32(&h->buf, c.shard_count);
    put32(&h->buf, (c.cas_enabled ? WMC_INIT_CAS : 0u) | (c.no_evict ? WMC_INIT_NO_EVICT : 0u));
    put64(&h->buf, c.memory_budget);
    put32(&h->buf, c.max_item_size);
    put32(&h->buf, c.now);
    put32(&h->buf, (uint32_t)hints.len);
    put32(&h->buf, config_len);
    put(&h->buf, config, config_len);
    put(&h->buf, hints.p, hints.len);
    free(hints.p);
    input(&h->buf);
    uint32_t logged_before = wmc_host_log_count();
    int code = wmc_init((int32_t)h->buf.len);
    if (code == 0) {
        *out = h;
        return 0;
    }
    init_error[0] = 0;
    for (uint32_t i = wmc_host_log_count(); i > logged_before; i--) {
        int level;
        const char *text = wmc_host_log_text(i - 1, &level);
        if (level == WMC_LOG_ERROR) {
            snprintf(init_error, sizeof init_error, "%s", text);
            break;
        }
    }
    return code;
}

wmc_h *wmc_h_new(const wmc_h_config *cfg) {
    wmc_h *h;
    int code = wmc_h_start(cfg, &h);
    if (code != 0)
        FAIL("wmc_init refused (code %d): %s", code,
             init_error[0] ? init_error : "(nothing logged at level error)");
    return h;
}

/* ------------------------------------------------------------ requests */

wmc_h_req wmc_h_req_new(uint8_t op, const char *key) {
    wmc_h_req r;
    memset(&r, 0, sizeof r);
    r.op = op;
    if (key) {
        r.key = key;
        r.key_len = (uint32_t)strlen(key);
    }
    return r;
}

static void encode_request(bytes_t *b, const wmc_h_req *r) {
    put8(b, r->op);
    put8(b, 0);
    put16(b, (uint16_t)r->key_len);
    put32(b, r->value_len);
    put32(b, r->flags);
    put32(b, r->exptime);
    put64(b, r->cas);
    put64(b, r->delta);
    put32(b, r->mflags);
    put32(b, r->aux);
    put(b, r->key, r->key_len);
    put(b, r->value, r->value_len);
}

static const uint8_t empty[1] = {0};

void wmc_h_batch(wmc_h *h, const wmc_h_req *reqs, uint32_t n, wmc_reply *out) {
    h->buf.len = 0;
    put32(&h->buf, n);
    for (uint32_t i = 0; i < n; i++) {
        if (reqs[i].key_len > 0xffffu) FAIL("a key of %u bytes does not fit a request", reqs[i].key_len);
        encode_request(&h->buf, &reqs[i]);
    }
    input(&h->buf);
    uint32_t len;
    const uint8_t *b = answer(wmc_batch((int32_t)h->buf.len), &len, "wmc_batch");
    /* the host's checks (wasmcached_abi::check_responses) */
    if (len < BATCH_HEADER) FAIL("the host would refuse this response batch: short batch");
    if (rd32(b) != n)
        FAIL("the host would refuse this response batch: %u responses for %u requests", rd32(b),
             n);
    uint32_t pos = BATCH_HEADER;
    for (uint32_t i = 0; i < n; i++) {
        if (len - pos < RESPONSE_HEADER)
            FAIL("the host would refuse this response batch: malformed response record %u", i);
        const uint8_t *r = b + pos;
        uint32_t key_len = rd16(r + 2), value_len = rd32(r + 4);
        if ((uint64_t)RESPONSE_HEADER + key_len + value_len > len - pos)
            FAIL("the host would refuse this response batch: malformed response record %u", i);
        if (r[0] > WMC_ERROR)
            FAIL("the host would refuse this response batch: unknown response status %u", r[0]);
        if (r[1] & 0x40u)
            FAIL("response %u is a held value (VALUE_REF), which the C SDK never sends", i);
        wmc_reply *o = &out[i];
        o->status = r[0];
        o->iflags = r[1];
        o->key_len = key_len;
        o->value_len = value_len;
        o->flags = rd32(r + 8);
        o->exptime = rd32(r + 12);
        o->cas = rd64(r + 16);
        o->last_access = rd32(r + 24);
        o->prev_exptime = rd32(r + 28);
        o->key = key_len ? keep(r + RESPONSE_HEADER, key_len) : empty;
        o->value = keep(r + RESPONSE_HEADER + key_len, value_len);
        pos += RESPONSE_HEADER + key_len + value_len;
    }
}

wmc_reply wmc_h_send(wmc_h *h, const wmc_h_req *req) {
    wmc_reply r;
    wmc_h_batch(h, req, 1, &r);
    return r;
}

wmc_reply wmc_h_get(wmc_h *h, const char *key) {
    wmc_h_req r = wmc_h_req_new(WMC_OP_GET, key);
    return wmc_h_send(h, &r);
}

wmc_reply wmc_h_set_bytes(wmc_h *h, const void *key, uint32_t key_len, const void *value,
                          uint32_t value_len, uint32_t flags, uint32_t exptime) {
    wmc_h_req r = wmc_h_req_new(WMC_OP_SET, NULL);
    r.key = key;
    r.key_len = key_len;
    r.value = value;
    r.value_len = value_len;
    r.flags = flags;
    r.exptime = exptime;
    return wmc_h_send(h, &r);
}

wmc_reply wmc_h_store(wmc_h *h, uint8_t op, const char *key, const char *value, uint32_t flags,
                      uint32_t exptime) {
    wmc_h_req r = wmc_h_req_new(op, key);
    r.value = value;
    r.value_len = (uint32_t)strlen(value);
    r.flags = flags;
    r.exptime = exptime;
    return wmc_h_send(h, &r);
}

wmc_reply wmc_h_set(wmc_h *h, const char *key, const char *value, uint32_t flags,
                    uint32_t exptime) {
    return wmc_h_store(h, WMC_OP_SET, key, value, flags, exptime);
}

wmc_reply wmc_h_cas(wmc_h *h, const char *key, const char *value, uint32_t flags,
                    uint32_t exptime, uint64_t cas) {
    wmc_h_req r = wmc_h_req_new(WMC_OP_CAS, key);
    r.value = value;
    r.value_len = (uint32_t)strlen(value);
    r.flags = flags;
    r.exptime = exptime;
    r.cas = cas;
    return wmc_h_send(h, &r);
}

wmc_reply wmc_h_delete(wmc_h *h, const char *key) {
    wmc_h_req r = wmc_h_req_new(WMC_OP_DELETE, key);
    return wmc_h_send(h, &r);
}

static wmc_reply arith(wmc_h *h, uint8_t op, const char *key, uint64_t delta) {
    wmc_h_req r = wmc_h_req_new(op, key);
    r.delta = delta;
    return wmc_h_send(h, &r);
}

wmc_reply wmc_h_incr(wmc_h *h, const char *key, uint64_t delta) {
    return arith(h, WMC_OP_INCR, key, delta);
}

wmc_reply wmc_h_decr(wmc_h *h, const char *key, uint64_t delta) {
    return arith(h, WMC_OP_DECR, key, delta);
}

wmc_reply wmc_h_touch(wmc_h *h, const char *key, uint32_t exptime) {
    wmc_h_req r = wmc_h_req_new(WMC_OP_TOUCH, key);
    r.exptime = exptime;
    return wmc_h_send(h, &r);
}

wmc_reply wmc_h_gat(wmc_h *h, const char *key, uint32_t exptime) {
    wmc_h_req r = wmc_h_req_new(WMC_OP_GAT, key);
    r.exptime = exptime;
    return wmc_h_send(h, &r);
}

wmc_reply wmc_h_flush_all(wmc_h *h, uint32_t when) {
    wmc_h_req r = wmc_h_req_new(WMC_OP_FLUSH_ALL, NULL);
    r.exptime = when;
    return wmc_h_send(h, &r);
}

wmc_reply wmc_h_mem_limit(wmc_h *h, uint64_t bytes) {
    wmc_h_req r = wmc_h_req_new(WMC_OP_MEM_LIMIT, NULL);
    r.delta = bytes;
    return wmc_h_send(h, &r);
}

int wmc_reply_is(const wmc_reply *r, const char *value) {
    size_t n = strlen(value);
    return r->value_len == n && memcmp(r->value, value, n) == 0;
}

int wmc_reply_number(const wmc_reply *r, uint64_t *out) {
    if (r->status != WMC_NUMBER || r->value_len == 0 || r->value_len > 20) return 0;
    uint64_t v = 0;
    for (uint32_t i = 0; i < r->value_len; i++) {
        uint8_t c = r->value[i];
        if (c < '0' || c > '9') return 0;
        if (v > (UINT64_MAX - (c - '0')) / 10) return 0;
        v = v * 10 + (c - '0');
    }
    *out = v;
    return 1;
}

const char *wmc_status_name(uint8_t status) {
    static const char *const names[] = {
        "STORED", "NOT_STORED", "EXISTS",       "NOT_FOUND",     "DELETED",
        "TOUCHED", "HIT",       "MISS",         "NUMBER",        "NON_NUMERIC",
        "TOO_LARGE", "OUT_OF_MEMORY", "OK",     "ERROR",
    };
    return status <= WMC_ERROR ? names[status] : "(unknown status)";
}

/* ------------------------------------------------------------ clock, timers */

uint32_t wmc_h_now(const wmc_h *h) {
    (void)h;
    return wmc_host_clock();
}

void wmc_h_set_now(wmc_h *h, uint32_t now) {
    (void)h;
    wmc_host_set_clock(now);
}

uint32_t wmc_h_advance(wmc_h *h, uint32_t secs) {
    (void)h;
    wmc_host_set_clock(wmc_host_clock() + secs);
    wmc_tick((int32_t)wmc_host_clock());
    return wmc_host_clock();
}

void wmc_h_tick(wmc_h *h) {
    (void)h;
    wmc_tick((int32_t)wmc_host_clock());
}

void wmc_h_fire_timer(wmc_h *h, uint64_t token) {
    (void)h;
    wmc_timer((int64_t)token);
}

uint32_t wmc_h_timer_count(const wmc_h *h) {
    (void)h;
    return wmc_host_timer_count();
}

void wmc_h_timer_at(const wmc_h *h, uint32_t i, uint64_t *token, uint32_t *delay_ms) {
    (void)h;
    if (i >= wmc_host_timer_count()) FAIL("timer %u of %u", i, wmc_host_timer_count());
    wmc_host_timer(i, token, delay_ms);
}

/* ------------------------------------------------------------ logs, events */

uint32_t wmc_h_log_count(const wmc_h *h) {
    (void)h;
    return wmc_host_log_count();
}

const char *wmc_h_log_line(const wmc_h *h, uint32_t i, int *level) {
    (void)h;
    if (i >= wmc_host_log_count()) FAIL("log line %u of %u", i, wmc_host_log_count());
    return wmc_host_log_text(i, level);
}

int wmc_h_logged(const wmc_h *h, const char *text) {
    (void)h;
    for (uint32_t i = 0; i < wmc_host_log_count(); i++)
        if (strstr(wmc_host_log_text(i, NULL), text)) return 1;
    return 0;
}

void wmc_h_clear_logs(wmc_h *h) {
    (void)h;
    wmc_host_clear_logs();
}

uint32_t wmc_h_event_count(const wmc_h *h) {
    (void)h;
    return wmc_host_event_count();
}

const wmc_h_event *wmc_h_event_at(const wmc_h *h, uint32_t i) {
    (void)h;
    if (i >= wmc_host_event_count()) FAIL("event %u of %u", i, wmc_host_event_count());
    return wmc_host_event(i);
}

/* ------------------------------------------------------------ stats */

uint32_t wmc_h_stats(wmc_h *h, int group) {
    uint32_t len;
    const uint8_t *b = answer(wmc_stats(group), &len, "wmc_stats");
    h->nstats = 0;
    uint32_t pos = 0;
    while (pos < len) {
        uint32_t end = pos;
        while (end < len && b[end] != '\n') end++;
        uint32_t sp = pos;
        while (sp < end && b[sp] != ' ') sp++;
        if (sp < end) { /* a line without a space (`#counter`) is no stat */
            h->stat_names = xrealloc(h->stat_names, sizeof(char *) * (h->nstats + 1));
            h->stat_values = xrealloc(h->stat_values, sizeof(char *) * (h->nstats + 1));
            h->stat_names[h->nstats] = (char *)keep(b + pos, sp - pos);
            h->stat_values[h->nstats] = (char *)keep(b + sp + 1, end - sp - 1);
            h->nstats++;
        }
        pos = end + 1;
    }
    return h->nstats;
}

void wmc_h_stat_line(const wmc_h *h, uint32_t i, const char **name, const char **value) {
    if (i >= h->nstats) FAIL("stat line %u of %u", i, h->nstats);
    if (name) *name = h->stat_names[i];
    if (value) *value = h->stat_values[i];
}

const char *wmc_h_stat(wmc_h *h, int group, const char *name) {
    uint32_t n = wmc_h_stats(h, group);
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(h->stat_names[i], name) == 0) return h->stat_values[i];
    return NULL;
}

uint64_t wmc_h_stat_u64(wmc_h *h, int group, const char *name) {
    const char *v = wmc_h_stat(h, group, name);
    if (!v) FAIL("the plugin reports no stat %s in group %d", name, group);
    uint64_t out;
    if (!wmc_parse_u64((const uint8_t *)v, (uint32_t)strlen(v), &out))
        FAIL("stat %s is %s, not a number", name, v);
    return out;
}

/* ------------------------------------------------------------ dump, load, listing */

static void add_item(wmc_h_item **items, int64_t *n, const wmc_h_item *it) {
    *items = xrealloc(*items, sizeof **items * (size_t)(*n + 1));
    (*items)[(*n)++] = *it;
}

int64_t wmc_h_dump(wmc_h *h, uint32_t chunk_bytes, wmc_h_item **items) {
    (void)h;
    int64_t n = 0;
    *items = NULL;
    for (uint32_t chunk = 0; chunk < 1000000; chunk++) {
        int64_t r = wmc_dump((int32_t)chunk_bytes);
        if (r == -1) return -1;
        if (r == -2) FAIL("wmc_dump failed (-2: no memory for the chunk)");
        uint32_t len;
        const uint8_t *b = answer(r, &len, "wmc_dump");
        if (len == 0) return n;
        if (len < BATCH_HEADER) FAIL("malformed dump chunk (%u bytes)", len);
        uint32_t count = rd32(b), pos = BATCH_HEADER;
        if (count == 0) return n;
        for (uint32_t i = 0; i < count; i++) {
            if (len - pos < ITEM_HEADER) FAIL("malformed dump chunk: record %u", i);
            const uint8_t *p = b + pos;
            wmc_h_item it;
            memset(&it, 0, sizeof it);
            it.client_flags = rd32(p);
            it.exptime = rd32(p + 4);
            it.cas = rd64(p + 8);
            it.last_access = rd32(p + 16);
            it.iflags = p[20];
            it.refs = p[21];
            it.key_len = rd16(p + 22);
            it.value_len = rd32(p + 24);
            if (it.key_len < 1 || it.key_len > 250 ||
                (uint64_t)ITEM_HEADER + it.key_len + it.value_len > len - pos)
                FAIL("malformed dump chunk: record %u", i);
            it.key = keep(p + ITEM_HEADER, it.key_len);
            it.value = keep(p + ITEM_HEADER + it.key_len, it.value_len);
            pos += ITEM_HEADER + it.key_len + it.value_len;
            add_item(items, &n, &it);
        }
        if (pos != len) FAIL("malformed dump chunk: %u bytes after the records", len - pos);
    }
    FAIL("the dump did not end after a million chunks");
}

int wmc_h_load(wmc_h *h, const wmc_h_item *items, uint32_t n) {
    h->buf.len = 0;
    put32(&h->buf, n);
    for (uint32_t i = 0; i < n; i++) {
        const wmc_h_item *it = &items[i];
        put32(&h->buf, it->client_flags);
        put32(&h->buf, it->exptime);
        put64(&h->buf, it->cas);
        put32(&h->buf, it->last_access);
        put8(&h->buf, it->iflags);
        put8(&h->buf, it->refs);
        put16(&h->buf, (uint16_t)it->key_len);
        put32(&h->buf, it->value_len);
        put(&h->buf, it->key, it->key_len);
        put(&h->buf, it->value, it->value_len);
    }
    input(&h->buf);
    int code = wmc_load((int32_t)h->buf.len);
    if (code < 0 || code > 2) FAIL("wmc_load answered %d for a well-formed chunk", code);
    return code;
}

int64_t wmc_h_list(wmc_h *h, uint32_t chunk_bytes, wmc_h_item **items) {
    (void)h;
    int64_t n = 0;
    uint64_t cursor = 0;
    *items = NULL;
    for (uint32_t chunk = 0; chunk < 1000000; chunk++) {
        int64_t r = wmc_iter((int64_t)cursor, (int32_t)chunk_bytes);
        if (r == -1) return -1;
        if (r == -2) FAIL("wmc_iter failed (-2: no memory for the chunk)");
        uint32_t len;
        const uint8_t *b = answer(r, &len, "wmc_iter");
        if (len == 0) return n;
        if (len < ITER_HEADER) FAIL("malformed listing chunk (%u bytes)", len);
        uint32_t count = rd32(b), pos = ITER_HEADER;
        uint64_t next = rd64(b + 8);
        for (uint32_t i = 0; i < count; i++) {
            if (len - pos < ITEM_META_HEADER) FAIL("malformed listing chunk: record %u", i);
            const uint8_t *p = b + pos;
            wmc_h_item it;
            memset(&it, 0, sizeof it);
            it.exptime = rd32(p);
            it.last_access = rd32(p + 4);
            it.cas = rd64(p + 8);
            it.client_flags = rd32(p + 16);
            it.value_len = rd32(p + 20);
            it.size = rd32(p + 24);
            it.iflags = p[28];
            it.slab_class = p[29];
            it.key_len = rd16(p + 30);
            if (it.key_len < 1 || it.key_len > 250 ||
                (uint64_t)ITEM_META_HEADER + it.key_len > len - pos)
                FAIL("malformed listing chunk: record %u", i);
            it.key = keep(p + ITEM_META_HEADER, it.key_len);
            pos += ITEM_META_HEADER + it.key_len;
            add_item(items, &n, &it);
        }
        if (pos != len) FAIL("malformed listing chunk: %u bytes after the records", len - pos);
        if (next == 0) return n;
        cursor = next;
    }
    FAIL("the listing did not end after a million chunks");
}

/* ------------------------------------------------------------ metrics */

int wmc_h_metric(wmc_h *h, const char *name, int64_t *value) {
    (void)h;
#if WMC_ABI >= 8
    uint32_t len;
    const uint8_t *b = answer(wmc_metrics(), &len, "wmc_metrics");
    if (len == 0) return 0;
    if (len < 4) FAIL("malformed metrics block (%u bytes)", len);
    uint32_t count = rd32(b), pos = 4;
    size_t want = strlen(name);
    for (uint32_t i = 0; i < count; i++) {
        if (len - pos < 12) FAIL("malformed metrics block: descriptor %u", i);
        const uint8_t *d = b + pos;
        uint8_t kind = d[0];
        uint32_t nl = d[1], hl = rd16(d + 2), addr = rd32(d + 4), nbounds = rd32(d + 8);
        if (kind < 1 || kind > 3 || nbounds > 64 ||
            (uint64_t)12 + nl + hl + 8ull * nbounds > len - pos)
            FAIL("malformed metrics block: descriptor %u", i);
        if (addr == 0 || addr % 8) FAIL("metric %u: value offset %u is not a multiple of 8", i, addr);
        if (nl == want && memcmp(d + 12, name, nl) == 0) {
            const uint8_t *v = wmc_native_addr(addr);
            uint64_t x;
            if (kind == 3) {
                x = 0;
                for (uint32_t k = 0; k <= nbounds; k++) x += rd64(v + 8 * k);
            } else {
                x = rd64(v);
            }
            if (value) *value = (int64_t)x;
            return kind;
        }
        pos += 12 + nl + hl + 8 * nbounds;
    }
    return 0;
#else
    (void)name, (void)value;
    return 0;
#endif
}

/* ------------------------------------------------------------ tests */

static unsigned passed, failed;
static const char *running = "(no test)";

void wmc_h_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "%s:%d: %s: ", file, line, running);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    uint32_t n = wmc_host_log_count();
    if (n) {
        uint32_t from = n > 20 ? n - 20 : 0;
        fprintf(stderr, "  the plugin's last log lines:\n");
        for (uint32_t i = from; i < n; i++) {
            int level;
            const char *text = wmc_host_log_text(i, &level);
            fprintf(stderr, "    [%d] %s\n", level, text);
        }
    }
    fflush(stderr);
    _exit(1);
}

void wmc_h_run(const char *name, void (*test)(void)) {
    const char *only = getenv("WMC_H_ONLY");
    if (only && *only && !strstr(name, only)) return;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        running = name;
        test();
        fflush(NULL);
        _exit(0);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        passed++;
        printf("PASS %s\n", name);
    } else {
        failed++;
        if (WIFSIGNALED(status))
            printf("FAIL %s (signal %d: a crash or a trap)\n", name, WTERMSIG(status));
        else
            printf("FAIL %s\n", name);
    }
    fflush(stdout);
}

int wmc_h_done(void) {
    printf("%u passed, %u failed\n", passed, failed);
    fflush(stdout);
    return failed || passed == 0 ? 1 : 0;
}
