;; The inner loops of the native backend's optimizer update (host-update.ts), four float32 lanes at a
;; time. V8 runs the same loop in JavaScript one element at a time, in float64, at about 4 ns per
;; parameter; these SIMD loops run at the memory's pace. The caller copies one chunk of a tensor
;; at a time into the fixed regions below (small enough to stay in cache), calls a loop, and copies
;; the updated chunk back, so the module never needs more than these 320 KiB whatever the model.
;;
;; Regions (byte offsets), CHUNK = 16384 float32 each: params 0, gradients 65536, first moments
;; 131072, second moments 196608, 0/1 masks 262144. `n` may be any count up to CHUNK: the loops
;; run over whole vectors, and lanes past `n` are scratch the caller neither reads nor copies back
;; (sumsq needs them zero in the gradient region; the caller clears them).
;;
;; Assembled into host-update-wasm.ts by scripts/build-wasm.ts.
(module
  (memory (export "memory") 5)

  ;; AdamW with decoupled weight decay and the bias corrections folded into the scalars (see
  ;; host-update.ts):
  ;;   m' = m·b1 + g·k1     v' = v·b2 + g²·k2     p' = p·df − m' / (√v' + eps) · step
  ;; With `masked`, lanes whose mask is 0 keep p, m and v exactly.
  (func (export "adamw")
    (param $n i32) (param $b1 f32) (param $b2 f32) (param $k1 f32) (param $k2 f32)
    (param $df f32) (param $eps f32) (param $step f32) (param $masked i32)
    (local $i i32) (local $end i32)
    (local $B1 v128) (local $B2 v128) (local $K1 v128) (local $K2 v128)
    (local $DF v128) (local $EPS v128) (local $STEP v128)
    (local $p v128) (local $g v128) (local $m v128) (local $v v128)
    (local $m2 v128) (local $v2 v128) (local $p2 v128) (local $keep v128)
    (local.set $B1 (f32x4.splat (local.get $b1)))
    (local.set $B2 (f32x4.splat (local.get $b2)))
    (local.set $K1 (f32x4.splat (local.get $k1)))
    (local.set $K2 (f32x4.splat (local.get $k2)))
    (local.set $DF (f32x4.splat (local.get $df)))
    (local.set $EPS (f32x4.splat (local.get $eps)))
    (local.set $STEP (f32x4.splat (local.get $step)))
    ;; byte length of the whole vectors covering n floats
    (local.set $end (i32.and (i32.add (i32.shl (local.get $n) (i32.const 2)) (i32.const 15)) (i32.const -16)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $p (v128.load (local.get $i)))
        (local.set $g (v128.load offset=65536 (local.get $i)))
        (local.set $m (v128.load offset=131072 (local.get $i)))
        (local.set $v (v128.load offset=196608 (local.get $i)))
        (local.set $m2 (f32x4.add (f32x4.mul (local.get $m) (local.get $B1)) (f32x4.mul (local.get $g) (local.get $K1))))
        (local.set $v2 (f32x4.add (f32x4.mul (local.get $v) (local.get $B2))
                                  (f32x4.mul (f32x4.mul (local.get $g) (local.get $g)) (local.get $K2))))
        (local.set $p2 (f32x4.sub (f32x4.mul (local.get $p) (local.get $DF))
                                  (f32x4.mul (f32x4.div (local.get $m2) (f32x4.add (f32x4.sqrt (local.get $v2)) (local.get $EPS)))
                                             (local.get $STEP))))
        (if (local.get $masked)
          (then
            (local.set $keep (f32x4.ne (v128.load offset=262144 (local.get $i)) (v128.const f32x4 0 0 0 0)))
            (local.set $m2 (v128.bitselect (local.get $m2) (local.get $m) (local.get $keep)))
            (local.set $v2 (v128.bitselect (local.get $v2) (local.get $v) (local.get $keep)))
            (local.set $p2 (v128.bitselect (local.get $p2) (local.get $p) (local.get $keep)))))
        (v128.store (local.get $i) (local.get $p2))
        (v128.store offset=131072 (local.get $i) (local.get $m2))
        (v128.store offset=196608 (local.get $i) (local.get $v2))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next))))

  ;; SGD with decoupled weight decay: p' = p·df − g·lr. Masked-out lanes keep p exactly.
  (func (export "sgd") (param $n i32) (param $df f32) (param $lr f32) (param $masked i32)
    (local $i i32) (local $end i32) (local $DF v128) (local $LR v128) (local $p v128) (local $p2 v128)
    (local.set $DF (f32x4.splat (local.get $df)))
    (local.set $LR (f32x4.splat (local.get $lr)))
    (local.set $end (i32.and (i32.add (i32.shl (local.get $n) (i32.const 2)) (i32.const 15)) (i32.const -16)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $p (v128.load (local.get $i)))
        (local.set $p2 (f32x4.sub (f32x4.mul (local.get $p) (local.get $DF))
                                  (f32x4.mul (v128.load offset=65536 (local.get $i)) (local.get $LR))))
        (if (local.get $masked)
          (then
            (local.set $p2 (v128.bitselect (local.get $p2) (local.get $p)
                             (f32x4.ne (v128.load offset=262144 (local.get $i)) (v128.const f32x4 0 0 0 0))))))
        (v128.store (local.get $i) (local.get $p2))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next))))

  ;; Σ g² (times the mask when `masked`), each square and the sum in float64.
  (func (export "sumsq") (param $n i32) (param $masked i32) (result f64)
    (local $i i32) (local $end i32) (local $g v128) (local $lo v128) (local $hi v128)
    (local $accLo v128) (local $accHi v128)
    (local.set $end (i32.and (i32.add (i32.shl (local.get $n) (i32.const 2)) (i32.const 15)) (i32.const -16)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $g (v128.load offset=65536 (local.get $i)))
        (if (local.get $masked)
          (then (local.set $g (f32x4.mul (local.get $g) (v128.load offset=262144 (local.get $i))))))
        (local.set $lo (f64x2.promote_low_f32x4 (local.get $g)))
        (local.set $hi (f64x2.promote_low_f32x4
                         (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $g) (local.get $g))))
        (local.set $accLo (f64x2.add (local.get $accLo) (f64x2.mul (local.get $lo) (local.get $lo))))
        (local.set $accHi (f64x2.add (local.get $accHi) (f64x2.mul (local.get $hi) (local.get $hi))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next)))
    (local.set $accLo (f64x2.add (local.get $accLo) (local.get $accHi)))
    (f64.add (f64x2.extract_lane 0 (local.get $accLo)) (f64x2.extract_lane 1 (local.get $accLo))))
)
