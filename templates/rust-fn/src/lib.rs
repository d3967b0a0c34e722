//! {{name}}: typed functions for the invoke API —
//! `edgefn invoke {{name}} greet World`, `edgefn invoke {{name}} translate '{"x":1,"y":2}' 10 20`.

wit_bindgen::generate!({ world: "functions", path: "wit" });

struct Functions;

impl Guest for Functions {
    fn greet(name: String) -> String {
        format!("Hello, {name}!")
    }

    fn translate(p: Point, dx: i32, dy: i32) -> Point {
        Point { x: p.x + dx, y: p.y + dy }
    }

    fn divide(a: i32, b: i32) -> Result<i32, String> {
        a.checked_div(b).ok_or_else(|| "division by zero".to_string())
    }
}

export!(Functions);
