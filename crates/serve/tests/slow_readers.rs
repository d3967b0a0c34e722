//! A reader that takes a large response at a trickle, or not at all, is cut at the minimum
//! send rate, while one that keeps up gets all of it — on real sockets.

use std::time::{Duration, Instant};

use bytes::Bytes;
use edgefn_serve::{Limits, TimedBody, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// 32 MiB: more than the loopback socket buffers on both sides hold.
const BODY_BYTES: usize = 32 << 20;

/// Reads from `stream`, `chunk` bytes every `every` for `slow_for`, then as fast as it can
/// until the stream ends; answers how many bytes it got. A connection the server cut ends
/// short of the whole body (what the socket buffers held when it was cut); one it did not
/// cut delivers all of it.
async fn trickle(mut stream: tokio::net::TcpStream, chunk: usize, every: Duration, slow_for: Duration) -> usize {
    let started = Instant::now();
    let mut buf = vec![0; 1 << 16];
    let mut got = 0;
    loop {
        let slow = started.elapsed() < slow_for;
        let want = if slow { chunk } else { buf.len() };
        match tokio::time::timeout(Duration::from_secs(60), stream.read(&mut buf[..want])).await {
            Ok(Ok(0)) | Ok(Err(_)) => return got,
            Ok(Ok(n)) => got += n,
            Err(_) => panic!("the connection neither ended nor sent anything for 60 s ({got} bytes read)"),
        }
        if slow {
            tokio::time::sleep(every).await;
        }
    }
}

#[tokio::test]
async fn slow_readers_are_cut_at_the_minimum_send_rate_and_others_are_served() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // 256 KiB/s over 1-second windows.
    let limits = Limits { min_send_rate: 256 << 10, send_window: Duration::from_secs(1), ..Limits::default() };
    let body = Bytes::from(vec![b'x'; BODY_BYTES]);
    let service = hyper::service::service_fn(move |_req: hyper::Request<TimedBody>| {
        let body = body.clone();
        async move { Ok::<_, std::convert::Infallible>(hyper::Response::new(http_body_util::Full::new(body))) }
    });
    tokio::spawn(serve(listener, limits, move |_| service.clone(), std::future::pending()));

    let request = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";
    // One reads 1 KiB every 100 ms (10 KiB/s), one reads nothing: both are cut.
    let mut slow = Vec::new();
    for (chunk, every) in [(1024, Duration::from_millis(100)), (1, Duration::from_secs(1))] {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        slow.push(tokio::spawn(trickle(stream, chunk, every, Duration::from_secs(5))));
    }
    // One that keeps up gets the whole body meanwhile.
    let res = reqwest::get(format!("http://{addr}/")).await.unwrap();
    assert_eq!(res.bytes().await.unwrap().len(), BODY_BYTES);
    for reader in slow {
        let got = reader.await.unwrap();
        assert!(got < BODY_BYTES, "a slow reader was not cut: it got the whole body ({got} bytes)");
    }
}
