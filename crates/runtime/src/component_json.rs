//! JSON ↔ component values, driven by the WIT type (DESIGN §4 "Component, invoke"):
//! records ↔ objects, lists and tuples ↔ arrays (`list<u8>` also from `{"base64": …}`),
//! variants ↔ `{"tag": …, "value": …}` (or the tag alone as a string when the case has no
//! payload), enums ↔ strings, flags ↔ arrays of names, option ↔ `null` or the value,
//! result ↔ `{"ok": …}` / `{"err": …}`. 64-bit integers beyond ±2^53 are written as
//! decimal strings so no JSON reader loses precision; they are accepted in both forms.
//! Non-finite floats are written as the strings `"NaN"`, `"Infinity"`, `"-Infinity"`.

use base64::Engine as _;
use serde_json::{Map, Value as Json, json};
use wasmtime::component::Val;
use wasmtime::component::types::Type;

/// Largest integer a JSON number holds exactly (2^53).
const MAX_SAFE_INTEGER: u64 = 1 << 53;

/// A JSON value of `ty` to start from: zeros, empty strings and lists, a record's fields,
/// the first case of a variant or enum, `null` for an option, `{"ok": …}` for a result.
/// Resources, streams and futures cannot be written in JSON: `null`.
pub fn example(ty: &Type) -> Json {
    match ty {
        Type::Bool => json!(false),
        Type::S8 | Type::U8 | Type::S16 | Type::U16 | Type::S32 | Type::U32 | Type::S64 | Type::U64 => json!(0),
        Type::Float32 | Type::Float64 => json!(0.0),
        Type::Char => json!("a"),
        Type::String => json!(""),
        Type::List(_) | Type::FixedLengthList(_) | Type::Flags(_) => json!([]),
        Type::Map(_) => json!({}),
        Type::Record(r) => Json::Object(r.fields().map(|f| (f.name.to_string(), example(&f.ty))).collect()),
        Type::Tuple(t) => Json::Array(t.types().map(|t| example(&t)).collect()),
        Type::Variant(v) => match v.cases().next() {
            Some(case) => match case.ty {
                Some(t) => json!({"tag": case.name, "value": example(&t)}),
                None => json!(case.name),
            },
            None => Json::Null,
        },
        Type::Enum(e) => e.names().next().map_or(Json::Null, |n| json!(n)),
        Type::Result(r) => json!({"ok": r.ok().map_or(Json::Null, |t| example(&t))}),
        _ => Json::Null,
    }
}

/// WIT syntax for a type, as shown in signatures.
pub fn type_name(ty: &Type) -> String {
    match ty {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::List(l) => format!("list<{}>", type_name(&l.ty())),
        Type::FixedLengthList(l) => format!("list<{}, {}>", type_name(&l.ty()), l.len()),
        Type::Map(m) => format!("map<{}, {}>", type_name(&m.key()), type_name(&m.value())),
        Type::Record(r) => {
            let fields: Vec<String> = r.fields().map(|f| format!("{}: {}", f.name, type_name(&f.ty))).collect();
            format!("record {{ {} }}", fields.join(", "))
        }
        Type::Tuple(t) => format!("tuple<{}>", t.types().map(|t| type_name(&t)).collect::<Vec<_>>().join(", ")),
        Type::Variant(v) => {
            let cases: Vec<String> = v
                .cases()
                .map(|c| match c.ty {
                    Some(t) => format!("{}({})", c.name, type_name(&t)),
                    None => c.name.to_string(),
                })
                .collect();
            format!("variant {{ {} }}", cases.join(", "))
        }
        Type::Enum(e) => format!("enum {{ {} }}", e.names().collect::<Vec<_>>().join(", ")),
        Type::Option(o) => format!("option<{}>", type_name(&o.ty())),
        Type::Result(r) => {
            let side = |t: Option<Type>| t.map(|t| type_name(&t)).unwrap_or_else(|| "_".into());
            format!("result<{}, {}>", side(r.ok()), side(r.err()))
        }
        Type::Flags(f) => format!("flags {{ {} }}", f.names().collect::<Vec<_>>().join(", ")),
        Type::Own(_) => "own<resource>".into(),
        Type::Borrow(_) => "borrow<resource>".into(),
        Type::Future(_) => "future".into(),
        Type::Stream(_) => "stream".into(),
        Type::ErrorContext => "error-context".into(),
    }
}

/// Converts a JSON value to a component value of type `ty`; the error says where and why.
pub fn json_to_val(ty: &Type, json: &Json) -> Result<Val, String> {
    convert(ty, json).map_err(|e| e.to_string())
}

struct PathError {
    path: Vec<String>,
    message: String,
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            let path: Vec<&str> = self.path.iter().rev().map(String::as_str).collect();
            write!(f, "at {}: {}", path.join(""), self.message)
        }
    }
}

fn fail<T>(ty: &Type, json: &Json) -> Result<T, PathError> {
    let shown = json.to_string();
    let shown = if shown.len() > 60 { format!("{}…", &shown[..shown.floor_char_boundary(60)]) } else { shown };
    Err(PathError { path: vec![], message: format!("expected {}, got {shown}", type_name(ty)) })
}

fn at<T>(segment: impl Into<String>, r: Result<T, PathError>) -> Result<T, PathError> {
    r.map_err(|mut e| {
        e.path.push(segment.into());
        e
    })
}

fn int(ty: &Type, json: &Json) -> Result<i128, PathError> {
    let n = match json {
        Json::Number(n) => n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from)),
        Json::String(s) => s.trim().parse::<i128>().ok(),
        _ => None,
    };
    match n {
        Some(n) => Ok(n),
        None => fail(ty, json),
    }
}

fn ranged<T: TryFrom<i128>>(ty: &Type, json: &Json) -> Result<T, PathError> {
    let n = int(ty, json)?;
    T::try_from(n).map_err(|_| PathError { path: vec![], message: format!("{n} is out of range for {}", type_name(ty)) })
}

fn float(ty: &Type, json: &Json) -> Result<f64, PathError> {
    match json {
        Json::Number(n) => n.as_f64().map_or_else(|| fail(ty, json), Ok),
        Json::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            _ => fail(ty, json),
        },
        _ => fail(ty, json),
    }
}

fn convert(ty: &Type, json: &Json) -> Result<Val, PathError> {
    Ok(match ty {
        Type::Bool => match json {
            Json::Bool(b) => Val::Bool(*b),
            _ => return fail(ty, json),
        },
        Type::S8 => Val::S8(ranged(ty, json)?),
        Type::U8 => Val::U8(ranged(ty, json)?),
        Type::S16 => Val::S16(ranged(ty, json)?),
        Type::U16 => Val::U16(ranged(ty, json)?),
        Type::S32 => Val::S32(ranged(ty, json)?),
        Type::U32 => Val::U32(ranged(ty, json)?),
        Type::S64 => Val::S64(ranged(ty, json)?),
        Type::U64 => Val::U64(ranged(ty, json)?),
        Type::Float32 => Val::Float32(float(ty, json)? as f32),
        Type::Float64 => Val::Float64(float(ty, json)?),
        Type::Char => match json.as_str().map(|s| (s.chars().next(), s.chars().count())) {
            Some((Some(c), 1)) => Val::Char(c),
            _ => return fail(ty, json),
        },
        Type::String => match json {
            Json::String(s) => Val::String(s.clone()),
            _ => return fail(ty, json),
        },
        Type::List(l) => {
            let elem = l.ty();
            if let (Type::U8, Some(b64)) = (&elem, base64_field(json)) {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| PathError { path: vec![], message: format!("invalid base64: {e}") })?;
                Val::List(bytes.into_iter().map(Val::U8).collect())
            } else {
                Val::List(array_items(ty, json, &elem)?)
            }
        }
        Type::FixedLengthList(l) => {
            let items = array_items(ty, json, &l.ty())?;
            if items.len() != l.len() as usize {
                return Err(PathError { path: vec![], message: format!("expected {} elements, got {}", l.len(), items.len()) });
            }
            Val::FixedLengthList(items)
        }
        Type::Map(m) => {
            let (kt, vt) = (m.key(), m.value());
            let mut pairs = Vec::new();
            match json {
                Json::Object(o) => {
                    for (k, v) in o {
                        let key = at(format!(".{k}"), convert(&kt, &Json::String(k.clone())))?;
                        pairs.push((key, at(format!(".{k}"), convert(&vt, v))?));
                    }
                }
                Json::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        match item.as_array().map(Vec::as_slice) {
                            Some([k, v]) => {
                                pairs.push((at(format!("[{i}][0]"), convert(&kt, k))?, at(format!("[{i}][1]"), convert(&vt, v))?))
                            }
                            _ => {
                                return at(
                                    format!("[{i}]"),
                                    Err(PathError { path: vec![], message: "expected a [key, value] pair".into() }),
                                );
                            }
                        }
                    }
                }
                _ => return fail(ty, json),
            }
            Val::Map(pairs)
        }
        Type::Record(r) => {
            let Json::Object(obj) = json else { return fail(ty, json) };
            let mut fields = Vec::new();
            for f in r.fields() {
                let v = match (obj.get(f.name), &f.ty) {
                    (Some(v), t) => at(format!(".{}", f.name), convert(t, v))?,
                    (None, Type::Option(_)) => Val::Option(None),
                    (None, _) => {
                        return Err(PathError { path: vec![], message: format!("missing field `{}` of {}", f.name, type_name(ty)) });
                    }
                };
                fields.push((f.name.to_string(), v));
            }
            if let Some(extra) = obj.keys().find(|k| r.fields().all(|f| f.name != k.as_str())) {
                return Err(PathError { path: vec![], message: format!("unknown field `{extra}` for {}", type_name(ty)) });
            }
            Val::Record(fields)
        }
        Type::Tuple(t) => {
            let types: Vec<Type> = t.types().collect();
            let Some(items) = json.as_array().filter(|a| a.len() == types.len()) else { return fail(ty, json) };
            let mut out = Vec::new();
            for (i, (t, v)) in types.iter().zip(items).enumerate() {
                out.push(at(format!("[{i}]"), convert(t, v))?);
            }
            Val::Tuple(out)
        }
        Type::Variant(v) => {
            let (tag, payload) = match json {
                Json::String(s) => (s.as_str(), None),
                Json::Object(o) if o.contains_key("tag") && o.len() <= 2 && (o.len() == 1 || o.contains_key("value")) => {
                    match o.get("tag").and_then(Json::as_str) {
                        Some(t) => (t, o.get("value")),
                        None => return fail(ty, json),
                    }
                }
                _ => return fail(ty, json),
            };
            let Some(case) = v.cases().find(|c| c.name == tag) else {
                let names: Vec<&str> = v.cases().map(|c| c.name).collect();
                return Err(PathError { path: vec![], message: format!("unknown case `{tag}`, expected one of {}", names.join(", ")) });
            };
            let payload = match (case.ty, payload) {
                (Some(t), Some(p)) => Some(Box::new(at(".value", convert(&t, p))?)),
                (None, None | Some(Json::Null)) => None,
                (Some(_), None) => return Err(PathError { path: vec![], message: format!("case `{tag}` needs a \"value\"") }),
                (None, Some(_)) => return Err(PathError { path: vec![], message: format!("case `{tag}` has no payload") }),
            };
            Val::Variant(tag.to_string(), payload)
        }
        Type::Enum(e) => match json.as_str() {
            Some(s) if e.names().any(|n| n == s) => Val::Enum(s.to_string()),
            _ => return fail(ty, json),
        },
        Type::Option(o) => match json {
            Json::Null => Val::Option(None),
            v => Val::Option(Some(Box::new(convert(&o.ty(), v)?))),
        },
        Type::Result(r) => {
            let Json::Object(obj) = json else { return fail(ty, json) };
            let side = |key: &str, t: Option<Type>| -> Result<Option<Box<Val>>, PathError> {
                match (t, obj.get(key)) {
                    (Some(t), Some(v)) => Ok(Some(Box::new(at(format!(".{key}"), convert(&t, v))?))),
                    (None, _) => Ok(None),
                    (Some(_), None) => unreachable!("key checked by caller"),
                }
            };
            match (obj.len(), obj.contains_key("ok"), obj.contains_key("err")) {
                (1, true, false) => Val::Result(Ok(side("ok", r.ok())?)),
                (1, false, true) => Val::Result(Err(side("err", r.err())?)),
                _ => return fail(ty, json),
            }
        }
        Type::Flags(f) => {
            let Some(items) = json.as_array() else { return fail(ty, json) };
            let mut set = Vec::new();
            for item in items {
                match item.as_str() {
                    Some(s) if f.names().any(|n| n == s) => set.push(s.to_string()),
                    _ => return fail(ty, json),
                }
            }
            Val::Flags(set)
        }
        Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_) | Type::ErrorContext => {
            return Err(PathError { path: vec![], message: format!("{} values cannot be passed as JSON", type_name(ty)) });
        }
    })
}

fn base64_field(json: &Json) -> Option<&str> {
    match json {
        Json::Object(o) if o.len() == 1 => o.get("base64").and_then(Json::as_str),
        _ => None,
    }
}

fn array_items(ty: &Type, json: &Json, elem: &Type) -> Result<Vec<Val>, PathError> {
    let Some(items) = json.as_array() else { return fail(ty, json) };
    items.iter().enumerate().map(|(i, v)| at(format!("[{i}]"), convert(elem, v))).collect()
}

fn int_json(n: i128) -> Json {
    if n.unsigned_abs() > u128::from(MAX_SAFE_INTEGER) { Json::String(n.to_string()) } else { json!(n as i64) }
}

fn float_json(f: f64) -> Json {
    if f.is_nan() {
        json!("NaN")
    } else if f.is_infinite() {
        json!(if f > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        json!(f)
    }
}

/// Converts a component value to JSON (the inverse of [`json_to_val`]).
pub fn val_to_json(val: &Val) -> Json {
    match val {
        Val::Bool(b) => json!(b),
        Val::S8(n) => json!(n),
        Val::U8(n) => json!(n),
        Val::S16(n) => json!(n),
        Val::U16(n) => json!(n),
        Val::S32(n) => json!(n),
        Val::U32(n) => json!(n),
        Val::S64(n) => int_json(i128::from(*n)),
        Val::U64(n) => int_json(i128::from(*n)),
        Val::Float32(f) => float_json(f64::from(*f)),
        Val::Float64(f) => float_json(*f),
        Val::Char(c) => json!(c.to_string()),
        Val::String(s) => json!(s),
        Val::List(items) | Val::Tuple(items) | Val::FixedLengthList(items) => Json::Array(items.iter().map(val_to_json).collect()),
        Val::Map(pairs) => Json::Array(pairs.iter().map(|(k, v)| json!([val_to_json(k), val_to_json(v)])).collect()),
        Val::Record(fields) => Json::Object(fields.iter().map(|(k, v)| (k.clone(), val_to_json(v))).collect::<Map<_, _>>()),
        Val::Variant(tag, payload) => match payload {
            Some(p) => json!({"tag": tag, "value": val_to_json(p)}),
            None => json!({"tag": tag}),
        },
        Val::Enum(name) => json!(name),
        Val::Option(o) => o.as_ref().map_or(Json::Null, |v| val_to_json(v)),
        Val::Result(Ok(v)) => json!({"ok": v.as_ref().map_or(Json::Null, |v| val_to_json(v))}),
        Val::Result(Err(v)) => json!({"err": v.as_ref().map_or(Json::Null, |v| val_to_json(v))}),
        Val::Flags(names) => json!(names),
        Val::Resource(_) => json!("<resource>"),
        Val::Future(_) => json!("<future>"),
        Val::Stream(_) => json!("<stream>"),
        Val::ErrorContext(_) => json!("<error-context>"),
    }
}
