// {{name}}: answers every request on the handle ABI (docs/abi.md) with a greeting, the method
// and the path: the host allocates with `alloc`, calls `handle` and reads the response —
// a status line, headers, an empty line, the body — from the buffer at `out`.

const HEAD = "200\ncontent-type: text/plain; charset=utf-8\n\n";

export function alloc(len: i32): i32 {
  return heap.alloc(len) as i32;
}

export function handle(
  methodPtr: i32, methodLen: i32, pathPtr: i32, pathLen: i32,
  headersPtr: i32, headersLen: i32, bodyPtr: i32, bodyLen: i32,
  out: i32, cap: i32,
): i32 {
  const method = String.UTF8.decodeUnsafe(methodPtr, methodLen);
  const path = String.UTF8.decodeUnsafe(pathPtr, pathLen);
  const response = String.UTF8.encode(HEAD + "Hello from {{name}}! " + method + " " + path + "\n");
  const len = response.byteLength;
  if (len > cap) return -1;
  memory.copy(out, changetype<usize>(response), len);
  return len;
}
