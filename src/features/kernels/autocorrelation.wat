;; Cross terms of an autocorrelation, WebAssembly SIMD: for every lag in [from, to],
;; out[lag − from] = Σ x[i]·x[i + lag] over i < n − lag, in float64 (two lanes, two
;; accumulators). The pitch extractor's normalised autocorrelation spends nearly all of
;; its time here; its energies come from prefix sums, so this is the only O(n·lags) part.
;;
;; Layout (byte offsets chosen by the caller): x is n float64 at $x; the results are
;; (to − from + 1) float64 at $out.
(module
  (memory (export "memory") 1)

  (func (export "xcorr")
    (param $x i32) (param $n i32) (param $from i32) (param $to i32) (param $out i32)
    (local $lag i32) (local $m i32) (local $p i32) (local $q i32) (local $end i32)
    (local $acc0 v128) (local $acc1 v128) (local $sum f64)
    (local.set $lag (local.get $from))
    (block $done
      (loop $lags
        (br_if $done (i32.gt_s (local.get $lag) (local.get $to)))
        (local.set $m (i32.sub (local.get $n) (local.get $lag)))
        (local.set $acc0 (v128.const f64x2 0 0))
        (local.set $acc1 (v128.const f64x2 0 0))
        (local.set $p (local.get $x))
        (local.set $q (i32.add (local.get $x) (i32.shl (local.get $lag) (i32.const 3))))
        ;; Four products per step while four are left.
        (local.set $end (i32.add (local.get $x) (i32.shl (i32.and (local.get $m) (i32.const -4)) (i32.const 3))))
        (block $quads_done
          (loop $quads
            (br_if $quads_done (i32.ge_u (local.get $p) (local.get $end)))
            (local.set $acc0 (f64x2.add (local.get $acc0) (f64x2.mul (v128.load (local.get $p)) (v128.load (local.get $q)))))
            (local.set $acc1 (f64x2.add (local.get $acc1)
              (f64x2.mul (v128.load offset=16 (local.get $p)) (v128.load offset=16 (local.get $q)))))
            (local.set $p (i32.add (local.get $p) (i32.const 32)))
            (local.set $q (i32.add (local.get $q) (i32.const 32)))
            (br $quads)))
        (local.set $acc0 (f64x2.add (local.get $acc0) (local.get $acc1)))
        (local.set $sum (f64.add (f64x2.extract_lane 0 (local.get $acc0)) (f64x2.extract_lane 1 (local.get $acc0))))
        ;; The last 0–3 products one by one.
        (local.set $end (i32.add (local.get $x) (i32.shl (local.get $m) (i32.const 3))))
        (block $tail_done
          (loop $tail
            (br_if $tail_done (i32.ge_u (local.get $p) (local.get $end)))
            (local.set $sum (f64.add (local.get $sum) (f64.mul (f64.load (local.get $p)) (f64.load (local.get $q)))))
            (local.set $p (i32.add (local.get $p) (i32.const 8)))
            (local.set $q (i32.add (local.get $q) (i32.const 8)))
            (br $tail)))
        (f64.store (local.get $out) (local.get $sum))
        (local.set $out (i32.add (local.get $out) (i32.const 8)))
        (local.set $lag (i32.add (local.get $lag) (i32.const 1)))
        (br $lags)))))
