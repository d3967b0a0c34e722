//! What a compiled module offers: its kind, the world of a component, its exported
//! functions with signatures, and its declared memory.

use serde::{Deserialize, Serialize};
use wasmtime::component::types::{ComponentFunc, ComponentItem};
use wasmtime::{Engine, ExternType, FuncType, ValType};

use crate::component_json::type_name;

/// Whether the bytes are a core module or a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModuleKind {
    /// A core WebAssembly module.
    Core,
    /// A component (component model).
    Component,
}

impl ModuleKind {
    /// The lowercase name used in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Core => "core",
            Self::Component => "component",
        }
    }
}

/// One parameter of an exported function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    /// The parameter name (components) or its position as `p0`, `p1`… (core modules).
    pub name: String,
    /// The type: `i32`… for core modules, WIT syntax for components.
    #[serde(rename = "type")]
    pub ty: String,
    /// For components, a JSON value of the type to start from (a record's fields, a
    /// variant's first case…), as the invoke API takes it; absent for core modules.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub example: serde_json::Value,
}

/// An exported function and its signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedFunction {
    /// The name to invoke it by: `add`, or `interface#func` for a function inside an
    /// exported component interface.
    pub name: String,
    /// Parameters in order.
    pub params: Vec<Param>,
    /// Result types in order.
    pub results: Vec<String>,
    /// The whole signature on one line, as shown in error messages.
    pub signature: String,
}

/// Everything learned about a module at upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModuleInfo {
    /// Core module or component.
    pub kind: ModuleKind,
    /// For components: `wasi:http/proxy`, `wasi:cli/command` or `exports`.
    pub world: Option<String>,
    /// Exported functions with signatures, sorted by name.
    pub exports: Vec<ExportedFunction>,
    /// Imports: `module.name` of a core module's functions, instance names of a component.
    pub imports: Vec<String>,
    /// Initial pages of the exported (or first) memory of a core module.
    pub memory_pages: Option<u64>,
    /// Declared maximum pages of that memory, if any.
    pub max_memory_pages: Option<u64>,
}

/// Function imports of a core module, as `module.name`.
pub(crate) fn core_imports(module: &wasmtime::Module) -> Vec<String> {
    module.imports().filter(|i| i.ty().func().is_some()).map(|i| format!("{}.{}", i.module(), i.name())).collect()
}

/// Names a component imports (`wasi:http/types@0.2.0`…).
pub(crate) fn component_imports(component: &wasmtime::component::Component) -> Vec<String> {
    component.component_type().imports(component.engine()).map(|(name, _)| name.to_string()).collect()
}

/// Exported functions of a core module.
pub(crate) fn core_exports(module: &wasmtime::Module) -> Vec<ExportedFunction> {
    let mut out: Vec<_> = module
        .exports()
        .filter_map(|e| match e.ty() {
            ExternType::Func(f) => Some(core_function(e.name(), &f)),
            _ => None,
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

pub(crate) fn core_function(name: &str, ty: &FuncType) -> ExportedFunction {
    let params: Vec<Param> = ty
        .params()
        .enumerate()
        .map(|(i, t)| Param { name: format!("p{i}"), ty: val_type_name(&t).to_string(), example: serde_json::Value::Null })
        .collect();
    let results: Vec<String> = ty.results().map(|t| val_type_name(&t).to_string()).collect();
    let args = params.iter().map(|p| p.ty.as_str()).collect::<Vec<_>>().join(", ");
    let signature = match results.len() {
        0 => format!("{name}({args})"),
        1 => format!("{name}({args}) -> {}", results[0]),
        _ => format!("{name}({args}) -> ({})", results.join(", ")),
    };
    ExportedFunction { name: name.to_string(), params, results, signature }
}

/// The wasm name of a core value type.
pub(crate) fn val_type_name(ty: &ValType) -> &'static str {
    match ty {
        ValType::I32 => "i32",
        ValType::I64 => "i64",
        ValType::F32 => "f32",
        ValType::F64 => "f64",
        ValType::V128 => "v128",
        ValType::Ref(_) => "ref",
    }
}

/// Initial and maximum pages of a core module's memory (the exported one if any).
pub(crate) fn core_memory(module: &wasmtime::Module) -> (Option<u64>, Option<u64>) {
    let exported = module.exports().find_map(|e| e.ty().memory().cloned());
    let imported = || module.imports().find_map(|i| i.ty().memory().cloned());
    match exported.or_else(imported) {
        Some(m) => (Some(m.minimum()), m.maximum()),
        None => (None, None),
    }
}

/// Exported functions of a component, including those inside exported interfaces.
pub(crate) fn component_exports(engine: &Engine, component: &wasmtime::component::Component) -> Vec<ExportedFunction> {
    let mut out = Vec::new();
    for (name, item) in component.component_type().exports(engine) {
        match item.ty {
            ComponentItem::ComponentFunc(f) => out.push(component_function(name, &f)),
            ComponentItem::ComponentInstance(inst) => {
                for (fname, fitem) in inst.exports(engine) {
                    if let ComponentItem::ComponentFunc(f) = fitem.ty {
                        out.push(component_function(&format!("{name}#{fname}"), &f));
                    }
                }
            }
            _ => {}
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

pub(crate) fn component_function(name: &str, ty: &ComponentFunc) -> ExportedFunction {
    let params: Vec<Param> =
        ty.params().map(|(n, t)| Param { name: n.to_string(), ty: type_name(&t), example: crate::component_json::example(&t) }).collect();
    let results: Vec<String> = ty.results().map(|t| type_name(&t)).collect();
    let args = params.iter().map(|p| format!("{}: {}", p.name, p.ty)).collect::<Vec<_>>().join(", ");
    let signature = match results.first() {
        Some(r) => format!("{name}({args}) -> {r}"),
        None => format!("{name}({args})"),
    };
    ExportedFunction { name: name.to_string(), params, results, signature }
}

/// The world a component targets, judged by its exports.
pub(crate) fn component_world(engine: &Engine, component: &wasmtime::component::Component) -> String {
    let names: Vec<String> = component.component_type().exports(engine).map(|(n, _)| n.to_string()).collect();
    if names.iter().any(|n| n.starts_with("wasi:http/incoming-handler@")) {
        "wasi:http/proxy".into()
    } else if names.iter().any(|n| n.starts_with("wasi:http/handler@")) {
        "wasi:http/service".into()
    } else if names.iter().any(|n| n.starts_with("wasi:cli/run@")) {
        "wasi:cli/command".into()
    } else {
        "exports".into()
    }
}
