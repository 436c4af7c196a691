;; Distances from one int8 query to every int8 reference, WebAssembly SIMD.
;;
;; Layout (byte offsets chosen by the caller): `count` references of `chunks` × 16 bytes
;; each, contiguous, zero-padded past the real dimension; the query likewise padded; one
;; i32 distance per reference written at `out`. Zero padding in both adds 0 to either
;; metric, so the distances are exactly those over the real dimension.
(module
  (memory (export "memory") 1)

  ;; L1: |a − b| per byte as max_s − min_s, which is 0..255 and so exact when read as
  ;; unsigned. Pairs of bytes are summed into i16 lanes (≤ 510 per chunk); 128 chunks
  ;; of that stay below 65 536, so the i16 accumulator is widened to i32 only once per
  ;; 2048 dimensions.
  (func (export "l1")
    (param $refs i32) (param $query i32) (param $out i32) (param $count i32) (param $chunks i32)
    (local $end i32) (local $q i32) (local $left i32) (local $n i32)
    (local $a v128) (local $b v128) (local $acc16 v128) (local $acc32 v128)
    (if (i32.eqz (local.get $count)) (then (return)))
    (local.set $end (i32.add (local.get $out) (i32.shl (local.get $count) (i32.const 2))))
    (loop $row
      (local.set $acc32 (v128.const i32x4 0 0 0 0))
      (local.set $q (local.get $query))
      (local.set $left (local.get $chunks))
      (loop $block
        (local.set $n
          (select (local.get $left) (i32.const 128) (i32.lt_u (local.get $left) (i32.const 128))))
        (local.set $left (i32.sub (local.get $left) (local.get $n)))
        (local.set $acc16 (v128.const i32x4 0 0 0 0))
        (loop $chunk
          (local.set $a (v128.load (local.get $refs)))
          (local.set $b (v128.load (local.get $q)))
          (local.set $acc16
            (i16x8.add (local.get $acc16)
              (i16x8.extadd_pairwise_i8x16_u
                (i8x16.sub (i8x16.max_s (local.get $a) (local.get $b))
                           (i8x16.min_s (local.get $a) (local.get $b))))))
          (local.set $refs (i32.add (local.get $refs) (i32.const 16)))
          (local.set $q (i32.add (local.get $q) (i32.const 16)))
          (br_if $chunk (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
        (local.set $acc32
          (i32x4.add (local.get $acc32) (i32x4.extadd_pairwise_i16x8_u (local.get $acc16))))
        (br_if $block (local.get $left)))
      (i32.store (local.get $out)
        (i32.add
          (i32.add (i32x4.extract_lane 0 (local.get $acc32)) (i32x4.extract_lane 1 (local.get $acc32)))
          (i32.add (i32x4.extract_lane 2 (local.get $acc32)) (i32x4.extract_lane 3 (local.get $acc32)))))
      (br_if $row (i32.lt_u (local.tee $out (i32.add (local.get $out) (i32.const 4))) (local.get $end)))))

  ;; Squared L2: bytes widened to i16 (differences within ±255), then dot_i16x8_s squares
  ;; and sums pairs straight into i32 lanes.
  (func (export "l2")
    (param $refs i32) (param $query i32) (param $out i32) (param $count i32) (param $chunks i32)
    (local $end i32) (local $q i32) (local $n i32)
    (local $a v128) (local $b v128) (local $lo v128) (local $hi v128) (local $acc v128)
    (if (i32.eqz (local.get $count)) (then (return)))
    (local.set $end (i32.add (local.get $out) (i32.shl (local.get $count) (i32.const 2))))
    (loop $row
      (local.set $acc (v128.const i32x4 0 0 0 0))
      (local.set $q (local.get $query))
      (local.set $n (local.get $chunks))
      (loop $chunk
        (local.set $a (v128.load (local.get $refs)))
        (local.set $b (v128.load (local.get $q)))
        (local.set $lo (i16x8.sub (i16x8.extend_low_i8x16_s (local.get $a)) (i16x8.extend_low_i8x16_s (local.get $b))))
        (local.set $hi (i16x8.sub (i16x8.extend_high_i8x16_s (local.get $a)) (i16x8.extend_high_i8x16_s (local.get $b))))
        (local.set $acc
          (i32x4.add (local.get $acc)
            (i32x4.add (i32x4.dot_i16x8_s (local.get $lo) (local.get $lo))
                       (i32x4.dot_i16x8_s (local.get $hi) (local.get $hi)))))
        (local.set $refs (i32.add (local.get $refs) (i32.const 16)))
        (local.set $q (i32.add (local.get $q) (i32.const 16)))
        (br_if $chunk (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
      (i32.store (local.get $out)
        (i32.add
          (i32.add (i32x4.extract_lane 0 (local.get $acc)) (i32x4.extract_lane 1 (local.get $acc)))
          (i32.add (i32x4.extract_lane 2 (local.get $acc)) (i32x4.extract_lane 3 (local.get $acc)))))
      (br_if $row (i32.lt_u (local.tee $out (i32.add (local.get $out) (i32.const 4))) (local.get $end)))))
)
