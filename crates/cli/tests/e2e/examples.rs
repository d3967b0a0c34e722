//! The example functions of `examples/`, each built from source with its manifest and
//! deployed through `edgefn deploy`, answering through the node.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Server;
use crate::project::deploy_rust_project;

fn has_wasip2() -> bool {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("wasm32-wasip2"))
}

/// A copy of `examples/NAME` in `dir` (so builds and deploy state stay out of the tree),
/// without its build outputs.
fn copy_example(name: &str, dir: &Path) -> PathBuf {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(name);
    let to = dir.join(name);
    let out = Command::new("cp").arg("-r").arg(&from).arg(&to).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(to.join("target"));
    to
}

async fn post(url: &str, body: Vec<u8>) -> (u16, String, String, Vec<u8>) {
    let res = reqwest::Client::new().post(url).body(body).send().await.unwrap();
    let header = |name: &str| res.headers().get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let (content_type, size) = (header("content-type"), header("x-image-size"));
    (res.status().as_u16(), content_type, size, res.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn image_resize_resizes_rotates_and_crops_a_real_photo() {
    if !has_wasip2() {
        eprintln!("the wasm32-wasip2 target is not installed (./scripts/test installs it): not building image-resize");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let project = copy_example("image-resize", dir.path());
    let (out, _) = deploy_rust_project(&server, &project);
    assert!(out.contains("route added: /image-resize (prefix)"), "{out}");
    let photo = std::fs::read(project.join("testdata/f3-discovery.jpg")).unwrap();
    let url = format!("{}/image-resize", server.node);

    // A thumbnail: fits 320×320 keeping the 720×477 photo's shape, a JPEG that decodes.
    let (status, content_type, size, body) = post(&format!("{url}?resize=320x320"), photo.clone()).await;
    assert_eq!((status, content_type.as_str(), size.as_str()), (200, "image/jpeg", "320x212"));
    let thumbnail = image::load_from_memory(&body).unwrap();
    assert_eq!((thumbnail.width(), thumbnail.height()), (320, 212));
    assert!(body.len() < photo.len() / 4, "{} bytes", body.len());

    // Rotated and made a PNG; cropped.
    let (status, content_type, size, body) = post(&format!("{url}?rotate=90&format=png"), photo.clone()).await;
    assert_eq!((status, content_type.as_str(), size.as_str()), (200, "image/png", "477x720"));
    let rotated = image::load_from_memory_with_format(&body, image::ImageFormat::Png).unwrap();
    assert_eq!((rotated.width(), rotated.height()), (477, 720));
    let (status, _, size, _) = post(&format!("{url}?crop=100,50,200,150&resize=100x100"), photo.clone()).await;
    assert_eq!((status, size.as_str()), (200, "100x75"));

    // Bad requests are named.
    let cases = [
        ("?crop=700,400,100,100", photo.clone(), "crop `700,400,100,100` is not inside the 720x477 image"),
        ("?resize=0x10", photo.clone(), "resize `0x10`: expected WIDTHxHEIGHT"),
        ("?sharpen=1", photo.clone(), "unknown operation `sharpen`"),
        ("", b"GIF89a not a photo".to_vec(), "the body is not a PNG or JPEG image"),
    ];
    for (query, body, message) in cases {
        let (status, _, _, text) = post(&format!("{url}{query}"), body).await;
        assert_eq!(status, 400, "{query}");
        assert!(String::from_utf8_lossy(&text).contains(message), "{query}: {}", String::from_utf8_lossy(&text));
    }
    let res = reqwest::get(&url).await.unwrap();
    assert_eq!(res.status(), 405, "routed for POST only, and the function says so for others");
}
