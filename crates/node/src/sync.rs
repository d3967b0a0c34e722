//! The node stream client: keeps one stream open to the control plane for as long as the
//! node lives, reconnecting with exponential backoff and jitter. On each stream it says
//! `Hello` (its applied revision and the resource versions it holds), applies each
//! `Delta` ([`Node::apply`]) and answers `Ack` or `Nack`, and sends a `Report` every
//! [`crate::NodeConfig::report_every`]. Losing the control plane changes nothing the
//! node serves.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use edgefn_proto::v1;
use edgefn_proto::v1::node_stream_client::NodeStreamClient;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::apply::ArtifactSource;
use crate::ingress::Node;
use crate::traffic::ProcessUsage;

/// This node's edgefn version, in its Hello and reports.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Largest artifact a node accepts.
const MAX_ARTIFACT_BYTES: u64 = 256 * 1024 * 1024;
/// Messages queued to the control plane before the node waits.
const OUTBOX: usize = 16;

/// Reconnection delays: about 1 s, ×1.6 after each failure, ±20 % jitter, at most 60 s.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(60);

    /// From the first delay.
    pub fn new() -> Self {
        Self { next: Self::FIRST }
    }

    /// The delay before the next attempt.
    pub fn delay(&mut self) -> Duration {
        let base = self.next;
        self.next = self.next.mul_f64(1.6).min(Self::MAX);
        base.mul_f64(rand::random_range(0.8..=1.2)).min(Self::MAX)
    }

    /// Back to the first delay, after a stream that worked.
    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

/// HTTP/2 pings while the stream is idle, so a vanished control plane is noticed.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// A ping unanswered this long drops the connection.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A channel to the control plane at `url` (`https://host:8443`) over mTLS: the control
/// plane must present a certificate of `ca_pem` for the URL's host, and this node presents
/// `cert_pem` / `key_pem`. It connects when first used, and again after each loss.
pub fn channel(url: &str, ca_pem: &[u8], cert_pem: &[u8], key_pem: &[u8]) -> anyhow::Result<Channel> {
    let uri: tonic::transport::Uri = url.parse().map_err(|e| anyhow::anyhow!("control plane URL `{url}`: {e}"))?;
    anyhow::ensure!(uri.scheme_str() == Some("https"), "control plane URL `{url}` must start with https://");
    let host = uri.host().ok_or_else(|| anyhow::anyhow!("control plane URL `{url}` has no host"))?;
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .identity(Identity::from_pem(cert_pem, key_pem))
        .domain_name(host.trim_start_matches('[').trim_end_matches(']'));
    Ok(Endpoint::from_shared(url.to_string())?
        .tls_config(tls)?
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
        .connect_lazy())
}

/// Artifacts pulled over the node's authenticated channel.
struct Pull {
    client: NodeStreamClient<Channel>,
}

impl ArtifactSource for Pull {
    fn fetch<'a>(&'a self, sha256: &'a str, size: u64) -> Pin<Box<dyn Future<Output = anyhow::Result<Vec<u8>>> + Send + 'a>> {
        Box::pin(async move {
            anyhow::ensure!(size <= MAX_ARTIFACT_BYTES, "artifact of {size} bytes is over the node's limit of {MAX_ARTIFACT_BYTES}");
            let mut client = self.client.clone();
            let mut chunks = client.fetch_artifact(v1::ArtifactRequest { sha256: sha256.to_string() }).await?.into_inner();
            let mut bytes = Vec::with_capacity(size as usize);
            while let Some(chunk) = chunks.message().await? {
                anyhow::ensure!(
                    bytes.len() as u64 + chunk.data.len() as u64 <= size,
                    "the artifact is larger than its declared {size} bytes"
                );
                bytes.extend_from_slice(&chunk.data);
            }
            anyhow::ensure!(bytes.len() as u64 == size, "the transfer ended after {} of {size} bytes", bytes.len());
            Ok(bytes)
        })
    }
}

impl Node {
    /// Follows the control plane over `channel` forever: one stream at a time, a new one
    /// after each loss. The first failure is logged as a warning, later ones quietly until
    /// a stream works again.
    pub async fn follow(self, channel: Channel) {
        let mut backoff = Backoff::new();
        let mut failing = false;
        loop {
            let started = Instant::now();
            let outcome = self.session(channel.clone(), &mut failing).await;
            if started.elapsed() > Duration::from_secs(10) {
                backoff.reset();
            }
            let delay = backoff.delay();
            let refused = outcome
                .as_ref()
                .err()
                .and_then(|e| e.downcast_ref::<tonic::Status>())
                .filter(|s| matches!(s.code(), tonic::Code::PermissionDenied | tonic::Code::Unauthenticated))
                .map(|s| s.message().to_string());
            match outcome {
                Err(_) if let Some(reason) = refused => {
                    tracing::error!(
                        reason,
                        retry_in_ms = delay.as_millis() as u64,
                        "the control plane refused this node; serving the applied state (revision {}) and retrying",
                        self.snapshot().revision
                    );
                    failing = true;
                }
                Err(e) if !failing => {
                    tracing::warn!(error = %format!("{e:#}"), retry_in_ms = delay.as_millis() as u64,
                        "lost the control plane; serving the applied state (revision {}) and retrying", self.snapshot().revision);
                    failing = true;
                }
                Err(e) => {
                    tracing::debug!(error = %format!("{e:#}"), retry_in_ms = delay.as_millis() as u64, "control plane still unreachable")
                }
                Ok(()) => {}
            }
            tokio::time::sleep(delay).await;
        }
    }

    /// One stream, until it fails.
    async fn session(&self, channel: Channel, failing: &mut bool) -> anyhow::Result<()> {
        let mut client = edgefn_proto::node_stream_client(channel);
        let (outbox, queued) = tokio::sync::mpsc::channel(OUTBOX);
        let snapshot = self.snapshot();
        // What the node holds is what it can run: a function whose artifact left the cache
        // (deleted while the node was down, say) is not held, so the control plane sends it
        // again and the node fetches what it lacks.
        let mut lacking = Vec::new();
        let held = snapshot
            .resources()
            .filter(|r| match r {
                edgefn_model::Resource::Function(f) if !f.versions.values().all(|v| self.cache().contains(&v.sha256)) => {
                    lacking.push(f.name.clone());
                    false
                }
                _ => true,
            })
            .map(|r| (r.name().to_string(), v1::Resource::from(&r).version))
            .collect();
        if !lacking.is_empty() {
            tracing::warn!(functions = %lacking.join(", "), "artifacts of applied functions are missing from the cache; asking the control plane for them");
        }
        let hello = v1::Hello {
            protocol: edgefn_proto::PROTOCOL,
            revision: snapshot.revision,
            held,
            pop: self.pop().unwrap_or_default().to_string(),
            labels: Default::default(),
            agent_version: AGENT_VERSION.to_string(),
            report_every_ms: self.config().report_every.as_millis() as u64,
        };
        outbox.send(v1::NodeMessage { kind: Some(v1::node_message::Kind::Hello(hello)) }).await?;
        let mut inbound = client.stream(ReceiverStream::new(queued)).await?.into_inner();
        if *failing {
            tracing::info!("reconnected to the control plane");
            *failing = false;
        } else {
            tracing::info!(revision = snapshot.revision, "connected to the control plane");
        }
        let pull = Pull { client: client.clone() };
        let mut usage = ProcessUsage::new();
        let every = self.config().report_every;
        let mut reports = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        // A report held up by a long delivery is sent late, and the next a whole interval
        // after it: two back to back would be refused as a flood.
        reports.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut window_started = Instant::now();
        loop {
            tokio::select! {
                message = inbound.message() => {
                    let Some(message) = message? else { anyhow::bail!("the control plane closed the stream") };
                    let Some(v1::control_message::Kind::Delta(delta)) = message.kind else { continue };
                    let rejected = self.apply(&delta, &pull).await?;
                    let reply = if rejected.is_empty() {
                        tracing::debug!(revision = delta.revision, upserts = delta.upserts.len(), removals = delta.removals.len(), "applied");
                        v1::node_message::Kind::Ack(v1::Ack { nonce: delta.nonce, revision: delta.revision })
                    } else {
                        v1::node_message::Kind::Nack(v1::Nack { nonce: delta.nonce, revision: delta.revision, rejected })
                    };
                    outbox.send(v1::NodeMessage { kind: Some(reply) }).await?;
                }
                _ = reports.tick() => {
                    let (cpu_percent, memory_bytes) = usage.sample();
                    let report = v1::Report {
                        revision: self.snapshot().revision,
                        agent_version: AGENT_VERSION.to_string(),
                        cpu_percent,
                        memory_bytes,
                        window_ms: window_started.elapsed().as_millis() as u64,
                        traffic: self.traffic().take(),
                    };
                    window_started = Instant::now();
                    outbox.send(v1::NodeMessage { kind: Some(v1::node_message::Kind::Report(report)) }).await?;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_by_1_6_with_jitter_up_to_a_minute() {
        let mut b = Backoff::new();
        let delays: Vec<f64> = (0..20).map(|_| b.delay().as_secs_f64()).collect();
        assert!((0.8..=1.2).contains(&delays[0]), "{delays:?}");
        assert!((1.28..=1.92).contains(&delays[1]), "{delays:?}");
        assert!(delays.iter().all(|d| *d <= 60.0), "{delays:?}");
        assert!(delays[19] >= 48.0, "{delays:?}");
        b.reset();
        assert!(b.delay() <= Duration::from_millis(1200));
    }
}
