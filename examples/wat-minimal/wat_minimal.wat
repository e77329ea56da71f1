;; wat-minimal: the smallest correct wasmcached storage plugin, by hand.
;;
;; Read this file top to bottom as a walkthrough of the plugin ABI
;; (docs/plugin-abi.md, version 1). The store is a DIRECT-MAPPED CACHE:
;; 1024 fixed-size slots, a key lives in slot hash(key) % 1024, and storing
;; a key whose slot holds another key simply evicts that one (a cache may
;; forget anything at any time). Values are limited to 1024 bytes.
;;
;; Supported: get, gets, set, delete, flush_all (without delay), expiry.
;; Everything else -- add, replace, append, prepend, cas, incr, decr, touch,
;; gat, a delayed flush_all, a set/delete with a CAS compare -- is answered
;; with status Error, which a client sees as
;; `SERVER_ERROR not supported by wat-minimal`.
;;
;; Memory map:
;;   0x000000  messages (data segments below)
;;   0x010000  the table: 1024 slots of 1312 bytes (to 0x158000)
;;   0x160000  input buffer: the host writes init records and request batches
;;             here (wmc_input returns this address, growing the memory
;;             with memory.grow when a batch is bigger than what is there)
;;   after the input, at the next 64 KiB boundary: the output buffer, where
;;             wmc_batch builds the response batch, growing the memory as it
;;             goes (one response is at most 32 + 250 + 1024 bytes).
;; The host caps how far memory may grow (see docs/plugin-abi.md, "Limits");
;; memory.grow then returns -1 and we answer as the ABI asks (below).
;;
;; A slot:
;;   +0  u32 used (0 = empty)      +16 u32 exptime (server time, 0 = never)
;;   +4  u32 key_len               +20 u32 last access (server time)
;;   +8  u32 value_len             +24 u64 cas
;;   +12 u32 client flags          +32 key (up to 256 bytes), +288 value (1024)
(module
  ;; ---- Imports: the host's services live in module "wasmcached". We only
  ;; need the clock, to expire items. (Also available: log, timer_set.)
  (import "wasmcached" "now" (func $now (result i32)))

  ;; ---- Export 1: the linear memory every pointer refers to.
  ;; 23 pages of 64 KiB: messages, table, and the first 64 KiB of input.
  (memory (export "memory") 23)

  (global $TABLE i32 (i32.const 0x10000))
  (global $INPUT i32 (i32.const 0x160000))
  (global $SLOT i32 (i32.const 1312))
  (global $MAX_VALUE i32 (i32.const 1024))

  ;; CAS values: a counter; 0 when the server runs with -C (no CAS).
  (global $cas_seq (mut i64) (i64.const 0))
  (global $cas_on (mut i32) (i32.const 1))

  (data (i32.const 0) "not supported by wat-minimal")      ;; 28 bytes
  (data (i32.const 64) "bad request batch")                 ;; 17 bytes

  ;; ---- Export 2: wmc_abi_version. We speak version 1: the host never
  ;; sends us the meta-protocol bits of version 2.
  (func (export "wmc_abi_version") (result i32) (i32.const 1))

  ;; ---- Export 3: wmc_input(size) -> pointer. The host asks for a buffer
  ;; before every wmc_init/wmc_batch and writes `size` bytes there. 0 means
  ;; "cannot": the host then answers that batch's commands SERVER_ERROR.
  (func (export "wmc_input") (param $size i32) (result i32)
    (if (i32.eqz (call $ensure (i32.add (global.get $INPUT) (local.get $size))))
      (then (return (i32.const 0))))
    (global.get $INPUT))

  ;; Grows the memory so that addresses below $end exist; 0 if the host's
  ;; cap (or 4 GiB) does not allow it.
  (func $ensure (param $end i32) (result i32)
    (local $have i32) (local $need i32)
    ;; an $end that wrapped around 4 GiB cannot be satisfied
    (if (i32.lt_u (local.get $end) (global.get $INPUT)) (then (return (i32.const 0))))
    (local.set $have (memory.size))
    (local.set $need (i32.shr_u (i32.add (local.get $end) (i32.const 0xffff)) (i32.const 16)))
    (if (i32.le_u (local.get $need) (local.get $have)) (then (return (i32.const 1))))
    (i32.ne (memory.grow (i32.sub (local.get $need) (local.get $have))) (i32.const -1)))

  ;; ---- Export 4: wmc_init(len) -> 0 to accept. The init record is in the
  ;; input buffer: +0 abi_version, +4 shard_id, +8 shard_count, +12 flags
  ;; (bit 0: CAS on), +16 memory budget (u64), +24 max item size, +28 now,
  ;; +36 config_len, +40 config. We check the version and read the CAS bit.
  (func (export "wmc_init") (param $len i32) (result i32)
    (if (i32.lt_u (local.get $len) (i32.const 40)) (then (return (i32.const 1))))
    (if (i32.ne (i32.load (global.get $INPUT)) (i32.const 1))
      (then (return (i32.const 2))))
    (global.set $cas_on
      (i32.and (i32.load offset=12 (global.get $INPUT)) (i32.const 1)))
    ;; A restarted shard must not hand out CAS values its predecessor gave:
    ;; start the counter at now << 20.
    (global.set $cas_seq
      (i64.shl (i64.extend_i32_u (i32.load offset=28 (global.get $INPUT))) (i64.const 20)))
    (i32.const 0))

  ;; ---- Helpers.

  ;; FNV-1a over the key, with a final mix so similar keys spread out.
  (func $hash (param $p i32) (param $n i32) (result i32)
    (local $h i32) (local $end i32)
    (local.set $h (i32.const 0x811c9dc5))
    (local.set $end (i32.add (local.get $p) (local.get $n)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $h (i32.mul (i32.xor (local.get $h) (i32.load8_u (local.get $p)))
                               (i32.const 0x01000193)))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $next)))
    (local.set $h (i32.xor (local.get $h) (i32.shr_u (local.get $h) (i32.const 16))))
    (local.set $h (i32.mul (local.get $h) (i32.const 0x7feb352d)))
    (i32.xor (local.get $h) (i32.shr_u (local.get $h) (i32.const 15))))

  ;; The slot address for a key.
  (func $slot (param $key i32) (param $klen i32) (result i32)
    (i32.add (global.get $TABLE)
      (i32.mul (i32.and (call $hash (local.get $key) (local.get $klen)) (i32.const 1023))
               (global.get $SLOT))))

  ;; Byte-wise key comparison: 1 if equal.
  (func $eq (param $a i32) (param $b i32) (param $n i32) (result i32)
    (block $differ
      (loop $next
        (if (i32.eqz (local.get $n)) (then (return (i32.const 1))))
        (br_if $differ (i32.ne (i32.load8_u (local.get $a)) (i32.load8_u (local.get $b))))
        (local.set $a (i32.add (local.get $a) (i32.const 1)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (i32.const 0))

  ;; The slot holding this key as a live item, or 0. An expired item found
  ;; on the way is dropped: "exptime <= now" means expired (the host already
  ;; turned relative/negative client exptimes into server time).
  (func $find (param $key i32) (param $klen i32) (result i32)
    (local $s i32) (local $exp i32)
    (local.set $s (call $slot (local.get $key) (local.get $klen)))
    (if (i32.eqz (i32.load (local.get $s))) (then (return (i32.const 0))))
    (if (i32.ne (i32.load offset=4 (local.get $s)) (local.get $klen))
      (then (return (i32.const 0))))
    (if (i32.eqz (call $eq (i32.add (local.get $s) (i32.const 32)) (local.get $key) (local.get $klen)))
      (then (return (i32.const 0))))
    (local.set $exp (i32.load offset=16 (local.get $s)))
    (if (i32.and (i32.ne (local.get $exp) (i32.const 0))
                 (i32.le_u (local.get $exp) (call $now)))
      (then
        (i32.store (local.get $s) (i32.const 0))
        (return (i32.const 0))))
    (local.get $s))

  ;; Writes a 32-byte response header at $o and returns the address after
  ;; it. Layout: +0 status, +1 iflags, +2 key_len (u16), +4 value_len,
  ;; +8 client flags, +12 exptime, +16 cas (u64), +24 last_access,
  ;; +28 reserved (0 in v1). Packed, little-endian -- which is what wasm's
  ;; loads and stores are, and they need no alignment.
  (func $header (param $o i32) (param $status i32) (param $klen i32) (param $vlen i32)
                (result i32)
    (memory.fill (local.get $o) (i32.const 0) (i32.const 32))
    (i32.store8 (local.get $o) (local.get $status))
    (i32.store16 offset=2 (local.get $o) (local.get $klen))
    (i32.store offset=4 (local.get $o) (local.get $vlen))
    (i32.add (local.get $o) (i32.const 32)))

  ;; A bare status answer (Stored, Deleted, NotFound, Miss, Ok ...).
  (func $status (param $o i32) (param $status i32) (result i32)
    (call $header (local.get $o) (local.get $status) (i32.const 0) (i32.const 0)))

  ;; An Error answer (status 13) whose value is a message for SERVER_ERROR.
  (func $error (param $o i32) (param $msg i32) (param $len i32) (result i32)
    (local.set $o (call $header (local.get $o) (i32.const 13) (i32.const 0) (local.get $len)))
    (memory.copy (local.get $o) (local.get $msg) (local.get $len))
    (i32.add (local.get $o) (local.get $len)))

  (func $unsupported (param $o i32) (result i32)
    (call $error (local.get $o) (i32.const 0) (i32.const 28)))

  ;; ---- The operations. Each gets the request record's address $r and
  ;; the output position $o, writes ONE response and returns the new $o.
  ;; Request record: +0 op, +2 key_len (u16), +4 value_len, +8 client flags,
  ;; +12 exptime, +16 cas (u64), +24 delta (u64), +32 mflags, +36 aux,
  ;; +40 key, then value.

  ;; Get (op 1) -> Hit (status 6) with key, value, flags, exptime, cas,
  ;; last_access, iflags bit 0 if fetched before; or Miss (7).
  ;; mflags bit 0 NO_VALUE: omit the value; bit 1 NO_BUMP: leave access time.
  (func $get (param $r i32) (param $o i32) (result i32)
    (local $s i32) (local $klen i32) (local $vlen i32) (local $mflags i32)
    (local.set $klen (i32.load16_u offset=2 (local.get $r)))
    (local.set $mflags (i32.load offset=32 (local.get $r)))
    (local.set $s (call $find (i32.add (local.get $r) (i32.const 40)) (local.get $klen)))
    (if (i32.eqz (local.get $s)) (then (return (call $status (local.get $o) (i32.const 7)))))
    (local.set $vlen (i32.load offset=8 (local.get $s)))
    (if (i32.and (local.get $mflags) (i32.const 1)) (then (local.set $vlen (i32.const 0))))
    (drop (call $header (local.get $o) (i32.const 6) (local.get $klen) (local.get $vlen)))
    (i32.store offset=8 (local.get $o) (i32.load offset=12 (local.get $s)))   ;; flags
    (i32.store offset=12 (local.get $o) (i32.load offset=16 (local.get $s)))  ;; exptime
    (i64.store offset=16 (local.get $o) (i64.load offset=24 (local.get $s)))  ;; cas
    (i32.store offset=24 (local.get $o) (i32.load offset=20 (local.get $s)))  ;; last access
    ;; Slot "used" is 1 after a store, 2 once fetched: iflag FETCHED.
    (i32.store8 offset=1 (local.get $o) (i32.eq (i32.load (local.get $s)) (i32.const 2)))
    (if (i32.eqz (i32.and (local.get $mflags) (i32.const 2)))
      (then
        (i32.store (local.get $s) (i32.const 2))
        (i32.store offset=20 (local.get $s) (call $now))))
    (memory.copy (i32.add (local.get $o) (i32.const 32))
                 (i32.add (local.get $s) (i32.const 32)) (local.get $klen))
    (memory.copy (i32.add (local.get $o) (i32.add (i32.const 32) (local.get $klen)))
                 (i32.add (local.get $s) (i32.const 288)) (local.get $vlen))
    (i32.add (local.get $o) (i32.add (i32.const 32) (i32.add (local.get $klen) (local.get $vlen)))))

  ;; Set (op 2) -> Stored (0) with the new cas and exptime, or TooLarge (10).
  ;; A set carrying a CAS compare value means "cas": not supported here.
  (func $set (param $r i32) (param $o i32) (result i32)
    (local $s i32) (local $klen i32) (local $vlen i32) (local $cas i64)
    (if (i64.ne (i64.load offset=16 (local.get $r)) (i64.const 0))
      (then (return (call $unsupported (local.get $o)))))
    (local.set $klen (i32.load16_u offset=2 (local.get $r)))
    (local.set $vlen (i32.load offset=4 (local.get $r)))
    (local.set $s (call $slot (i32.add (local.get $r) (i32.const 40)) (local.get $klen)))
    (if (i32.gt_u (local.get $vlen) (global.get $MAX_VALUE))
      (then
        ;; memcached drops the old value when a set fails
        (if (call $find (i32.add (local.get $r) (i32.const 40)) (local.get $klen))
          (then (i32.store (local.get $s) (i32.const 0))))
        (return (call $status (local.get $o) (i32.const 10)))))
    (if (global.get $cas_on)
      (then
        (global.set $cas_seq (i64.add (global.get $cas_seq) (i64.const 1)))
        (local.set $cas (global.get $cas_seq))))
    (i32.store (local.get $s) (i32.const 1))
    (i32.store offset=4 (local.get $s) (local.get $klen))
    (i32.store offset=8 (local.get $s) (local.get $vlen))
    (i32.store offset=12 (local.get $s) (i32.load offset=8 (local.get $r)))
    (i32.store offset=16 (local.get $s) (i32.load offset=12 (local.get $r)))
    (i32.store offset=20 (local.get $s) (call $now))
    (i64.store offset=24 (local.get $s) (local.get $cas))
    (memory.copy (i32.add (local.get $s) (i32.const 32))
                 (i32.add (local.get $r) (i32.const 40)) (local.get $klen))
    (memory.copy (i32.add (local.get $s) (i32.const 288))
                 (i32.add (local.get $r) (i32.add (i32.const 40) (local.get $klen)))
                 (local.get $vlen))
    (drop (call $status (local.get $o) (i32.const 0)))
    (i32.store offset=12 (local.get $o) (i32.load offset=12 (local.get $r)))
    (i64.store offset=16 (local.get $o) (local.get $cas))
    (i32.add (local.get $o) (i32.const 32)))

  ;; Delete (op 8) -> Deleted (4) or NotFound (3). With a CAS compare
  ;; value: not supported.
  (func $delete (param $r i32) (param $o i32) (result i32)
    (local $s i32)
    (if (i64.ne (i64.load offset=16 (local.get $r)) (i64.const 0))
      (then (return (call $unsupported (local.get $o)))))
    (local.set $s (call $find (i32.add (local.get $r) (i32.const 40))
                              (i32.load16_u offset=2 (local.get $r))))
    (if (i32.eqz (local.get $s)) (then (return (call $status (local.get $o) (i32.const 3)))))
    (i32.store (local.get $s) (i32.const 0))
    (call $status (local.get $o) (i32.const 4)))

  ;; FlushAll (op 13) -> Ok (12). exptime 0 = now: empty every slot. A
  ;; delayed flush (exptime = a future server time) is not supported.
  (func $flush (param $r i32) (param $o i32) (result i32)
    (if (i32.ne (i32.load offset=12 (local.get $r)) (i32.const 0))
      (then (return (call $unsupported (local.get $o)))))
    (memory.fill (global.get $TABLE) (i32.const 0)
                 (i32.mul (i32.const 1024) (global.get $SLOT)))
    (call $status (local.get $o) (i32.const 12)))

  ;; ---- Export 5: wmc_batch(len) -> (ptr << 32) | len. The input holds
  ;; `u32 count` and `count` request records back to back; we answer with
  ;; `u32 count` and exactly one response per request, in order.
  (func (export "wmc_batch") (param $len i32) (result i64)
    (local $n i32) (local $i i32) (local $r i32) (local $end i32) (local $o i32)
    (local $op i32) (local $size i32) (local $out i32)
    (local.set $n (i32.load (global.get $INPUT)))
    (local.set $r (i32.add (global.get $INPUT) (i32.const 4)))
    (local.set $end (i32.add (global.get $INPUT) (local.get $len)))
    ;; The output starts at the first 64 KiB boundary after the input.
    (local.set $out (i32.and (i32.add (local.get $end) (i32.const 0xffff))
                             (i32.const 0xffff0000)))
    (local.set $o (i32.add (local.get $out) (i32.const 4)))
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        ;; Room for the largest answer (32 + 250 + 1024 bytes). Without it
        ;; we stop: fewer answers than requests tell the host the batch
        ;; failed (it answers SERVER_ERROR and restarts this shard).
        (br_if $done (i32.eqz (call $ensure (i32.add (local.get $o) (i32.const 1306)))))
        ;; The record must lie inside the batch (the host never sends a
        ;; bad one, but a plugin must not read past what it was given).
        (local.set $size (i32.add (i32.const 40)
          (i32.add (i32.load16_u offset=2 (local.get $r)) (i32.load offset=4 (local.get $r)))))
        (if (i32.or (i32.gt_u (i32.add (local.get $r) (i32.const 40)) (local.get $end))
                    (i32.gt_u (i32.add (local.get $r) (local.get $size)) (local.get $end)))
          (then
            ;; Answer this one with an error and stop: the count then tells
            ;; the host the batch was malformed (a fault it reports).
            (local.set $o (call $error (local.get $o) (i32.const 64) (i32.const 17)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $done)))
        (local.set $op (i32.load8_u (local.get $r)))
        ;; Dispatch on the op byte; each branch yields the new output position.
        (local.set $o
          (if (result i32) (i32.eq (local.get $op) (i32.const 1))
            (then (call $get (local.get $r) (local.get $o)))
          (else (if (result i32) (i32.eq (local.get $op) (i32.const 2))
            (then (call $set (local.get $r) (local.get $o)))
          (else (if (result i32) (i32.eq (local.get $op) (i32.const 8))
            (then (call $delete (local.get $r) (local.get $o)))
          (else (if (result i32) (i32.eq (local.get $op) (i32.const 13))
            (then (call $flush (local.get $r) (local.get $o)))
          ;; MemLimit (14): our table has a fixed size; acknowledge it.
          (else (if (result i32) (i32.eq (local.get $op) (i32.const 14))
            (then (call $status (local.get $o) (i32.const 12)))
          ;; Any other op, known or not: Error.
          (else (call $unsupported (local.get $o)))))))))))))
        (local.set $r (i32.add (local.get $r) (local.get $size)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $each)))
    ;; The count of answers actually written goes first.
    (i32.store (local.get $out) (local.get $i))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
            (i64.extend_i32_u (i32.sub (local.get $o) (local.get $out)))))

  ;; wmc_tick, wmc_timer and wmc_stats are optional exports; a store this
  ;; small has nothing to do in the background and no stats of its own.
)
