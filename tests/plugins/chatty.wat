;; A forgetful ABI v2 storage plugin that talks: every batch it runs logs
;; "chatty: batch" through the host's `log` import at level 2 (info, shown
;; from -vv on). It keeps nothing (every store is answered STORED, every
;; read misses, flush/memlimit OK, anything else NOT_FOUND).
;;
;; Used by: tests/plugins.rs (`verbosity N` decides at run time whether a
;; plugin's log lines are written).
(module
  (import "wasmcached" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 2)
  (data (i32.const 256) "chatty: batch")
  ;; Requests are written at 1024, responses built at 65536.
  (global $in i32 (i32.const 1024))
  (global $out i32 (i32.const 65536))

  (func (export "wmc_abi_version") (result i32) (i32.const 2))

  (func (export "wmc_input") (param $size i32) (result i32)
    (if (i32.gt_u (local.get $size) (i32.const 64000)) (then (return (i32.const 0))))
    (global.get $in))

  (func (export "wmc_init") (param $len i32) (result i32)
    ;; Accept only ABI v2 (bytes 0..4 of the init record).
    (i32.ne (i32.load (global.get $in)) (i32.const 2)))

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
    ;; level 2 = info
    (call $log (i32.const 2) (i32.const 256) (i32.const 13))
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
