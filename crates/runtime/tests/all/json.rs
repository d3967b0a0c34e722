//! Property tests: every component value survives value → JSON → value, for the WIT
//! types of the example component, and strings survive a real call.

use edgefn_runtime::{InvokeRequest, json_to_val, val_to_json};
use proptest::prelude::*;
use wasmtime::component::Val;
use wasmtime::component::types::{ComponentItem, Type};

use crate::{example, load, runtime};

/// The parameter type of every `echo-*` function of the example component.
fn echo_types() -> Vec<(String, Type)> {
    let engine = wasmtime::Engine::default();
    let component = wasmtime::component::Component::new(&engine, example("typed.wat")).unwrap();
    let mut out = Vec::new();
    for (name, item) in component.component_type().exports(&engine) {
        if let ComponentItem::ComponentFunc(f) = item.ty
            && (name.starts_with("echo-") || name == "translate")
        {
            out.push((name.to_string(), f.params().next().unwrap().1));
        }
    }
    out
}

fn string() -> BoxedStrategy<String> {
    any::<String>().boxed()
}

/// Any value of type `ty`.
fn value(ty: &Type) -> BoxedStrategy<Val> {
    match ty {
        Type::Bool => any::<bool>().prop_map(Val::Bool).boxed(),
        Type::S8 => any::<i8>().prop_map(Val::S8).boxed(),
        Type::S32 => any::<i32>().prop_map(Val::S32).boxed(),
        Type::U8 => any::<u8>().prop_map(Val::U8).boxed(),
        Type::U32 => any::<u32>().prop_map(Val::U32).boxed(),
        Type::U64 => any::<u64>().prop_map(Val::U64).boxed(),
        Type::Float64 => any::<f64>().prop_map(Val::Float64).boxed(),
        Type::Char => any::<char>().prop_map(Val::Char).boxed(),
        Type::String => string().prop_map(Val::String).boxed(),
        Type::List(l) => proptest::collection::vec(value(&l.ty()), 0..5).prop_map(Val::List).boxed(),
        Type::Tuple(t) => t.types().map(|t| value(&t)).collect::<Vec<_>>().prop_map(Val::Tuple).boxed(),
        Type::Record(r) => {
            let names: Vec<String> = r.fields().map(|f| f.name.to_string()).collect();
            r.fields()
                .map(|f| value(&f.ty))
                .collect::<Vec<_>>()
                .prop_map(move |vals| Val::Record(names.iter().cloned().zip(vals).collect()))
                .boxed()
        }
        Type::Option(o) => proptest::option::of(value(&o.ty())).prop_map(|v| Val::Option(v.map(Box::new))).boxed(),
        Type::Enum(e) => proptest::sample::select(e.names().map(str::to_string).collect::<Vec<_>>()).prop_map(Val::Enum).boxed(),
        Type::Flags(f) => proptest::sample::subsequence(f.names().map(str::to_string).collect::<Vec<_>>(), 0..=f.names().len())
            .prop_map(Val::Flags)
            .boxed(),
        Type::Variant(v) => {
            let cases: Vec<BoxedStrategy<Val>> = v
                .cases()
                .map(|c| {
                    let name = c.name.to_string();
                    match c.ty {
                        Some(t) => value(&t).prop_map(move |p| Val::Variant(name.clone(), Some(Box::new(p)))).boxed(),
                        None => Just(Val::Variant(name, None)).boxed(),
                    }
                })
                .collect();
            proptest::strategy::Union::new(cases).boxed()
        }
        other => panic!("no strategy for {other:?}"),
    }
}

fn typed_values() -> impl Strategy<Value = (Type, Val)> {
    let types = echo_types();
    proptest::sample::select(types).prop_flat_map(|(_, ty)| value(&ty).prop_map(move |v| (ty.clone(), v)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn value_to_json_and_back((ty, val) in typed_values()) {
        let json = val_to_json(&val);
        let back = json_to_val(&ty, &json).map_err(|e| TestCaseError::fail(format!("{json}: {e}")))?;
        prop_assert_eq!(back, val);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn strings_survive_a_real_call(s in "\\PC{0,200}") {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let got = rt.block_on(async {
            let wasm = runtime();
            let loaded = load(&wasm, example("typed.wat")).await;
            wasm.invoke(&loaded.module, InvokeRequest::new("echo-string", serde_json::json!([s.clone()]))).await.unwrap().result
        });
        prop_assert_eq!(got, serde_json::json!(s));
    }
}
