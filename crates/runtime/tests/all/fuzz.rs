//! Fuzz targets for what guests hand the host, run as property tests on every CI run: the
//! `handle` ABI's response parser and the host's framing rules take any bytes without
//! panicking, and what they accept is well-formed.

use edgefn_runtime::{host_owned_header, parse_response};
use proptest::prelude::*;

/// The fuzz target: parse `bytes` as a guest's response and check what came out.
fn parse_any(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(response) = parse_response(bytes) {
        prop_assert!((100..=599).contains(&response.status));
        for (name, value) in &response.headers {
            prop_assert!(!name.contains('\n') && !value.contains('\n'), "a header line kept a newline: {name:?}: {value:?}");
            prop_assert!(name.trim() == name && value.trim() == value);
        }
        prop_assert!(bytes.ends_with(&response.body), "the body is not the end of the input");
    }
    Ok(())
}

/// Bytes shaped like responses: a status line, header lines of tricky characters, a
/// separator, a body — so the parser's deeper paths are reached, not only its first check.
fn response_like() -> impl Strategy<Value = Vec<u8>> {
    let status = prop_oneof![Just("200".to_string()), (0u32..1000).prop_map(|n| n.to_string()), "[0-9a-z ]{0,5}"];
    let header = "[a-zA-Z:\\- \r\t\u{0}]{0,12}(:[ -~\r\u{7f}\u{80}-\u{10ffff}]{0,20})?";
    let headers = proptest::collection::vec(header, 0..6);
    let separator = prop_oneof![Just("\n\n"), Just("\r\n\r\n"), Just("\n"), Just("")];
    (status, headers, separator, proptest::collection::vec(any::<u8>(), 0..64)).prop_map(|(status, headers, sep, body)| {
        let mut bytes = status.into_bytes();
        for h in headers {
            bytes.push(b'\n');
            bytes.extend_from_slice(h.as_bytes());
        }
        bytes.extend_from_slice(sep.as_bytes());
        bytes.extend(body);
        bytes
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn the_response_parser_takes_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        parse_any(&bytes)?;
    }

    #[test]
    fn the_response_parser_takes_any_response_like_bytes(bytes in response_like()) {
        parse_any(&bytes)?;
    }

    #[test]
    fn framing_and_hop_by_hop_headers_are_the_hosts_in_any_case(
        name in prop_oneof![Just("content-length"), Just("transfer-encoding"), Just("connection"), Just("keep-alive"), Just("upgrade"), Just("te"), Just("trailer"), Just("proxy-authorization")],
        upper in proptest::collection::vec(any::<bool>(), 20),
    ) {
        let name: String = name.chars().zip(upper.iter().cycle()).map(|(c, up)| if *up { c.to_ascii_uppercase() } else { c }).collect();
        prop_assert!(host_owned_header(&name), "{name}");
    }
}

#[test]
fn ordinary_headers_are_the_guests() {
    for name in ["content-type", "x-kept", "cache-control", "set-cookie", "tea", "contents-length"] {
        assert!(!host_owned_header(name), "{name}");
    }
}
