//! Where node streams arrive: a TLS listener for remote nodes (mTLS, HTTP/2 keepalive),
//! and an in-process channel for `edgefn up`'s own node, which then takes the same stream
//! as any other.

use std::sync::Arc;
use std::time::Duration;

use tokio_stream::wrappers::{TcpListenerStream, UnboundedReceiverStream};
use tonic::transport::{Channel, Endpoint, Server, ServerTlsConfig};

use super::stream::{Hub, Identity, NodeService};

/// HTTP/2 pings on an idle stream, so a vanished peer is noticed.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// A ping unanswered this long closes the connection.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves node streams on `listener` with `tls` until `shutdown`.
pub async fn serve_nodes(
    listener: tokio::net::TcpListener,
    hub: Arc<Hub>,
    tls: ServerTlsConfig,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    Server::builder()
        .tls_config(tls)?
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .add_service(NodeService::new(hub, Identity::Certificate))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await?;
    Ok(())
}

/// A channel to this process's node stream service, for a node named `name` in `pop`:
/// each connection is an in-memory pipe, so it needs no port and no certificate.
pub fn in_process_channel(hub: Arc<Hub>, name: &str, pop: Option<String>) -> Channel {
    let (connections, incoming) = tokio::sync::mpsc::unbounded_channel::<std::io::Result<tokio::io::DuplexStream>>();
    let service = NodeService::new(hub, Identity::Local { name: name.to_string(), pop });
    tokio::spawn(async move {
        if let Err(e) = Server::builder().add_service(service).serve_with_incoming(UnboundedReceiverStream::new(incoming)).await {
            tracing::error!(error = %e, "the in-process node stream server stopped");
        }
    });
    Endpoint::from_static("http://in-process.invalid").connect_with_connector_lazy(tower::service_fn(move |_: tonic::transport::Uri| {
        let (client, server) = tokio::io::duplex(1 << 20);
        let sent = connections.send(Ok(server));
        async move {
            sent.map_err(|_| std::io::Error::other("the in-process node stream server is gone"))?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(client))
        }
    }))
}
