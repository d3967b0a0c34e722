;; spin() never returns: edgefn stops it at the call's timeout (HTTP 504).
(module
  (func (export "spin")
    (loop $forever (br $forever))))
