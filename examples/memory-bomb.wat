;; grow() asks for one more 64 KiB page until it is refused: edgefn stops it at the
;; call's memory limit with "memory limit exceeded" (HTTP 500).
(module
  (memory 1)
  (func (export "grow") (result i32)
    (loop $more
      (br_if $more (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    (unreachable)))
