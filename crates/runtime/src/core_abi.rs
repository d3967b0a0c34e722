//! JSON ↔ core wasm values (DESIGN §4 "Core module, invoke").
//!
//! Numbers map to `i32`/`i64`/`f32`/`f64` parameters by the function's signature; an
//! `i64` may also be given as a decimal string. A JSON string (UTF-8) or `{"base64": …}`
//! (bytes) fills two `i32` parameters `(ptr, len)`: the bytes are copied into memory the
//! guest hands out from its exported `alloc(len) -> ptr`. A result can be read back from
//! guest memory when the caller asks for `string`, `bytes` or `json`: the function then
//! returns either one `i64` packed as `(ptr << 32) | len` or two `i32`s `(ptr, len)`.

use base64::Engine as _;
use serde_json::{Value as Json, json};
use wasmtime::{AsContextMut, FuncType, Instance, Memory, TypedFunc, Val, ValType};

use crate::error::InvokeError;
use crate::invoke::ResultEncoding;

/// Largest integer a JSON number holds exactly (2^53).
const MAX_SAFE_INTEGER: i64 = 1 << 53;

/// One argument after decoding, before it is written into the guest.
enum Arg {
    Value(Val),
    Bytes(Vec<u8>),
}

/// Turns JSON arguments into the parameter values of `ty`, copying strings and bytes
/// into guest memory through the module's `alloc`.
pub(crate) async fn lower_args<T: Send>(
    mut store: impl AsContextMut<Data = T>,
    instance: &Instance,
    ty: &FuncType,
    args: &[Json],
    signature: &str,
) -> Result<Vec<Val>, InvokeError> {
    let bad = |message: String| InvokeError::BadArguments { message, signature: signature.to_string() };
    let params: Vec<ValType> = ty.params().collect();
    let mut decoded = Vec::new();
    let mut index = 0;
    for (n, arg) in args.iter().enumerate() {
        let Some(param) = params.get(index) else {
            return Err(bad(format!("too many arguments: got {}", args.len())));
        };
        let bytes = match arg {
            Json::String(s) if !matches!(param, ValType::I64) => Some(s.as_bytes().to_vec()),
            Json::Object(o) if o.len() == 1 && o.contains_key("base64") => {
                let text = o["base64"].as_str().ok_or_else(|| bad(format!("argument {n}: base64 must be a string")))?;
                Some(
                    base64::engine::general_purpose::STANDARD
                        .decode(text)
                        .map_err(|e| bad(format!("argument {n}: invalid base64: {e}")))?,
                )
            }
            _ => None,
        };
        if let Some(bytes) = bytes {
            if !(matches!(param, ValType::I32) && matches!(params.get(index + 1), Some(ValType::I32))) {
                return Err(bad(format!(
                    "argument {n} is a string or bytes, which needs two i32 parameters (ptr, len) at position {index}"
                )));
            }
            decoded.push(Arg::Bytes(bytes));
            index += 2;
        } else {
            decoded.push(Arg::Value(number(param, arg).map_err(|m| bad(format!("argument {n}: {m}")))?));
            index += 1;
        }
    }
    if index != params.len() {
        return Err(bad(format!("too few arguments: got {}", args.len())));
    }

    let mut values = Vec::with_capacity(params.len());
    let mut guest = None;
    for arg in decoded {
        match arg {
            Arg::Value(v) => values.push(v),
            Arg::Bytes(bytes) => {
                let guest = match &mut guest {
                    Some(g) => g,
                    None => guest.insert(GuestAlloc::find(&mut store, instance).map_err(|e| bad(e.to_string()))?),
                };
                let ptr = guest.place(&mut store, &bytes).await.map_err(|e| bad(e.to_string()))?;
                values.push(Val::I32(ptr));
                values.push(Val::I32(bytes.len() as i32));
            }
        }
    }
    Ok(values)
}

fn number(param: &ValType, arg: &Json) -> Result<Val, String> {
    let as_int = || match arg {
        Json::Number(n) => n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from)),
        Json::String(s) => s.trim().parse::<i128>().ok(),
        _ => None,
    };
    match param {
        ValType::I32 => match as_int() {
            // Accept the signed and the unsigned reading of 32 bits.
            Some(n) if (i128::from(i32::MIN)..=i128::from(u32::MAX)).contains(&n) => Ok(Val::I32(n as i64 as i32)),
            Some(n) => Err(format!("{n} does not fit in i32")),
            None => Err(format!("expected an integer for i32, got {arg}")),
        },
        ValType::I64 => match as_int() {
            Some(n) if (i128::from(i64::MIN)..=i128::from(u64::MAX)).contains(&n) => Ok(Val::I64(n as i64)),
            Some(n) => Err(format!("{n} does not fit in i64")),
            None => Err(format!("expected an integer (or decimal string) for i64, got {arg}")),
        },
        ValType::F32 => arg.as_f64().map(|f| Val::F32((f as f32).to_bits())).ok_or_else(|| format!("expected a number for f32, got {arg}")),
        ValType::F64 => arg.as_f64().map(|f| Val::F64(f.to_bits())).ok_or_else(|| format!("expected a number for f64, got {arg}")),
        other => Err(format!("parameters of type {} cannot be passed from JSON", crate::inspect::val_type_name(other))),
    }
}

/// A module's `memory` and `alloc(len) -> ptr`, looked up once per call: how the host
/// places arguments (and HTTP requests) in guest memory.
pub(crate) struct GuestAlloc {
    memory: Memory,
    alloc: TypedFunc<i32, i32>,
}

impl GuestAlloc {
    /// Finds both exports; the error says which is missing.
    pub(crate) fn find(mut store: impl AsContextMut, instance: &Instance) -> anyhow::Result<Self> {
        let memory = exported_memory(&mut store, instance)?;
        let alloc = instance
            .get_typed_func::<i32, i32>(&mut store, "alloc")
            .map_err(|_| anyhow::anyhow!("string and bytes arguments need the module to export `alloc(i32) -> i32`"))?;
        Ok(Self { memory, alloc })
    }

    /// The guest's memory.
    pub(crate) fn memory(&self) -> Memory {
        self.memory
    }

    /// Asks the guest for `len` bytes of memory.
    pub(crate) async fn alloc<T: Send>(&self, store: impl AsContextMut<Data = T>, len: i32) -> wasmtime::Result<i32> {
        self.alloc.call_async(store, len).await
    }

    /// Copies `bytes` into memory from `alloc` and returns the pointer.
    pub(crate) async fn place<T: Send>(&self, mut store: impl AsContextMut<Data = T>, bytes: &[u8]) -> wasmtime::Result<i32> {
        let len =
            i32::try_from(bytes.len()).map_err(|_| wasmtime::Error::msg(format!("an input of {} bytes is too large", bytes.len())))?;
        let ptr = self.alloc(&mut store, len).await?;
        self.memory
            .write(&mut store, ptr as u32 as usize, bytes)
            .map_err(|_| wasmtime::Error::msg(format!("`alloc({len})` returned {ptr}, which is outside the module's memory")))?;
        Ok(ptr)
    }
}

fn exported_memory(mut store: impl AsContextMut, instance: &Instance) -> anyhow::Result<Memory> {
    instance
        .get_memory(&mut store, "memory")
        .ok_or_else(|| anyhow::anyhow!("string and bytes need the module to export its memory as `memory`"))
}

/// Turns result values into JSON, reading strings or bytes from guest memory when asked.
pub(crate) fn lift_results(
    mut store: impl AsContextMut,
    instance: &Instance,
    results: &[Val],
    encoding: ResultEncoding,
) -> Result<Json, InvokeError> {
    if encoding == ResultEncoding::Values {
        return Ok(match results {
            [] => Json::Null,
            [one] => value_json(one),
            many => Json::Array(many.iter().map(value_json).collect()),
        });
    }
    let (ptr, len) = match results {
        [Val::I64(packed)] => ((*packed as u64 >> 32) as usize, (*packed as u64 & 0xffff_ffff) as usize),
        [Val::I32(ptr), Val::I32(len)] => (*ptr as u32 as usize, *len as u32 as usize),
        _ => {
            return Err(InvokeError::BadResult(
                "reading a string, bytes or JSON result needs the function to return one i64 (ptr << 32 | len) or two i32 (ptr, len)"
                    .into(),
            ));
        }
    };
    let memory = exported_memory(&mut store, instance).map_err(|e| InvokeError::BadResult(e.to_string()))?;
    let bytes = memory
        .data(&store)
        .get(ptr..ptr.saturating_add(len))
        .ok_or_else(|| InvokeError::BadResult(format!("result ({ptr}, {len}) lies outside the module's memory")))?;
    match encoding {
        ResultEncoding::String => {
            std::str::from_utf8(bytes).map(|s| json!(s)).map_err(|e| InvokeError::BadResult(format!("result is not UTF-8: {e}")))
        }
        ResultEncoding::Bytes => Ok(json!({"base64": base64::engine::general_purpose::STANDARD.encode(bytes)})),
        ResultEncoding::Json => serde_json::from_slice(bytes).map_err(|e| InvokeError::BadResult(format!("result is not JSON: {e}"))),
        ResultEncoding::Values => unreachable!("handled above"),
    }
}

fn value_json(v: &Val) -> Json {
    match v {
        Val::I32(n) => json!(n),
        Val::I64(n) if n.abs() > MAX_SAFE_INTEGER => json!(n.to_string()),
        Val::I64(n) => json!(n),
        Val::F32(bits) => crate::component_json::val_to_json(&wasmtime::component::Val::Float32(f32::from_bits(*bits))),
        Val::F64(bits) => crate::component_json::val_to_json(&wasmtime::component::Val::Float64(f64::from_bits(*bits))),
        _ => json!(null),
    }
}
