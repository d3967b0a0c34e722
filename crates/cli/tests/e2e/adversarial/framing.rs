//! Problem 2 of the hardening issue: a function must not be able to write raw bytes into
//! the client connection. The host frames every response from the body it sends.

use serde_json::json;

use super::{answering, raw_exchange};
use crate::Server;
use crate::http::get_routed;

/// The page a guest tries to smuggle in as a second response.
const INJECTED: &str = "HTTP/1.1 200 OK\\r\\ncontent-length: 8\\r\\n\\r\\ninjected";

#[tokio::test]
async fn a_guest_cannot_frame_its_own_response_or_take_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.client();
    let cases = [
        // A content-length shorter than the body: the rest would be read as the next response.
        ("short", format!("200\\ncontent-length: 5\\nconnection: keep-alive\\n\\nhello{INJECTED}")),
        // Longer than the body: the client would wait for bytes that never come.
        ("long", "200\\ncontent-length: 1000\\n\\nhello".to_string()),
        // Chunked framing and hop-by-hop headers, and a header named by `connection`.
        ("chunked", "200\\ntransfer-encoding: chunked\\nconnection: x-secret\\nx-secret: 1\\nkeep-alive: timeout=999\\nproxy-authenticate: Basic\\nupgrade: h2c\\nx-kept: yes\\n\\n5\\r\\nhello\\r\\n0\\r\\n\\r\\n".to_string()),
        // Informational answers would hand the connection over.
        ("switch", "101\\nconnection: upgrade\\nupgrade: websocket\\n\\n".to_string()),
        ("early", "103\\nlink: </a.css>\\n\\n".to_string()),
    ];
    for (name, response) in &cases {
        assert_eq!(api.upload(name, "1.0.0", answering(response)).await.0, 201, "{name}");
        let (status, body) = api.post("/api/v1/routes", json!({"path": format!("/{name}"), "moduleId": name})).await;
        assert_eq!(status, 201, "{body}");
        get_routed(&server.node, &format!("/{name}")).await;
    }

    // Pipelined on one keep-alive connection: the guest's response, then the bundled /welcome.
    let pipelined = b"GET /short HTTP/1.1\r\nhost: a\r\n\r\nGET /welcome HTTP/1.1\r\nhost: a\r\n\r\n";
    let responses = raw_exchange(&server.node, pipelined, 2).await;
    let whole = "hellohttp/1.1 200 ok\r\ncontent-length: 8\r\n\r\ninjected";
    assert_eq!(responses[0].status, 200);
    assert_eq!(String::from_utf8_lossy(&responses[0].body).to_ascii_lowercase(), whole, "the whole body, framed by the host");
    assert_eq!(responses[0].header("content-length"), Some(whole.len().to_string().as_str()));
    assert_eq!(responses[0].header("connection"), None);
    assert_eq!(String::from_utf8_lossy(&responses[1].body), "Hello from edgefn! GET /welcome\n", "the second answer is /welcome's");

    let responses = raw_exchange(&server.node, b"GET /long HTTP/1.1\r\nhost: a\r\n\r\n", 1).await;
    assert_eq!((responses[0].status, responses[0].body.as_slice()), (200, &b"hello"[..]));
    assert_eq!(responses[0].header("content-length"), Some("5"));

    let responses =
        raw_exchange(&server.node, b"GET /chunked HTTP/1.1\r\nhost: a\r\n\r\nGET /welcome HTTP/1.1\r\nhost: a\r\n\r\n", 2).await;
    let r = &responses[0];
    assert_eq!(r.body, b"5\r\nhello\r\n0\r\n\r\n", "the guest's bytes are the body, not framing");
    for gone in ["transfer-encoding", "connection", "x-secret", "keep-alive", "proxy-authenticate", "upgrade"] {
        assert_eq!(r.header(gone), None, "{gone} reached the wire");
    }
    assert_eq!(r.header("x-kept"), Some("yes"));
    assert_eq!(responses[1].status, 200);

    for name in ["switch", "early"] {
        let responses = raw_exchange(&server.node, format!("GET /{name} HTTP/1.1\r\nhost: a\r\n\r\n").as_bytes(), 1).await;
        assert_eq!(responses[0].status, 502, "{name}");
        assert!(String::from_utf8_lossy(&responses[0].body).contains("may not answer with status 1"), "{name}");
    }
    // Over HTTP/2 the same guests are framed by the host too.
    let h2 = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let res = h2.get(format!("{}/short", server.node)).send().await.unwrap();
    assert_eq!(res.text().await.unwrap().to_ascii_lowercase(), whole);
}
