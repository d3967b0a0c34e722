//! One spelling of each host and path, so that two spellings of the same address can
//! never be two owners' addresses.
//!
//! **Hosts** are compared in their canonical form at claim, route creation and request
//! matching alike: lower case, no trailing dot, no port, an internationalised name in its
//! ASCII (punycode) form, an IP address in its standard notation (`2130706433`,
//! `0x7f.1` and `127.0.0.1` are one address; so are `[::ffff:7f00:1]` and
//! `[::ffff:127.0.0.1]`). Parsing follows the WHATWG URL standard — what browsers do with
//! a host — through the `url` crate (IDNA by its `idna`).
//!
//! **Paths** of routes must be normal; a request's path is made normal before it is
//! matched (RFC 3986 §6.2.2): percent-encoded unreserved characters decoded, the other
//! escapes in upper case, `.` and `..` segments removed and empty segments merged. So
//! `/evil/../shop`, `//shop` and `/%73hop` are all `/shop`, and reach `/shop`'s owner. An
//! encoded `/` (`%2F`) stays encoded: it is part of a segment, never a boundary.

use std::net::{IpAddr, Ipv4Addr};

/// Why a host is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{host}` is not a host name or IP address: {why}")]
pub struct BadHost {
    /// The host as given.
    pub host: String,
    /// What is wrong with it.
    pub why: String,
}

/// The canonical form of a request's or a route's host (`Bücher.Test.:8080` →
/// `xn--bcher-kva.test`, `2130706433` → `127.0.0.1`, `[::1]:80` → `[::1]`).
pub fn canonical_host(raw: &str) -> Result<String, BadHost> {
    let name = without_port(raw.trim());
    // The common case, an ordinary lower-case name, needs no parsing.
    if is_plain_name(name) {
        return Ok(name.trim_end_matches('.').to_string());
    }
    // So is a dotted IPv4 address (std takes only four decimal octets, no leading zeros).
    if let Ok(v4) = name.parse::<Ipv4Addr>() {
        return Ok(v4.to_string());
    }
    let bad = |why: String| BadHost { host: raw.to_string(), why };
    match url::Host::parse(name) {
        Ok(url::Host::Domain(domain)) => {
            let domain = domain.trim_end_matches('.');
            let label_ok = |l: &str| (1..=63).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if domain.is_empty() || domain.len() > 253 || !domain.split('.').all(label_ok) {
                return Err(bad("a name is labels of letters, digits, `-` or `_` (1 to 63 of them) between dots".into()));
            }
            Ok(domain.to_string())
        }
        Ok(url::Host::Ipv4(v4)) => Ok(v4.to_string()),
        Ok(url::Host::Ipv6(v6)) => Ok(format!("[{v6}]")),
        Err(e) => Err(bad(e.to_string())),
    }
}

/// The canonical form of a host pattern: a host, or `*.` and a host name.
pub fn canonical_host_pattern(raw: &str) -> Result<String, BadHost> {
    match raw.trim().strip_prefix("*.") {
        Some(rest) => {
            let name = canonical_host(rest)?;
            if is_ip_literal(&name) {
                return Err(BadHost { host: raw.to_string(), why: "a wildcard goes over a name, not an address".into() });
            }
            Ok(format!("*.{name}"))
        }
        None => canonical_host(raw),
    }
}

/// Whether a canonical host is an IP address (`127.0.0.1`, `[::1]`).
pub fn is_ip_literal(canonical: &str) -> bool {
    canonical.starts_with('[') || canonical.parse::<Ipv4Addr>().is_ok()
}

/// The address a canonical IP literal names, IPv4-mapped IPv6 as its IPv4.
pub fn ip_of(canonical: &str) -> Option<IpAddr> {
    let ip: IpAddr = canonical.trim_start_matches('[').trim_end_matches(']').parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    })
}

/// `host` without a `:port` (a bracketed IPv6 address keeps its brackets).
fn without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !name.contains(':') => name,
        _ => host,
    }
}

/// A lower-case name of letters, digits, `-` and dots whose last label is not a number
/// (which the URL standard would read as part of an IPv4 address) and no label of which
/// is punycode (checked by the full parse).
fn is_plain_name(name: &str) -> bool {
    let trimmed = name.trim_end_matches('.');
    let last = trimmed.rsplit('.').next().unwrap_or("");
    !trimmed.is_empty()
        && trimmed.len() <= 253
        && trimmed.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && trimmed.split('.').all(|l| !l.is_empty() && l.len() <= 63 && !l.starts_with("xn--"))
        && last.bytes().any(|b| b.is_ascii_lowercase())
        && !last.starts_with("0x")
}

/// `path` in normal form: escapes of unreserved characters decoded, other escapes in
/// upper case, dot segments removed, empty segments merged (a trailing `/` is kept).
pub fn normalize_path(path: &str) -> String {
    let decoded = normalize_escapes(path);
    let mut segments: Vec<&str> = Vec::new();
    let ends_in_slash = decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/..") || decoded == "." || decoded == "..";
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(decoded.len() + 1);
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() || ends_in_slash {
        out.push('/');
    }
    out
}

/// Whether a request path needs [`normalize_path`] (most do not: this only scans).
pub fn path_is_normal(path: &str) -> bool {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return false;
    }
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'%' => return false,
            b'/' if bytes.get(i + 1) == Some(&b'/') => return false,
            b'.' if bytes[i - 1] == b'/' => {
                let rest = &bytes[i + 1..];
                if rest.is_empty() || rest[0] == b'/' || (rest[0] == b'.' && (rest.len() == 1 || rest[1] == b'/')) {
                    return false;
                }
            }
            _ => {}
        }
    }
    true
}

/// Why a route's exact or prefix path is not in normal form, naming the normal form.
pub fn route_path_problem(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return Some(format!("path `{path}` must start with `/`"));
    }
    if path.to_ascii_uppercase().contains("%2F") {
        return Some(format!("path `{path}` holds an encoded `/` (%2F): a route's segments are separated by `/` itself"));
    }
    let normal = normalize_path(path);
    (normal != path).then(|| {
        format!("path `{path}` is not in normal form (no `.` or `..` or empty segments, no escaped unreserved characters): use `{normal}`")
    })
}

/// Decodes escapes of unreserved characters (`%41` → `A`) and upper-cases the others
/// (`%2f` → `%2F`); malformed escapes are left as they are.
fn normalize_escapes(path: &str) -> std::borrow::Cow<'_, str> {
    if !path.contains('%') {
        return path.into();
    }
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex))
        {
            let value = (hi * 16 + lo) as u8;
            if value.is_ascii_alphanumeric() || b"-._~".contains(&value) {
                out.push(value as char);
            } else {
                out.push('%');
                out.push_str(&format!("{value:02X}"));
            }
            i += 3;
            continue;
        }
        // Request paths are ASCII (hyper refuses others); copy what is there as it is.
        let ch = path[i..].chars().next().expect("in bounds");
        out.push(ch);
        i += ch.len_utf8();
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_notation_of_an_address_is_one_host() {
        for (raw, canonical) in [
            ("example.com", "example.com"),
            ("Example.COM.", "example.com"),
            ("example.com:8080", "example.com"),
            ("bücher.test", "xn--bcher-kva.test"),
            ("BÜCHER.test", "xn--bcher-kva.test"),
            ("xn--bcher-kva.test", "xn--bcher-kva.test"),
            ("127.0.0.1", "127.0.0.1"),
            ("127.0.0.1:8000", "127.0.0.1"),
            ("2130706433", "127.0.0.1"),
            ("0x7f000001", "127.0.0.1"),
            ("0x7f.1", "127.0.0.1"),
            ("0177.0.0.1", "127.0.0.1"),
            ("127.1", "127.0.0.1"),
            ("[::1]", "[::1]"),
            ("[::1]:8000", "[::1]"),
            ("[0:0:0:0:0:0:0:1]", "[::1]"),
            ("[::ffff:127.0.0.1]", "[::ffff:127.0.0.1]"),
            ("[::ffff:7f00:1]", "[::ffff:127.0.0.1]"),
            ("LOCALHOST", "localhost"),
        ] {
            assert_eq!(canonical_host(raw).as_deref(), Ok(canonical), "{raw}");
        }
        for bad in ["", "a..b", "exa mple.com", "[::1", "a/b", "[zz::1]", "a*.com", "*"] {
            assert!(canonical_host(bad).is_err(), "{bad}");
        }
        assert_eq!(canonical_host_pattern("*.Bücher.test").as_deref(), Ok("*.xn--bcher-kva.test"));
        assert!(canonical_host_pattern("*.127.0.0.1").is_err());
        assert_eq!(ip_of("[::ffff:127.0.0.1]"), Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert!(is_ip_literal("[::1]") && is_ip_literal("10.0.0.1") && !is_ip_literal("example.com"));
    }

    #[test]
    fn request_paths_are_made_normal() {
        for (raw, normal) in [
            ("/", "/"),
            ("/shop", "/shop"),
            ("/shop/", "/shop/"),
            ("/evil/../shop", "/shop"),
            ("/./shop", "/shop"),
            ("//shop", "/shop"),
            ("/shop//cart", "/shop/cart"),
            ("/%73hop", "/shop"),
            ("/%2e%2e/shop", "/shop"),
            ("/a/%2E/b", "/a/b"),
            ("/shop%2fx", "/shop%2Fx"),
            ("/a/b/..", "/a/"),
            ("/..", "/"),
            ("/a%zz", "/a%zz"),
            ("/caf%C3%A9", "/caf%C3%A9"),
        ] {
            assert_eq!(normalize_path(raw), normal, "{raw}");
            // The quick check never passes a path normalising would change.
            assert!(!path_is_normal(raw) || raw == normal, "{raw}");
            if !raw.contains('%') {
                assert_eq!(path_is_normal(raw), raw == normal, "{raw}");
            }
        }
    }

    #[test]
    fn route_paths_must_already_be_normal() {
        assert_eq!(route_path_problem("/shop"), None);
        assert_eq!(route_path_problem("/shop/"), None);
        assert!(route_path_problem("/evil/../shop").unwrap().contains("use `/shop`"));
        assert!(route_path_problem("//shop").unwrap().contains("use `/shop`"));
        assert!(route_path_problem("/%73hop").unwrap().contains("use `/shop`"));
        assert!(route_path_problem("/shop%2Fx").unwrap().contains("encoded `/`"));
        assert!(route_path_problem("shop").unwrap().contains("must start with `/`"));
    }
}
