/*
 * wasmcached C SDK: a native test harness. Compile your plugin with the SDK
 * and this harness for the build machine (gcc or clang, no wasm), and
 * drive the plugin's callback table with requests from plain C:
 *
 *   cc -std=c11 -Wall -Wextra -Werror -I guest-sdk/c -I guest-sdk/c/harness \
 *      -o test_native test_native.c my_plugin.c \
 *      guest-sdk/c/wasmcached.c guest-sdk/c/harness/wmc_harness.c \
 *      guest-sdk/c/harness/wmc_host.c
 *   ./test_native
 *
 * (It lives in harness/, apart from the two files a plugin's wasm build
 * needs; a `wasmcached plugin new c` project has it there too, with a
 * starter test_native.c and ./test.sh.)
 *
 * It plays the host, through the same SDK code the wasm exports run: it
 * writes an init record and every request batch in the ABI's bytes
 * (docs/plugin-abi.md) into the buffer wmc_input gives, calls wmc_init /
 * wmc_batch / wmc_tick / wmc_stats / wmc_dump / wmc_load / wmc_iter /
 * wmc_metrics, checks each answer as the host checks it (a response batch
 * the host would refuse fails the test) and decodes it. It provides the
 * host imports: a clock you set (what wmc_now returns), a log it keeps,
 * the timers asked for, the v6 watch events. Natively the SDK's linear
 * memory is an arena capped like the host caps an instance, so wmc_malloc
 * still answers NULL when it is full (wasmcached.h, "native build only").
 *
 * A plugin keeps its store in statics: one process is one instance. So
 * each test runs in a process of its own: wmc_h_run forks, the child
 * starts the plugin with wmc_h_new and runs the test; a failed check (or a
 * crash, or a trap) fails that test only. Create no harness outside
 * wmc_h_run.
 *
 *   static void expiry(void) {
 *       wmc_h *h = wmc_h_new(NULL);                 // default config, clock at WMC_H_START
 *       WMC_CHECK_STATUS(wmc_h_set(h, "k", "v", 7, WMC_H_START + 10), WMC_STORED);
 *       wmc_reply r = wmc_h_get(h, "k");
 *       WMC_CHECK_VALUE(r, "v");
 *       WMC_CHECK_EQ(r.flags, 7);
 *       wmc_h_advance(h, 10);                       // the clock, then one tick
 *       WMC_CHECK_STATUS(wmc_h_get(h, "k"), WMC_MISS);
 *   }
 *   int main(void) { wmc_h_run("expiry", expiry); return wmc_h_done(); }
 *
 * POSIX only (fork, waitpid).
 */
#ifndef WMC_HARNESS_H
#define WMC_HARNESS_H

#include "wasmcached.h"
#include "wmc_host.h"

#ifdef __wasm__
#error "wmc_harness.h is for a native build (cc for the build machine), not wasm"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The clock a harness starts at unless its config says otherwise. */
#define WMC_H_START 1000u

/* What the init record says (wmc_h_config_default: a server with default
 * options and one shard). */
typedef struct wmc_h_config {
    uint32_t shard_id, shard_count;
    uint64_t memory_budget;  /* -m / shards (64 MiB) */
    uint32_t max_item_size;  /* -I (1 MiB) */
    int cas_enabled;         /* without -C (1) */
    int no_evict;            /* -M (0) */
    uint32_t now;            /* the clock at init (WMC_H_START) */
    const char *config;      /* --plugin-config, NUL-terminated; NULL = none */
    uint32_t chunk_size;     /* hint -n (48) */
    uint32_t hashpower;      /* hint -o hashpower (0: not given) */
    /* Most the memory may grow to; 0: the host's cap, budget * 1.5 +
     * 32 MiB + 4 * max_item_size (at most the arena, WMC_NATIVE_MEMORY). */
    size_t memory_cap;
} wmc_h_config;

wmc_h_config wmc_h_config_default(void);

typedef struct wmc_h wmc_h;

/* Starts the plugin (cfg NULL: the default config); a refused init fails
 * the test, with the plugin's last error log line. */
wmc_h *wmc_h_new(const wmc_h_config *cfg);
/* Starts the plugin; returns wmc_init's code (0 accepted, 3 refused by the
 * plugin's init; *out is then NULL, and wmc_h_init_error() tells why). */
int wmc_h_start(const wmc_h_config *cfg, wmc_h **out);
/* The last error line the plugin logged during a refused wmc_h_start. */
const char *wmc_h_init_error(void);

/* One decoded answer. key and value are the harness's copies (value is
 * also NUL-terminated), valid until the process ends. */
typedef struct wmc_reply {
    uint8_t status;       /* enum wmc_status */
    uint8_t iflags;
    const uint8_t *key;   /* Hit */
    uint32_t key_len;
    const uint8_t *value; /* Hit: the value; Number: digits; Error: the message */
    uint32_t value_len;
    uint32_t flags, exptime;
    uint64_t cas;
    uint32_t last_access, prev_exptime;
} wmc_reply;

/* A request record, field by field; fields left 0 are sent as 0. */
typedef struct wmc_h_req {
    uint8_t op;           /* enum wmc_op, or any byte */
    const void *key;
    uint32_t key_len;
    const void *value;
    uint32_t value_len;
    uint32_t flags, exptime;
    uint64_t cas, delta;
    uint32_t mflags, aux;
} wmc_h_req;

/* A request for `op` on a NUL-terminated key (NULL: none). */
wmc_h_req wmc_h_req_new(uint8_t op, const char *key);
/* One request in a batch of its own. */
wmc_reply wmc_h_send(wmc_h *h, const wmc_h_req *req);
/* `n` requests in one batch (a multiget, a pipeline): answers in `out`. */
void wmc_h_batch(wmc_h *h, const wmc_h_req *reqs, uint32_t n, wmc_reply *out);

/* The text commands; keys and values are NUL-terminated strings, exptimes
 * server time (0 = never; wmc_h_now). */
wmc_reply wmc_h_get(wmc_h *h, const char *key);
wmc_reply wmc_h_set(wmc_h *h, const char *key, const char *value, uint32_t flags,
                    uint32_t exptime);
/* Set with any bytes. */
wmc_reply wmc_h_set_bytes(wmc_h *h, const void *key, uint32_t key_len, const void *value,
                          uint32_t value_len, uint32_t flags, uint32_t exptime);
/* WMC_OP_SET, _ADD, _REPLACE, _APPEND, _PREPEND. */
wmc_reply wmc_h_store(wmc_h *h, uint8_t op, const char *key, const char *value,
                      uint32_t flags, uint32_t exptime);
wmc_reply wmc_h_cas(wmc_h *h, const char *key, const char *value, uint32_t flags,
                    uint32_t exptime, uint64_t cas);
wmc_reply wmc_h_delete(wmc_h *h, const char *key);
wmc_reply wmc_h_incr(wmc_h *h, const char *key, uint64_t delta);
wmc_reply wmc_h_decr(wmc_h *h, const char *key, uint64_t delta);
wmc_reply wmc_h_touch(wmc_h *h, const char *key, uint32_t exptime);
wmc_reply wmc_h_gat(wmc_h *h, const char *key, uint32_t exptime);
wmc_reply wmc_h_flush_all(wmc_h *h, uint32_t when);
wmc_reply wmc_h_mem_limit(wmc_h *h, uint64_t bytes);

/* Whether the reply carries exactly `value` (a NUL-terminated string). */
int wmc_reply_is(const wmc_reply *r, const char *value);
/* A Number's value: 1 and *out, or 0 (another status, or not digits). */
int wmc_reply_number(const wmc_reply *r, uint64_t *out);
/* The name of a status ("STORED", "HIT", ...). */
const char *wmc_status_name(uint8_t status);

/* ---- the clock and timers ---- */
uint32_t wmc_h_now(const wmc_h *h);
/* Sets the clock; calls nothing on the plugin. */
void wmc_h_set_now(wmc_h *h, uint32_t now);
/* Moves the clock `secs` on, then calls wmc_tick once with the new time;
 * returns it. */
uint32_t wmc_h_advance(wmc_h *h, uint32_t secs);
/* wmc_tick at the current time. */
void wmc_h_tick(wmc_h *h);
/* wmc_timer(token), as the host does when a timer fires. */
void wmc_h_fire_timer(wmc_h *h, uint64_t token);
/* The timers the plugin asked for (wmc_timer_set), in order. */
uint32_t wmc_h_timer_count(const wmc_h *h);
void wmc_h_timer_at(const wmc_h *h, uint32_t i, uint64_t *token, uint32_t *delay_ms);

/* ---- what the plugin logged (wmc_log), kept in order ---- */
uint32_t wmc_h_log_count(const wmc_h *h);
/* Line i (NUL-terminated) and its level (may be NULL). */
const char *wmc_h_log_line(const wmc_h *h, uint32_t i, int *level);
/* Whether a line containing `text` was logged. */
int wmc_h_logged(const wmc_h *h, const char *text);
void wmc_h_clear_logs(wmc_h *h);

/* ---- v6 watch events (log_event), decoded, in order ---- */
/* wmc_h_event: wmc_host.h */
uint32_t wmc_h_event_count(const wmc_h *h);
const wmc_h_event *wmc_h_event_at(const wmc_h *h, uint32_t i);

/* ---- stats (wmc_stats) ---- */
/* Asks for `group` (WMC_STATS_*): the number of `name value` lines
 * (declarations such as `#counter` are not stats: skipped, as the host does). */
uint32_t wmc_h_stats(wmc_h *h, int group);
/* Line i of the last wmc_h_stats. */
void wmc_h_stat_line(const wmc_h *h, uint32_t i, const char **name, const char **value);
/* Asks for `group`; the value of stat `name`, or NULL. */
const char *wmc_h_stat(wmc_h *h, int group, const char *name);
/* The same as a number; fails the test if it is missing or not a number. */
uint64_t wmc_h_stat_u64(wmc_h *h, int group, const char *name);

/* ---- dump, load and listing (v3, v5) ---- */
typedef struct wmc_h_item {
    const uint8_t *key;
    uint32_t key_len;
    const uint8_t *value; /* dump only (NULL in a listing) */
    uint32_t value_len;
    uint32_t client_flags, exptime;
    uint64_t cas;
    uint32_t last_access;
    uint8_t iflags, refs;
    uint32_t size;        /* listing */
    uint8_t slab_class;   /* listing */
} wmc_h_item;
/* Every item through wmc_dump in chunks of at most chunk_bytes: the count
 * (items in *items, the harness's memory), or -1 if the plugin cannot
 * dump. A malformed chunk or a failed dump fails the test. */
int64_t wmc_h_dump(wmc_h *h, uint32_t chunk_bytes, wmc_h_item **items);
/* Loads `n` items in one chunk through wmc_load: WMC_LOAD_OK, _FULL or
 * _UNSUPPORTED. */
int wmc_h_load(wmc_h *h, const wmc_h_item *items, uint32_t n);
/* Every item through wmc_iter, following the cursor as the host does. */
int64_t wmc_h_list(wmc_h *h, uint32_t chunk_bytes, wmc_h_item **items);

/* ---- metrics (v8) ---- */
/* Reads the metrics block as the host does (after update_metrics): the
 * kind of metric `name` (1 counter, 2 gauge, 3 histogram; 0: not
 * registered) and its value (a histogram: its count) in *value. */
int wmc_h_metric(wmc_h *h, const char *name, int64_t *value);

/* ---- memory ---- */
/* Bytes of memory the instance has grown to (wmc_heap_bytes). */
size_t wmc_h_memory(const wmc_h *h);

/* ---- tests ---- */
/* Runs `test` in a child process: "PASS name" or "FAIL name". */
void wmc_h_run(const char *name, void (*test)(void));
/* Prints the summary; the exit status for main: 0 if every test passed. */
int wmc_h_done(void);
/* Fails the running test (printf-style message), never returns. */
void wmc_h_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));

#define WMC_CHECK(cond)                                                             \
    do {                                                                            \
        if (!(cond)) wmc_h_fail(__FILE__, __LINE__, "check failed: %s", #cond);    \
    } while (0)
#define WMC_CHECK_EQ(a, b)                                                          \
    do {                                                                            \
        uint64_t wmc_a_ = (uint64_t)(a), wmc_b_ = (uint64_t)(b);                    \
        if (wmc_a_ != wmc_b_)                                                       \
            wmc_h_fail(__FILE__, __LINE__, "%s == %s: %llu != %llu", #a, #b,        \
                       (unsigned long long)wmc_a_, (unsigned long long)wmc_b_);     \
    } while (0)
/* The reply's status is `st` (an Error's message is shown when not). */
#define WMC_CHECK_STATUS(reply, st)                                                 \
    do {                                                                            \
        wmc_reply wmc_r_ = (reply);                                                 \
        if (wmc_r_.status != (st))                                                  \
            wmc_h_fail(__FILE__, __LINE__, "%s: status %s, expected %s (%.*s)",     \
                       #reply, wmc_status_name(wmc_r_.status),                      \
                       wmc_status_name(st), (int)wmc_r_.value_len,                  \
                       (const char *)wmc_r_.value);                                 \
    } while (0)
/* A Hit with exactly the value `str`. */
#define WMC_CHECK_VALUE(reply, str)                                                 \
    do {                                                                            \
        wmc_reply wmc_r_ = (reply);                                                 \
        if (wmc_r_.status != WMC_HIT || !wmc_reply_is(&wmc_r_, (str)))              \
            wmc_h_fail(__FILE__, __LINE__, "%s: %s \"%.*s\", expected HIT \"%s\"",  \
                       #reply, wmc_status_name(wmc_r_.status),                      \
                       (int)wmc_r_.value_len, (const char *)wmc_r_.value, (str));   \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif
