// as-lfu's tests through the AssemblyScript SDK's harness
// (guest-sdk/assemblyscript/harness.mjs): the compiled plugin, driven by
// node without a server. Each test starts a fresh instance.
//
//   ./examples/as-lfu/build.sh && node --test examples/as-lfu/test.mjs
//
// $PLUGIN_WASM is the plugin to test (default target/examples/as-lfu.wasm).

import assert from "node:assert/strict";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  Harness, InitRefused, IFlag, LoadResult, MFlag, Op, START, Status,
} from "../../guest-sdk/assemblyscript/harness.mjs";

const root = fileURLToPath(new URL("../..", import.meta.url));
const wasm = process.env.PLUGIN_WASM || `${root}target/examples/as-lfu.wasm`;
const module = await WebAssembly.compile((await import("node:fs")).readFileSync(wasm));
const start = (config) => Harness.start(module, config);

test("set, get, flags and cas", async () => {
  const h = await start();
  const s = h.set("k", "hello", 42);
  assert.equal(s.statusName, "Stored");
  assert.ok(s.cas > 0n);
  const g = h.get("k");
  assert.equal(g.statusName, "Hit");
  assert.equal(g.text, "hello");
  assert.equal(g.flags, 42);
  assert.equal(g.cas, s.cas);
  assert.deepEqual(g.key, new TextEncoder().encode("k"));
  assert.equal(h.get("k").iflags & IFlag.Fetched, IFlag.Fetched);
  assert.equal(h.get("other").status, Status.Miss);

  assert.equal(h.cas("k", "x", 0, 0, s.cas + 1000n).status, Status.Exists);
  const c = h.cas("k", "y", 1, 0, s.cas);
  assert.equal(c.status, Status.Stored);
  assert.ok(c.cas > s.cas);
  assert.equal(h.cas("k", "z", 0, 0, s.cas).status, Status.Exists, "a used CAS value");
  assert.equal(h.cas("missing", "z", 0, 0, 1).status, Status.NotFound);

  assert.equal(h.store(Op.Add, "k", "a").status, Status.NotStored);
  assert.equal(h.store(Op.Add, "new", "n").status, Status.Stored);
  assert.equal(h.store(Op.Replace, "nope", "x").status, Status.NotStored);
  assert.equal(h.store(Op.Append, "k", "!", 9).status, Status.Stored);
  assert.equal(h.store(Op.Prepend, "k", "<", 9).status, Status.Stored);
  const a = h.get("k");
  assert.equal(a.text, "<y!");
  assert.equal(a.flags, 1, "append and prepend keep the flags");

  // binary keys and values
  const key = Uint8Array.of(0, 0xff, 7), value = Uint8Array.of(1, 0, 2, 0);
  assert.equal(h.set(key, value).status, Status.Stored);
  assert.deepEqual(h.get(key).value, value);
});

test("delete, batches and refusals", async () => {
  const h = await start();
  h.set("a", "1");
  h.set("b", "2");
  const r = h.getMany(["a", "nope", "b"]);
  assert.deepEqual(r.map((x) => x.statusName), ["Hit", "Miss", "Hit"]);
  assert.equal(r[2].text, "2");
  assert.equal(h.delete("a").status, Status.Deleted);
  assert.equal(h.delete("a").status, Status.NotFound);
  assert.equal(h.get("a").status, Status.Miss);
  const cas = h.get("b").cas;
  assert.equal(h.send({ op: Op.Delete, key: "b", cas: cas + 1n }).status, Status.Exists);
  assert.equal(h.send({ op: Op.Delete, key: "b", cas }).status, Status.Deleted);
  const u = h.send({ op: 99, key: "k" });
  assert.equal(u.status, Status.Error);
  const v = h.send({ op: Op.Get, key: "k", mflags: MFlag.Vivify });
  assert.equal(v.status, Status.Error, "vivify is not implemented: the SDK refuses it");
});

test("incr and decr", async () => {
  const h = await start();
  h.set("n", "10");
  assert.equal(h.incr("n", 5).number, 15n);
  assert.equal(h.decr("n", 100).number, 0n);
  assert.equal(h.get("n").text, "0 ", "in place, padded with spaces");
  assert.equal(h.incr("n", 18446744073709551615n).text, "18446744073709551615");
  assert.equal(h.incr("n", 2).number, 1n, "wraps");
  assert.equal(h.incr("missing", 1).status, Status.NotFound);
  h.set("t", "text");
  assert.equal(h.incr("t", 1).status, Status.NonNumeric);
});

test("expiry follows the clock", async () => {
  const h = await start();
  assert.equal(h.now, START);
  assert.equal(h.set("k", "v", 0, START + 10).exptime, START + 10);
  assert.equal(h.advance(9), START + 9);
  assert.ok(h.get("k").isHit);
  h.advance(1);
  assert.equal(h.get("k").status, Status.Miss);
  h.set("gone", "x", 0, h.now);
  assert.equal(h.get("gone").status, Status.Miss, "an exptime at now is already past");
  h.set("t", "v", 0, h.now + 5);
  assert.equal(h.touch("t", h.now + 100).status, Status.Touched);
  assert.equal(h.touch("nope", 0).status, Status.NotFound);
  h.advance(50);
  const g = h.gat("t", h.now + 1);
  assert.equal(g.text, "v");
  assert.equal(g.exptime, h.now + 1);
  h.advance(1);
  assert.equal(h.get("t").status, Status.Miss);
  assert.ok(h.statNumber("reclaimed") >= 1, "a tick reclaims expired items");
  // setNow moves the clock without a tick: the get finds the item expired
  h.set("s", "v", 0, h.now + 1);
  const expired = h.statNumber("get_expired");
  h.setNow(h.now + 1);
  assert.equal(h.get("s").status, Status.Miss);
  assert.equal(h.statNumber("get_expired"), expired + 1);
  // a delayed flush_all
  h.set("f", "v");
  h.advance(1);
  assert.equal(h.flushAll(h.now + 5).status, Status.Ok);
  assert.ok(h.get("f").isHit);
  h.advance(5);
  assert.equal(h.get("f").status, Status.Miss);
});

// Each item costs 160 + 3 * key + value bytes of the budget (README).
test("the least used keys are evicted within a small budget", async () => {
  const h = await start({ memoryBudget: 64 * 1024 });
  const value = "v".repeat(500);
  for (let i = 0; i < 500; i++) {
    assert.equal(h.set(`k${i}`, value).status, Status.Stored);
    if (i < 10) for (let j = 0; j < 5; j++) h.get(`k${i}`); // hot: used often
  }
  for (let i = 0; i < 10; i++) assert.ok(h.get(`k${i}`).isHit, `hot key k${i} was evicted`);
  assert.equal(h.get("k20").status, Status.Miss);
  assert.ok(h.get("k499").isHit);
  const items = h.statNumber("curr_items"), evictions = h.statNumber("evictions");
  assert.ok(items > 50 && items < 120, `${items} items`);
  assert.equal(items + evictions, 500);
  const m = h.metric("lfu_evictions_total");
  assert.equal(m.kind, "counter");
  assert.equal(m.value, BigInt(evictions));
  assert.equal(h.metric("lfu_evicted_uses").value.count, BigInt(evictions));
  // -M: OutOfMemory instead
  const full = await start({ memoryBudget: 64 * 1024, noEvict: true });
  const codes = new Set();
  for (let i = 0; i < 500; i++) codes.add(full.set(`k${i}`, value).statusName);
  assert.deepEqual([...codes].sort(), ["OutOfMemory", "Stored"]);
});

test("a bad config is refused with the reason", async () => {
  await assert.rejects(start({ config: "aging=sometimes" }), (e) => {
    assert.ok(e instanceof InitRefused);
    assert.equal(e.code, 3);
    assert.match(e.reason, /unknown setting 'aging=sometimes'/);
    return true;
  });
  const plain = await start({ config: "aging=off" });
  assert.ok(plain.set("k", "v").status === Status.Stored);
});

test("dump, load and listing", async () => {
  const h = await start();
  for (let i = 0; i < 20; i++) h.set(`key${i}`, `value ${i}`, i);
  for (let j = 0; j < 3; j++) h.get("key7");
  assert.equal(h.list(100).length, 20);
  const items = h.dump(60); // one item a chunk
  assert.equal(items.length, 20);
  const other = await start();
  assert.equal(other.load(items), LoadResult.Ok);
  const r = other.get("key7");
  assert.equal(r.text, "value 7");
  assert.equal(r.flags, 7);
  assert.equal(r.cas, h.get("key7").cas);
  const most = items[items.length - 1];
  assert.equal(new TextDecoder().decode(most.key), "key7", "the most used key comes last");
  assert.ok(other.set("fresh", "v").cas > items.reduce((a, i) => (i.cas > a ? i.cas : a), 0n));
  assert.equal(other.statNumber("lfu_loaded_items"), 20);
});

test("watch reports lookups", async () => {
  const h = await start();
  h.set("k", "value", 3);
  assert.equal(h.events.length, 0, "nobody asked");
  h.batch([
    { op: Op.Get, key: "nope", mflags: MFlag.LogLookup },
    { op: Op.Get, key: "k", mflags: MFlag.LogLookup },
  ]);
  assert.equal(h.events.length, 2);
  assert.deepEqual(
    h.events.map((e) => [e.kind, e.flags, e.request, e.valueLen, e.clientFlags]),
    [[1, 0, 0, 0, 0], [1, 1, 1, 5, 3]],
  );
});

if (process.env.BREAK_EXPECTATION) {
  // For tests/sdk_harness.rs: a wrong expectation must fail the run.
  test("a wrong expectation", async () => {
    const h = await start();
    h.set("k", "right");
    assert.equal(h.get("k").text, "wrong");
  });
}
