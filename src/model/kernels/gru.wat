;; GRU inference, WebAssembly SIMD f32x4: the cell of TensorFlow.js's GRUCell (Keras
;; reset_after = false) with sigmoid gates and tanh candidate:
;;   z = σ(x·Wz + h·Uz + bz)   r = σ(x·Wr + h·Ur + br)
;;   ĥ = tanh(x·Wh + (r ⊙ h)·Uh + bh)   h' = z ⊙ h + (1 − z) ⊙ ĥ
;;
;; All f32. A gate's width `up` is its unit count padded to a multiple of 4; padded
;; weights and biases are 0, which keeps padded state lanes at exactly 0 (z = ½, ĥ = 0).
;; Matrices are stored panel-major for `matvec`: the output columns cut into panels of 16
;; (then of 4 for the rest), each panel's rows contiguous, so the inner loop walks memory
;; in order and keeps the panel's outputs in registers.
(module
  (memory (export "memory") 1)

  ;; y = init + x·W for x of nIn values and nOut outputs (a multiple of 4); init and y may
  ;; be the same buffer. Returns the address just past W.
  (func $matvec (export "matvec")
    (param $w i32) (param $x i32) (param $nIn i32) (param $init i32) (param $y i32) (param $nOut i32)
    (result i32)
    (local $end i32) (local $xp i32) (local $xEnd i32) (local $s v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local.set $end (i32.add (local.get $y) (i32.shl (local.get $nOut) (i32.const 2))))
    (local.set $xEnd (i32.add (local.get $x) (i32.shl (local.get $nIn) (i32.const 2))))
    (block $wide
      (loop $panel16
        (br_if $wide (i32.gt_u (i32.add (local.get $y) (i32.const 64)) (local.get $end)))
        (local.set $a0 (v128.load offset=0 (local.get $init)))
        (local.set $a1 (v128.load offset=16 (local.get $init)))
        (local.set $a2 (v128.load offset=32 (local.get $init)))
        (local.set $a3 (v128.load offset=48 (local.get $init)))
        (local.set $xp (local.get $x))
        (loop $row
          (local.set $s (v128.load32_splat (local.get $xp)))
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $s) (v128.load offset=0 (local.get $w)))))
          (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $s) (v128.load offset=16 (local.get $w)))))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $s) (v128.load offset=32 (local.get $w)))))
          (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $s) (v128.load offset=48 (local.get $w)))))
          (local.set $w (i32.add (local.get $w) (i32.const 64)))
          (br_if $row (i32.lt_u (local.tee $xp (i32.add (local.get $xp) (i32.const 4))) (local.get $xEnd))))
        (v128.store offset=0 (local.get $y) (local.get $a0))
        (v128.store offset=16 (local.get $y) (local.get $a1))
        (v128.store offset=32 (local.get $y) (local.get $a2))
        (v128.store offset=48 (local.get $y) (local.get $a3))
        (local.set $init (i32.add (local.get $init) (i32.const 64)))
        (local.set $y (i32.add (local.get $y) (i32.const 64)))
        (br $panel16)))
    (block $done
      (loop $panel4
        (br_if $done (i32.ge_u (local.get $y) (local.get $end)))
        (local.set $a0 (v128.load (local.get $init)))
        (local.set $xp (local.get $x))
        (loop $row
          (local.set $a0
            (f32x4.add (local.get $a0) (f32x4.mul (v128.load32_splat (local.get $xp)) (v128.load (local.get $w)))))
          (local.set $w (i32.add (local.get $w) (i32.const 16)))
          (br_if $row (i32.lt_u (local.tee $xp (i32.add (local.get $xp) (i32.const 4))) (local.get $xEnd))))
        (v128.store (local.get $y) (local.get $a0))
        (local.set $init (i32.add (local.get $init) (i32.const 16)))
        (local.set $y (i32.add (local.get $y) (i32.const 16)))
        (br $panel4)))
    (local.get $w))

  ;; e^x: 2^n · e^f with n = round(x / ln 2) and |f| ≤ ln2 / 2 (Cody–Waite split of ln 2),
  ;; e^f by its degree-6 Taylor polynomial (relative error < 2e-7). x is clamped so 2^n
  ;; stays a normal float; sigmoid and tanh saturate long before either bound.
  (func $exp (param $x v128) (result v128)
    (local $n v128) (local $f v128) (local $p v128)
    (local.set $x (f32x4.min (f32x4.max (local.get $x) (v128.const f32x4 -87 -87 -87 -87)) (v128.const f32x4 88 88 88 88)))
    (local.set $n (f32x4.nearest (f32x4.mul (local.get $x) (v128.const f32x4 1.44269504 1.44269504 1.44269504 1.44269504))))
    (local.set $f (f32x4.sub (local.get $x) (f32x4.mul (local.get $n) (v128.const f32x4 0.693359375 0.693359375 0.693359375 0.693359375))))
    (local.set $f (f32x4.sub (local.get $f) (f32x4.mul (local.get $n) (v128.const f32x4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4))))
    (local.set $p (v128.const f32x4 1.38888889e-3 1.38888889e-3 1.38888889e-3 1.38888889e-3))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $f)) (v128.const f32x4 8.33333333e-3 8.33333333e-3 8.33333333e-3 8.33333333e-3)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $f)) (v128.const f32x4 4.16666667e-2 4.16666667e-2 4.16666667e-2 4.16666667e-2)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $f)) (v128.const f32x4 0.166666667 0.166666667 0.166666667 0.166666667)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $f)) (v128.const f32x4 0.5 0.5 0.5 0.5)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $f)) (v128.const f32x4 1 1 1 1)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $f)) (v128.const f32x4 1 1 1 1)))
    (f32x4.mul (local.get $p)
      (i32x4.shl (i32x4.add (i32x4.trunc_sat_f32x4_s (local.get $n)) (v128.const i32x4 127 127 127 127)) (i32.const 23))))

  (func $sigmoid (param $x v128) (result v128)
    (f32x4.div (v128.const f32x4 1 1 1 1)
      (f32x4.add (v128.const f32x4 1 1 1 1) (call $exp (f32x4.neg (local.get $x))))))

  ;; tanh x = 1 − 2 / (1 + e^2x): saturates cleanly to ±1 at both ends.
  (func $tanh (param $x v128) (result v128)
    (f32x4.sub (v128.const f32x4 1 1 1 1)
      (f32x4.div (v128.const f32x4 2 2 2 2)
        (f32x4.add (v128.const f32x4 1 1 1 1) (call $exp (f32x4.add (local.get $x) (local.get $x)))))))

  ;; Exposed for tests of the approximations.
  (func (export "sigmoid4") (param $at i32) (v128.store (local.get $at) (call $sigmoid (v128.load (local.get $at)))))
  (func (export "tanh4") (param $at i32) (v128.store (local.get $at) (call $tanh (v128.load (local.get $at)))))

  ;; One GRU layer over a whole sequence. xs: steps rows of nIn inputs; wx: [nIn × 3up]
  ;; panels (gates z, r, ĥ); uzr: [up × 2up] panels; uh: [up × up] panels; bias: 3up.
  ;; Scratch h (up), gx (3up), rh (up). Writes every step's state into hs (steps × up)
  ;; and leaves the last in h. The state starts at zero, as in Keras.
  (func (export "gru_layer")
    (param $wx i32) (param $uzr i32) (param $uh i32) (param $bias i32)
    (param $xs i32) (param $nIn i32) (param $steps i32) (param $up i32)
    (param $h i32) (param $gx i32) (param $rh i32) (param $hs i32)
    (local $rowBytes i32) (local $upBytes i32) (local $k i32) (local $z v128) (local $c v128) (local $hv v128)
    (local.set $rowBytes (i32.shl (local.get $nIn) (i32.const 2)))
    (local.set $upBytes (i32.shl (local.get $up) (i32.const 2)))
    (local.set $k (i32.const 0))
    (loop $zero
      (v128.store (i32.add (local.get $h) (local.get $k)) (v128.const i32x4 0 0 0 0))
      (br_if $zero (i32.lt_u (local.tee $k (i32.add (local.get $k) (i32.const 16))) (local.get $upBytes))))
    (if (i32.eqz (local.get $steps)) (then (return)))
    (loop $step
      (drop (call $matvec (local.get $wx) (local.get $xs) (local.get $nIn) (local.get $bias) (local.get $gx) (i32.mul (local.get $up) (i32.const 3))))
      (drop (call $matvec (local.get $uzr) (local.get $h) (local.get $up) (local.get $gx) (local.get $gx) (i32.shl (local.get $up) (i32.const 1))))
      (local.set $k (i32.const 0))
      (loop $gates
        (v128.store (i32.add (local.get $gx) (local.get $k)) (call $sigmoid (v128.load (i32.add (local.get $gx) (local.get $k)))))
        (v128.store (i32.add (local.get $rh) (local.get $k))
          (f32x4.mul (call $sigmoid (v128.load (i32.add (i32.add (local.get $gx) (local.get $upBytes)) (local.get $k))))
                     (v128.load (i32.add (local.get $h) (local.get $k)))))
        (br_if $gates (i32.lt_u (local.tee $k (i32.add (local.get $k) (i32.const 16))) (local.get $upBytes))))
      (drop (call $matvec (local.get $uh) (local.get $rh) (local.get $up)
        (i32.add (local.get $gx) (i32.shl (local.get $upBytes) (i32.const 1)))
        (i32.add (local.get $gx) (i32.shl (local.get $upBytes) (i32.const 1)))
        (local.get $up)))
      (local.set $k (i32.const 0))
      (loop $update
        (local.set $z (v128.load (i32.add (local.get $gx) (local.get $k))))
        (local.set $c (call $tanh (v128.load (i32.add (i32.add (local.get $gx) (i32.shl (local.get $upBytes) (i32.const 1))) (local.get $k)))))
        (local.set $hv (v128.load (i32.add (local.get $h) (local.get $k))))
        ;; z·h + (1 − z)·ĥ, as ĥ + z·(h − ĥ)
        (local.set $hv (f32x4.add (local.get $c) (f32x4.mul (local.get $z) (f32x4.sub (local.get $hv) (local.get $c)))))
        (v128.store (i32.add (local.get $h) (local.get $k)) (local.get $hv))
        (v128.store (i32.add (local.get $hs) (local.get $k)) (local.get $hv))
        (br_if $update (i32.lt_u (local.tee $k (i32.add (local.get $k) (i32.const 16))) (local.get $upBytes))))
      (local.set $xs (i32.add (local.get $xs) (local.get $rowBytes)))
      (local.set $hs (i32.add (local.get $hs) (local.get $upBytes)))
      (br_if $step (local.tee $steps (i32.sub (local.get $steps) (i32.const 1))))))
)
