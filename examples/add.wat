;; add(a, b) -> a + b: the smallest useful function.
;;   edgefn module upload examples/add.wat --name add --version 1.0.0
;;   edgefn invoke add add 1 2        # => 3
(module
  (func (export "add") (param $a i32) (param $b i32) (result i32)
    (i32.add (local.get $a) (local.get $b))))
