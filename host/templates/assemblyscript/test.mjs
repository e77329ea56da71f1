// {{name}}'s tests: the compiled plugin ({{name}}.wasm, built by ./build.sh),
// driven in Node.js through the SDK's harness (harness.mjs) as the server
// drives it, without a server. Each test starts a fresh instance.
//
//   npm test                     # ./build.sh, then node --test test.mjs
//
// $PLUGIN_WASM is the plugin to test (default: {{name}}.wasm next to this
// file). harness.mjs lists every call (any request, the clock, logs,
// timers, stats, dump, load, metrics).

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { Harness, IFlag, Op, START, Status } from "./harness.mjs";

const wasm = process.env.PLUGIN_WASM || fileURLToPath(new URL("./{{name}}.wasm", import.meta.url));
if (!existsSync(wasm)) throw new Error(`${wasm} is not built: run ./build.sh (npm test does)`);
const module = await WebAssembly.compile(readFileSync(wasm));
/** A fresh instance; `config` overrides the harness's defaultConfig(). */
const start = (config) => Harness.start(module, config);

test("set and get keep the value and the flags", async () => {
  const h = await start(); // the default config; the clock at START
  const s = h.set("user:1", "hello", 42);
  assert.equal(s.statusName, "Stored");
  assert.ok(s.cas > 0n);
  const g = h.get("user:1");
  assert.equal(g.statusName, "Hit");
  assert.equal(g.text, "hello");
  assert.equal(g.flags, 42);
  assert.equal(g.cas, s.cas);
  assert.equal(g.iflags & IFlag.Fetched, 0);
  assert.equal(h.get("user:1").iflags & IFlag.Fetched, IFlag.Fetched, "the first get marked it fetched");
  // a set replaces the value, with a new CAS value
  const again = h.set("user:1", "world", 7);
  assert.equal(again.status, Status.Stored);
  assert.ok(again.cas > s.cas);
  const g2 = h.get("user:1");
  assert.equal(g2.text, "world");
  assert.equal(g2.flags, 7);
  assert.equal(h.statNumber("curr_items"), 1);
});

test("a key never set is a miss", async () => {
  const h = await start();
  assert.equal(h.get("nothing").status, Status.Miss);
  h.set("a", "1");
  // a multiget: one batch, the answers in order
  const r = h.getMany(["a", "b", "a"]);
  assert.deepEqual(r.map((x) => x.statusName), ["Hit", "Miss", "Hit"]);
});

test("delete removes the item", async () => {
  const h = await start();
  h.set("k", "v");
  assert.equal(h.delete("k").status, Status.Deleted);
  assert.equal(h.get("k").status, Status.Miss);
  assert.equal(h.delete("k").status, Status.NotFound);
  assert.equal(h.statNumber("curr_items"), 0);
  assert.equal(h.statNumber("bytes"), 0);
});

test("items expire on the server clock", async () => {
  const h = await start();
  assert.equal(h.now, START);
  assert.equal(h.set("k", "v", 0, START + 10).exptime, START + 10);
  assert.equal(h.advance(9), START + 9); // the clock, then one tick
  assert.ok(h.get("k").isHit);
  h.advance(1);
  assert.equal(h.get("k").status, Status.Miss);
  assert.equal(h.delete("k").status, Status.NotFound, "an expired item is not there to delete");
  h.set("gone", "x", 0, h.now);
  assert.equal(h.get("gone").status, Status.Miss, "an exptime at now is already past");
});

test("flush_all empties the store", async () => {
  const h = await start();
  h.set("a", "1");
  h.set("b", "2");
  assert.equal(h.flushAll().status, Status.Ok);
  assert.equal(h.get("a").status, Status.Miss);
  assert.equal(h.get("b").status, Status.Miss);
  assert.equal(h.statNumber("curr_items"), 0);
  assert.equal(h.flushAll(h.now + 60).status, Status.Error, "a delayed flush_all is not implemented");
});

// It never evicts: a full store answers out of memory. Each item costs
// 128 + 3 * key + value bytes of the budget (ITEM_OVERHEAD in assembly/index.ts).
test("a full store answers out of memory", async () => {
  const h = await start({ memoryBudget: 4096 });
  const value = "v".repeat(200);
  let stored = 0;
  for (let i = 0; i < 100; i++) {
    const r = h.set(`k${i}`, value, 0, START + 10);
    if (r.status === Status.OutOfMemory) break;
    assert.equal(r.statusName, "Stored");
    stored++;
  }
  assert.ok(stored > 0 && stored < 100, `${stored} stored`);
  assert.ok(h.statNumber("bytes") <= 4096);
  assert.ok(h.get("k0").isHit, "nothing was evicted");
  // once they expire, a set drops them to make room
  h.advance(10);
  assert.equal(h.set("later", value).status, Status.Stored);
  assert.equal(h.statNumber("curr_items"), 1);
  // cache_memlimit: a budget too small for anything, then a larger one
  assert.equal(h.memLimit(10).status, Status.Ok);
  assert.equal(h.set("small", "x").status, Status.OutOfMemory);
  assert.equal(h.memLimit(1 << 20).status, Status.Ok);
  assert.equal(h.set("small", "x").status, Status.Stored);
});

test("an item over the size limit is too large", async () => {
  const h = await start({ maxItemSize: 100 }); // -I: key and value together
  h.set("k", "small");
  assert.equal(h.set("k", "v".repeat(100)).status, Status.TooLarge);
  assert.equal(h.get("k").status, Status.Miss, "a set that fails still removes the old value");
});

test("what it does not implement is an error", async () => {
  const h = await start();
  h.set("k", "1");
  const add = h.store(Op.Add, "new", "v");
  assert.equal(add.status, Status.Error);
  assert.equal(add.text, "not supported by this store");
  assert.equal(h.cas("k", "2", 0, 0, 1).status, Status.Error);
  assert.equal(h.incr("k", 1).status, Status.Error);
  assert.equal(h.touch("k", 0).status, Status.Error);
  assert.equal(h.get("k").text, "1");
});
