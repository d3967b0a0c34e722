//! Builds from source: archives refused before anything is stored, the workers'
//! protocol, the sandbox (no data directory, no network, killed past its time, memory and
//! disk with everything it started, its log cut), and Rust and JS projects sent through the
//! API becoming versions that answer through the node.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tar::EntryType;

use crate::cli::edgefn_in as edgefn;
use crate::{Api, Launch, Server, has_bwrap, has_npm, has_wasip2};

/// A gzipped tar of `(path, kind, content or link target)`, paths written raw so bad ones
/// can be made.
fn archive(entries: &[(&str, EntryType, &str)]) -> Vec<u8> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default()));
    for (path, kind, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.as_gnu_mut().unwrap().name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_entry_type(*kind);
        header.set_mode(if path.ends_with(".sh") { 0o755 } else { 0o644 });
        let body = if *kind == EntryType::Regular { data.as_bytes() } else { b"" };
        if *kind == EntryType::Symlink {
            header.set_link_name(data).unwrap();
        }
        header.set_size(body.len() as u64);
        header.set_cksum();
        tar.append(&header, body).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

/// A JavaScript project whose `npm run build` runs `script`.
fn npm_project(script: &str) -> Vec<u8> {
    let package = json!({"name": "probe", "version": "1.0.0", "private": true, "scripts": {"build": script}});
    archive(&[("package.json", EntryType::Regular, &package.to_string())])
}

async fn submit(api: &Api, query: &str, body: Vec<u8>) -> (u16, Value) {
    api.send(api.http.post(format!("{}/api/v1/builds?{query}", api.url)).header("content-type", "application/gzip").body(body)).await
}

/// Waits (at most `limit`) until the build has ended; returns it and its whole log.
async fn ended(api: &Api, id: &str, limit: Duration) -> (Value, String) {
    let deadline = Instant::now() + limit;
    loop {
        let (status, build) = api.get(&format!("/api/v1/builds/{id}")).await;
        assert_eq!(status, 200, "{build}");
        if build["status"] == "succeeded" || build["status"] == "failed" {
            let (_, log) = api.get(&format!("/api/v1/builds/{id}/log")).await;
            return (build, log["text"].as_str().unwrap().to_string());
        }
        assert!(Instant::now() < deadline, "build {id} did not end within {limit:?}: {build}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn bad_archives_and_requests_are_refused_before_anything_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.client();
    let project = |extra: (&'static str, EntryType, &'static str)| archive(&[("package.json", EntryType::Regular, "{}"), extra]);
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("name=a", b"not gzip".to_vec(), 400, "not a readable gzipped tar archive"),
        ("name=a", project(("/etc/cron.d/x", EntryType::Regular, "x")), 400, "entry `/etc/cron.d/x` is an absolute path"),
        ("name=a", project(("src/../../x", EntryType::Regular, "x")), 400, "entry `src/../../x` contains `..`"),
        ("name=a", project(("l", EntryType::Symlink, "../../etc")), 400, "symbolic link `l` -> `../../etc` leads out of the tree"),
        ("name=a", project(("l", EntryType::Symlink, "/etc/passwd")), 400, "symbolic link `l` -> `/etc/passwd` is absolute"),
        ("name=a", archive(&[("README.md", EntryType::Regular, "hi")]), 400, "no Cargo.toml (Rust), asconfig.json"),
        ("name=a&toolchain=rust", project(("a.js", EntryType::Regular, "")), 400, "toolchain rust needs a Cargo.toml"),
        (
            "name=a&toolchain=cobol",
            project(("a.js", EntryType::Regular, "")),
            400,
            "toolchain `cobol` is not one of rust, js, assemblyscript",
        ),
        ("version=1", project(("a.js", EntryType::Regular, "")), 400, "missing module name (`name`)"),
        ("name=a&version=..", project(("a.js", EntryType::Regular, "")), 400, "version `..` is invalid"),
        ("name=a", vec![0; edgefn_control::MAX_ARCHIVE_BYTES + 1], 413, "over the limit"),
    ];
    for (query, body, status, message) in cases {
        let (got, answer) = submit(&api, query, body).await;
        assert_eq!(got, status, "{query}: {answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains(message), "{query}: {answer}");
    }
    assert_eq!(api.get("/api/v1/builds").await.1["builds"], json!([]), "nothing was queued");

    // A good one is queued for its sender, hidden from others; the same version twice is a conflict.
    let good = npm_project("true");
    let (status, build) = submit(&api, "name=probe&version=1.0.0", good.clone()).await;
    assert_eq!((status, build["status"].as_str(), build["toolchain"].as_str()), (202, Some("queued"), Some("js")), "{build}");
    let id = build["id"].as_str().unwrap();
    assert_eq!(submit(&api, "name=probe&version=1.0.0", good).await.0, 409);
    let eve = api.new_user("eve").await;
    assert_eq!(eve.get(&format!("/api/v1/builds/{id}")).await.0, 404);
    assert_eq!(eve.get("/api/v1/builds").await.1["builds"], json!([]));

    // Workers are admins; a claim takes the oldest queued build, then there is none.
    let (status, refused) = eve.post("/api/v1/builds/claim?worker=w", json!(null)).await;
    assert_eq!((status, refused["error"]["message"].as_str()), (403, Some("only admins run build workers")));
    let (status, claimed) = api.post("/api/v1/builds/claim?worker=w1", json!(null)).await;
    assert_eq!((status, claimed["id"].as_str(), claimed["worker"].as_str()), (200, Some(id), Some("w1")), "{claimed}");
    assert_eq!(api.post("/api/v1/builds/claim?worker=w2&waitSeconds=1", json!(null)).await.0, 204);
    let source = api.http.get(format!("{}/api/v1/builds/{id}/source", api.url)).bearer_auth(&api.token).send().await.unwrap();
    assert_eq!(source.bytes().await.unwrap(), npm_project("true"));
    let log = api.http.post(format!("{}/api/v1/builds/{id}/log", api.url)).bearer_auth(&api.token).body("step one\n");
    assert_eq!(log.send().await.unwrap().status(), 204);
    let (status, failed) = api.post(&format!("/api/v1/builds/{id}/failure"), json!({"error": "the compiler said no"})).await;
    assert_eq!((status, failed["status"].as_str(), failed["error"].as_str()), (200, Some("failed"), Some("the compiler said no")));
    let (_, log) = api.get(&format!("/api/v1/builds/{id}/log")).await;
    assert_eq!((log["text"].as_str(), log["next"].as_i64(), log["status"].as_str()), (Some("step one\n"), Some(1), Some("failed")));
    assert_eq!(api.get(&format!("/api/v1/builds/{id}/log?after=1")).await.1["text"], "");
    // An ended build takes no more log, source or artifact; its module was never made.
    let late = api.http.post(format!("{}/api/v1/builds/{id}/log", api.url)).bearer_auth(&api.token).body("late");
    assert_eq!(late.send().await.unwrap().status(), 409);
    assert_eq!(api.get(&format!("/api/v1/builds/{id}/source")).await.0, 409);
    assert_eq!(api.get("/api/v1/modules/probe").await.0, 404);

    // A worker that claims again lost the build it had: that one is failed.
    let (_, queued) = submit(&api, "name=probe&version=1.0.1", npm_project("true")).await;
    assert_eq!(api.post("/api/v1/builds/claim?worker=w1", json!(null)).await.1["id"], queued["id"]);
    assert_eq!(api.post("/api/v1/builds/claim?worker=w1", json!(null)).await.0, 204);
    let (_, lost) = api.get(&format!("/api/v1/builds/{}", queued["id"].as_str().unwrap())).await;
    assert_eq!(
        (lost["status"].as_str(), lost["error"].as_str()),
        (Some("failed"), Some("the build worker stopped before the build ended"))
    );

    // A build whose sender is disabled before it ends never becomes a version.
    let (status, queued) = submit(&eve, "name=late", npm_project("true")).await;
    assert_eq!(status, 202, "{queued}");
    let late = queued["id"].as_str().unwrap();
    assert_eq!(api.post("/api/v1/builds/claim?worker=w1", json!(null)).await.1["id"], late);
    assert_eq!(api.patch("/api/v1/users/eve", json!({"disabled": true})).await.0, 200);
    let built = api.http.post(format!("{}/api/v1/builds/{late}/artifact", api.url)).bearer_auth(&api.token);
    let built = built.header("content-type", "application/wasm").body(crate::example("add.wat"));
    assert_eq!(built.send().await.unwrap().status(), 200);
    let (_, late) = api.get(&format!("/api/v1/builds/{late}")).await;
    assert_eq!(
        (late["status"].as_str(), late["error"].as_str()),
        (Some("failed"), Some("the built module was refused: its sender eve was disabled while it ran")),
        "{late}"
    );
    assert_eq!(api.get("/api/v1/modules/late").await.0, 404);
}

/// System calls the sandbox's filter refuses, by their x86-64 numbers. With these arguments
/// (all zero) the first two would pass unfiltered, so their EPERM is the filter's; the
/// others would mostly fail otherwise (EFAULT, EINVAL).
const SYSCALLS: [(u32, &str); 8] = [
    (101, "ptrace (PTRACE_TRACEME)"),
    (272, "unshare (nothing)"),
    (165, "mount"),
    (155, "pivot_root"),
    (248, "add_key"),
    (250, "keyctl"),
    (321, "bpf"),
    (323, "userfaultfd"),
];

/// A standalone `edgefn build-worker` with tight limits, killed when dropped.
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_sandbox_hides_the_data_directory_and_the_network_and_stops_builds_past_their_limits() {
    if !has_bwrap() || !has_npm() {
        eprintln!("no bubblewrap or npm here (./scripts/test installs them): not running builds");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    let api = server.client();
    let _worker = Worker(
        crate::client_command()
            .args([
                "build-worker",
                "--name",
                "tight",
                "--build-time-limit-seconds",
                "20",
                "--build-memory-mb",
                "256",
                "--build-log-kb",
                "64",
                "--build-disk-mb",
                "64",
            ])
            .arg("--work-dir")
            .arg(dir.path().join("builds"))
            .env("EDGEFN_URL", &server.url)
            .env("EDGEFN_TOKEN", &server.token)
            .env("EDGEFN_LOG", "warn")
            .spawn()
            .unwrap(),
    );
    let build = |name: &'static str, script: String| {
        let api = api.clone();
        async move {
            let (status, queued) = submit(&api, &format!("name={name}"), npm_project(&script)).await;
            assert_eq!(status, 202, "{queued}");
            ended(&api, queued["id"].as_str().unwrap(), Duration::from_secs(120)).await
        }
    };

    // The data directory is not there, nor is the control plane's API.
    let data = data.display();
    let port = server.url.rsplit(':').next().unwrap();
    let snoop = format!(
        "cat {data}/admin-token; ls {data}; node -e \"require('http').get('http://127.0.0.1:{port}/healthz', r => console.log('REACHED', r.statusCode)).on('error', e => console.log('NO NETWORK', e.code))\"; id -u; exit 3"
    );
    let (build_row, log) = build("snoop", snoop).await;
    assert_eq!(build_row["status"], "failed");
    assert!(build_row["error"].as_str().unwrap().contains("failed (exit code 3)"), "{build_row}");
    assert!(log.contains(&format!("cat: {data}/admin-token: No such file or directory")), "{log}");
    assert!(log.contains(&format!("ls: cannot access '{data}': No such file or directory")), "{log}");
    assert!(log.contains("NO NETWORK ECONNREFUSED") && !log.contains("REACHED 200"), "{log}");
    assert!(log.contains("\n1000\n"), "the build runs as uid 1000: {log}");
    assert!(!log.contains(&server.token), "the token never reaches the log");

    // The dependency step reaches only public addresses, through the worker's proxy:
    // dependencies on this machine's loopback or its own address never connect, and the
    // log says why.
    let (port, connections) = counting_listener().await;
    let own = String::from_utf8(Command::new("hostname").arg("-I").output().unwrap().stdout).unwrap();
    let mut hosts = vec!["127.0.0.1".to_string(), "[::1]".to_string(), "localhost".to_string()];
    hosts.extend(own.split_whitespace().next().map(str::to_string));
    let dependencies: serde_json::Map<String, Value> =
        hosts.iter().enumerate().map(|(i, host)| (format!("dep{i}"), json!(format!("https://{host}:{port}/dep.tgz")))).collect();
    let package = json!({"name": "leak", "version": "1.0.0", "private": true, "dependencies": dependencies, "scripts": {"build": "true"}});
    let (status, queued) = submit(&api, "name=leak", archive(&[("package.json", EntryType::Regular, &package.to_string())])).await;
    assert_eq!(status, 202, "{queued}");
    let (build_row, log) = ended(&api, queued["id"].as_str().unwrap(), Duration::from_secs(120)).await;
    assert_eq!(build_row["status"], "failed", "{log}");
    assert!(build_row["error"].as_str().unwrap().contains("`npm install"), "{build_row}");
    // (npm asks for an IPv6 host without its brackets.)
    for host in &hosts {
        let bare = host.trim_matches(['[', ']']);
        assert!(log.contains(&format!("build proxy: refused {bare}:{port}: ")), "{host}: {log}");
    }
    assert!(log.contains(&format!("{port}: a loopback address (::1); the dependency step reaches only public addresses")), "{log}");
    assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 0, "a dependency step reached this machine: {log}");

    // The host's kernel is out of reach: its settings read-only (each written back with the
    // value read, so nothing changes should a write ever pass), no `/sys`, no capabilities,
    // no new user namespace, and the system calls of the filter refused.
    let settings = ["kernel/printk", "kernel/core_pattern", "kernel/panic", "kernel/dmesg_restrict", "vm/overcommit_memory", "fs/file-max"];
    let host = |name: &str| std::fs::read_to_string(format!("/proc/sys/{name}")).unwrap();
    let before: Vec<String> = settings.iter().map(|s| host(s)).collect();
    let probe = format!(
        "for f in {}; do v=\"$(cat /proc/sys/$f)\"; if (printf '%s\\n' \"$v\" > /proc/sys/$f) 2>/dev/null; then echo \"WROTE $f\"; else echo \"REFUSED $f\"; fi; done; \
         if ls /sys/kernel >/dev/null 2>&1; then echo SYS SEEN; else echo NO SYS; fi; \
         grep -E '^(Seccomp|NoNewPrivs|CapEff|CapBnd):' /proc/self/status; \
         if unshare -U true 2>/dev/null; then echo USERNS MADE; else echo NO USERNS; fi; \
         perl -e 'for (@ARGV) {{ my $r = syscall($_, 0, 0, 0, 0, 0); print \"SYSCALL $_ \", ($r == -1 ? \"refused: $!\" : \"returned $r\"), \"\\n\" }}' {}; exit 4",
        settings.join(" "),
        SYSCALLS.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>().join(" "),
    );
    let (build_row, log) = build("prober", probe).await;
    assert!(build_row["error"].as_str().unwrap().contains("failed (exit code 4)"), "{build_row}: {log}");
    for setting in settings {
        assert!(log.contains(&format!("REFUSED {setting}\n")), "{setting}: {log}");
    }
    assert_eq!(settings.iter().map(|s| host(s)).collect::<Vec<_>>(), before, "the host's kernel settings are unchanged");
    for line in ["NO SYS", "Seccomp:\t2", "NoNewPrivs:\t1", "CapEff:\t0000000000000000", "CapBnd:\t0000000000000000", "NO USERNS"] {
        assert!(log.contains(line), "{line}: {log}");
    }
    // Seen from the host, the build's processes are the build user's, never root.
    let build_user =
        String::from_utf8(Command::new("id").arg("-u").args(std::env::var("EDGEFN_BUILD_USER")).output().unwrap().stdout).unwrap();
    assert_ne!(build_user.trim(), "0", "a root worker builds as EDGEFN_BUILD_USER (./scripts/test sets it)");
    let (status, queued) = submit(&api, "name=napper", npm_project("sleep 7.25")).await;
    assert_eq!(status, 202, "{queued}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let seen_as = loop {
        let ps = String::from_utf8(Command::new("ps").args(["-eo", "uid=,args="]).output().unwrap().stdout).unwrap();
        if let Some(line) =
            ps.lines().find(|l| l.trim().split_once(char::is_whitespace).is_some_and(|(_, args)| args.trim() == "sleep 7.25"))
        {
            break line.split_whitespace().next().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "the build's `sleep 7.25` never showed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(seen_as, build_user.trim());
    ended(&api, queued["id"].as_str().unwrap(), Duration::from_secs(60)).await;
    for (number, name) in SYSCALLS {
        assert!(log.contains(&format!("SYSCALL {number} refused: Operation not permitted\n")), "{name}: {log}");
    }

    // What it writes to its `/tmp` or `/dev/shm` is memory.
    for place in ["/tmp", "/dev/shm"] {
        let (build_row, _) = build("tmpfill", format!("head -c 300000000 /dev/zero > {place}/fill; sleep 30")).await;
        assert_eq!(build_row["error"], "the build used more than 256 MiB of memory and was stopped", "{place}");
    }

    // The module is read only from inside the project: not through a link out of it, nor
    // from an absolute path.
    let linked = format!("ln -s {data}/admin-token out.wasm");
    for (command, artifact, error) in [
        (linked.as_str(), "out.wasm", "reading the artifact out.wasm: it leads out of the project"),
        ("true", "/etc/passwd", "the manifest's artifact /etc/passwd must be a path inside the project"),
        ("true", "../x.wasm", "the manifest's artifact ../x.wasm must be a path inside the project"),
    ] {
        let manifest = format!("name = \"reader\"\nversion = \"1.0.0\"\n[build]\ncommand = \"{command}\"\nartifact = \"{artifact}\"\n");
        let project =
            archive(&[("package.json", EntryType::Regular, "{\"name\": \"reader\"}"), ("edgefn.toml", EntryType::Regular, &manifest)]);
        let (status, queued) = submit(&api, "name=reader", project).await;
        assert_eq!(status, 202, "{queued}");
        let (build_row, log) = ended(&api, queued["id"].as_str().unwrap(), Duration::from_secs(120)).await;
        assert!(build_row["error"].as_str().unwrap().contains(error), "{build_row}: {log}");
    }

    // Past its time: stopped with everything it started.
    let started = Instant::now();
    let (build_row, _) = build("sleeper", "sleep 617 & sleep 618".into()).await;
    assert_eq!(build_row["error"], "the build ran past its time limit of 20 s and was stopped");
    assert!(started.elapsed() < Duration::from_secs(60));
    let left = Command::new("pgrep").args(["-f", "sleep 61[78]"]).output().unwrap();
    assert!(left.stdout.is_empty(), "left running: {}", String::from_utf8_lossy(&left.stdout));

    // Past its memory.
    let (build_row, _) = build("hog", "node -e \"const a = []; for (;;) a.push(Buffer.alloc(1 << 20, 1))\"".into()).await;
    assert_eq!(build_row["error"], "the build used more than 256 MiB of memory and was stopped");

    // Files past the disk limit, each under the file limit.
    let (build_row, _) = build("filler", "for i in 1 2 3 4 5 6 7 8 9 10; do head -c 10000000 /dev/zero > f$i; done; sleep 30".into()).await;
    assert_eq!(build_row["error"], "the build took more than 64 MiB of disk and was stopped");

    // A flood of output: the log is cut at the worker's 64 KiB.
    let (build_row, log) = build("flood", "yes edgefn-flood | head -c 3000000; exit 1".into()).await;
    assert_eq!(build_row["status"], "failed");
    assert!(log.len() < 70 * 1024 && log.contains("[log cut: the worker sends at most 64 KiB]"), "{} bytes", log.len());
    assert!(build_row["logBytes"].as_i64().unwrap() < 70 * 1024);

    // None of them made a module.
    let (_, modules) = api.get("/api/v1/modules").await;
    let names: Vec<&str> = modules["modules"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["welcome", "welcome-http"]);
}

#[tokio::test]
async fn rust_and_js_projects_sent_through_the_api_become_versions_that_answer() {
    if !has_bwrap() {
        eprintln!("no bubblewrap here (./scripts/test installs it): not running builds");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A JavaScript component carries its engine (~13 MB); a debug build of the server takes
    // over a minute to compile it.
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--compile-timeout-ms", "600000"],
        &Launch { build_workers: Some(1), ..Launch::default() },
    );
    let api = server.client();
    let mut projects = Vec::new();
    if has_wasip2() {
        projects.push(("hello", "rust-http", "Hello from hello! You asked for /hello/you\n"));
        // A compiler error: its message in the log, nothing stored.
        // Its `.cargo/config.toml` names a compiler wrapper: that runs in the offline build,
        // never in the networked download before it.
        let wrapper = "#!/bin/sh\necho \"wrapper ran, offline=${CARGO_NET_OFFLINE:-no}\" >> /build/wrapper.log\nexec \"$@\"\n";
        let manifest = "name = \"broken\"\nversion = \"0.1.0\"\n[build]\nartifact = \"none.wasm\"\n\
                        command = \"cargo build --release --target wasm32-wasip2; cat wrapper.log; exit 1\"\n";
        let broken = archive(&[
            ("Cargo.toml", EntryType::Regular, "[package]\nname = \"broken\"\nversion = \"0.1.0\"\nedition = \"2024\"\n"),
            ("src/main.rs", EntryType::Regular, "fn main() { let x: u32 = \"text\"; }\n"),
            (".cargo/config.toml", EntryType::Regular, "[build]\nrustc-workspace-wrapper = \"/build/wrap.sh\"\n"),
            ("wrap.sh", EntryType::Regular, wrapper),
            ("edgefn.toml", EntryType::Regular, manifest),
        ]);
        let (status, queued) = submit(&api, "name=broken", broken).await;
        assert_eq!((status, queued["toolchain"].as_str()), (202, Some("rust")), "{queued}");
        let (build, log) = ended(&api, queued["id"].as_str().unwrap(), Duration::from_secs(300)).await;
        assert_eq!(build["status"], "failed", "{build}");
        assert!(log.contains("error[E0308]: mismatched types"), "{log}");
        assert!(log.contains("wrapper ran, offline=true") && !log.contains("offline=no"), "{log}");
        assert_eq!(api.get("/api/v1/modules/broken").await.0, 404);

        // A git dependency on this machine: `cargo fetch` is refused by the build proxy.
        let (port, connections) = counting_listener().await;
        let cargo_toml = format!(
            "[package]\nname = \"leak\"\nversion = \"0.1.0\"\nedition = \"2024\"\n[dependencies]\nleak = {{ git = \"https://127.0.0.1:{port}/leak.git\" }}\n"
        );
        let leak = archive(&[("Cargo.toml", EntryType::Regular, &cargo_toml), ("src/main.rs", EntryType::Regular, "fn main() {}\n")]);
        let (status, queued) = submit(&api, "name=leak", leak).await;
        assert_eq!(status, 202, "{queued}");
        let (build, log) = ended(&api, queued["id"].as_str().unwrap(), Duration::from_secs(300)).await;
        assert_eq!(build["status"], "failed", "{build}");
        assert!(log.contains(&format!("build proxy: refused 127.0.0.1:{port}: a loopback address")), "{log}");
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 0, "cargo fetch reached this machine: {log}");
    } else {
        eprintln!("the wasm32-wasip2 target is not installed (./scripts/test installs it): not building Rust");
    }
    if has_npm() {
        projects.push(("ts-hi", "ts-http", "Hello from ts-hi! GET /ts-hi/you\n"));
    } else {
        eprintln!("no npm here: not building JavaScript");
    }
    for (name, template, answer) in projects {
        let (ok, _, err) = edgefn(&server, dir.path(), &["new", name, "--template", template]);
        assert!(ok, "{err}");
        let project = dir.path().join(name);
        let (ok, out, err) = edgefn(&server, &project, &["deploy", "--remote"]);
        assert!(ok, "{out}\n{err}");
        assert!(err.starts_with("build ") && err.contains("queued"), "{err}");
        assert!(out.contains("$ npm install") || out.contains("$ cargo fetch --target wasm32-wasip2"), "the log is followed: {out}");
        assert!(out.contains("uploaded version 0.1.0") && out.contains(&format!("route added: /{name} (prefix)")), "{out}");
        let res = reqwest::get(format!("{}/{name}/you", server.node)).await.unwrap();
        assert_eq!((res.status().as_u16(), res.text().await.unwrap().as_str()), (200, answer));

        // The same sources again: nothing to do. Changed sources: a new version, labelled by digest.
        let (ok, out, _) = edgefn(&server, &project, &["deploy", "--remote"]);
        assert!(ok && out.starts_with(&format!("{name} is up to date")), "{out}");
        touch_source(&project);
        let (ok, out, err) = edgefn(&server, &project, &["build", "--remote"]);
        assert!(ok, "{out}\n{err}");
        let (_, module) = api.get(&format!("/api/v1/modules/{name}")).await;
        let latest = module["latestVersion"].as_str().unwrap();
        assert!(latest.starts_with("0.1.0+") && out.contains(&format!("made {name} version {latest}")), "{latest}: {out}");
    }

    // A build's log from the CLI.
    let (_, builds) = api.get("/api/v1/builds").await;
    if let Some(first) = builds["builds"].as_array().unwrap().iter().rev().find(|b| b["status"] == "succeeded") {
        let (ok, out, _) = edgefn(&server, dir.path(), &["build", "logs", first["id"].as_str().unwrap()]);
        assert!(ok && out.starts_with("edgefn build worker up-1:"), "{out}");
    }

    // A user's build makes the user's module, audited as the user's.
    if has_wasip2() {
        let olive = api.new_user("olive").await;
        let source = edgefn_control::archive::pack(&dir.path().join("hello"), &["target", ".edgefn"]).unwrap();
        let (status, queued) = submit(&olive, "name=olives&version=2.0.0", source).await;
        assert_eq!(status, 202, "{queued}");
        let (build, _) = ended(&olive, queued["id"].as_str().unwrap(), Duration::from_secs(300)).await;
        assert_eq!(build["status"], "succeeded", "{build}");
        let (_, module) = olive.get("/api/v1/modules/olives").await;
        assert_eq!((module["ownerType"].as_str(), module["latestVersion"].as_str()), (Some("user"), Some("2.0.0")), "{module}");
        assert_eq!(module["id"], build["moduleId"]);
        let (_, audit) = api.get("/api/v1/audit?resourceType=version").await;
        let made = audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["newValue"].as_str().unwrap_or("").contains(module["id"].as_str().unwrap()));
        assert_eq!(made.map(|e| e["actorName"].clone()), Some(json!("olive")), "{audit}");
    }
}

/// A listener on every address of this machine, and how many connections it has taken.
async fn counting_listener() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("[::]:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = count.clone();
    tokio::spawn(async move {
        while listener.accept().await.is_ok() {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    (port, count)
}

/// Adds a line to the project's source, as an edit would.
fn touch_source(project: &Path) {
    for file in ["src/lib.rs", "app.ts"] {
        let path = project.join(file);
        if path.exists() {
            let text = std::fs::read_to_string(&path).unwrap();
            std::fs::write(&path, format!("{text}\n// edited\n")).unwrap();
        }
    }
}

#[tokio::test]
async fn the_console_sends_sources_and_shows_the_build_reloading_until_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.client();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let cookie = format!("edgefn_session={}", server.token);
    let send = |name: &str, archive: Vec<u8>| {
        let form = reqwest::multipart::Form::new()
            .text("name", name.to_string())
            .text("version", "1.0.0")
            .text("toolchain", "")
            .part("file", reqwest::multipart::Part::bytes(archive).file_name("src.tgz"));
        http.post(format!("{}/builds", server.url)).header("cookie", &cookie).multipart(form).send()
    };
    let page = |path: String| http.get(format!("{}{path}", server.url)).header("cookie", &cookie).send();

    // A refused archive: the list again, with the reason, and nothing queued.
    let res = send("probe", archive(&[("package.json", EntryType::Regular, "{}"), ("l", EntryType::Symlink, "/etc")])).await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("symbolic link `l` -&gt; `/etc` is absolute"));
    assert_eq!(api.get("/api/v1/builds").await.1["builds"], json!([]));

    // A good one: to its page, which reloads while the build waits for a worker.
    let res = send("probe", npm_project("true")).await.unwrap();
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let (_, builds) = api.get("/api/v1/builds").await;
    assert_eq!(location, format!("/builds/{}", builds["builds"][0]["id"].as_str().unwrap()));
    let res = page(location.clone()).await.unwrap();
    assert_eq!((res.status().as_u16(), res.headers().get("refresh").map(|v| v.to_str().unwrap().to_string())), (200, Some("2".into())));
    let html = res.text().await.unwrap();
    assert!(html.contains("Build of probe 1.0.0") && html.contains(">queued<") && html.contains("js"), "{html}");
    let listed = page("/builds".into()).await.unwrap().text().await.unwrap();
    assert!(listed.contains(&format!("href=\"{location}\"")), "{listed}");

    // Ended, it stops reloading and shows the error; another user does not see it.
    api.post("/api/v1/builds/claim?worker=w", json!(null)).await;
    api.post(&format!("{}/failure", location.replace("/builds/", "/api/v1/builds/")), json!({"error": "no compiler"})).await;
    let res = page(location.clone()).await.unwrap();
    assert!(res.headers().get("refresh").is_none());
    assert!(res.text().await.unwrap().contains("no compiler"));
    let eve = api.new_user("eve").await;
    let res = http.get(format!("{}{location}", server.url)).header("cookie", format!("edgefn_session={}", eve.token)).send().await.unwrap();
    assert_eq!(res.status(), 404);
}
