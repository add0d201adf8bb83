;; Dropout masks for the native training models (dropout-masks.ts), sixteen at a time. ONNX
;; Runtime's CPU Dropout draws its mask on one thread, one float at a time (a fifth of a small
;; model's training step); here four xorshift128 generators run side by side in the lanes of a
;; vector, and each 32-bit draw becomes one 0/1 byte.
;;
;; Memory: the four 128-bit generator states at byte 0 (s0, s1, s2, s3: lane i of each is generator
;; i), the output bytes from byte 64, CHUNK = 65536 of them per call.
;;
;; Assembled into dropout-masks-wasm.ts by scripts/build-wasm.ts.
(module
  (memory (export "memory") 2)

  ;; Bytes 64 … 64 + n (n rounded up to 16) become 1 where a draw is ≥ `threshold` (read as
  ;; unsigned), else 0: 1 with probability 1 − threshold / 2³².
  (func (export "bernoulli") (param $n i32) (param $threshold i32)
    (local $i i32) (local $end i32) (local $thr v128)
    (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128) (local $t v128)
    (local $r0 v128) (local $r1 v128) (local $r2 v128) (local $r3 v128)
    (local.set $thr (i32x4.splat (local.get $threshold)))
    (local.set $s0 (v128.load (i32.const 0)))
    (local.set $s1 (v128.load (i32.const 16)))
    (local.set $s2 (v128.load (i32.const 32)))
    (local.set $s3 (v128.load (i32.const 48)))
    (local.set $end (i32.and (i32.add (local.get $n) (i32.const 15)) (i32.const -16)))
    (block $done
      (loop $more
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        ;; Four steps of the generators (xorshift128: t = s0 ^ s0 << 11; s0, s1, s2 = s1, s2, s3;
        ;; s3 ^= s3 >> 19 ^ t ^ t >> 8), each draw compared with the threshold.
        (local.set $t (v128.xor (local.get $s0) (i32x4.shl (local.get $s0) (i32.const 11))))
        (local.set $s0 (local.get $s1)) (local.set $s1 (local.get $s2)) (local.set $s2 (local.get $s3))
        (local.set $s3 (v128.xor (v128.xor (local.get $s3) (i32x4.shr_u (local.get $s3) (i32.const 19)))
                                 (v128.xor (local.get $t) (i32x4.shr_u (local.get $t) (i32.const 8)))))
        (local.set $r0 (i32x4.ge_u (local.get $s3) (local.get $thr)))
        (local.set $t (v128.xor (local.get $s0) (i32x4.shl (local.get $s0) (i32.const 11))))
        (local.set $s0 (local.get $s1)) (local.set $s1 (local.get $s2)) (local.set $s2 (local.get $s3))
        (local.set $s3 (v128.xor (v128.xor (local.get $s3) (i32x4.shr_u (local.get $s3) (i32.const 19)))
                                 (v128.xor (local.get $t) (i32x4.shr_u (local.get $t) (i32.const 8)))))
        (local.set $r1 (i32x4.ge_u (local.get $s3) (local.get $thr)))
        (local.set $t (v128.xor (local.get $s0) (i32x4.shl (local.get $s0) (i32.const 11))))
        (local.set $s0 (local.get $s1)) (local.set $s1 (local.get $s2)) (local.set $s2 (local.get $s3))
        (local.set $s3 (v128.xor (v128.xor (local.get $s3) (i32x4.shr_u (local.get $s3) (i32.const 19)))
                                 (v128.xor (local.get $t) (i32x4.shr_u (local.get $t) (i32.const 8)))))
        (local.set $r2 (i32x4.ge_u (local.get $s3) (local.get $thr)))
        (local.set $t (v128.xor (local.get $s0) (i32x4.shl (local.get $s0) (i32.const 11))))
        (local.set $s0 (local.get $s1)) (local.set $s1 (local.get $s2)) (local.set $s2 (local.get $s3))
        (local.set $s3 (v128.xor (v128.xor (local.get $s3) (i32x4.shr_u (local.get $s3) (i32.const 19)))
                                 (v128.xor (local.get $t) (i32x4.shr_u (local.get $t) (i32.const 8)))))
        (local.set $r3 (i32x4.ge_u (local.get $s3) (local.get $thr)))
        ;; Sixteen all-ones/zero lanes, narrowed to bytes, then & 1.
        (v128.store offset=64 (local.get $i)
          (v128.and (i8x16.narrow_i16x8_s (i16x8.narrow_i32x4_s (local.get $r0) (local.get $r1))
                                          (i16x8.narrow_i32x4_s (local.get $r2) (local.get $r3)))
                    (i8x16.splat (i32.const 1))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $more)))
    ;; The state carries over to the next call (a mask longer than one chunk).
    (v128.store (i32.const 0) (local.get $s0))
    (v128.store (i32.const 16) (local.get $s1))
    (v128.store (i32.const 32) (local.get $s2))
    (v128.store (i32.const 48) (local.get $s3)))
)
