//! mTLS between nodes and the control plane (rustls through tonic): the control plane's
//! listener requires a client certificate signed by the cluster's CA, so a node without
//! one, with an expired one or with one from another CA fails the handshake. A node is
//! named by its certificate: the common name is its name, the organizational unit its POP.

use std::path::{Path, PathBuf};

use anyhow::Context;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};
use x509_parser::prelude::{FromDer, X509Certificate};

/// The files of a cluster's certificates, as `edgefn certs init` lays them out.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The CA certificate (PEM).
    pub ca: PathBuf,
    /// This party's certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
}

impl CertFiles {
    /// The control plane's files in a certificate directory.
    pub fn control(dir: &Path) -> Self {
        Self { ca: dir.join("ca.pem"), cert: dir.join("control.pem"), key: dir.join("control.key") }
    }

    /// A node's files in a certificate directory.
    pub fn node(dir: &Path, name: &str) -> Self {
        Self {
            ca: dir.join("ca.pem"),
            cert: dir.join("nodes").join(format!("{name}.pem")),
            key: dir.join("nodes").join(format!("{name}.key")),
        }
    }

    /// The three files' contents.
    pub fn read(&self) -> anyhow::Result<(Certificate, Identity)> {
        let read =
            |p: &Path| std::fs::read(p).with_context(|| format!("reading {} (create certificates with `edgefn certs init`)", p.display()));
        let ca = Certificate::from_pem(read(&self.ca)?);
        let identity = Identity::from_pem(read(&self.cert)?, read(&self.key)?);
        Ok((ca, identity))
    }

    /// The server side: this certificate, and client certificates required from the CA.
    pub fn server(&self) -> anyhow::Result<ServerTlsConfig> {
        let (ca, identity) = self.read()?;
        Ok(ServerTlsConfig::new().identity(identity).client_ca_root(ca))
    }
}

/// The DNS names and addresses a PEM certificate is for (its subject alternative names):
/// the control plane's are names the platform is reached by.
pub fn certificate_names(pem: &[u8]) -> anyhow::Result<Vec<String>> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).map_err(|e| anyhow::anyhow!("unreadable PEM: {e}"))?;
    let cert = pem.parse_x509().map_err(|e| anyhow::anyhow!("unreadable certificate: {e}"))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(dns) => names.push(dns.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(bytes) => match bytes.len() {
                    4 => names.push(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*bytes).expect("4 bytes")).to_string()),
                    16 => names.push(format!("[{}]", std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*bytes).expect("16 bytes")))),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    Ok(names)
}

/// A node's name (common name) and POP (organizational unit) from its certificate.
pub fn node_name(der: &[u8]) -> anyhow::Result<(String, Option<String>)> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| anyhow::anyhow!("unreadable certificate: {e}"))?;
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()
        .and_then(|n| n.as_str().ok())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| anyhow::anyhow!("the certificate names no node (no common name)"))?;
    let pop = subject.iter_organizational_unit().next().and_then(|u| u.as_str().ok()).map(str::to_string);
    Ok((name.to_string(), pop))
}
