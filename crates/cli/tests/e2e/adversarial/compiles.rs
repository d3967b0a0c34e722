//! Point 7 of the hardening issue, compile bombs: one user's parallel uploads of modules
//! that take long to compile are bounded (429 with `Retry-After` past its share), the
//! server's memory stays bounded, and another user can still upload; a compilation past
//! its timeout is killed with its worker, and a worker that answered is kept for the next.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::{Api, Server};

fn leb(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A valid module whose one function is `adds` additions over 2,000 locals: about 3 MB
/// that takes cranelift seconds and hundreds of MB to compile. `seed` makes each distinct.
fn compile_bomb(adds: usize, seed: usize) -> Vec<u8> {
    let locals = 2000;
    let mut body = vec![1];
    leb(locals, &mut body);
    body.push(0x7f);
    let mut x = seed.wrapping_mul(2654435761) | 1;
    for _ in 0..adds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let (a, b) = (x % locals, (x >> 16) % locals);
        body.push(0x20);
        leb(a, &mut body);
        body.push(0x20);
        leb(b, &mut body);
        body.push(0x6a);
        body.push(0x21);
        leb((a + b) % locals, &mut body);
    }
    body.push(0x0b);
    let mut code = vec![1];
    leb(body.len(), &mut code);
    code.extend(body);
    let mut module = b"\0asm\x01\0\0\0".to_vec();
    for (id, payload) in [(1u8, vec![1, 0x60, 0, 0]), (3, vec![1, 0]), (10, code)] {
        module.push(id);
        leb(payload.len(), &mut module);
        module.extend(payload);
    }
    module
}

/// Uploads raw bytes and returns the status and `Retry-After`.
async fn upload(api: &Api, name: &str, bytes: Vec<u8>) -> (u16, Option<String>) {
    let url = format!("{}/api/v1/modules?name={name}&version=1.0.0", api.url);
    let res = api.http.post(url).bearer_auth(&api.token).header("content-type", "application/wasm").body(bytes).send().await.unwrap();
    (res.status().as_u16(), res.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string()))
}

/// The server's peak resident memory, in bytes.
fn peak_memory(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    let kb: u64 = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).unwrap().trim().trim_end_matches(" kB").trim().parse().unwrap();
    kb * 1024
}

#[tokio::test]
async fn one_users_parallel_compile_bombs_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let admin = server.client();
    let (mallory, alice) = (admin.new_user("mallory").await, admin.new_user("alice").await);
    let bombs: Vec<_> = (0..8)
        .map(|i| {
            let mallory = mallory.clone();
            tokio::spawn(async move { upload(&mallory, &format!("bomb{i}"), compile_bomb(300_000, i)).await })
        })
        .collect();
    // While mallory's bombs compile, alice's small upload still gets its turn.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let (status, _) = upload(&alice, "small", crate::example("add.wat")).await;
    assert_eq!(status, 201);
    assert!(started.elapsed() < Duration::from_secs(2), "alice waited {:?} behind mallory's bombs", started.elapsed());

    let mut answers = Vec::new();
    for b in bombs {
        answers.push(b.await.unwrap());
    }
    let refused = answers.iter().filter(|(s, _)| *s == 429).count();
    assert!(refused >= 6, "only {refused} of 8 parallel bombs refused: {answers:?}");
    assert!(answers.iter().all(|(s, retry)| (*s == 429 && retry.is_some()) || *s == 201 || *s == 400), "{answers:?}");
    let peak = peak_memory(&server);
    assert!(peak < 700 * 1024 * 1024, "the server peaked at {} MB", peak / (1024 * 1024));
}

/// CPU seconds the process has used itself (not counting children).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

/// Live children of `pid` whose command line mentions `what`, whichever of its threads
/// started them.
fn children_running(pid: u32, what: &str) -> Vec<u32> {
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    let children: String =
        threads.filter_map(|t| std::fs::read_to_string(t.unwrap().path().join("children")).ok()).collect::<Vec<_>>().join(" ");
    children
        .split_whitespace()
        .filter(|child| std::fs::read(format!("/proc/{child}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(what)))
        .filter_map(|child| child.parse().ok())
        .collect()
}

#[tokio::test]
async fn a_compilation_past_its_timeout_is_stopped_not_left_running() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--compile-timeout-ms", "600"]);
    let api = server.client();
    let started = Instant::now();
    let url = format!("{}/api/v1/modules?name=bomb&version=1.0.0", api.url);
    let res = api
        .http
        .post(url)
        .bearer_auth(&api.token)
        .header("content-type", "application/wasm")
        .body(compile_bomb(300_000, 1))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("compile_timeout")), "{body}");
    assert!(started.elapsed() < Duration::from_secs(3), "answered after {:?}", started.elapsed());
    // The compiler is gone with its worker: any worker left waits for a module (there was
    // no other upload, so it has compiled nothing), and neither it nor the server does more work.
    let pid = server.child.id();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let left = children_running(pid, "compile-worker");
    assert!(left.len() <= 2, "{} compile workers run", left.len());
    let before: Vec<f64> = left.iter().map(|&w| cpu_seconds(w)).collect();
    let server_before = cpu_seconds(pid);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let used = cpu_seconds(pid) - server_before;
    assert!(used < 0.5, "the server used {used:.2} CPU s in the 1.5 s after the timeout: the compilation went on");
    for (worker, before) in left.iter().zip(before) {
        let total = cpu_seconds(*worker);
        assert!(total < 0.5 && total - before < 0.1, "worker {worker} used {total:.2} CPU s, {:.2} of them just now", total - before);
    }
    // Nothing was stored, and an ordinary upload still works.
    assert_eq!(api.get("/api/v1/modules/bomb").await.0, 404);
    assert_eq!(upload(&api, "fine", crate::example("add.wat")).await.0, 201);
}

#[tokio::test]
async fn a_compile_worker_stays_warm_for_the_next_upload_and_a_dead_one_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.client();
    let pid = server.child.id();
    assert_eq!(upload(&api, "add", crate::example("add.wat")).await.0, 201);
    let warm = children_running(pid, "compile-worker");
    assert_eq!(warm.len(), 1, "one worker compiled and waits: {warm:?}");
    // Other bytes (the same would not be compiled again) go to the same worker.
    assert_eq!(upload(&api, "multiply", crate::example("multiply.wat")).await.0, 201);
    assert_eq!(children_running(pid, "compile-worker"), warm, "the waiting worker compiled the second module");

    // A worker killed while it waits (the upload right after may find it dead or still
    // exiting) is not the end of the next upload: that goes to a new worker.
    let status = Command::new("kill").args(["-KILL", &warm[0].to_string()]).status().unwrap();
    assert!(status.success());
    assert_eq!(upload(&api, "fibonacci", crate::example("fibonacci.wat")).await.0, 201);
    let replaced = children_running(pid, "compile-worker");
    assert!(replaced.len() == 1 && replaced != warm, "{replaced:?} after {warm:?}");
    let (status, body) = api.invoke("multiply", serde_json::json!({"function": "multiply", "args": [6, 7]})).await;
    assert_eq!((status, body["result"].clone()), (200, serde_json::json!(42)), "{body}");
}
