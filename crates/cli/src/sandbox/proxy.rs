//! The dependency step's only way out: an HTTPS (`CONNECT`) proxy on a unix socket that
//! the step's network namespace reaches through [`super::relay`].
//!
//! The dependency step needs the registries (crates.io, npm, git hosts) and nothing else.
//! With the host's network shared, a dependency URL in a project's manifest could reach
//! whatever listens on the machine — the control plane's API, a node, a database — or on
//! its private network. So the step gets a network namespace of its own, with only a
//! loopback device, and its package managers are told to use this proxy. The proxy
//! resolves each name itself and connects only to public addresses: never loopback,
//! private, link-local, shared (CGNAT), multicast or unspecified ones, nor any address of
//! the machine's own interfaces. Each refusal answers 403 naming the rule and goes into the
//! build's log. Plain `http://` is refused: registries are served over HTTPS, and a
//! tunnel is all a package manager needs.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpStream, UnixListener};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Longest a connection to a registry may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A proxy serving one step; dropping it closes the socket and every tunnel.
pub struct Proxy {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// Listens on a new socket at `path` (any local user may connect: all it reaches is
    /// the public network); each refusal is written to `log`.
    pub fn start(path: &Path, log: mpsc::UnboundedSender<String>) -> anyhow::Result<Self> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e).context("removing an old proxy socket"),
            _ => {}
        }
        let listener = UnixListener::bind(path).context("opening the build proxy's socket")?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).context("opening the build proxy's socket to the build")?;
        let own = Arc::new(own_addresses());
        let task = tokio::spawn(async move {
            // Held by this task: aborting it ends every connection too.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => {
                            let (own, log) = (own.clone(), log.clone());
                            let service = hyper::service::service_fn(move |req| tunnel(req, own.clone(), log.clone()));
                            connections.spawn(async move {
                                let served = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).with_upgrades();
                                let _ = served.await;
                            });
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "the build proxy stopped accepting");
                            break;
                        }
                    },
                    Some(_) = connections.join_next() => {}
                }
            }
        });
        Ok(Self { task })
    }
}

type Answer = Response<Full<Bytes>>;

fn refused(status: StatusCode, why: String) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::from(format!("{why}\n"))));
    *answer.status_mut() = status;
    answer
}

/// Answers one proxy request: a `CONNECT` to a public address opens a tunnel; anything
/// else is refused and logged.
async fn tunnel(
    req: Request<hyper::body::Incoming>,
    own: Arc<Vec<IpAddr>>,
    log: mpsc::UnboundedSender<String>,
) -> Result<Answer, Infallible> {
    if req.method() != Method::CONNECT {
        let why = format!(
            "build proxy: refused {} {}: the dependency step downloads over HTTPS only (a tunnel, CONNECT)",
            req.method(),
            req.uri()
        );
        let _ = log.send(why.clone());
        return Ok(refused(StatusCode::FORBIDDEN, why));
    }
    let Some((host, port)) = req.uri().authority().and_then(|a| Some((a.host().trim_matches(['[', ']']).to_string(), a.port_u16()?)))
    else {
        return Ok(refused(StatusCode::BAD_REQUEST, format!("build proxy: CONNECT {} names no host and port", req.uri())));
    };
    let upstream = match open(&host, port, &own).await {
        Ok(upstream) => upstream,
        Err(why) => {
            let why = format!("build proxy: refused {host}:{port}: {why}");
            let _ = log.send(why.clone());
            return Ok(refused(StatusCode::FORBIDDEN, why));
        }
    };
    tokio::spawn(async move {
        if let Ok(upgraded) = hyper::upgrade::on(req).await {
            let mut upgraded = TokioIo::new(upgraded);
            let mut upstream = upstream;
            let _ = tokio::io::copy_bidirectional(&mut upgraded, &mut upstream).await;
        }
    });
    Ok(Response::new(Full::new(Bytes::new())))
}

/// A connection to the first public address `host` resolves to.
async fn open(host: &str, port: u16, own: &[IpAddr]) -> Result<TcpStream, String> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await.map_err(|e| format!("cannot resolve it: {e}"))?.collect();
    let Some(public) = addresses.iter().find(|a| refusal(a.ip(), own).is_none()) else {
        let first = addresses.first().map(SocketAddr::ip);
        let why = first.and_then(|ip| refusal(ip, own)).unwrap_or("it resolves to no address");
        let seen = first.map(|ip| format!(" ({ip})")).unwrap_or_default();
        return Err(format!("{why}{seen}; the dependency step reaches only public addresses"));
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(public)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(format!("connecting to {public}: {e}")),
        Err(_) => Err(format!("connecting to {public} took more than {} s", CONNECT_TIMEOUT.as_secs())),
    }
}

/// Why the dependency step may not reach `ip`, if it may not.
fn refusal(ip: IpAddr, own: &[IpAddr]) -> Option<&'static str> {
    let ip = ip.to_canonical();
    let kind = match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Some("a loopback address")
            } else if v4.is_private() {
                Some("a private address")
            } else if v4.is_link_local() {
                Some("a link-local address")
            } else if a == 100 && (64..128).contains(&b) {
                Some("a shared (carrier-grade NAT) address")
            } else if a == 0 || v4.is_multicast() || a >= 240 {
                Some("not a unicast address")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("a loopback address")
            } else if first & 0xfe00 == 0xfc00 {
                Some("a private (unique local) address")
            } else if first & 0xffc0 == 0xfe80 {
                Some("a link-local address")
            } else if v6.is_unspecified() || v6.is_multicast() {
                Some("not a unicast address")
            } else {
                None
            }
        }
    };
    kind.or_else(|| own.contains(&ip).then_some("an address of this machine"))
}

/// Every address of the machine's interfaces.
fn own_addresses() -> Vec<IpAddr> {
    let Ok(interfaces) = nix::ifaddrs::getifaddrs() else {
        tracing::warn!("could not list this machine's addresses; the build proxy refuses the usual local ranges only");
        return Vec::new();
    };
    interfaces
        .filter_map(|i| i.address)
        .filter_map(|a| a.as_sockaddr_in().map(|s| IpAddr::V4(s.ip())).or_else(|| a.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip()))))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::refusal;

    #[test]
    fn only_public_addresses_pass() {
        let own: Vec<IpAddr> = vec!["203.0.113.7".parse().unwrap()];
        for (ip, why) in [
            ("127.0.0.1", Some("a loopback address")),
            ("127.8.9.10", Some("a loopback address")),
            ("::1", Some("a loopback address")),
            ("::ffff:127.0.0.1", Some("a loopback address")),
            ("10.255.255.53", Some("a private address")),
            ("172.16.0.1", Some("a private address")),
            ("192.168.1.1", Some("a private address")),
            ("::ffff:192.168.1.1", Some("a private address")),
            ("169.254.169.254", Some("a link-local address")),
            ("fe80::1", Some("a link-local address")),
            ("fd00::1", Some("a private (unique local) address")),
            ("100.64.0.1", Some("a shared (carrier-grade NAT) address")),
            ("0.0.0.0", Some("not a unicast address")),
            ("::", Some("not a unicast address")),
            ("224.0.0.1", Some("not a unicast address")),
            ("255.255.255.255", Some("not a unicast address")),
            ("203.0.113.7", Some("an address of this machine")),
            ("203.0.113.80", None),
            ("151.101.1.137", None),
            ("2606:4700::1111", None),
        ] {
            assert_eq!(refusal(ip.parse().unwrap(), &own), why, "{ip}");
        }
    }
}
