;; A plugin that proves the host's clock and timers reach guests.
;; At init it asks for a timer (token 7, 100 ms); each time the timer fires it
;; counts and re-arms it. `wmc_tick` counts the 1-second clock ticks and keeps
;; the last `now` it was given. `stats` shows the three numbers:
;;   timer_fired N / ticks N / last_tick_now N
;; Every batch request is answered NOT_FOUND; this plugin stores nothing.
(module
  (import "wasmcached" "timer_set" (func $timer_set (param i64 i32)))
  (import "wasmcached" "now" (func $now (result i32)))
  (memory (export "memory") 2)
  (global $fired (mut i32) (i32.const 0))
  (global $ticks (mut i32) (i32.const 0))
  (global $last (mut i32) (i32.const 0))
  (data (i32.const 100) "timer_fired ")
  (data (i32.const 120) "ticks ")
  (data (i32.const 140) "last_tick_now ")

  (func (export "wmc_abi_version") (result i32) (i32.const 1))
  (func (export "wmc_input") (param $size i32) (result i32)
    (if (i32.gt_u (local.get $size) (i32.const 60000)) (then (return (i32.const 0))))
    (i32.const 4096))
  (func (export "wmc_init") (param $len i32) (result i32)
    (call $timer_set (i64.const 7) (i32.const 100))
    (i32.const 0))
  (func (export "wmc_timer") (param $token i64)
    (if (i64.eq (local.get $token) (i64.const 7))
      (then
        (global.set $fired (i32.add (global.get $fired) (i32.const 1)))
        (call $timer_set (i64.const 7) (i32.const 100)))))
  (func (export "wmc_tick") (param $now i32)
    (global.set $ticks (i32.add (global.get $ticks) (i32.const 1)))
    (global.set $last (call $now)))

  ;; Writes the decimal digits of $v at $p; returns the new end.
  (func $itoa (param $p i32) (param $v i32) (result i32)
    (local $len i32) (local $t i32) (local $i i32)
    (local.set $t (local.get $v))
    (loop $count
      (local.set $len (i32.add (local.get $len) (i32.const 1)))
      (local.set $t (i32.div_u (local.get $t) (i32.const 10)))
      (br_if $count (i32.ne (local.get $t) (i32.const 0))))
    (local.set $i (local.get $len))
    (loop $digit
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (i32.store8 (i32.add (local.get $p) (local.get $i))
        (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10))))
      (local.set $v (i32.div_u (local.get $v) (i32.const 10)))
      (br_if $digit (i32.ne (local.get $i) (i32.const 0))))
    (i32.add (local.get $p) (local.get $len)))

  (func $line (param $p i32) (param $name i32) (param $nlen i32) (param $v i32) (result i32)
    (memory.copy (local.get $p) (local.get $name) (local.get $nlen))
    (local.set $p (call $itoa (i32.add (local.get $p) (local.get $nlen)) (local.get $v)))
    (i32.store8 (local.get $p) (i32.const 10))
    (i32.add (local.get $p) (i32.const 1)))

  (func (export "wmc_stats") (param $group i32) (result i64)
    (local $p i32)
    (local.set $p (i32.const 1024))
    (if (i32.eqz (local.get $group))
      (then
        (local.set $p (call $line (local.get $p) (i32.const 100) (i32.const 12) (global.get $fired)))
        (local.set $p (call $line (local.get $p) (i32.const 120) (i32.const 6) (global.get $ticks)))
        (local.set $p (call $line (local.get $p) (i32.const 140) (i32.const 14) (global.get $last)))))
    (i64.or (i64.shl (i64.const 1024) (i64.const 32))
      (i64.extend_i32_u (i32.sub (local.get $p) (i32.const 1024)))))

  (func (export "wmc_batch") (param $len i32) (result i64)
    (local $n i32) (local $i i32) (local $o i32)
    (local.set $n (i32.load (i32.const 4096)))
    (i32.store (i32.const 65536) (local.get $n))
    (local.set $o (i32.const 65540))
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (memory.fill (local.get $o) (i32.const 0) (i32.const 32))
        (i32.store8 (local.get $o) (i32.const 3))
        (local.set $o (i32.add (local.get $o) (i32.const 32)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $each)))
    (i64.or (i64.shl (i64.const 65536) (i64.const 32))
      (i64.extend_i32_u (i32.sub (local.get $o) (i32.const 65536)))))
)
