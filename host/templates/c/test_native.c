/*
 * {{name}}'s native tests: store.c, the C SDK (wasmcached.c) and the SDK's
 * test harness (harness/wmc_harness.h) compiled for this machine with its
 * own C compiler, not for wasm. Build and run:
 *
 *   ./test.sh
 *
 * Each test runs in a process of its own, on a fresh instance of the store
 * (wmc_h_run): a failed check, a crash or a trap fails that test only. The
 * last line is "N passed, M failed". harness/wmc_harness.h lists every call
 * (any request, the clock, logs, timers, stats, dump, load, metrics).
 *
 * Sizes differ from the wasm build's: natively a pointer takes 8 bytes, so
 * an item's header takes more of the budget. `wasmcached plugin check` is
 * the last word on the wasm build itself.
 */
#include "wmc_harness.h"

#include <stdio.h>
#include <string.h>

#define START WMC_H_START

static void set_and_get_keep_the_value_and_flags(void) {
    wmc_h *h = wmc_h_new(NULL); /* the default config; the clock at START */
    wmc_reply s = wmc_h_set(h, "user:1", "hello", 42, 0);
    WMC_CHECK_STATUS(s, WMC_STORED);
    WMC_CHECK(s.cas != 0);
    wmc_reply g = wmc_h_get(h, "user:1");
    WMC_CHECK_VALUE(g, "hello");
    WMC_CHECK_EQ(g.flags, 42);
    WMC_CHECK_EQ(g.cas, s.cas);
    WMC_CHECK_EQ(g.iflags & WMC_IFLAG_FETCHED, 0);
    /* the first get marked it fetched */
    WMC_CHECK_EQ(wmc_h_get(h, "user:1").iflags & WMC_IFLAG_FETCHED, WMC_IFLAG_FETCHED);
    /* a set replaces the value, with a new CAS value */
    wmc_reply again = wmc_h_set(h, "user:1", "world", 7, 0);
    WMC_CHECK_STATUS(again, WMC_STORED);
    WMC_CHECK(again.cas > s.cas);
    wmc_reply g2 = wmc_h_get(h, "user:1");
    WMC_CHECK_VALUE(g2, "world");
    WMC_CHECK_EQ(g2.flags, 7);
    WMC_CHECK_EQ(wmc_h_stat_u64(h, WMC_STATS_GENERAL, "curr_items"), 1);
}

static void a_key_never_set_is_a_miss(void) {
    wmc_h *h = wmc_h_new(NULL);
    WMC_CHECK_STATUS(wmc_h_get(h, "nothing"), WMC_MISS);
    WMC_CHECK_STATUS(wmc_h_set(h, "a", "1", 0, 0), WMC_STORED);
    /* a multiget: one batch, the answers in order */
    wmc_h_req reqs[3] = {wmc_h_req_new(WMC_OP_GET, "a"), wmc_h_req_new(WMC_OP_GET, "b"),
                         wmc_h_req_new(WMC_OP_GET, "a")};
    wmc_reply r[3];
    wmc_h_batch(h, reqs, 3, r);
    WMC_CHECK_VALUE(r[0], "1");
    WMC_CHECK_STATUS(r[1], WMC_MISS);
    WMC_CHECK_VALUE(r[2], "1");
}

static void delete_removes_the_item(void) {
    wmc_h *h = wmc_h_new(NULL);
    WMC_CHECK_STATUS(wmc_h_set(h, "k", "v", 0, 0), WMC_STORED);
    WMC_CHECK_STATUS(wmc_h_delete(h, "k"), WMC_DELETED);
    WMC_CHECK_STATUS(wmc_h_get(h, "k"), WMC_MISS);
    WMC_CHECK_STATUS(wmc_h_delete(h, "k"), WMC_NOT_FOUND);
    WMC_CHECK_EQ(wmc_h_stat_u64(h, WMC_STATS_GENERAL, "curr_items"), 0);
    WMC_CHECK_EQ(wmc_h_stat_u64(h, WMC_STATS_GENERAL, "bytes"), 0);
}

static void items_expire_on_the_server_clock(void) {
    wmc_h *h = wmc_h_new(NULL);
    WMC_CHECK_EQ(wmc_h_now(h), START);
    wmc_reply s = wmc_h_set(h, "k", "v", 0, START + 10);
    WMC_CHECK_EQ(s.exptime, START + 10);
    WMC_CHECK_EQ(wmc_h_advance(h, 9), START + 9); /* the clock, then one tick */
    WMC_CHECK_VALUE(wmc_h_get(h, "k"), "v");
    wmc_h_advance(h, 1);
    WMC_CHECK_STATUS(wmc_h_get(h, "k"), WMC_MISS);
    /* an expired item is not there to delete */
    WMC_CHECK_STATUS(wmc_h_delete(h, "k"), WMC_NOT_FOUND);
    /* an exptime at or before now: already expired */
    WMC_CHECK_STATUS(wmc_h_set(h, "gone", "x", 0, wmc_h_now(h)), WMC_STORED);
    WMC_CHECK_STATUS(wmc_h_get(h, "gone"), WMC_MISS);
}

static void flush_all_empties_the_store(void) {
    wmc_h *h = wmc_h_new(NULL);
    WMC_CHECK_STATUS(wmc_h_set(h, "a", "1", 0, 0), WMC_STORED);
    WMC_CHECK_STATUS(wmc_h_set(h, "b", "2", 0, 0), WMC_STORED);
    WMC_CHECK_STATUS(wmc_h_flush_all(h, 0), WMC_OK);
    WMC_CHECK_STATUS(wmc_h_get(h, "a"), WMC_MISS);
    WMC_CHECK_STATUS(wmc_h_get(h, "b"), WMC_MISS);
    WMC_CHECK_EQ(wmc_h_stat_u64(h, WMC_STATS_GENERAL, "curr_items"), 0);
    /* a delayed flush_all is not implemented */
    WMC_CHECK_STATUS(wmc_h_flush_all(h, wmc_h_now(h) + 60), WMC_ERROR);
}

/* A 4 KiB budget: it never evicts, so a full store answers out of memory;
 * expired items make room first, and cache_memlimit moves the budget. */
static void a_full_store_answers_out_of_memory(void) {
    wmc_h_config c = wmc_h_config_default();
    c.memory_budget = 4096;
    wmc_h *h = wmc_h_new(&c);
    char key[32], value[200];
    memset(value, 'v', sizeof value - 1);
    value[sizeof value - 1] = 0;
    int stored = 0;
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "k%d", i);
        wmc_reply r = wmc_h_set(h, key, value, 0, START + 10);
        if (r.status == WMC_OUT_OF_MEMORY) break;
        WMC_CHECK_STATUS(r, WMC_STORED);
        stored++;
    }
    WMC_CHECK(stored > 0 && stored < 100);
    WMC_CHECK(wmc_h_stat_u64(h, WMC_STATS_GENERAL, "bytes") <= 4096);
    WMC_CHECK_STATUS(wmc_h_get(h, "k0"), WMC_HIT); /* nothing was evicted */
    /* once they expire, a set drops them to make room */
    wmc_h_advance(h, 10);
    WMC_CHECK_STATUS(wmc_h_set(h, "later", value, 0, 0), WMC_STORED);
    WMC_CHECK_EQ(wmc_h_stat_u64(h, WMC_STATS_GENERAL, "curr_items"), 1);
    /* cache_memlimit: a budget too small for anything, then a larger one */
    WMC_CHECK_STATUS(wmc_h_mem_limit(h, 10), WMC_OK);
    WMC_CHECK_STATUS(wmc_h_set(h, "small", "x", 0, 0), WMC_OUT_OF_MEMORY);
    WMC_CHECK_STATUS(wmc_h_mem_limit(h, 1 << 20), WMC_OK);
    WMC_CHECK_STATUS(wmc_h_set(h, "small", "x", 0, 0), WMC_STORED);
}

static void an_item_over_the_size_limit_is_too_large(void) {
    wmc_h_config c = wmc_h_config_default();
    c.max_item_size = 100; /* -I: key and value together */
    wmc_h *h = wmc_h_new(&c);
    char value[101];
    memset(value, 'v', sizeof value - 1);
    value[sizeof value - 1] = 0;
    WMC_CHECK_STATUS(wmc_h_set(h, "k", "small", 0, 0), WMC_STORED);
    WMC_CHECK_STATUS(wmc_h_set(h, "k", value, 0, 0), WMC_TOO_LARGE);
    /* a set that fails still removes the old value, as in memcached */
    WMC_CHECK_STATUS(wmc_h_get(h, "k"), WMC_MISS);
}

static void what_it_does_not_implement_is_an_error(void) {
    wmc_h *h = wmc_h_new(NULL);
    WMC_CHECK_STATUS(wmc_h_set(h, "k", "1", 0, 0), WMC_STORED);
    wmc_reply add = wmc_h_store(h, WMC_OP_ADD, "new", "v", 0, 0);
    WMC_CHECK_STATUS(add, WMC_ERROR);
    WMC_CHECK(wmc_reply_is(&add, "not supported by this store"));
    WMC_CHECK_STATUS(wmc_h_cas(h, "k", "2", 0, 0, 1), WMC_ERROR);
    /* no arith callback: the SDK answers for the store */
    WMC_CHECK_STATUS(wmc_h_incr(h, "k", 1), WMC_ERROR);
    WMC_CHECK_STATUS(wmc_h_touch(h, "k", 0), WMC_ERROR);
    WMC_CHECK_VALUE(wmc_h_get(h, "k"), "1");
}

int main(void) {
    wmc_h_run("set_and_get_keep_the_value_and_flags", set_and_get_keep_the_value_and_flags);
    wmc_h_run("a_key_never_set_is_a_miss", a_key_never_set_is_a_miss);
    wmc_h_run("delete_removes_the_item", delete_removes_the_item);
    wmc_h_run("items_expire_on_the_server_clock", items_expire_on_the_server_clock);
    wmc_h_run("flush_all_empties_the_store", flush_all_empties_the_store);
    wmc_h_run("a_full_store_answers_out_of_memory", a_full_store_answers_out_of_memory);
    wmc_h_run("an_item_over_the_size_limit_is_too_large", an_item_over_the_size_limit_is_too_large);
    wmc_h_run("what_it_does_not_implement_is_an_error", what_it_does_not_implement_is_an_error);
    return wmc_h_done();
}
