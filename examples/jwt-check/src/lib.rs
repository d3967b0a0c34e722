//! jwt-check: a `wasi:http` component that validates the request's `Authorization: Bearer`
//! JWT — HS256 only (`none` and every other algorithm are refused), the signature checked
//! in constant time against the `JWT_SECRET` setting, `exp` and `nbf` against the clock
//! (30 s leeway), `aud` against `JWT_AUDIENCE` when set — and answers `200` with the
//! claims, or `401` with the reason (also in `www-authenticate`).

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

/// Seconds of clock difference forgiven on `exp` and `nbf`.
const LEEWAY: u64 = 30;

struct Component;

wasi::http::proxy::export!(Component);

impl Guest for Component {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let header = request.headers().get(&"authorization".to_string()).into_iter().next();
        let checked = match std::env::var("JWT_SECRET") {
            Ok(secret) if !secret.is_empty() => header
                .ok_or_else(|| "no Authorization header".to_string())
                .and_then(|h| String::from_utf8(h).map_err(|_| "the Authorization header is not text".to_string()))
                .and_then(|h| check(&h, secret.as_bytes(), std::env::var("JWT_AUDIENCE").ok().as_deref(), now())),
            _ => return respond(out, 500, &json!({"valid": false, "error": "JWT_SECRET is not set"}), None),
        };
        match checked {
            Ok(claims) => respond(out, 200, &json!({"valid": true, "sub": claims.get("sub"), "claims": claims}), None),
            Err(error) => respond(out, 401, &json!({"valid": false, "error": error}), Some(&error)),
        }
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The claims of the bearer token in `authorization`, or why it is not valid.
fn check(authorization: &str, secret: &[u8], audience: Option<&str>, now: u64) -> Result<Value, String> {
    let token = authorization.strip_prefix("Bearer ").ok_or("the Authorization header is not `Bearer <token>`")?.trim();
    let mut parts = token.split('.');
    let (Some(head), Some(body), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err("not a JWT: expected three dot-separated parts".into());
    };
    let decode = |part: &str, what: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| format!("the {what} is not base64url"));
    let header: Value = serde_json::from_slice(&decode(head, "header")?).map_err(|_| "the header is not JSON")?;
    match header["alg"].as_str() {
        Some("HS256") => {}
        Some(alg) => return Err(format!("algorithm `{alg}` is not accepted: only HS256")),
        None => return Err("the header names no algorithm".into()),
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| "bad secret")?;
    mac.update(head.as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    mac.verify_slice(&decode(signature, "signature")?).map_err(|_| "the signature does not match")?;
    let claims: Value = serde_json::from_slice(&decode(body, "payload")?).map_err(|_| "the payload is not JSON")?;
    if !claims.is_object() {
        return Err("the payload is not a JSON object".into());
    }
    if let Some(exp) = claims.get("exp") {
        let exp = exp.as_u64().ok_or("`exp` is not a number of seconds")?;
        if now > exp + LEEWAY {
            return Err(format!("the token expired {} s ago", now - exp));
        }
    }
    if let Some(nbf) = claims.get("nbf") {
        let nbf = nbf.as_u64().ok_or("`nbf` is not a number of seconds")?;
        if now + LEEWAY < nbf {
            return Err(format!("the token is not valid for another {} s", nbf - now));
        }
    }
    if let Some(audience) = audience {
        let named = match &claims["aud"] {
            Value::String(aud) => aud == audience,
            Value::Array(auds) => auds.iter().any(|a| a == audience),
            _ => false,
        };
        if !named {
            return Err(format!("the token is not for audience `{audience}`"));
        }
    }
    Ok(claims)
}

fn respond(out: ResponseOutparam, status: u16, body: &Value, error: Option<&str>) {
    let mut headers = vec![("content-type".to_string(), b"application/json".to_vec())];
    if let Some(error) = error {
        let challenge = format!("Bearer error=\"invalid_token\", error_description=\"{}\"", error.replace('"', "'"));
        headers.push(("www-authenticate".to_string(), challenge.into_bytes()));
    }
    let response = OutgoingResponse::new(Fields::from_list(&headers).expect("valid headers"));
    response.set_status_code(status).expect("a valid status");
    let outgoing = response.body().expect("a body");
    ResponseOutparam::set(out, Ok(response));
    let stream = outgoing.write().expect("a body stream");
    let text = format!("{body}\n");
    for chunk in text.as_bytes().chunks(4096) {
        if stream.blocking_write_and_flush(chunk).is_err() {
            return;
        }
    }
    drop(stream);
    let _ = OutgoingBody::finish(outgoing, None);
}
