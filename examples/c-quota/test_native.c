/*
 * c-quota's native tests: the plugin, the C SDK and the SDK's harness
 * (guest-sdk/c/harness/wmc_harness.h) compiled for the build machine, each test in
 * a fresh instance (a process of its own). Build and run:
 *
 *   examples/c-quota/test_native.sh
 *
 * Sizes differ from the wasm build's: natively a pointer is 8 bytes, so an
 * item's header (and the hash table) takes more of the budget.
 */
#include "wmc_harness.h"

#include <stdio.h>

#define START WMC_H_START

static void set_get_flags_and_cas(void) {
    wmc_h *h = wmc_h_new(NULL);
    wmc_reply s = wmc_h_set(h, "user:1", "hello", 42, 0);
    WMC_CHECK_STATUS(s, WMC_STORED);
    WMC_CHECK(s.cas != 0);
    wmc_reply g = wmc_h_get(h, "user:1");
    WMC_CHECK_VALUE(g, "hello");
    WMC_CHECK_EQ(g.flags, 42);
    WMC_CHECK_EQ(g.cas, s.cas);
    WMC_CHECK_EQ(g.key_len, 6);
    WMC_CHECK(memcmp(g.key, "user:1", 6) == 0);
    WMC_CHECK_EQ(g.iflags & WMC_IFLAG_FETCHED, 0);
    WMC_CHECK_EQ(wmc_h_get(h, "user:1").iflags & WMC_IFLAG_FETCHED, WMC_IFLAG_FETCHED);
    WMC_CHECK_STATUS(wmc_h_get(h, "user:2"), WMC_MISS);

    /* cas: a wrong value, the right one, the right one again (now used) */
    WMC_CHECK_STATUS(wmc_h_cas(h, "user:1", "x", 0, 0, s.cas + 1000), WMC_EXISTS);
    wmc_reply c = wmc_h_cas(h, "user:1", "y", 1, 0, s.cas);
    WMC_CHECK_STATUS(c, WMC_STORED);
    WMC_CHECK(c.cas > s.cas);
    WMC_CHECK_STATUS(wmc_h_cas(h, "user:1", "z", 0, 0, s.cas), WMC_EXISTS);
    WMC_CHECK_STATUS(wmc_h_cas(h, "missing", "z", 0, 0, 1), WMC_NOT_FOUND);
    wmc_reply y = wmc_h_get(h, "user:1");
    WMC_CHECK_VALUE(y, "y");
    WMC_CHECK_EQ(y.flags, 1);

    /* add, replace, append and prepend (which keep the flags) */
    WMC_CHECK_STATUS(wmc_h_store(h, WMC_OP_ADD, "user:1", "a", 0, 0), WMC_NOT_STORED);
    WMC_CHECK_STATUS(wmc_h_store(h, WMC_OP_ADD, "user:new", "n", 0, 0), WMC_STORED);
    WMC_CHECK_STATUS(wmc_h_store(h, WMC_OP_REPLACE, "nope", "x", 0, 0), WMC_NOT_STORED);
    WMC_CHECK_STATUS(wmc_h_store(h, WMC_OP_APPEND, "user:1", "!", 9, 0), WMC_STORED);
    WMC_CHECK_STATUS(wmc_h_store(h, WMC_OP_PREPEND, "user:1", "<", 9, 0), WMC_STORED);
    wmc_reply a = wmc_h_get(h, "user:1");
    WMC_CHECK_VALUE(a, "<y!");
    WMC_CHECK_EQ(a.flags, 1);
    WMC_CHECK_STATUS(wmc_h_store(h, WMC_OP_APPEND, "nope", "x", 0, 0), WMC_NOT_STORED);

    /* binary keys and values */
    const uint8_t key[3] = {0, 0xff, 7}, value[4] = {1, 0, 2, 0};
    WMC_CHECK_STATUS(wmc_h_set_bytes(h, key, 3, value, 4, 0, 0), WMC_STORED);
    wmc_h_req get = wmc_h_req_new(WMC_OP_GET, NULL);
    get.key = key;
    get.key_len = 3;
    wmc_reply b = wmc_h_send(h, &get);
    WMC_CHECK_STATUS(b, WMC_HIT);
    WMC_CHECK_EQ(b.value_len, 4);
    WMC_CHECK(memcmp(b.value, value, 4) == 0);
}

static void delete_and_batches(void) {
    wmc_h *h = wmc_h_new(NULL);
    WMC_CHECK_STATUS(wmc_h_set(h, "a", "1", 0, 0), WMC_STORED);
    WMC_CHECK_STATUS(wmc_h_set(h, "b", "2", 0, 0), WMC_STORED);
    /* a multiget: one batch, answers in order, a miss in the middle */
    wmc_h_req reqs[3] = {wmc_h_req_new(WMC_OP_GET, "a"), wmc_h_req_new(WMC_OP_GET, "nope"),
                         wmc_h_req_new(WMC_OP_GET, "b")};
    wmc_reply r[3];
    wmc_h_batch(h, reqs, 3, r);
    WMC_CHECK_VALUE(r[0], "1");
    WMC_CHECK_STATUS(r[1], WMC_MISS);
    WMC_CHECK_VALUE(r[2], "2");
    WMC_CHECK_STATUS(wmc_h_delete(h, "a"), WMC_DELETED);
    WMC_CHECK_STATUS(wmc_h_delete(h, "a"), WMC_NOT_FOUND);
    WMC_CHECK_STATUS(wmc_h_get(h, "a"), WMC_MISS);
    /* delete with a CAS compares it */
    wmc_reply g = wmc_h_get(h, "b");
    wmc_h_req del = wmc_h_req_new(WMC_OP_DELETE, "b");
    del.cas = g.cas + 1;
    WMC_CHECK_STATUS(wmc_h_send(h, &del), WMC_EXISTS);
    del.cas = g.cas;
    WMC_CHECK_STATUS(wmc_h_send(h, &del), WMC_DELETED);
    /* an op the SDK does not know, a meta flag c-quota does not implement */
    wmc_reply u = wmc_h_send(h, &(wmc_h_req){.op = 99, .key = "k", .key_len = 1});
    WMC_CHECK_STATUS(u, WMC_ERROR);
    WMC_CHECK(wmc_reply_is(&u, "unknown operation"));
    wmc_h_req vivify = wmc_h_req_new(WMC_OP_GET, "k");
    vivify.mflags = WMC_MFLAG_VIVIFY;
    wmc_reply v = wmc_h_send(h, &vivify);
    WMC_CHECK_STATUS(v, WMC_ERROR);
    WMC_CHECK(wmc_reply_is(&v, "storage plugin does not support this meta flag"));
}

static void incr_and_decr(void) {
    wmc_h *h = wmc_h_new(NULL);
    uint64_t n = 0;
    WMC_CHECK_STATUS(wmc_h_set(h, "n", "10", 0, 0), WMC_STORED);
    wmc_reply r = wmc_h_incr(h, "n", 5);
    WMC_CHECK(wmc_reply_number(&r, &n));
    WMC_CHECK_EQ(n, 15);
    r = wmc_h_decr(h, "n", 100);
    WMC_CHECK(wmc_reply_number(&r, &n));
    WMC_CHECK_EQ(n, 0);
    /* in place, padded with spaces, as memcached */
    WMC_CHECK_VALUE(wmc_h_get(h, "n"), "0 ");
    r = wmc_h_incr(h, "n", UINT64_MAX);
    WMC_CHECK(wmc_reply_is(&r, "18446744073709551615"));
    r = wmc_h_incr(h, "n", 2);
    WMC_CHECK(wmc_reply_number(&r, &n));
    WMC_CHECK_EQ(n, 1); /* wraps */
    WMC_CHECK_STATUS(wmc_h_incr(h, "missing", 1), WMC_NOT_FOUND);
    WMC_CHECK_STATUS(wmc_h_set(h, "t", "text", 0, 0), WMC_STORED);
    WMC_CHECK_STATUS(wmc_h_incr(h, "t", 1), WMC_NON_NUMERIC);
}

static void expiry_follows_the_clock(void) {
    wmc_h *h = wmc_h_new(NULL);
    WMC_CHECK_EQ(wmc_h_now(h), START);
    wmc_reply s = wmc_h_set(h, "k", "v", 0, START + 10);
    WMC_CHECK_EQ(s.exptime, START + 10);
    WMC_CHECK_EQ(wmc_h_advance(h, 9), START + 9);
    WMC_CHECK_VALUE(wmc_h_get(h, "k"), "v");
    wmc_h_advance(h, 1);
    WMC_CHECK_STATUS(wmc_h_get(h, "k"), WMC_MISS);
    /* an exptime at or before now: already expired */
    WMC_CHECK_STATUS(wmc_h_set(h, "gone", "x", 0, wmc_h_now(h)), WMC_STORED);
    WMC_CHECK_STATUS(wmc_h_get(h, "gone"), WMC_MISS);
    /* touch and gat move the exptime */
    WMC_CHECK_STATUS(wmc_h_set(h, "t", "v", 0, wmc_h_now(h) + 5), WMC_STORED);
    WMC_CHECK_STATUS(wmc_h_touch(h, "t", wmc_h_now(h) + 100), WMC_TOUCHED);
    WMC_CHECK_STATUS(wmc_h_touch(h, "nope", 0), WMC_NOT_FOUND);
    wmc_h_advance(h, 50);
    wmc_reply g = wmc_h_gat(h, "t", wmc_h_now(h) + 1);
    WMC_CHECK_VALUE(g, "v");
    WMC_CHECK_EQ(g.exptime, wmc_h_now(h) + 1);
    WMC_CHECK_EQ(g.prev_exptime, START + 10 + 100);
    wmc_h_advance(h, 1);
    WMC_CHECK_STATUS(wmc_h_get(h, "t"), WMC_MISS);
    WMC_CHECK(wmc_h_stat_u64(h, WMC_STATS_GENERAL, "get_expired") >= 2);
    /* a delayed flush_all: items stay until the time comes */
    WMC_CHECK_STATUS(wmc_h_set(h, "f", "v", 0, 0), WMC_STORED);
    wmc_h_advance(h, 1);
    WMC_CHECK_STATUS(wmc_h_flush_all(h, wmc_h_now(h) + 5), WMC_OK);
    WMC_CHECK_VALUE(wmc_h_get(h, "f"), "v");
    wmc_h_advance(h, 5);
    WMC_CHECK_STATUS(wmc_h_get(h, "f"), WMC_MISS);
}

/* A 256 KiB budget: the least recently used items go, the recent ones and
 * one read all along stay. */
static void evicts_within_a_small_budget(void) {
    wmc_h_config c = wmc_h_config_default();
    c.memory_budget = 256 << 10;
    wmc_h *h = wmc_h_new(&c);
    char key[32], value[1000];
    memset(value, 'v', sizeof value - 1);
    value[sizeof value - 1] = 0;
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        WMC_CHECK_STATUS(wmc_h_set(h, key, value, 0, 0), WMC_STORED);
        WMC_CHECK_STATUS(wmc_h_get(h, "k0"), WMC_HIT); /* never the least recent */
    }
    WMC_CHECK_STATUS(wmc_h_get(h, "k1"), WMC_MISS);
    WMC_CHECK_STATUS(wmc_h_get(h, "k999"), WMC_HIT);
    uint64_t items = wmc_h_stat_u64(h, WMC_STATS_GENERAL, "curr_items");
    uint64_t evictions = wmc_h_stat_u64(h, WMC_STATS_GENERAL, "evictions");
    WMC_CHECK(items > 100 && items < 256);
    WMC_CHECK_EQ(items + evictions, 1000);
    /* cache_memlimit to a quarter: it evicts down to it */
    WMC_CHECK_STATUS(wmc_h_mem_limit(h, 64 << 10), WMC_OK);
    WMC_CHECK(wmc_h_stat_u64(h, WMC_STATS_GENERAL, "curr_items") < items / 2);
}

/* The memory cap (the host's, here 2 MiB with a 64 MiB budget): wmc_malloc
 * answers NULL, c-quota evicts; with -M it answers OutOfMemory. */
static void the_memory_cap_is_not_a_trap(void) {
    wmc_h_config c = wmc_h_config_default();
    c.memory_cap = 2 << 20;
    wmc_h *h = wmc_h_new(&c);
    static char value[10000];
    memset(value, 'x', sizeof value - 1);
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        WMC_CHECK_STATUS(wmc_h_set(h, key, value, 0, 0), WMC_STORED);
    }
    WMC_CHECK(wmc_h_memory(h) <= 2 << 20);
    WMC_CHECK(wmc_h_stat_u64(h, WMC_STATS_GENERAL, "evictions") > 700);
}

static void no_evict_answers_out_of_memory(void) {
    wmc_h_config c = wmc_h_config_default();
    c.memory_budget = 128 << 10;
    c.no_evict = 1;
    wmc_h *h = wmc_h_new(&c);
    char key[32], value[1000];
    memset(value, 'v', sizeof value - 1);
    value[sizeof value - 1] = 0;
    int stored = 0;
    for (int i = 0; i < 500; i++) {
        snprintf(key, sizeof key, "k%d", i);
        wmc_reply r = wmc_h_set(h, key, value, 0, 0);
        if (r.status == WMC_STORED) stored++;
        else WMC_CHECK_STATUS(r, WMC_OUT_OF_MEMORY);
    }
    WMC_CHECK(stored > 50 && stored < 500);
    WMC_CHECK_VALUE(wmc_h_get(h, "k0"), value);
}

static void quotas_refuse_and_count(void) {
    wmc_h_config c = wmc_h_config_default();
    c.config = "user=2000,*=100000";
    wmc_h *h = wmc_h_new(&c);
    char key[32];
    int refused = 0;
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "user:%d", i);
        wmc_reply r = wmc_h_set(h, key, "0123456789012345678901234567890123456789", 0, 0);
        if (r.status == WMC_ERROR) {
            WMC_CHECK(wmc_reply_is(&r, "prefix quota exceeded"));
            refused++;
        } else {
            WMC_CHECK_STATUS(r, WMC_STORED);
        }
    }
    /* 46 or 47 bytes an item: 42 fit under 2000 bytes */
    WMC_CHECK_EQ(refused, 100 - 42);
    WMC_CHECK_STATUS(wmc_h_set(h, "img:1", "other prefixes are not affected", 0, 0), WMC_STORED);
    WMC_CHECK_EQ(wmc_h_stat_u64(h, WMC_STATS_GENERAL, "quota_rejections"), refused);
    WMC_CHECK(wmc_h_stat_u64(h, WMC_STATS_GENERAL, "quota:user:bytes") <= 2000);
    WMC_CHECK_EQ(wmc_h_stat_u64(h, WMC_STATS_GENERAL, "quota:user:limit"), 2000);
    int64_t m = -1;
    WMC_CHECK_EQ(wmc_h_metric(h, "quota_rejections_total", &m), 1); /* a counter */
    WMC_CHECK_EQ(m, refused);
    WMC_CHECK_EQ(wmc_h_metric(h, "quota_used_bytes_user", &m), 2); /* a gauge */
    WMC_CHECK_EQ((uint64_t)m, wmc_h_stat_u64(h, WMC_STATS_GENERAL, "quota:user:bytes"));
    WMC_CHECK_EQ(wmc_h_metric(h, "no_such_metric", &m), 0);
}

static void a_bad_config_is_refused_with_a_reason(void) {
    wmc_h_config c = wmc_h_config_default();
    c.config = "user";
    wmc_h *h;
    WMC_CHECK_EQ(wmc_h_start(&c, &h), 3);
    WMC_CHECK(h == NULL);
    WMC_CHECK(strcmp(wmc_h_init_error(), "c-quota: expected prefix=bytes, got user") == 0);
}

static void dump_load_and_listing(void) {
    wmc_h *h = wmc_h_new(NULL);
    char key[32], value[64];
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof key, "key%02d", i);
        snprintf(value, sizeof value, "value %d", i);
        WMC_CHECK_STATUS(wmc_h_set(h, key, value, (uint32_t)i, 0), WMC_STORED);
    }
    wmc_h_item *listed;
    WMC_CHECK_EQ(wmc_h_list(h, 100, &listed), 20);
    /* 60-byte chunks: one item each; least recently used first */
    wmc_h_item *items;
    WMC_CHECK_EQ(wmc_h_dump(h, 60, &items), 20);
    WMC_CHECK(items[0].key_len == 5 && memcmp(items[0].key, "key00", 5) == 0);
    WMC_CHECK_EQ(items[7].client_flags, 7);
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof key, "key%02d", i);
        WMC_CHECK_STATUS(wmc_h_delete(h, key), WMC_DELETED);
    }
    WMC_CHECK_EQ(wmc_h_list(h, 100, &listed), 0);
    WMC_CHECK_EQ(wmc_h_load(h, items, 20), WMC_LOAD_OK);
    wmc_reply r = wmc_h_get(h, "key07");
    WMC_CHECK_VALUE(r, "value 7");
    WMC_CHECK_EQ(r.flags, 7);
    WMC_CHECK_EQ(r.cas, items[7].cas);
    /* a new CAS stays above every loaded one */
    wmc_reply s = wmc_h_set(h, "fresh", "v", 0, 0);
    for (int i = 0; i < 20; i++) WMC_CHECK(s.cas > items[i].cas);
}

static void watch_reports_lookups(void) {
    wmc_h *h = wmc_h_new(NULL);
    WMC_CHECK_STATUS(wmc_h_set(h, "k", "value", 3, 0), WMC_STORED);
    WMC_CHECK_EQ(wmc_h_event_count(h), 0); /* nobody asked */
    wmc_h_req reqs[2] = {wmc_h_req_new(WMC_OP_GET, "nope"), wmc_h_req_new(WMC_OP_GET, "k")};
    reqs[0].mflags = reqs[1].mflags = WMC_MFLAG_LOG_LOOKUP;
    wmc_reply r[2];
    wmc_h_batch(h, reqs, 2, r);
    WMC_CHECK_EQ(wmc_h_event_count(h), 2);
    const wmc_h_event *miss = wmc_h_event_at(h, 0), *hit = wmc_h_event_at(h, 1);
    WMC_CHECK_EQ(miss->kind, 1);
    WMC_CHECK_EQ(miss->flags, 0);
    WMC_CHECK_EQ(miss->request, 0);
    WMC_CHECK_EQ(hit->flags, 1);
    WMC_CHECK_EQ(hit->request, 1);
    WMC_CHECK_EQ(hit->value_len, 5);
    WMC_CHECK_EQ(hit->client_flags, 3);
}

#ifdef BREAK_EXPECTATION
/* For tests/sdk_harness.rs: a wrong expectation must fail the run. */
static void a_wrong_expectation(void) {
    wmc_h *h = wmc_h_new(NULL);
    WMC_CHECK_STATUS(wmc_h_set(h, "k", "right", 0, 0), WMC_STORED);
    WMC_CHECK_VALUE(wmc_h_get(h, "k"), "wrong");
}
#endif

int main(void) {
    wmc_h_run("set_get_flags_and_cas", set_get_flags_and_cas);
    wmc_h_run("delete_and_batches", delete_and_batches);
    wmc_h_run("incr_and_decr", incr_and_decr);
    wmc_h_run("expiry_follows_the_clock", expiry_follows_the_clock);
    wmc_h_run("evicts_within_a_small_budget", evicts_within_a_small_budget);
    wmc_h_run("the_memory_cap_is_not_a_trap", the_memory_cap_is_not_a_trap);
    wmc_h_run("no_evict_answers_out_of_memory", no_evict_answers_out_of_memory);
    wmc_h_run("quotas_refuse_and_count", quotas_refuse_and_count);
    wmc_h_run("a_bad_config_is_refused_with_a_reason", a_bad_config_is_refused_with_a_reason);
    wmc_h_run("dump_load_and_listing", dump_load_and_listing);
    wmc_h_run("watch_reports_lookups", watch_reports_lookups);
#ifdef BREAK_EXPECTATION
    wmc_h_run("a_wrong_expectation", a_wrong_expectation);
#endif
    return wmc_h_done();
}
