//! `edgefn certs`: a development certificate authority for the node stream's mTLS.
//! `init` creates the CA and the control plane's server certificate; `node NAME --pop P`
//! issues a node's client certificate, whose common name is the node's name and whose
//! organizational unit is its POP. Private keys are written mode 0600.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use edgefn_control::nodes::CertFiles;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};
use time::{Duration, OffsetDateTime};

/// The CA's private key in a certificate directory: it signs node certificates and stays
/// off the nodes.
const CA_KEY: &str = "ca.key";

/// Certificate commands.
#[derive(Subcommand, Debug)]
pub enum CertsCommand {
    /// Create a CA and the control plane's certificate (localhost, 127.0.0.1, ::1 and
    /// each --host).
    Init(InitArgs),
    /// Issue a node's certificate.
    Node(NodeArgs),
}

/// Flags of `certs init`.
#[derive(Args, Debug)]
pub struct InitArgs {
    /// Where to write them.
    #[arg(long, env = "EDGEFN_CERTS", default_value = ".edgefn/certs")]
    dir: PathBuf,
    /// Another name or address nodes reach the control plane at; repeat for several.
    #[arg(long = "host")]
    hosts: Vec<String>,
    /// Days the control plane's certificate is valid (the CA: ten times as long).
    #[arg(long, default_value_t = 365)]
    days: i64,
}

/// Flags of `certs node`.
#[derive(Args, Debug)]
pub struct NodeArgs {
    /// The node's name: letters, digits, `.`, `_` and `-`.
    name: String,
    /// The node's POP.
    #[arg(long)]
    pop: Option<String>,
    /// The certificate directory (with the CA of `certs init`).
    #[arg(long, env = "EDGEFN_CERTS", default_value = ".edgefn/certs")]
    dir: PathBuf,
    /// Days the certificate is valid.
    #[arg(long, default_value_t = 365)]
    days: i64,
}

impl CertsCommand {
    /// Runs the command.
    pub fn execute(self) -> anyhow::Result<()> {
        match self {
            CertsCommand::Init(args) => args.execute(),
            CertsCommand::Node(args) => args.execute(),
        }
    }
}

fn validity(params: &mut CertificateParams, days: i64) -> anyhow::Result<()> {
    anyhow::ensure!(days >= 1, "--days must be at least 1");
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(days);
    Ok(())
}

fn write(path: &Path, content: &str, secret: bool) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mode = if secret { 0o600 } else { 0o644 };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("writing {} (it must not exist yet)", path.display()))?;
    file.write_all(content.as_bytes())?;
    Ok(())
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

impl InitArgs {
    fn execute(self) -> anyhow::Result<()> {
        let files = CertFiles::control(&self.dir);
        std::fs::create_dir_all(&self.dir).with_context(|| format!("creating {}", self.dir.display()))?;
        anyhow::ensure!(!files.ca.exists(), "{} already holds a CA; use another --dir", self.dir.display());
        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::default();
        ca.distinguished_name = DistinguishedName::new();
        ca.distinguished_name.push(DnType::CommonName, "edgefn development CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        validity(&mut ca, self.days.saturating_mul(10))?;
        let ca_cert = ca.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca, &ca_key);

        let mut names = vec!["localhost".to_string()];
        names.extend(self.hosts.iter().filter(|h| h.parse::<IpAddr>().is_err()).cloned());
        let mut control = CertificateParams::new(names)?;
        for ip in ["127.0.0.1", "::1"].iter().map(|s| s.to_string()).chain(self.hosts.iter().cloned()) {
            if let Ok(ip) = ip.parse::<IpAddr>() {
                control.subject_alt_names.push(SanType::IpAddress(ip));
            }
        }
        control.distinguished_name.push(DnType::CommonName, "edgefn control plane");
        control.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        validity(&mut control, self.days)?;
        let control_key = KeyPair::generate()?;
        let control_cert = control.signed_by(&control_key, &issuer)?;

        write(&files.ca, &ca_cert.pem(), false)?;
        write(&self.dir.join(CA_KEY), &ca_key.serialize_pem(), true)?;
        write(&files.cert, &control_cert.pem(), false)?;
        write(&files.key, &control_key.serialize_pem(), true)?;
        println!("created a CA and the control plane's certificate in {}", self.dir.display());
        println!("  next: edgefn certs node NAME --pop POP --dir {}", self.dir.display());
        Ok(())
    }
}

impl NodeArgs {
    fn execute(self) -> anyhow::Result<()> {
        anyhow::ensure!(is_name(&self.name), "node name `{}`: use 1 to 63 letters, digits, `.`, `_` or `-`", self.name);
        if let Some(pop) = &self.pop {
            anyhow::ensure!(is_name(pop), "POP `{pop}`: use 1 to 63 letters, digits, `.`, `_` or `-`");
        }
        let files = CertFiles::node(&self.dir, &self.name);
        let read = |path: &Path| {
            std::fs::read_to_string(path).with_context(|| format!("reading {} (run `edgefn certs init` first)", path.display()))
        };
        let ca_key = KeyPair::from_pem(&read(&self.dir.join(CA_KEY))?)?;
        let issuer = Issuer::from_ca_cert_pem(&read(&files.ca)?, &ca_key)?;
        let mut params = CertificateParams::new(vec![self.name.clone()])?;
        params.distinguished_name.push(DnType::CommonName, self.name.as_str());
        if let Some(pop) = &self.pop {
            params.distinguished_name.push(DnType::OrganizationalUnitName, pop.as_str());
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        validity(&mut params, self.days)?;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer)?;
        if let Some(dir) = files.cert.parent() {
            std::fs::create_dir_all(dir)?;
        }
        write(&files.cert, &cert.pem(), false)?;
        write(&files.key, &key.serialize_pem(), true)?;
        println!("issued node {}'s certificate: {} and {}", self.name, files.cert.display(), files.key.display());
        Ok(())
    }
}
