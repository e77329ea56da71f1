/*
 * wasmcached C SDK, native build: the host imports a plugin calls (see
 * wmc_host.h), recorded for the harness. Prototypes as in wasmcached.h;
 * this file does not include the SDK, so that the SDK's calls into it are
 * the only tie between them.
 */
#include "wmc_host.h"

#include <stdio.h>
#include <stdlib.h>

#define EVENT_HEADER 24u

void wmc__host_log(int32_t level, const void *ptr, int32_t len);
int32_t wmc__host_now(void);
void wmc__host_timer_set(int64_t token, int32_t delay_ms);
void wmc__host_log_event(const void *ptr, int32_t len);

typedef struct {
    int level;
    char *text;
} log_line;

typedef struct {
    uint64_t token;
    uint32_t delay_ms;
} timer_req;

/* One instance per process, as the plugin's statics are. */
static uint32_t clock_now = 1;
static log_line *logs;
static uint32_t nlogs, logs_cap;
static timer_req *timers;
static uint32_t ntimers, timers_cap;
static wmc_h_event *events;
static uint32_t nevents, events_cap;

/* Grows `*p` (of `*cap` elements of `size`) to hold one more than `n`. */
static void *grow(void *p, uint32_t n, uint32_t *cap, size_t size) {
    if (n < *cap) return p;
    *cap = *cap ? *cap * 2 : 16;
    p = realloc(p, size * *cap);
    if (!p) {
        fprintf(stderr, "harness: out of memory\n");
        abort();
    }
    return p;
}

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void wmc__host_log(int32_t level, const void *ptr, int32_t len) {
    if (len < 0) len = 0;
    logs = grow(logs, nlogs, &logs_cap, sizeof *logs);
    char *text = malloc((size_t)len + 1);
    if (!text) abort();
    const char *src = ptr;
    for (int32_t i = 0; i < len; i++) text[i] = src[i];
    text[len] = 0;
    logs[nlogs].level = level;
    logs[nlogs].text = text;
    nlogs++;
    if (getenv("WMC_H_VERBOSE")) fprintf(stderr, "plugin log %d: %s\n", level, text);
}

int32_t wmc__host_now(void) { return (int32_t)clock_now; }

void wmc__host_timer_set(int64_t token, int32_t delay_ms) {
    timers = grow(timers, ntimers, &timers_cap, sizeof *timers);
    timers[ntimers].token = (uint64_t)token;
    timers[ntimers].delay_ms = (uint32_t)delay_ms;
    ntimers++;
}

/* A record that is malformed or does not fill `len` exactly is ignored, as
 * the host ignores it. */
void wmc__host_log_event(const void *ptr, int32_t len) {
    const uint8_t *b = ptr;
    if (len < (int32_t)EVENT_HEADER) return;
    uint32_t key_len = (uint32_t)b[2] | (uint32_t)b[3] << 8;
    if (key_len > 250 || (uint32_t)len != EVENT_HEADER + key_len) return;
    if (b[0] < 1 || b[0] > 3) return;
    events = grow(events, nevents, &events_cap, sizeof *events);
    wmc_h_event *e = &events[nevents++];
    *e = (wmc_h_event){
        .kind = b[0],
        .flags = b[1],
        .key_len = key_len,
        .request = rd32(b + 4),
        .value_len = rd32(b + 8),
        .client_flags = rd32(b + 12),
        .exptime = rd32(b + 16),
        .last_access = rd32(b + 20),
    };
    for (uint32_t i = 0; i < key_len; i++) e->key[i] = b[EVENT_HEADER + i];
}

uint32_t wmc_host_clock(void) { return clock_now; }
void wmc_host_set_clock(uint32_t now) { clock_now = now; }

uint32_t wmc_host_log_count(void) { return nlogs; }
const char *wmc_host_log_text(uint32_t i, int *level) {
    if (i >= nlogs) return NULL;
    if (level) *level = logs[i].level;
    return logs[i].text;
}
void wmc_host_clear_logs(void) {
    for (uint32_t i = 0; i < nlogs; i++) free(logs[i].text);
    nlogs = 0;
}

uint32_t wmc_host_timer_count(void) { return ntimers; }
void wmc_host_timer(uint32_t i, uint64_t *token, uint32_t *delay_ms) {
    if (i >= ntimers) return;
    if (token) *token = timers[i].token;
    if (delay_ms) *delay_ms = timers[i].delay_ms;
}

uint32_t wmc_host_event_count(void) { return nevents; }
const wmc_h_event *wmc_host_event(uint32_t i) { return i < nevents ? &events[i] : NULL; }
