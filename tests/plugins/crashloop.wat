;; A storage plugin for the crash-loop back-off tests (tests/plugin_faults.rs).
;;
;; A minimal ABI v1 plugin like faulty.wat (stores are answered STORED, reads
;; miss, flush/memlimit OK, everything else NOT_FOUND) that misbehaves when the
;; first request of a batch has a key starting with one of these words:
;;   boom  executes `unreachable`
;;   cnt!  answers one response more than it got requests (malformed batch)
;;   bsts  answers every request with the unknown status 0xee
;; and, by the first byte of its config (`-o plugin_config=...`):
;;   a     shard 0 traps on EVERY batch (the other shards behave)
;;   i     `wmc_init` traps once server time is 68 or later (6 s after start):
;;         the shards start, but every re-instantiation after a fault fails
(module
  (import "wasmcached" "now" (func $now (result i32)))
  (memory (export "memory") 2)
  ;; Requests (and the init record) are written at 1024, responses built at 65536.
  (global $in i32 (i32.const 1024))
  (global $out i32 (i32.const 65536))
  (global $mode (mut i32) (i32.const 0))
  (global $shard (mut i32) (i32.const 0))

  (func (export "wmc_abi_version") (result i32) (i32.const 1))

  (func (export "wmc_input") (param $size i32) (result i32)
    (if (i32.gt_u (local.get $size) (i32.const 64000)) (then (return (i32.const 0))))
    (global.get $in))

  ;; Init record: shard_id at +4, config length at +36, config at +40.
  (func (export "wmc_init") (param $len i32) (result i32)
    (global.set $shard (i32.load offset=4 (global.get $in)))
    (if (i32.gt_u (i32.load offset=36 (global.get $in)) (i32.const 0))
      (then (global.set $mode (i32.load8_u offset=40 (global.get $in)))))
    (if (i32.and (i32.eq (global.get $mode) (i32.const 0x69))            ;; 'i'
                 (i32.ge_u (call $now) (i32.const 68)))
      (then unreachable))
    (i32.const 0))

  (func $status_for (param $op i32) (result i32)
    ;; Get(1)/Gat(12) -> Miss(7); Set..Cas(2..7) -> Stored(0); FlushAll(13)/MemLimit(14) -> Ok(12)
    (if (i32.or (i32.eq (local.get $op) (i32.const 1)) (i32.eq (local.get $op) (i32.const 12)))
      (then (return (i32.const 7))))
    (if (i32.and (i32.ge_u (local.get $op) (i32.const 2)) (i32.le_u (local.get $op) (i32.const 7)))
      (then (return (i32.const 0))))
    (if (i32.ge_u (local.get $op) (i32.const 13)) (then (return (i32.const 12))))
    (i32.const 3))

  (func (export "wmc_batch") (param $len i32) (result i64)
    (local $n i32) (local $i i32) (local $p i32) (local $o i32)
    (local $klen i32) (local $vlen i32) (local $word i32)
    (local $extra i32) (local $status i32)
    (local.set $status (i32.const -1))
    (if (i32.and (i32.eq (global.get $mode) (i32.const 0x61))             ;; 'a'
                 (i32.eqz (global.get $shard)))
      (then unreachable))
    (local.set $n (i32.load (global.get $in)))
    (local.set $p (i32.add (global.get $in) (i32.const 4)))
    ;; Misbehave according to the first key.
    (if (i32.gt_u (local.get $n) (i32.const 0))
      (then
        (if (i32.ge_u (i32.load16_u offset=2 (local.get $p)) (i32.const 4))
          (then
            (local.set $word (i32.load offset=40 (local.get $p)))
            (if (i32.eq (local.get $word) (i32.const 0x6d6f6f62)) (then unreachable))  ;; "boom"
            (if (i32.eq (local.get $word) (i32.const 0x21746e63))                    ;; "cnt!"
              (then (local.set $extra (i32.const 1))))
            (if (i32.eq (local.get $word) (i32.const 0x73747362))                    ;; "bsts"
              (then (local.set $status (i32.const 0xee))))))))
    (local.set $o (global.get $out))
    (i32.store (local.get $o) (i32.add (local.get $n) (local.get $extra)))
    (local.set $o (i32.add (local.get $o) (i32.const 4)))
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $klen (i32.load16_u offset=2 (local.get $p)))
        (local.set $vlen (i32.load offset=4 (local.get $p)))
        (memory.fill (local.get $o) (i32.const 0) (i32.const 32))
        (if (i32.ge_s (local.get $status) (i32.const 0))
          (then (i32.store8 (local.get $o) (local.get $status)))
          (else (i32.store8 (local.get $o) (call $status_for (i32.load8_u (local.get $p))))))
        (local.set $o (i32.add (local.get $o) (i32.const 32)))
        (local.set $p (i32.add (local.get $p)
          (i32.add (i32.const 40) (i32.add (local.get $klen) (local.get $vlen)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $each)))
    (i64.or
      (i64.shl (i64.extend_i32_u (global.get $out)) (i64.const 32))
      (i64.extend_i32_u (i32.sub (local.get $o) (global.get $out)))))
)
