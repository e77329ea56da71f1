;; An ABI v4 plugin that answers every Get with a held value (iflag bit 6,
;; VALUE_REF): the record carries the value's address instead of its bytes.
;;
;; The value is 3000 bytes at address 8192: "held" then 'h' up to the end.
;; For a key starting with "bad" the address is past the end of memory, which
;; the host must refuse (a fault) instead of reading. Stores are answered
;; Stored, FlushAll/MemLimit Ok, everything else NotFound.
(module
  (memory (export "memory") 4)
  ;; Requests are written at 65536, responses built at 131072.
  (global $in i32 (i32.const 65536))
  (global $out i32 (i32.const 131072))

  (func (export "wmc_abi_version") (result i32) (i32.const 4))

  (func (export "wmc_input") (param $size i32) (result i32)
    (if (i32.gt_u (local.get $size) (i32.const 65536)) (then (return (i32.const 0))))
    (global.get $in))

  (func (export "wmc_init") (param $len i32) (result i32)
    (memory.fill (i32.const 8192) (i32.const 0x68) (i32.const 3000))
    (i32.store (i32.const 8192) (i32.const 0x646c6568)) ;; "held"
    (i32.const 0))

  (func $status_for (param $op i32) (result i32)
    ;; Set..Cas(2..7) -> Stored(0); FlushAll(13)/MemLimit(14) -> Ok(12); else NotFound(3)
    (if (i32.and (i32.ge_u (local.get $op) (i32.const 2)) (i32.le_u (local.get $op) (i32.const 7)))
      (then (return (i32.const 0))))
    (if (i32.ge_u (local.get $op) (i32.const 13)) (then (return (i32.const 12))))
    (i32.const 3))

  (func (export "wmc_batch") (param $len i32) (result i64)
    (local $n i32) (local $i i32) (local $p i32) (local $o i32)
    (local $klen i32) (local $vlen i32) (local $addr i32)
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
        (if (i32.eq (i32.load8_u (local.get $p)) (i32.const 1))
          (then
            ;; Get: Hit, VALUE_REF, the key echoed, then the value's address.
            (i32.store8 (local.get $o) (i32.const 6))
            (i32.store8 offset=1 (local.get $o) (i32.const 0x40))
            (i32.store16 offset=2 (local.get $o) (local.get $klen))
            (i32.store offset=4 (local.get $o) (i32.const 3000))
            (memory.copy (i32.add (local.get $o) (i32.const 32))
                         (i32.add (local.get $p) (i32.const 40))
                         (local.get $klen))
            (local.set $addr (i32.const 8192))
            (if (i32.ge_u (local.get $klen) (i32.const 3))
              (then
                (if (i32.eq (i32.and (i32.load offset=40 (local.get $p)) (i32.const 0xffffff))
                            (i32.const 0x646162)) ;; "bad"
                  (then (local.set $addr (i32.const 0x7fff0000))))))
            (i32.store (i32.add (local.get $o) (i32.add (i32.const 32) (local.get $klen)))
                       (local.get $addr))
            (local.set $o (i32.add (local.get $o) (i32.add (i32.const 36) (local.get $klen)))))
          (else
            (i32.store8 (local.get $o) (call $status_for (i32.load8_u (local.get $p))))
            (local.set $o (i32.add (local.get $o) (i32.const 32)))))
        (local.set $p (i32.add (local.get $p)
          (i32.add (i32.const 40) (i32.add (local.get $klen) (local.get $vlen)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $each)))
    (i64.or
      (i64.shl (i64.extend_i32_u (global.get $out)) (i64.const 32))
      (i64.extend_i32_u (i32.sub (local.get $o) (global.get $out)))))
)
