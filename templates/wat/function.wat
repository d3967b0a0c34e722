;; {{name}}: answers every request with "Hello from {{name}}!" on the handle ABI
;; (docs/abi.md): the host allocates with `alloc`, calls `handle`, and reads the
;; response — a status line, headers, an empty line, the body — from the buffer it gave.
(module
  (memory (export "memory") 1)
  (data (i32.const 0) "200\ncontent-type: text/plain; charset=utf-8\n\nHello from {{name}}!\n")
  (global $heap (mut i32) (i32.const 4096))
  (func (export "alloc") (param $len i32) (result i32)
    (local $ptr i32)
    (local.set $ptr (global.get $heap))
    (global.set $heap (i32.add (local.get $ptr) (local.get $len)))
    (local.get $ptr))
  (func (export "handle")
    (param i32 i32 i32 i32 i32 i32 i32 i32) (param $out i32) (param $cap i32) (result i32)
    (memory.copy (local.get $out) (i32.const 0) (i32.const {{len}}))
    (i32.const {{len}})))
