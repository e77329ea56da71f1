;; A forgetful ABI v2 storage plugin (it keeps nothing: stores are
;; answered STORED, reads miss, flush/memlimit OK, anything else NOT_FOUND)
;; whose general stats are typed (`#counter`, `#gauge`, `#max`, `#text`
;; declaration lines, docs/plugin-abi.md "Stats") and differ per shard:
;; shard k (k = 0..3, the shard id modulo 4) reports v = k + 1 as
;;
;;   work_time v          counter: summed although it ends in _time
;;   bytes 100v           gauge: memcached's `bytes`, summed
;;   queue_age v          gauge: summed although it ends in age
;;   peak_items 10v       max: the largest shard's, not the sum
;;   role primary|replica text: per shard only (primary on shard 0)
;;   hash_power_level k+10  max, as the untyped rule would do too
;;   legacy_time k+5      untyped: the old rule, maximum
;;   legacy_count v       untyped: summed
;;   curr_items v         untyped memcached name, summed into `stats`
;;   spoof_time v         after `#bogus`, which declares nothing: untyped
;;
;; and ends with a `#counter` that no stat follows (ignored).
;;
;; Used by: tests/plugin_stats.rs.
(module
  (memory (export "memory") 2)
  ;; Requests are written at 1024, responses built at 65536.
  (global $in i32 (i32.const 1024))
  (global $out i32 (i32.const 65536))
  (global $shard (mut i32) (i32.const 0))
  ;; Each shard's stat text at 4096 + 512 * (shard % 4), its length at
  ;; 3968 + 4 * (shard % 4).
  (data (i32.const 4096) "#counter\nwork_time 1\n#gauge\nbytes 100\n#gauge\nqueue_age 1\n#max\npeak_items 10\n#text\nrole primary\n#max\nhash_power_level 10\nlegacy_time 5\nlegacy_count 1\ncurr_items 1\n#bogus\nspoof_time 1\n#counter\n")
  (data (i32.const 4608) "#counter\nwork_time 2\n#gauge\nbytes 200\n#gauge\nqueue_age 2\n#max\npeak_items 20\n#text\nrole replica\n#max\nhash_power_level 11\nlegacy_time 6\nlegacy_count 2\ncurr_items 2\n#bogus\nspoof_time 2\n#counter\n")
  (data (i32.const 5120) "#counter\nwork_time 3\n#gauge\nbytes 300\n#gauge\nqueue_age 3\n#max\npeak_items 30\n#text\nrole replica\n#max\nhash_power_level 12\nlegacy_time 7\nlegacy_count 3\ncurr_items 3\n#bogus\nspoof_time 3\n#counter\n")
  (data (i32.const 5632) "#counter\nwork_time 4\n#gauge\nbytes 400\n#gauge\nqueue_age 4\n#max\npeak_items 40\n#text\nrole replica\n#max\nhash_power_level 13\nlegacy_time 8\nlegacy_count 4\ncurr_items 4\n#bogus\nspoof_time 4\n#counter\n")
  (data (i32.const 3968) "\bf\00\00\00\bf\00\00\00\bf\00\00\00\bf\00\00\00")

  (func (export "wmc_abi_version") (result i32) (i32.const 2))

  (func (export "wmc_input") (param $size i32) (result i32)
    (if (i32.gt_u (local.get $size) (i32.const 64000)) (then (return (i32.const 0))))
    (global.get $in))

  (func (export "wmc_init") (param $len i32) (result i32)
    ;; shard_id: bytes 4..8 of the init record.
    (global.set $shard (i32.rem_u (i32.load offset=4 (global.get $in)) (i32.const 4)))
    (i32.const 0))

  (func (export "wmc_stats") (param $group i32) (result i64)
    (if (i32.ne (local.get $group) (i32.const 0)) (then (return (i64.const 0))))
    (i64.or
      (i64.shl
        (i64.extend_i32_u
          (i32.add (i32.const 4096) (i32.mul (global.get $shard) (i32.const 512))))
        (i64.const 32))
      (i64.extend_i32_u
        (i32.load (i32.add (i32.const 3968) (i32.mul (global.get $shard) (i32.const 4)))))))

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
    (local $klen i32) (local $vlen i32)
    (local.set $n (i32.load (global.get $in)))
    (local.set $p (i32.add (global.get $in) (i32.const 4)))
    (local.set $o (global.get $out))
    (i32.store (local.get $o) (local.get $n))
    (local.set $o (i32.add (local.get $o) (i32.const 4)))
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $klen (i32.load16_u offset=2 (local.get $p)))
        (local.set $vlen (i32.load offset=4 (local.get $p)))
        (memory.fill (local.get $o) (i32.const 0) (i32.const 32))
        (i32.store8 (local.get $o) (call $status_for (i32.load8_u (local.get $p))))
        (local.set $o (i32.add (local.get $o) (i32.const 32)))
        (local.set $p (i32.add (local.get $p)
          (i32.add (i32.const 40) (i32.add (local.get $klen) (local.get $vlen)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $each)))
    (i64.or
      (i64.shl (i64.extend_i32_u (global.get $out)) (i64.const 32))
      (i64.extend_i32_u (i32.sub (local.get $o) (global.get $out)))))
)
