;; multiply(a, b) -> a * b, on 64-bit integers (results beyond 2^53 come back as strings).
(module
  (func (export "multiply") (param $a i64) (param $b i64) (result i64)
    (i64.mul (local.get $a) (local.get $b))))
