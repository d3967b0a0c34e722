;; A component exporting typed functions, written by hand in the component text format so
;; it needs no toolchain. Its WIT, as a guest language would declare it:
;;
;;   record point { x: s32, y: s32 }
;;   variant shape { num(u32), text(string), empty }
;;   enum color { red, green, blue }
;;   flags permissions { read, write, exec }
;;   record person { name: string, age: u8, tags: list<string>, email: option<string> }
;;   greet: func(name: string) -> string;                    // "Hello, <name>!"
;;   sum: func(values: list<s32>) -> s64;
;;   translate: func(p: point, dx: s32, dy: s32) -> point;
;;   safe-div: func(a: s32, b: s32) -> result<s32, string>;  // err on b = 0
;;   echo-*: return their argument unchanged (one per WIT type family)
;;
;; Results wider than one core value are written to a return area at address 64, as the
;; canonical ABI prescribes; `cabi_realloc` is a bump allocator (each call gets a fresh
;; instance, so nothing is freed).
(component
  (core module $impl
    (memory (export "memory") 1)
    (global $heap (mut i32) (i32.const 4096))
    (data (i32.const 16) "Hello, ")
    (data (i32.const 32) "division by zero")

    (func $realloc (export "cabi_realloc")
      (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
      (local $ptr i32)
      (local.set $ptr
        (i32.and
          (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
          (i32.sub (i32.const 0) (local.get $align))))
      (global.set $heap (i32.add (local.get $ptr) (local.get $size)))
      (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
        (then
          (if (i32.eq (memory.grow (i32.add (i32.shr_u (local.get $size) (i32.const 16)) (i32.const 1)))
                      (i32.const -1))
            (then unreachable))))
      (if (local.get $old)
        (then (memory.copy (local.get $ptr) (local.get $old) (local.get $old_size))))
      (local.get $ptr))

    (func (export "greet") (param $ptr i32) (param $len i32) (result i32)
      (local $out i32) (local $total i32)
      (local.set $total (i32.add (local.get $len) (i32.const 8)))
      (local.set $out (call $realloc (i32.const 0) (i32.const 0) (i32.const 1) (local.get $total)))
      (memory.copy (local.get $out) (i32.const 16) (i32.const 7))
      (memory.copy (i32.add (local.get $out) (i32.const 7)) (local.get $ptr) (local.get $len))
      (i32.store8 (i32.add (local.get $out) (i32.add (local.get $len) (i32.const 7))) (i32.const 33))
      (i32.store (i32.const 64) (local.get $out))
      (i32.store (i32.const 68) (local.get $total))
      (i32.const 64))

    (func (export "sum") (param $ptr i32) (param $len i32) (result i64)
      (local $acc i64)
      (block $done
        (loop $next
          (br_if $done (i32.eqz (local.get $len)))
          (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_s (i32.load (local.get $ptr)))))
          (local.set $ptr (i32.add (local.get $ptr) (i32.const 4)))
          (local.set $len (i32.sub (local.get $len) (i32.const 1)))
          (br $next)))
      (local.get $acc))

    (func (export "translate") (param $x i32) (param $y i32) (param $dx i32) (param $dy i32) (result i32)
      (i32.store (i32.const 64) (i32.add (local.get $x) (local.get $dx)))
      (i32.store (i32.const 68) (i32.add (local.get $y) (local.get $dy)))
      (i32.const 64))

    (func (export "safe-div") (param $a i32) (param $b i32) (result i32)
      (if (i32.eqz (local.get $b))
        (then
          (i32.store8 (i32.const 64) (i32.const 1))
          (i32.store (i32.const 68) (i32.const 32))
          (i32.store (i32.const 72) (i32.const 16)))
        (else
          (i32.store8 (i32.const 64) (i32.const 0))
          (i32.store (i32.const 68) (i32.div_s (local.get $a) (local.get $b)))))
      (i32.const 64))

    ;; Scalars pass straight through.
    (func (export "echo-i32") (param i32) (result i32) (local.get 0))
    (func (export "echo-u64") (param i64) (result i64) (local.get 0))
    (func (export "echo-f64") (param f64) (result f64) (local.get 0))

    ;; Two flat values (ptr, len) or (discriminant, payload) go to the return area.
    (func (export "echo-pair") (param i32 i32) (result i32)
      (i32.store (i32.const 64) (local.get 0))
      (i32.store (i32.const 68) (local.get 1))
      (i32.const 64))
    (func (export "echo-option") (param i32 i32) (result i32)
      (i32.store8 (i32.const 64) (local.get 0))
      (i32.store (i32.const 68) (local.get 1))
      (i32.const 64))

    ;; variant shape / tuple<u32, string>: (discriminant or u32, then two payload words).
    (func (export "echo-variant") (param i32 i32 i32) (result i32)
      (i32.store8 (i32.const 64) (local.get 0))
      (i32.store (i32.const 68) (local.get 1))
      (i32.store (i32.const 72) (local.get 2))
      (i32.const 64))
    (func (export "echo-tuple") (param i32 i32 i32) (result i32)
      (i32.store (i32.const 64) (local.get 0))
      (i32.store (i32.const 68) (local.get 1))
      (i32.store (i32.const 72) (local.get 2))
      (i32.const 64))

    ;; person: name (ptr, len) @0, age @8, tags (ptr, len) @12, email (disc @20, ptr, len).
    (func (export "echo-person") (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
      (i32.store (i32.const 64) (local.get 0))
      (i32.store (i32.const 68) (local.get 1))
      (i32.store8 (i32.const 72) (local.get 2))
      (i32.store (i32.const 76) (local.get 3))
      (i32.store (i32.const 80) (local.get 4))
      (i32.store8 (i32.const 84) (local.get 5))
      (i32.store (i32.const 88) (local.get 6))
      (i32.store (i32.const 92) (local.get 7))
      (i32.const 64))
  )
  (core instance $i (instantiate $impl))

  (type $point' (record (field "x" s32) (field "y" s32)))
  (export $point "point" (type $point'))
  (type $shape' (variant (case "num" u32) (case "text" string) (case "empty")))
  (export $shape "shape" (type $shape'))
  (type $color' (enum "red" "green" "blue"))
  (export $color "color" (type $color'))
  (type $permissions' (flags "read" "write" "exec"))
  (export $permissions "permissions" (type $permissions'))
  (type $person' (record
    (field "name" string) (field "age" u8) (field "tags" (list string)) (field "email" (option string))))
  (export $person "person" (type $person'))

  (func (export "greet") (param "name" string) (result string)
    (canon lift (core func $i "greet") (memory (core memory $i "memory")) (realloc (core func $i "cabi_realloc"))))
  (func (export "sum") (param "values" (list s32)) (result s64)
    (canon lift (core func $i "sum") (memory (core memory $i "memory")) (realloc (core func $i "cabi_realloc"))))
  (func (export "translate") (param "p" $point) (param "dx" s32) (param "dy" s32) (result $point)
    (canon lift (core func $i "translate") (memory (core memory $i "memory"))))
  (func (export "safe-div") (param "a" s32) (param "b" s32) (result (result s32 (error string)))
    (canon lift (core func $i "safe-div") (memory (core memory $i "memory"))))

  (func (export "echo-bool") (param "v" bool) (result bool) (canon lift (core func $i "echo-i32")))
  (func (export "echo-char") (param "v" char) (result char) (canon lift (core func $i "echo-i32")))
  (func (export "echo-s8") (param "v" s8) (result s8) (canon lift (core func $i "echo-i32")))
  (func (export "echo-u64") (param "v" u64) (result u64) (canon lift (core func $i "echo-u64")))
  (func (export "echo-f64") (param "v" float64) (result float64) (canon lift (core func $i "echo-f64")))
  (func (export "echo-color") (param "v" $color) (result $color) (canon lift (core func $i "echo-i32")))
  (func (export "echo-permissions") (param "v" $permissions) (result $permissions)
    (canon lift (core func $i "echo-i32")))
  (func (export "echo-string") (param "v" string) (result string)
    (canon lift (core func $i "echo-pair") (memory (core memory $i "memory")) (realloc (core func $i "cabi_realloc"))))
  (func (export "echo-bytes") (param "v" (list u8)) (result (list u8))
    (canon lift (core func $i "echo-pair") (memory (core memory $i "memory")) (realloc (core func $i "cabi_realloc"))))
  (func (export "echo-strings") (param "v" (list string)) (result (list string))
    (canon lift (core func $i "echo-pair") (memory (core memory $i "memory")) (realloc (core func $i "cabi_realloc"))))
  (func (export "echo-option") (param "v" (option u32)) (result (option u32))
    (canon lift (core func $i "echo-option") (memory (core memory $i "memory"))))
  (func (export "echo-shape") (param "v" $shape) (result $shape)
    (canon lift (core func $i "echo-variant") (memory (core memory $i "memory")) (realloc (core func $i "cabi_realloc"))))
  (func (export "echo-tuple") (param "v" (tuple u32 string)) (result (tuple u32 string))
    (canon lift (core func $i "echo-tuple") (memory (core memory $i "memory")) (realloc (core func $i "cabi_realloc"))))
  (func (export "echo-person") (param "v" $person) (result $person)
    (canon lift (core func $i "echo-person") (memory (core memory $i "memory")) (realloc (core func $i "cabi_realloc"))))
)
