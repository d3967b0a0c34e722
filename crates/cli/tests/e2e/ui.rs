//! The admin web UI in real headless Chromium, driven through chromedriver (WebDriver):
//! a newcomer signs in with the admin token, uploads add.wasm, runs it and finds the run
//! in the history; a user is refused an admin module. Each main page is saved as a PNG
//! under `<target>/tmp/ui-screenshots/` for people to look at.
//!
//! Needs Debian's `chromium` and `chromium-driver` (scripts/test installs them).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::Server;
use crate::permissions::user;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a free port, and a headless Chromium session through it.
struct Browser {
    driver: Child,
    client: Client,
    shots: PathBuf,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Self {
        for path in [CHROMIUM, CHROMEDRIVER] {
            assert!(Path::new(path).exists(), "{path} is missing: install Debian's chromium and chromium-driver (scripts/test does)");
        }
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(CHROMEDRIVER).arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let webdriver = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while reqwest::get(format!("{webdriver}/status")).await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,900",
            &format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), json!({"binary": CHROMIUM, "args": args}));
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&webdriver)
            .await
            .expect("a Chromium session");
        let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        Browser { driver, client, shots, _profile: profile }
    }

    async fn open(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("{url}: {e}"));
    }

    async fn text(&self, css: &str) -> String {
        let element = self.client.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css(css)).await;
        match element {
            Ok(element) => element.text().await.unwrap(),
            Err(e) => panic!("no `{css}` on {}: {e}", self.url().await),
        }
    }

    async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.client.find(Locator::Css(css)).await.unwrap().attr(name).await.unwrap()
    }

    async fn prop(&self, css: &str, name: &str) -> Option<String> {
        self.client.find(Locator::Css(css)).await.unwrap().prop(name).await.unwrap()
    }

    async fn fill(&self, css: &str, value: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    /// Clicks a link or submit button and waits until the page it leads to has loaded:
    /// every click of these tests navigates, and reading the URL or the page before the
    /// new document is there would read the old one.
    async fn click(&self, css: &str) {
        self.client.execute("window.edgefnOldPage = true;", vec![]).await.unwrap();
        self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no `{css}`: {e}")).click().await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let loaded =
                self.client.execute("return document.readyState === 'complete' && window.edgefnOldPage === undefined;", vec![]).await;
            if loaded.is_ok_and(|v| v == json!(true)) {
                return;
            }
            assert!(Instant::now() < deadline, "clicking `{css}` loaded no new page within 10 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn url(&self) -> String {
        self.client.current_url().await.unwrap().to_string()
    }

    async fn title(&self) -> String {
        self.client.title().await.unwrap()
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    async fn sign_in(&self, server: &Server, token: &str) {
        self.open(&format!("{}/sign-in", server.url)).await;
        self.fill("#token", token).await;
        self.click("form[action='/sign-in'] button").await;
    }

    /// Ends the browser. Every assertion has run by then: a session that does not end
    /// cleanly (chromedriver slow to answer on a loaded machine) is said, not failed, and
    /// the driver is killed either way.
    async fn close(mut self) {
        if let Err(e) = self.client.clone().close().await {
            eprintln!("the browser session did not end cleanly: {e}");
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[tokio::test]
async fn a_newcomer_signs_in_uploads_add_wasm_runs_it_and_sees_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--report-every-ms", "200"]);
    // HTTP traffic to a bundled example, which the node reports to the control plane.
    for _ in 0..7 {
        assert_eq!(reqwest::get(format!("{}/welcome", server.node)).await.unwrap().status(), 200);
    }
    let b = Browser::start().await;

    // Any page sends a stranger to the sign-in page, and back after signing in.
    b.open(&format!("{}/", server.url)).await;
    assert!(b.url().await.ends_with("/sign-in?next=%2F"), "{}", b.url().await);
    assert_eq!(b.title().await, "Sign in · edgefn");
    b.screenshot("sign-in").await;
    b.fill("#token", "efn_not-a-real-token").await;
    b.click("form[action='/sign-in'] button").await;
    assert!(b.text("#token-error").await.contains("That token was not accepted: invalid token"));
    assert_eq!(b.attr("#token", "aria-invalid").await.as_deref(), Some("true"));
    b.fill("#token", &server.token).await;
    b.click("form[action='/sign-in'] button").await;
    assert_eq!(b.url().await, format!("{}/", server.url));
    assert_eq!(b.text("#who").await, "admin");
    assert_eq!(b.text(".who .role").await, "admin");
    // The first Tab reaches the skip link, then the navigation.
    b.client.find(Locator::Css("body")).await.unwrap().send_keys("\u{e004}").await.unwrap();
    assert_eq!(b.client.active_element().await.unwrap().text().await.unwrap(), "Skip to content");
    // The admin has no modules of its own class yet: the first tab with modules is shown,
    // the system modules of the bundled examples.
    assert!(b.text(".tabs a[aria-current=page]").await.starts_with("System 2"), "{}", b.text(".tabs a[aria-current=page]").await);
    assert!(b.text("table caption").await.starts_with("System modules: "), "{}", b.text("table caption").await);
    assert!(b.text("table").await.contains("welcome-http"));
    b.screenshot("modules").await;

    // Upload add.wasm with the file picker: the name comes from the file name.
    let add = dir.path().join("add.wasm");
    std::fs::write(&add, crate::example("add.wat")).unwrap();
    b.click("header nav a[href='/upload']").await;
    b.client.find(Locator::Css("#file")).await.unwrap().send_keys(add.to_str().unwrap()).await.unwrap();
    assert_eq!(b.prop("#name", "value").await.as_deref(), Some("add"));
    assert_eq!(
        b.text("[data-file]").await,
        format!("add.wasm, {} bytes", crate::example("add.wat").len()),
        "sizes as the server writes them"
    );
    b.screenshot("upload").await;
    b.click("form[action='/upload'] button[type=submit]").await;
    assert!(b.url().await.contains("?uploaded=1.0.0"), "{}", b.url().await);
    assert_eq!(b.title().await, "Module add · edgefn");
    assert_eq!(b.text("p.notice").await, "Version 1.0.0 uploaded.");
    assert_eq!(b.text("section[aria-labelledby=exports] td code").await, "add(i32, i32) -> i32");
    assert!(b.text("p.badges").await.contains("admin"));
    let module_url = b.url().await.split('?').next().unwrap().to_string();
    let module_id = module_url.rsplit('/').next().unwrap().to_string();
    b.screenshot("module").await;

    // The server's validation errors appear beside the field, and nothing is created.
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"not wasm at all").unwrap();
    b.open(&format!("{}/upload", server.url)).await;
    b.client.find(Locator::Css("#file")).await.unwrap().send_keys(junk.to_str().unwrap()).await.unwrap();
    b.click("form[action='/upload'] button[type=submit]").await;
    assert!(b.text("#file-error").await.contains("invalid WebAssembly"), "{}", b.text("#file-error").await);
    assert_eq!(b.attr("#file", "aria-invalid").await.as_deref(), Some("true"));
    assert_eq!(b.prop("#name", "value").await.as_deref(), Some("junk"));
    b.screenshot("upload-error").await;
    b.client.find(Locator::Css("#file")).await.unwrap().send_keys(add.to_str().unwrap()).await.unwrap();
    b.fill("#name", "add").await;
    b.click("form[action='/upload'] button[type=submit]").await;
    assert!(b.text("#version-error").await.contains("1.0.0"), "{}", b.text("#version-error").await);
    let api = server.client();
    assert_eq!(api.get("/api/v1/modules/junk").await.0, 404);
    assert_eq!(api.get(&format!("/api/v1/modules/{module_id}/versions")).await.1["versions"].as_array().unwrap().len(), 1);
    // The refused upload's file is kept: a new version number is all it takes.
    assert!(b.text("#kept").await.starts_with("add.wasm ("), "{}", b.text("#kept").await);
    b.fill("#version", "1.0.1").await;
    b.click("form[action='/upload'] button[type=submit]").await;
    assert!(b.url().await.contains("?uploaded=1.0.1"), "{}", b.url().await);
    assert_eq!(api.get(&format!("/api/v1/modules/{module_id}/versions")).await.1["versions"].as_array().unwrap().len(), 2);

    // Run it from its page.
    b.open(&module_url).await;
    b.click("ul.actions a[href^='/run']").await;
    assert_eq!(b.text("#signature").await, "add(i32, i32) -> i32");
    assert_eq!(b.prop("#args", "value").await.as_deref(), Some("[0,0]"));
    b.fill("#args", "[2, 3").await;
    b.click("form[action='/run'][method='post'] button").await;
    assert!(b.text("#args-error").await.starts_with("the arguments are not valid JSON"));
    b.fill("#args", "[2, 3]").await;
    b.click("form[action='/run'][method='post'] button").await;
    assert_eq!(b.text("#result").await, "5");
    assert!(b.text("#time").await.ends_with(" ms"), "{}", b.text("#time").await);
    assert!(b.text("#cache").await.starts_with("cache "));
    b.screenshot("run").await;
    b.fill("#args", "[2]").await;
    b.click("form[action='/run'][method='post'] button").await;
    assert!(b.text(".outcome.failed").await.contains("too few arguments"), "{}", b.text(".outcome.failed").await);

    // More calls through the API, so the charts have points; then the history.
    for i in 0..30 {
        assert_eq!(api.invoke(&module_id, json!({"function": "add", "args": [i, 1]})).await.0, 200);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    b.open(&format!("{module_url}/history")).await;
    assert!(b.text("#history caption").await.starts_with("32 executions"), "{}", b.text("#history caption").await);
    let rows = b.client.find_all(Locator::Css("#history tbody tr")).await.unwrap();
    assert_eq!(rows.len(), 25);
    assert!(b.text("#history tbody tr:last-child").await.contains("add"));
    assert_eq!(b.client.find_all(Locator::Css("figure.chart svg")).await.unwrap().len(), 2);
    b.screenshot("history").await;
    b.open(&format!("{module_url}/history?status=error")).await;
    assert!(b.text("#history caption").await.starts_with("1 executions"));
    assert!(b.text("#history tbody").await.contains("too few arguments"));

    // The platform pages; the audit chain verifies.
    b.click("header nav a[href='/routes']").await;
    assert!(b.text("table").await.contains("/welcome"));
    b.screenshot("routes").await;
    b.click("header nav a[href='/nodes']").await;
    let nodes = b.text("table").await;
    assert!(nodes.contains("local") && nodes.contains("online") && nodes.contains("(current)"), "{nodes}");
    b.screenshot("nodes").await;
    // A function served only over HTTP shows the traffic the node reported.
    b.open(&format!("{}/modules/welcome", server.url)).await;
    let traffic = b.text("section[aria-labelledby='traffic']").await;
    assert!(traffic.contains("Requests\n7") || traffic.contains("Requests 7"), "{traffic}");
    assert!(traffic.contains("0.00 %"), "{traffic}");
    b.screenshot("module-traffic").await;
    b.click("header nav a[href='/deployments']").await;
    b.click("header nav a[href='/audit']").await;
    b.click("form[action='/audit'] button").await;
    assert!(b.text("#verdict").await.starts_with("Chain intact: "), "{}", b.text("#verdict").await);
    b.screenshot("audit").await;

    // On a phone's width nothing sticks out sideways.
    b.client.set_window_size(390, 844).await.unwrap();
    b.open(&format!("{}/?tab=system", server.url)).await;
    let fits = b.client.execute("return document.documentElement.scrollWidth <= window.innerWidth", vec![]).await.unwrap();
    assert_eq!(fits, json!(true));
    b.screenshot("modules-phone").await;
    b.client.set_window_size(1280, 900).await.unwrap();

    // A user is refused the admin's module and the audit log, and sees neither offered.
    let bob = user(&api, "bob").await;
    b.click(".who form button").await;
    assert!(b.url().await.ends_with("/sign-in"));
    b.sign_in(&server, &bob.token).await;
    assert_eq!(b.text("#who").await, "bob");
    assert_eq!(b.text(".who .role").await, "user");
    b.open(&format!("{}/?tab=admin", server.url)).await;
    assert!(b.text(".tabs a[aria-current=page]").await.starts_with("Admin 0"), "{}", b.text(".tabs a[aria-current=page]").await);
    b.open(&module_url).await;
    assert_eq!(b.title().await, "Not found · edgefn");
    assert!(b.text("p.error").await.contains(&format!("module {module_id} not found")));
    b.screenshot("denied").await;
    b.open(&format!("{}/audit", server.url)).await;
    assert_eq!(b.title().await, "Not allowed · edgefn");
    assert!(b.client.find_all(Locator::Css("header nav a[href='/audit']")).await.unwrap().is_empty());

    b.close().await;
}

#[tokio::test]
async fn reading_pages_and_forms_work_without_javascript() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.client();
    let id = api.upload_example("add.wat").await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let cookie = format!("edgefn_session={}", server.token);
    let page = |path: &str| {
        let req = http.get(format!("{}{path}", server.url)).header("cookie", &cookie);
        async move {
            let res = req.send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };

    // Every reading page is whole HTML from the server.
    let (status, html) = page("/?tab=admin").await;
    assert_eq!(status, 200);
    assert!(html.contains(&format!(r#"<a href="/modules/{id}">add</a>"#)), "{html}");
    let (_, html) = page(&format!("/modules/{id}")).await;
    assert!(html.contains("<code>add(i32, i32) -&gt; i32</code>"), "{html}");
    assert!(html.contains("No linear memory; Max: 50 MB"), "{html}");
    let (_, html) = page("/routes").await;
    assert!(html.contains("<code>/welcome</code>"));
    let (_, html) = page("/audit?verify=true").await;
    assert!(html.contains("Chain intact: "));
    assert_eq!(page("/modules/nope").await.0, 404);
    assert_eq!(page(&format!("/modules/{id}/history?status=bogus")).await.0, 400);

    // The run form posts and answers with the result in the page.
    let res = http
        .post(format!("{}/run", server.url))
        .header("cookie", &cookie)
        .form(&[("module", id.as_str()), ("function", "add"), ("args", "[40, 2]"), ("timeout_ms", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains(r#"<pre id="result" role="status">42</pre>"#));
    let (_, html) = page(&format!("/modules/{id}/history")).await;
    assert!(html.contains("<code>42</code>"), "{html}");

    // Without a session: to the sign-in page; a bad `next` never leaves the site.
    let res = http.get(format!("{}/routes", server.url)).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/sign-in?next=%2Froutes");
    let res = http
        .post(format!("{}/sign-in", server.url))
        .form(&[("token", server.token.as_str()), ("next", "//evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["location"], "/");
    assert!(res.headers()["set-cookie"].to_str().unwrap().contains("HttpOnly"));
    assert!(res.headers()["set-cookie"].to_str().unwrap().contains("SameSite=Strict"));

    // A form posted from another site is refused and changes nothing.
    let res = http
        .post(format!("{}/run", server.url))
        .header("cookie", &cookie)
        .header("origin", "http://evil.example")
        .form(&[("module", id.as_str()), ("function", "add"), ("args", "[1, 1]")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(api.get(&format!("/api/v1/modules/{id}/executions")).await.1["total"], 1);

    // The managing forms are plain posts too: a route, a setting, a token.
    let post = |path: &str, form: Vec<(&'static str, String)>| {
        let req = http.post(format!("{}{path}", server.url)).header("cookie", &cookie).form(&form);
        async move { req.send().await.unwrap() }
    };
    let res = post("/routes", vec![("path", "/no-js".into()), ("match", "exact".into()), ("module", "welcome".into())]).await;
    assert_eq!((res.status().as_u16(), res.headers()["location"].to_str().unwrap()), (303, "/routes"));
    assert!(page("/routes").await.1.contains("<code>/no-js</code>"));
    let res = post(&format!("/modules/{id}/settings"), vec![("timeout_ms", "1234".into()), ("max_instances", "5".into())]).await;
    assert_eq!(res.status(), 303);
    let (_, module) = api.get(&format!("/api/v1/modules/{id}")).await;
    assert_eq!((module["timeoutMs"].as_i64(), module["maxInstances"].as_i64()), (Some(1234), Some(5)), "{module}");
    let res = post("/tokens", vec![("name", "no-js".into()), ("expires_in_days", "".into())]).await;
    assert_eq!(res.headers()["cache-control"], "no-store");
    let html = res.text().await.unwrap();
    let secret = html.split(r#"<code id="new-secret">"#).nth(1).and_then(|r| r.split('<').next()).unwrap();
    assert_eq!(api.with_token(secret).get("/api/v1/me").await.0, 200);
    // And the same from another site changes nothing.
    let res = http
        .post(format!("{}/routes", server.url))
        .header("cookie", &cookie)
        .header("origin", "http://evil.example")
        .form(&[("path", "/evil"), ("module", "welcome")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(!page("/routes").await.1.contains("/evil"));
}

#[tokio::test]
async fn the_console_runs_string_functions_and_sends_test_requests_through_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.client();
    let greet = api.upload_example("greet.wat").await;
    let b = Browser::start().await;
    b.sign_in(&server, &server.token).await;

    // greet("World"), its result read as a string from the function's memory.
    b.open(&format!("{}/run?module={greet}&function=greet", server.url)).await;
    b.fill("#args", r#"["World"]"#).await;
    b.client.find(Locator::Css("#result-as")).await.unwrap().select_by_value("string").await.unwrap();
    b.click("form[action='/run'][method='post'] button").await;
    assert_eq!(b.text("pre#result").await, r#""Hello, World!""#);
    // Read as numbers it is the packed (pointer, length) the function returned.
    b.client.find(Locator::Css("#result-as")).await.unwrap().select_by_value("values").await.unwrap();
    b.click("form[action='/run'][method='post'] button").await;
    assert!(b.text("pre#result").await.parse::<u64>().is_ok(), "{}", b.text("pre#result").await);

    // A component's function gets a field per parameter, built from its WIT types.
    let typed = api.upload_example("typed.wat").await;
    b.open(&format!("{}/run?module={typed}&function=translate", server.url)).await;
    assert_eq!(b.prop("#param-p", "value").await.as_deref(), Some(r#"{"x":0,"y":0}"#), "a record's fields to start from");
    b.fill("#param-p", r#"{"x": 1, "y": 2}"#).await;
    b.fill("#param-dx", "10").await;
    b.fill("#param-dy", "20").await;
    b.click("form[action='/run'][method='post'] button").await;
    assert_eq!(b.text("pre#result").await.split_whitespace().collect::<String>(), r#"{"x":11,"y":22}"#);
    b.open(&format!("{}/run?module={typed}&function=greet", server.url)).await;
    b.fill("#param-name", "Ada").await;
    b.click("form[action='/run'][method='post'] button").await;
    assert_eq!(b.text("pre#result").await, r#""Hello, Ada!""#, "a string parameter is typed as text");
    b.open(&format!("{}/run?module={typed}&function=safe-div", server.url)).await;
    b.fill("#param-a", "1").await;
    b.fill("#param-b", "zero").await;
    b.click("form[action='/run'][method='post'] button").await;
    assert!(b.text("#args-error").await.contains("`b` (s32) is not valid JSON"), "{}", b.text("#args-error").await);
    assert_eq!(b.prop("#param-b", "value").await.as_deref(), Some("zero"), "what was typed is kept");
    b.screenshot("run-component").await;

    // The module list counts its calls.
    b.open(&format!("{}/?tab=admin", server.url)).await;
    let row = b.text("tbody tr:first-child").await;
    assert!(row.starts_with("greet") && row.contains(" 2 0.0 %"), "{row}");

    // An HTTP function gets a test request panel, filled with its route; the request goes
    // through the edge node.
    b.open(&format!("{}/run?module=welcome", server.url)).await;
    assert_eq!(b.prop("#path", "value").await.as_deref(), Some("/welcome"));
    b.fill("#path", "/welcome?from=console").await;
    b.click("form[action='/run/request'] button").await;
    assert_eq!(b.text("#answer-status").await, "200");
    let body = b.text("#answer-body").await;
    assert!(body.starts_with("Hello from edgefn!") && body.contains("/welcome?from=console"), "{body}");
    b.screenshot("test-request").await;
    // A redirect is shown as it is, never followed: the test request is not a proxy to the
    // node's metrics (or anything else on the machine).
    let metrics = format!("{}/metrics", server.metrics);
    let moved = crate::http::responds(&format!("302\nlocation: {metrics}\n\nmoved"));
    crate::http::deploy(&server.client(), "mover", moved, "/mover").await;
    crate::http::get_routed(&server.node, "/mover").await;
    b.open(&format!("{}/run?module=mover", server.url)).await;
    b.click("form[action='/run/request'] button").await;
    assert_eq!(b.text("#answer-status").await, "302");
    let shown = b.text("main").await;
    assert!(shown.contains(&metrics) && !shown.contains("wasm_"), "{shown}");
    // A wasi:http component is offered the panel, not an argument form that cannot work.
    b.open(&format!("{}/run?module=welcome-http", server.url)).await;
    assert!(b.client.find(Locator::Css("form[action='/run']")).await.is_err(), "no function form for a wasi:http component");
    b.click("form[action='/run/request'] button").await;
    assert_eq!(b.prop("#path", "value").await.as_deref(), Some("/welcome-http"), "the panel starts at the component's route");
    // The bundled component has the default HTTP time limit of 500 ms, which a first call
    // can pass while other tests compile JavaScript components on both cores: once more.
    if b.text("#answer-status").await == "504" {
        b.click("form[action='/run/request'] button").await;
    }
    assert_eq!(b.text("#answer-status").await, "200");

    // The module's page says how to reach it: its route on the node, curl and CLI lines.
    b.open(&format!("{}/modules/welcome", server.url)).await;
    let reach = b.text("section[aria-labelledby=reach]").await;
    assert!(reach.contains(&format!("curl {}/welcome", server.node)), "{reach}");
    assert!(reach.contains("edgefn invoke welcome"), "{reach}");
    assert_eq!(
        b.attr(&format!("section[aria-labelledby=reach] a[href='{}/welcome']", server.node), "href").await,
        Some(format!("{}/welcome", server.node))
    );

    // A new version of a system module keeps its class.
    b.open(&format!("{}/upload?name=welcome", server.url)).await;
    assert_eq!(b.prop("#class", "value").await.as_deref(), Some("system"));
    b.close().await;
}

/// GETs `path` on the node until it answers `status` (routes reach the node through the
/// stream), at most 5 s.
async fn answers(node: &str, path: &str, status: u16) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = reqwest::get(format!("{node}{path}")).await.unwrap().status().as_u16();
        if got == status {
            return;
        }
        assert!(Instant::now() < deadline, "{path} answered {got}, not {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_console_adds_edits_and_deletes_routes_and_the_node_follows() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let b = Browser::start().await;
    b.sign_in(&server, &server.token).await;
    b.open(&format!("{}/routes", server.url)).await;

    // A bad path is refused above the form, with what was typed kept.
    b.fill("#route-path", "console").await;
    b.client.find(Locator::Css("#route-module")).await.unwrap().select_by_label("welcome").await.unwrap();
    b.click("form[action='/routes'] button").await;
    assert!(b.text("#route-error").await.contains("path `console` must start with `/`"), "{}", b.text("#route-error").await);
    assert_eq!(b.prop("#route-path", "value").await.as_deref(), Some("console"));

    b.fill("#route-path", "/console").await;
    b.click("form[action='/routes'] button").await;
    assert!(b.text("table").await.contains("/console"));
    answers(&server.node, "/console", 200).await;
    assert_eq!(b.attr("a[href$='/console']", "href").await, Some(format!("{}/console", server.node)), "an open link to the node");
    b.screenshot("routes").await;

    // Edit: the path changes, the node follows.
    b.click("a[aria-label='Edit the route /console']").await;
    assert_eq!(b.prop("#route-path", "value").await.as_deref(), Some("/console"));
    b.fill("#route-path", "/console-2").await;
    b.fill("#route-methods", "GET").await;
    b.click("form[action$='/edit'] button").await;
    assert!(b.url().await.ends_with("/routes"), "{}", b.url().await);
    answers(&server.node, "/console-2", 200).await;
    answers(&server.node, "/console", 404).await;

    // Delete.
    b.click("button[aria-label='Delete the route /console-2']").await;
    answers(&server.node, "/console-2", 404).await;
    assert!(!b.text("table").await.contains("/console-2"));
    b.close().await;
}

#[tokio::test]
async fn the_console_sets_a_secret_the_function_reads_and_disables_and_deletes_a_module() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.client();
    // The conformance suite's component answers /conformance/env?NAME with its environment.
    let wasm = wat::parse_file(concat!(env!("CARGO_MANIFEST_DIR"), "/../../conformance/wasip2.wat")).unwrap();
    let (status, body) = api.upload("reader", "1.0.0", wasm).await;
    assert_eq!(status, 201, "{body}");
    let id = body["module"]["id"].as_str().unwrap().to_string();
    let (status, body) = api.post("/api/v1/routes", json!({"path": "/conformance", "match": "prefix", "moduleId": "reader"})).await;
    assert_eq!(status, 201, "{body}");
    let env_of = |name: &'static str| {
        let url = format!("{}/conformance/env?{name}", server.node);
        async move { reqwest::get(url).await.unwrap().text().await.unwrap() }
    };
    let b = Browser::start().await;
    b.sign_in(&server, &server.token).await;
    b.open(&format!("{}/modules/{id}", server.url)).await;
    b.click("ul.actions a[href$='/settings']").await;

    // A secret value: set, read by the function, shown only as a fingerprint.
    b.fill("#env-name", "GREETING").await;
    b.fill("#env-value", "from the console").await;
    b.click("form[action$='/env'] button[type=submit]:not(.link)").await;
    assert_eq!(b.text("p.notice").await, "Saved.");
    assert!(b.text("section[aria-labelledby=env] table").await.contains("sha256:"));
    assert!(!b.client.source().await.unwrap().contains("from the console"), "the value is never shown");
    api.synced().await;
    assert_eq!(env_of("GREETING").await, "GREETING=from the console\n");
    b.screenshot("settings").await;
    b.click("button[aria-label='Remove GREETING']").await;
    api.synced().await;
    assert_eq!(env_of("GREETING").await, "GREETING=<unset>\n");

    // Bad input is refused above its form, with what was typed kept.
    b.fill("#http-timeout", "soon").await;
    b.click("form[action$='/settings'] button").await;
    assert!(b.text("#limits-error").await.contains("httpTimeoutMs `soon` is not a whole number"), "{}", b.text("#limits-error").await);
    assert_eq!(b.prop("#http-timeout", "value").await.as_deref(), Some("soon"));
    b.fill("#http-timeout", "999999").await;
    b.click("form[action$='/settings'] button").await;
    assert!(b.text("#limits-error").await.contains("httpTimeoutMs 999999 must be between 1 and 60000"));
    b.fill("#http-timeout", "2000").await;
    b.click("form[action$='/settings'] button").await;
    assert_eq!(api.get("/api/v1/modules/reader").await.1["httpTimeoutMs"], 2000);

    // Disable: the node answers 503; enable again.
    b.click("form[action$='/status'] button").await;
    assert_eq!(b.text("#status-now").await, "disabled");
    api.synced().await;
    assert_eq!(reqwest::get(format!("{}/conformance/welcome", server.node)).await.unwrap().status(), 503);
    b.click("form[action$='/status'] button").await;
    assert_eq!(b.text("#status-now").await, "active");

    // The audit log, newest first, filtered to module updates, shows what changed.
    b.open(&format!("{}/audit", server.url)).await;
    b.client.find(Locator::Css("#audit-resource")).await.unwrap().select_by_value("module").await.unwrap();
    b.client.find(Locator::Css("#audit-operation")).await.unwrap().select_by_value("update").await.unwrap();
    b.click("form.filters button").await;
    assert!(b.text("table caption").await.ends_with("newest first"));
    let first = b.text("tbody tr:first-child").await;
    assert!(first.contains("update") && first.contains("admin"), "{first}");
    let source = b.client.source().await.unwrap();
    assert!(source.contains("<code>httpTimeoutMs</code>: <del>null</del> → <ins>2000</ins>"), "the timeout change shown as a diff");
    assert!(!source.contains("from the console"), "secrets never reach the audit page");
    b.screenshot("audit-filtered").await;

    // Delete needs the name typed.
    b.open(&format!("{}/modules/{id}/settings", server.url)).await;
    b.fill("#confirm", "wrong").await;
    b.click("form[action$='/delete'] button").await;
    assert!(b.text("#status-error").await.contains("type the module's name, reader"));
    b.fill("#confirm", "reader").await;
    b.click("form[action$='/delete'] button").await;
    assert_eq!(b.url().await, format!("{}/", server.url));
    assert_eq!(api.get("/api/v1/modules/reader").await.0, 404);
    b.close().await;
}

#[tokio::test]
async fn tokens_are_made_and_revoked_and_only_admins_manage_users() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.client();
    let b = Browser::start().await;
    b.sign_in(&server, &server.token).await;

    // An admin creates a user; its first token is shown once.
    b.click("header nav a[href='/users']").await;
    b.fill("#user-name", "bo").await;
    b.click("form[action='/users'] button").await;
    let bo_token = b.text("#new-secret").await;
    assert!(bo_token.starts_with("efn_"), "{bo_token}");
    assert!(b.text("table").await.contains("bo"));
    b.fill("#user-name", "bo").await;
    b.click("form[action='/users'] button").await;
    assert!(b.text("#user-error").await.contains("bo"), "a second bo is refused: {}", b.text("#user-error").await);
    b.screenshot("users").await;

    // bo signs in, makes a token with an expiry, sees it work, revokes it, sees it refused.
    b.click("form[action='/sign-out'] button").await;
    b.sign_in(&server, &bo_token).await;
    assert!(b.client.find(Locator::Css("header nav a[href='/users']")).await.is_err(), "no users page offered to a user");
    b.click("header nav a[href='/tokens']").await;
    b.fill("#token-name", "ci").await;
    b.fill("#token-days", "4000").await;
    b.click("form[action='/tokens'] button").await;
    assert!(b.text("#token-error").await.contains("expiresInDays 4000 must be between 1 and 3650"), "{}", b.text("#token-error").await);
    assert_eq!(b.prop("#token-name", "value").await.as_deref(), Some("ci"));
    b.fill("#token-days", "30").await;
    b.click("form[action='/tokens'] button").await;
    let ci = b.text("#new-secret").await;
    assert_eq!(api.with_token(&ci).get("/api/v1/me").await.0, 200);
    b.screenshot("tokens").await;
    b.click("button[aria-label='Revoke ci']").await;
    assert_eq!(api.with_token(&ci).get("/api/v1/me").await.0, 401);
    assert!(b.text("table").await.contains("revoked"));

    // A user posting to the admins' page directly is refused.
    let posted = b
        .client
        .execute(
            "const f = new FormData(); f.append('name', 'mallory');
             return fetch('/users', {method: 'POST', body: new URLSearchParams(f)}).then(r => r.status);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(posted, json!(403));
    let (_, users) = api.get("/api/v1/users").await;
    assert!(!users.to_string().contains("mallory"), "{users}");

    // Revoking the token of the session itself ends it at the next page.
    b.open(&format!("{}/tokens", server.url)).await;
    b.click("button[aria-label='Revoke first token']").await;
    assert!(b.text("#token-error").await.contains("Your session has ended"), "{}", b.text("body").await);
    b.close().await;
}

#[tokio::test]
async fn projects_are_shared_in_the_console_and_wat_uploads_go_to_them() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.client();
    let bo = api.new_user("bo").await;
    let b = Browser::start().await;
    b.sign_in(&server, &server.token).await;

    // A project, and a member added with a role; an unknown user is refused beside it.
    b.click("header nav a[href='/projects']").await;
    b.fill("#project-name", "team").await;
    b.click("form[action='/projects'] button").await;
    let (_, team) = api.get("/api/v1/projects/team").await;
    let team_id = team["id"].as_str().unwrap().to_string();
    b.fill(&format!("#member-{team_id}"), "nobody").await;
    b.click(&format!("form[action='/projects/{team_id}/members'] button[type=submit]:not(.link)")).await;
    assert!(b.text(&format!("#members-error-{team_id}")).await.contains("nobody"), "{}", b.text("main").await);
    b.fill(&format!("#member-{team_id}"), "bo").await;
    b.click(&format!("form[action='/projects/{team_id}/members'] button[type=submit]:not(.link)")).await;
    let (_, team) = api.get("/api/v1/projects/team").await;
    assert!(team["members"].as_array().unwrap().iter().any(|m| m["userName"] == "bo" && m["role"] == "developer"), "{team}");
    b.screenshot("projects").await;

    // bo uploads WebAssembly text to the shared project.
    b.click("form[action='/sign-out'] button").await;
    b.sign_in(&server, &bo.token).await;
    b.click("header nav a[href='/upload']").await;
    let wat = std::fs::canonicalize(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/add.wat")).unwrap();
    b.client.find(Locator::Css("#file")).await.unwrap().send_keys(wat.to_str().unwrap()).await.unwrap();
    assert_eq!(b.prop("#name", "value").await.as_deref(), Some("add"));
    b.client.find(Locator::Css("#project")).await.unwrap().select_by_label("team").await.unwrap();
    b.click("form[action='/upload'] button[type=submit]").await;
    assert_eq!(b.title().await, "Module add · edgefn");
    let (_, module) = bo.get("/api/v1/modules/add").await;
    assert_eq!(module["projectId"], team_id.as_str(), "{module}");
    b.close().await;
}

#[tokio::test]
async fn every_console_page_fits_a_phone_and_a_wide_screen() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.client();
    let add = api.upload_example("add.wat").await;
    let typed = api.upload_example("typed.wat").await;
    let (status, body) = api.invoke(&add, json!({"function": "add", "args": [1, 2]})).await;
    assert_eq!(status, 200, "{body}");
    let b = Browser::start().await;
    b.sign_in(&server, &server.token).await;
    let pages = [
        ("modules", "/?tab=system".to_string()),
        ("module", "/modules/welcome".to_string()),
        ("run", format!("/run?module={add}")),
        ("run-component", format!("/run?module={typed}&function=translate")),
        ("history", format!("/modules/{add}/history")),
        ("routes", "/routes".to_string()),
        ("settings", format!("/modules/{add}/settings")),
        ("tokens", "/tokens".to_string()),
        ("projects", "/projects".to_string()),
        ("users", "/users".to_string()),
        ("nodes", "/nodes".to_string()),
        ("audit", "/audit".to_string()),
    ];
    for (width, height, suffix) in [(1400, 900, "wide"), (390, 844, "phone")] {
        b.client.set_window_size(width, height).await.unwrap();
        for (name, path) in &pages {
            b.open(&format!("{}{path}", server.url)).await;
            assert!(!b.title().await.starts_with("Something went wrong"), "{path}");
            let fits = b.client.execute("return document.documentElement.scrollWidth <= window.innerWidth", vec![]).await.unwrap();
            assert_eq!(fits, json!(true), "{path} scrolls sideways at {width} px");
            b.screenshot(&format!("{name}-{suffix}")).await;
        }
    }
    b.close().await;
}

#[tokio::test]
async fn no_console_page_can_be_framed_by_a_page_on_the_edge() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.client();

    // Every console response says so, assets and errors included.
    for path in ["/", "/sign-in", "/users", "/ui/ui.css", "/no-such-page"] {
        let res = api.http.get(format!("{}{path}", server.url)).bearer_auth(&api.token).send().await.unwrap();
        let header = |name: &str| res.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        let policy = header("content-security-policy");
        for part in ["frame-ancestors 'none'", "script-src 'self'", "style-src 'self'"] {
            assert!(policy.contains(part), "{path}: {policy}");
        }
    }

    // An edge function's page frames the console's users page beside the node's welcome.
    let page = format!(
        "<html><body><iframe id='console' src='{}/users'></iframe><iframe id='welcome' src='{}/welcome'></iframe></body></html>",
        server.url, server.node
    );
    crate::http::deploy(&api, "prize", crate::http::serves_page(&page), "/evil/prize").await;
    api.synced().await;
    let b = Browser::start().await;
    b.sign_in(&server, &server.token).await;
    b.open(&format!("{}/evil/prize", server.node)).await;
    let frame_text = |index: u16| {
        let client = b.client.clone();
        async move {
            // The frame's document loads on its own: wait (at most 10 s) until it has a body.
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                client.enter_frame(index).await.unwrap();
                let text = client.execute("return document.body ? document.body.innerText : ''", vec![]).await.unwrap();
                let has_form = client.execute("return !!document.querySelector(\"form[action='/users']\")", vec![]).await.unwrap();
                client.enter_parent_frame().await.unwrap();
                let text = text.as_str().unwrap_or("").to_string();
                if !text.is_empty() || Instant::now() > deadline {
                    return (text, has_form == json!(true));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    // The welcome frame shows that a frame's content is seen this way…
    let (welcome, _) = frame_text(1).await;
    assert!(welcome.contains("Hello from edgefn!"), "{welcome:?}");
    // …and the console's is not there: Chromium refused to show it.
    let (console, has_form) = frame_text(0).await;
    assert!(!has_form && !console.contains("Users"), "the console rendered in a frame: {console:?}");
    b.screenshot("framed-console").await;
    b.close().await;
}
