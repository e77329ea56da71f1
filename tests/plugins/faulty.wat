;; A deliberately faulty storage plugin for the fault-isolation tests.
;;
;; It is a minimal ABI v1 plugin (stores are answered STORED, reads miss,
;; flush/memlimit OK, everything else NOT_FOUND) that misbehaves when the first
;; request of a batch has a key starting with one of these words:
;;   trap  executes `unreachable`                  -> the shard must restart
;;   loop  spins forever                           -> the call deadline must fire
;;   grow  grows memory until refused, then traps  -> the memory cap must hold
;;   badr  returns a response outside its memory   -> the host must reject it
(module
  (memory (export "memory") 2)
  ;; Requests are written at 1024, responses built at 65536.
  (global $in i32 (i32.const 1024))
  (global $out i32 (i32.const 65536))

  (func (export "wmc_abi_version") (result i32) (i32.const 1))

  (func (export "wmc_input") (param $size i32) (result i32)
    (if (i32.gt_u (local.get $size) (i32.const 64000)) (then (return (i32.const 0))))
    (global.get $in))

  (func (export "wmc_init") (param $len i32) (result i32) (i32.const 0))

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
    (local.set $n (i32.load (global.get $in)))
    (local.set $p (i32.add (global.get $in) (i32.const 4)))
    ;; Misbehave according to the first key.
    (if (i32.gt_u (local.get $n) (i32.const 0))
      (then
        (if (i32.ge_u (i32.load16_u offset=2 (local.get $p)) (i32.const 4))
          (then
            (local.set $word (i32.load offset=40 (local.get $p)))
            (if (i32.eq (local.get $word) (i32.const 0x70617274)) (then unreachable))        ;; "trap"
            (if (i32.eq (local.get $word) (i32.const 0x706f6f6c)) (then (loop $spin (br $spin)))) ;; "loop"
            (if (i32.eq (local.get $word) (i32.const 0x776f7267))                           ;; "grow"
              (then
                (loop $more
                  (br_if $more (i32.ne (memory.grow (i32.const 256)) (i32.const -1))))
                unreachable))
            (if (i32.eq (local.get $word) (i32.const 0x72646162))                           ;; "badr"
              (then (return (i64.const 0x7fff000000001000))))))))
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
