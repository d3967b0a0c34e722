//! Component invoke with every WIT type family.

use edgefn_runtime::{InvokeError, InvokeRequest, ModuleKind};
use serde_json::{Value, json};

use crate::{example, load, runtime};

async fn call(function: &str, args: Value) -> Result<Value, InvokeError> {
    let rt = runtime();
    let loaded = load(&rt, example("typed.wat")).await;
    rt.invoke(&loaded.module, InvokeRequest::new(function, args)).await.map(|o| o.result)
}

#[tokio::test]
async fn exports_are_listed_with_wit_signatures() {
    let rt = runtime();
    let prepared = rt.prepare(&example("typed.wat")).await.unwrap();
    assert_eq!(prepared.info.kind, ModuleKind::Component);
    assert_eq!(prepared.info.world.as_deref(), Some("exports"));
    let sig = |name: &str| prepared.info.exports.iter().find(|f| f.name == name).map(|f| f.signature.clone());
    assert_eq!(sig("greet").as_deref(), Some("greet(name: string) -> string"));
    assert_eq!(sig("translate").as_deref(), Some("translate(p: record { x: s32, y: s32 }, dx: s32, dy: s32) -> record { x: s32, y: s32 }"));
    assert_eq!(sig("safe-div").as_deref(), Some("safe-div(a: s32, b: s32) -> result<s32, string>"));
}

#[tokio::test]
async fn strings_lists_records_and_results() {
    assert_eq!(call("greet", json!(["World"])).await.unwrap(), json!("Hello, World!"));
    assert_eq!(call("greet", json!({"name": "名前"})).await.unwrap(), json!("Hello, 名前!"));
    assert_eq!(call("sum", json!([[1, 2, 3, -10]])).await.unwrap(), json!(-4));
    assert_eq!(call("sum", json!([[]])).await.unwrap(), json!(0));
    assert_eq!(call("translate", json!([{"x": 1, "y": 2}, 10, -20])).await.unwrap(), json!({"x": 11, "y": -18}));
    assert_eq!(call("safe-div", json!([7, 2])).await.unwrap(), json!({"ok": 3}));
    assert_eq!(call("safe-div", json!([7, 0])).await.unwrap(), json!({"err": "division by zero"}));
}

#[tokio::test]
async fn every_type_family_round_trips() {
    let cases = [
        ("echo-bool", json!(true)),
        ("echo-char", json!("λ")),
        ("echo-s8", json!(-128)),
        ("echo-u64", json!("18446744073709551615")),
        ("echo-u64", json!(42)),
        ("echo-f64", json!(2.5)),
        ("echo-f64", json!("NaN")),
        ("echo-color", json!("green")),
        ("echo-permissions", json!(["read", "exec"])),
        ("echo-string", json!("héllo")),
        ("echo-bytes", json!([0, 1, 255])),
        ("echo-strings", json!(["a", "", "ccc"])),
        ("echo-option", json!(7)),
        ("echo-option", json!(null)),
        ("echo-shape", json!({"tag": "num", "value": 9})),
        ("echo-shape", json!({"tag": "text", "value": "hi"})),
        ("echo-shape", json!({"tag": "empty"})),
        ("echo-tuple", json!([5, "five"])),
        ("echo-person", json!({"name": "Ada", "age": 36, "tags": ["math", "code"], "email": "ada@example.com"})),
        ("echo-person", json!({"name": "Bob", "age": 0, "tags": [], "email": null})),
    ];
    for (function, value) in cases {
        let got = call(function, json!([value.clone()])).await.unwrap_or_else(|e| panic!("{function}({value}): {e}"));
        assert_eq!(got, value, "{function}");
    }
    // Alternative input forms map to the canonical output form.
    assert_eq!(call("echo-bytes", json!([{"base64": "AAH/"}])).await.unwrap(), json!([0, 1, 255]));
    assert_eq!(call("echo-shape", json!(["empty"])).await.unwrap(), json!({"tag": "empty"}));
}

#[tokio::test]
async fn bad_arguments_name_the_signature() {
    let err = call("translate", json!([{"x": 1}, 1, 2])).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, InvokeError::BadArguments { .. }), "{text}");
    assert!(text.contains("missing field `y`"), "{text}");
    assert!(text.contains("translate(p: record { x: s32, y: s32 }, dx: s32, dy: s32)"), "{text}");

    let text = call("echo-s8", json!([300])).await.unwrap_err().to_string();
    assert!(text.contains("300 is out of range for s8"), "{text}");
    let text = call("echo-color", json!(["purple"])).await.unwrap_err().to_string();
    assert!(text.contains("expected enum { red, green, blue }"), "{text}");
    let text = call("greet", json!([])).await.unwrap_err().to_string();
    assert!(text.contains("expected 1 arguments, got 0"), "{text}");
    let err = call("nope", json!([])).await.unwrap_err();
    assert!(matches!(err, InvokeError::UnknownFunction { .. }), "{err}");
    assert!(err.to_string().contains("greet(name: string) -> string"));
}

#[tokio::test]
async fn a_trap_inside_a_component_is_reported() {
    let err = call("safe-div", json!([i32::MIN, -1])).await.unwrap_err();
    assert!(matches!(err, InvokeError::Trap(ref m) if m.contains("integer overflow")), "{err}");
}
