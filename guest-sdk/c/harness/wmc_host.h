/*
 * wasmcached C SDK, native build: the host's side of the imports
 * (wmc_host.c). wasmcached.c calls them (log, now, timer_set, log_event,
 * declared in wasmcached.h's native part); this file keeps what they were
 * told, and wmc_harness.c reads it. Neither this header nor wmc_host.c
 * includes the SDK: the imports sit below both the SDK and the harness.
 */
#ifndef WMC_HOST_H
#define WMC_HOST_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A v6 watch event (log_event), decoded. */
typedef struct wmc_h_event {
    uint8_t kind;   /* 1 LOOKUP, 2 EVICTION, 3 STORED */
    uint8_t flags;  /* LOOKUP: 1 found; EVICTION: 1 fetched */
    uint8_t key[250];
    uint32_t key_len;
    uint32_t request; /* index in the batch */
    uint32_t value_len, client_flags, exptime, last_access;
} wmc_h_event;

/* The clock `now` answers. */
uint32_t wmc_host_clock(void);
void wmc_host_set_clock(uint32_t now);

/* Logged lines, oldest first (NUL-terminated copies). */
uint32_t wmc_host_log_count(void);
const char *wmc_host_log_text(uint32_t i, int *level);
void wmc_host_clear_logs(void);

/* Timers asked for, in order. */
uint32_t wmc_host_timer_count(void);
void wmc_host_timer(uint32_t i, uint64_t *token, uint32_t *delay_ms);

/* Watch events reported, in order (malformed records are dropped, as the
 * host drops them). */
uint32_t wmc_host_event_count(void);
const wmc_h_event *wmc_host_event(uint32_t i);

#ifdef __cplusplus
}
#endif
#endif
