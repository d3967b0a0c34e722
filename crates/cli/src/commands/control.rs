//! `edgefn control`: the control plane alone — the API and admin UI, and the node stream
//! listener (mTLS) that edge nodes started with `edgefn node --control` connect to.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use super::up::{ControlArgs, FileConfig};

/// Where nodes connect by default.
pub const DEFAULT_NODE_STREAM_LISTEN: &str = "127.0.0.1:8443";

/// Flags of `edgefn control`.
#[derive(Args, Debug)]
pub struct ControlCommand {
    #[command(flatten)]
    control: ControlArgs,
    /// Address of the node stream (gRPC over mTLS) [default: 127.0.0.1:8443].
    #[arg(long, env = "EDGEFN_NODE_STREAM_LISTEN")]
    node_stream_listen: Option<SocketAddr>,
    /// Directory of the cluster's certificates (`edgefn certs init`): ca.pem, control.pem,
    /// control.key [default: <data dir>/certs].
    #[arg(long, env = "EDGEFN_CERTS")]
    certs: Option<PathBuf>,
}

impl ControlCommand {
    /// Runs until ctrl-c or SIGTERM.
    pub async fn execute(self) -> anyhow::Result<()> {
        super::init_logs(self.control.log_json);
        let file = FileConfig::read(self.control.config.as_deref())?;
        let mut config = self.control.config(&file)?;
        crate::private::data_dir(&config.data_dir)?;
        let certs = file.certs(self.certs.clone(), &config.data_dir);
        let cert_files = edgefn_control::nodes::CertFiles::control(&certs);
        if let Ok(pem) = std::fs::read(&cert_files.cert) {
            let names = edgefn_control::nodes::tls::certificate_names(&pem)?;
            config.reserved_hosts.extend(names.into_iter().map(|n| (n, "a name of the control plane's certificate".to_string())));
        }
        let tls = cert_files.server()?;
        let opened = edgefn_control::open(&config).await?;
        if let Some(url) = &self.control.edge_url {
            let _ = opened.state.edge_url.set(url.trim_end_matches('/').to_string());
        }
        edgefn_control::review_claims(&opened.state).await?;
        let listener = super::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let stream_addr = file.node_stream_listen(self.node_stream_listen);
        let stream_listener = super::bind(stream_addr).await?;
        let stream_addr = stream_listener.local_addr()?;
        println!("edgefn control plane is up");
        super::up::print_control(&config, addr, &opened);
        println!("  node stream https://{stream_addr}  (mTLS; certificates in {})", certs.display());
        println!("node stream listening on https://{stream_addr}");
        println!("listening on http://{addr}");
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let limits = self.control.connections.limits();
        let hub = opened.state.hub.clone();
        let streams = tokio::spawn(edgefn_control::nodes::serve_nodes(stream_listener, hub, tls, super::until_stopped(stopped.clone())));
        let api = tokio::spawn(edgefn_control::serve(listener, opened.state, limits, super::until_stopped(stopped)));
        super::up::shutdown_signal().await;
        stop.send_replace(true);
        api.await??;
        streams.abort();
        Ok(())
    }
}
