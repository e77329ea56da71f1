;; lenient: examples/wat-minimal (a correct ABI v1 store for the basic
;; contract), with the walkthrough comments cut, made to deviate in ONE
;; place on purpose: a delete of a missing key answers Deleted where
;; memcached answers NOT_FOUND. It talks through the host's `log` import:
;; "lenient: batch of N" (info) for every batch, and a warning when it
;; deviates, so a kit that shows a failed check's log has lines to show.
;;
;; Used by: tests/plugin_check.rs (`plugin check --contract basic` fails
;; exactly the `delete` check; `--skip delete` turns exit 1 into exit 3; the
;; FAIL line is followed by the plugin's log, PASS lines are not without -v).
(module
  (import "wasmcached" "now" (func $now (result i32)))
  (import "wasmcached" "log" (func $log (param i32 i32 i32)))

  (memory (export "memory") 23)

  (global $TABLE i32 (i32.const 0x10000))
  (global $INPUT i32 (i32.const 0x160000))
  (global $SLOT i32 (i32.const 1312))
  (global $MAX_VALUE i32 (i32.const 1024))

  (global $cas_seq (mut i64) (i64.const 0))
  (global $cas_on (mut i32) (i32.const 1))

  (data (i32.const 0) "not supported by wat-minimal")      ;; 28 bytes
  (data (i32.const 64) "bad request batch")                 ;; 17 bytes
  (data (i32.const 128) "lenient: delete of a missing key, answering Deleted anyway") ;; 58
  ;; "lenient: batch of " (18 bytes) then up to 10 digits, built per batch.
  (data (i32.const 256) "lenient: batch of ")

  (func (export "wmc_abi_version") (result i32) (i32.const 1))

  (func (export "wmc_input") (param $size i32) (result i32)
    (if (i32.eqz (call $ensure (i32.add (global.get $INPUT) (local.get $size))))
      (then (return (i32.const 0))))
    (global.get $INPUT))

  (func $ensure (param $end i32) (result i32)
    (local $have i32) (local $need i32)
    (if (i32.lt_u (local.get $end) (global.get $INPUT)) (then (return (i32.const 0))))
    (local.set $have (memory.size))
    (local.set $need (i32.shr_u (i32.add (local.get $end) (i32.const 0xffff)) (i32.const 16)))
    (if (i32.le_u (local.get $need) (local.get $have)) (then (return (i32.const 1))))
    (i32.ne (memory.grow (i32.sub (local.get $need) (local.get $have))) (i32.const -1)))

  (func (export "wmc_init") (param $len i32) (result i32)
    (if (i32.lt_u (local.get $len) (i32.const 40)) (then (return (i32.const 1))))
    (if (i32.ne (i32.load (global.get $INPUT)) (i32.const 1))
      (then (return (i32.const 2))))
    (global.set $cas_on
      (i32.and (i32.load offset=12 (global.get $INPUT)) (i32.const 1)))
    (global.set $cas_seq
      (i64.shl (i64.extend_i32_u (i32.load offset=28 (global.get $INPUT))) (i64.const 20)))
    (i32.const 0))


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

  (func $slot (param $key i32) (param $klen i32) (result i32)
    (i32.add (global.get $TABLE)
      (i32.mul (i32.and (call $hash (local.get $key) (local.get $klen)) (i32.const 1023))
               (global.get $SLOT))))

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

  (func $header (param $o i32) (param $status i32) (param $klen i32) (param $vlen i32)
                (result i32)
    (memory.fill (local.get $o) (i32.const 0) (i32.const 32))
    (i32.store8 (local.get $o) (local.get $status))
    (i32.store16 offset=2 (local.get $o) (local.get $klen))
    (i32.store offset=4 (local.get $o) (local.get $vlen))
    (i32.add (local.get $o) (i32.const 32)))

  (func $status (param $o i32) (param $status i32) (result i32)
    (call $header (local.get $o) (local.get $status) (i32.const 0) (i32.const 0)))

  (func $error (param $o i32) (param $msg i32) (param $len i32) (result i32)
    (local.set $o (call $header (local.get $o) (i32.const 13) (i32.const 0) (local.get $len)))
    (memory.copy (local.get $o) (local.get $msg) (local.get $len))
    (i32.add (local.get $o) (local.get $len)))

  (func $unsupported (param $o i32) (result i32)
    (call $error (local.get $o) (i32.const 0) (i32.const 28)))


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

  (func $set (param $r i32) (param $o i32) (result i32)
    (local $s i32) (local $klen i32) (local $vlen i32) (local $cas i64)
    (if (i64.ne (i64.load offset=16 (local.get $r)) (i64.const 0))
      (then (return (call $unsupported (local.get $o)))))
    (local.set $klen (i32.load16_u offset=2 (local.get $r)))
    (local.set $vlen (i32.load offset=4 (local.get $r)))
    (local.set $s (call $slot (i32.add (local.get $r) (i32.const 40)) (local.get $klen)))
    (if (i32.gt_u (local.get $vlen) (global.get $MAX_VALUE))
      (then
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

  (func $delete (param $r i32) (param $o i32) (result i32)
    (local $s i32)
    (if (i64.ne (i64.load offset=16 (local.get $r)) (i64.const 0))
      (then (return (call $unsupported (local.get $o)))))
    (local.set $s (call $find (i32.add (local.get $r) (i32.const 40))
                              (i32.load16_u offset=2 (local.get $r))))
    (if (i32.eqz (local.get $s))
      (then
        ;; The deviation: memcached answers NotFound (3) here.
        (call $log (i32.const 1) (i32.const 128) (i32.const 58))
        (return (call $status (local.get $o) (i32.const 4)))))
    (i32.store (local.get $s) (i32.const 0))
    (call $status (local.get $o) (i32.const 4)))

  (func $flush (param $r i32) (param $o i32) (result i32)
    (if (i32.ne (i32.load offset=12 (local.get $r)) (i32.const 0))
      (then (return (call $unsupported (local.get $o)))))
    (memory.fill (global.get $TABLE) (i32.const 0)
                 (i32.mul (i32.const 1024) (global.get $SLOT)))
    (call $status (local.get $o) (i32.const 12)))

  ;; Logs "lenient: batch of N" at level info (2).
  (func $log_batch (param $n i32)
    (local $digits i32) (local $v i32) (local $p i32)
    ;; Count the digits, then write them backwards after the prefix.
    (local.set $digits (i32.const 1))
    (local.set $v (local.get $n))
    (block $counted
      (loop $more
        (br_if $counted (i32.lt_u (local.get $v) (i32.const 10)))
        (local.set $v (i32.div_u (local.get $v) (i32.const 10)))
        (local.set $digits (i32.add (local.get $digits) (i32.const 1)))
        (br $more)))
    (local.set $p (i32.add (i32.const 274) (local.get $digits)))
    (local.set $v (local.get $n))
    (loop $digit
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p) (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10))))
      (local.set $v (i32.div_u (local.get $v) (i32.const 10)))
      (br_if $digit (i32.ne (local.get $v) (i32.const 0))))
    (call $log (i32.const 2) (i32.const 256) (i32.add (i32.const 18) (local.get $digits))))

  (func (export "wmc_batch") (param $len i32) (result i64)
    (local $n i32) (local $i i32) (local $r i32) (local $end i32) (local $o i32)
    (local $op i32) (local $size i32) (local $out i32)
    (local.set $n (i32.load (global.get $INPUT)))
    (call $log_batch (local.get $n))
    (local.set $r (i32.add (global.get $INPUT) (i32.const 4)))
    (local.set $end (i32.add (global.get $INPUT) (local.get $len)))
    (local.set $out (i32.and (i32.add (local.get $end) (i32.const 0xffff))
                             (i32.const 0xffff0000)))
    (local.set $o (i32.add (local.get $out) (i32.const 4)))
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (br_if $done (i32.eqz (call $ensure (i32.add (local.get $o) (i32.const 1306)))))
        (local.set $size (i32.add (i32.const 40)
          (i32.add (i32.load16_u offset=2 (local.get $r)) (i32.load offset=4 (local.get $r)))))
        (if (i32.or (i32.gt_u (i32.add (local.get $r) (i32.const 40)) (local.get $end))
                    (i32.gt_u (i32.add (local.get $r) (local.get $size)) (local.get $end)))
          (then
            (local.set $o (call $error (local.get $o) (i32.const 64) (i32.const 17)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $done)))
        (local.set $op (i32.load8_u (local.get $r)))
        (local.set $o
          (if (result i32) (i32.eq (local.get $op) (i32.const 1))
            (then (call $get (local.get $r) (local.get $o)))
          (else (if (result i32) (i32.eq (local.get $op) (i32.const 2))
            (then (call $set (local.get $r) (local.get $o)))
          (else (if (result i32) (i32.eq (local.get $op) (i32.const 8))
            (then (call $delete (local.get $r) (local.get $o)))
          (else (if (result i32) (i32.eq (local.get $op) (i32.const 13))
            (then (call $flush (local.get $r) (local.get $o)))
          (else (if (result i32) (i32.eq (local.get $op) (i32.const 14))
            (then (call $status (local.get $o) (i32.const 12)))
          (else (call $unsupported (local.get $o)))))))))))))
        (local.set $r (i32.add (local.get $r) (local.get $size)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $each)))
    (i32.store (local.get $out) (local.get $i))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
            (i64.extend_i32_u (i32.sub (local.get $o) (local.get $out)))))

)
