//! Host functions a core module may import (DESIGN §4, docs/abi.md "Host functions"):
//! `env.abort` and `env.log` (the AssemblyScript conventions) and, in module `edgefn`,
//! `log`, `metrics_increment`, `kv_get`, `kv_put`, `http_fetch`, `env_get`, `request_id`
//! and `request_header`.
//!
//! Each is granted per module class ([`Grants`]); a module importing one its class is not
//! granted is refused before it runs ([`Grants::check`]), and a call of an ungranted
//! function traps as a second line of defence. What a function touches outside the
//! sandbox — logs, metrics, the key-value store, outbound HTTP — goes through the
//! [`HostServices`] the node provides, with the [`CallContext`] of the request.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::{Caller, Extern, Linker, Memory};

use crate::guest_log::GuestLog;
use crate::http_abi::parse_response;
use crate::invoke::CoreHost;

/// Every host function, by the name grants use (and the import name in `edgefn`).
pub const HOST_FUNCTIONS: [&str; 9] =
    ["abort", "log", "metrics_increment", "kv_get", "kv_put", "http_fetch", "env_get", "request_id", "request_header"];

/// Result codes a host function returns to the guest (docs/abi.md).
mod code {
    /// No such key, header or value.
    pub const NOT_FOUND: i32 = -1;
    /// The host could not do it (store down, fetch failed); the reason is logged.
    pub const FAILED: i32 = -2;
    /// `http_fetch` to a host outside the function's allow-list.
    pub const DENIED: i32 = -3;
    /// A pointer or length outside the guest's memory, or text that is not UTF-8.
    pub const BAD_ARGUMENT: i32 = -4;
}

/// Which host functions a module may import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Grants(u16);

impl Grants {
    /// Grants by host function name; an unknown name is an error naming it.
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<Self, String> {
        let mut bits = 0;
        for name in names {
            let name = name.as_ref();
            let i = HOST_FUNCTIONS
                .iter()
                .position(|f| *f == name)
                .ok_or_else(|| format!("unknown host function `{name}`; host functions are {}", HOST_FUNCTIONS.join(", ")))?;
            bits |= 1 << i;
        }
        Ok(Self(bits))
    }

    /// The defaults of a module class (seed wasm-edge-integration.md §6.2, extended with
    /// this platform's functions): `user` modules may only abort; `system` modules may
    /// also log, count, read their request and configuration; `admin` modules get all,
    /// including the key-value store and outbound HTTP. Unknown classes get nothing.
    pub fn for_class(class: &str) -> Self {
        let names: &[&str] = match class {
            "user" => &["abort"],
            "system" => &["abort", "log", "metrics_increment", "env_get", "request_id", "request_header"],
            "admin" => &HOST_FUNCTIONS,
            _ => &[],
        };
        Self::from_names(names).expect("class defaults name real host functions")
    }

    /// Whether `function` is granted.
    pub fn allows(self, function: &str) -> bool {
        HOST_FUNCTIONS.iter().position(|f| *f == function).is_some_and(|i| self.0 & (1 << i) != 0)
    }

    /// Checks a module's imports: `Err` names the first one that needs a host function
    /// the module was not granted (`module.name` for a core module, the interface name
    /// for a component).
    pub fn check(self, imports: &[String]) -> Result<(), String> {
        match imports.iter().find(|i| required_grants(i).iter().any(|f| !self.allows(f))) {
            Some(import) => Err(import.clone()),
            None => Ok(()),
        }
    }
}

/// The host functions an import needs granted: one for a core import written
/// `module.name`, all of an `edgefn:host/…` interface's for a component import.
fn required_grants(import: &str) -> Vec<&'static str> {
    let known = |n: &str| HOST_FUNCTIONS.iter().copied().find(|f| *f == n);
    if let Some(interface) = import.strip_prefix("edgefn:host/") {
        let interface = interface.split('@').next().unwrap_or_default();
        return match crate::component_host::INTERFACE_GRANTS.iter().find(|(name, _)| *name == interface) {
            Some((_, functions)) => functions.to_vec(),
            // Not an interface of ours: linking refuses it as an unknown import.
            None => Vec::new(),
        };
    }
    let Some((module, name)) = import.split_once('.') else { return Vec::new() };
    match module {
        "env" if name == "abort" || name == "log" => known(name).into_iter().collect(),
        "edgefn" if name != "abort" => known(name).into_iter().collect(),
        _ => Vec::new(),
    }
}

/// Severity of a guest log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// 0
    Debug,
    /// 1 (and `env.log`)
    Info,
    /// 2
    Warn,
    /// 3 and above
    Error,
}

impl LogLevel {
    fn from_i32(level: i32) -> Self {
        match level {
            i32::MIN..=0 => Self::Debug,
            1 => Self::Info,
            2 => Self::Warn,
            _ => Self::Error,
        }
    }
}

/// An outbound request from `http_fetch`.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    /// `GET`, `POST`…
    pub method: String,
    /// Absolute `http://` or `https://` URL.
    pub url: String,
    /// Header names and values.
    pub headers: Vec<(String, String)>,
    /// Body (may be empty).
    pub body: Vec<u8>,
}

/// A future a host service returns.
pub type HostFuture<T> = Pin<Box<dyn Future<Output = anyhow::Result<T>> + Send>>;

/// What host functions reach outside the sandbox; the node implements it.
pub trait HostServices: Send + Sync {
    /// Counts a guest log line dropped by the rate limit of [`GuestLog`].
    fn log_dropped(&self, ctx: &CallContext);
    /// Adds `value` to the function's counter `name`.
    fn metrics_increment(&self, ctx: &CallContext, name: &str, value: u64);
    /// Reads a live key of the function's namespace.
    fn kv_get(&self, function_id: &str, key: &str) -> HostFuture<Option<Vec<u8>>>;
    /// Writes a key of the function's namespace, to expire after `ttl` if given.
    fn kv_put(&self, function_id: &str, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> HostFuture<()>;
    /// Sends an outbound request (already checked against the allow-list) and returns
    /// the response in the `handle` ABI's response form (`STATUS\nname: value\n\nbody`).
    fn http_fetch(&self, request: FetchRequest) -> HostFuture<Vec<u8>>;
}

/// Who is calling and with what, for the host functions of one call.
#[derive(Clone, Default)]
pub struct CallContext {
    /// The module id: log and metric label, key-value namespace.
    pub function_id: Arc<str>,
    /// The request id (`x-request-id` of the answer).
    pub request_id: String,
    /// The request's headers, names in lower case (shared with the request itself).
    pub headers: Arc<[(String, String)]>,
    /// Host functions this module may call.
    pub grants: Grants,
    /// The module's configuration values for `env_get`.
    pub env: Arc<BTreeMap<String, String>>,
    /// Hosts `http_fetch` may reach (exact names, or `*.example.com`).
    pub allow_hosts: Arc<Vec<String>>,
    /// Where guest log lines go: the runtime's [`GuestLog`] (`Runtime::guest_log`), shared
    /// by every call so a function's allowance holds whichever way it is called.
    pub log: Arc<GuestLog>,
    /// The node's services; without them the key-value store and outbound HTTP fail.
    pub services: Option<Arc<dyn HostServices>>,
}

impl CallContext {
    /// A trap unless the calling module was granted `function`: the second line of
    /// defence behind the import check, for core imports and component interfaces alike.
    pub(crate) fn require(&self, function: &str) -> wasmtime::Result<()> {
        if self.grants.allows(function) {
            Ok(())
        } else {
            Err(wasmtime::Error::msg(format!("host function `{function}` is not granted to this function")))
        }
    }

    /// Writes a guest log line through the shared [`GuestLog`]; a line over the
    /// function's allowance is counted by the node's services, if any.
    pub(crate) fn log(&self, level: LogLevel, message: &str) {
        if !self.log.write(&self.function_id, &self.request_id, level, message)
            && let Some(services) = &self.services
        {
            services.log_dropped(self);
        }
    }
}

/// Whether `host` is on `allow`: an exact name or a `*.suffix` wildcard (which does not
/// match the bare suffix).
pub fn host_allowed(allow: &[String], host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    allow.iter().any(|a| match a.strip_prefix("*.") {
        Some(suffix) => host.strip_suffix(suffix).is_some_and(|rest| rest.ends_with('.') && rest.len() > 1),
        None => a.eq_ignore_ascii_case(&host),
    })
}

/// Defines every host function in `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<CoreHost>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "abort", |mut caller: Caller<'_, CoreHost>, msg: i32, file: i32, line: i32, col: i32| {
        caller.data().ctx.require("abort")?;
        let message = read_as_string(&mut caller, msg).unwrap_or_default();
        let file = read_as_string(&mut caller, file).unwrap_or_default();
        Err::<(), _>(wasmtime::Error::msg(format!("the function aborted: {message} at {file}:{line}:{col}")))
    })?;
    linker.func_wrap("env", "log", |mut caller: Caller<'_, CoreHost>, ptr: i32, len: i32| {
        caller.data().ctx.require("log")?;
        if let Some(text) = read_str(&mut caller, ptr, len) {
            caller.data().ctx.log(LogLevel::Info, &text);
        }
        Ok(())
    })?;
    linker.func_wrap("edgefn", "log", |mut caller: Caller<'_, CoreHost>, level: i32, ptr: i32, len: i32| {
        caller.data().ctx.require("log")?;
        Ok(match read_str(&mut caller, ptr, len) {
            Some(text) => {
                caller.data().ctx.log(LogLevel::from_i32(level), &text);
                0
            }
            None => code::BAD_ARGUMENT,
        })
    })?;
    linker.func_wrap("edgefn", "metrics_increment", |mut caller: Caller<'_, CoreHost>, ptr: i32, len: i32, value: i64| {
        caller.data().ctx.require("metrics_increment")?;
        let Some(name) = read_str(&mut caller, ptr, len) else { return Ok(code::BAD_ARGUMENT) };
        let ctx = &caller.data().ctx;
        if let Some(s) = &ctx.services {
            s.metrics_increment(ctx, &name, value.max(0) as u64);
        }
        Ok(0)
    })?;
    linker.func_wrap("edgefn", "env_get", |mut caller: Caller<'_, CoreHost>, ptr: i32, len: i32, out: i32, cap: i32| {
        caller.data().ctx.require("env_get")?;
        let Some(name) = read_str(&mut caller, ptr, len) else { return Ok(code::BAD_ARGUMENT) };
        let value = caller.data().ctx.env.get(&name).cloned();
        Ok(write_out(&mut caller, value.as_deref().map(str::as_bytes), out, cap))
    })?;
    linker.func_wrap("edgefn", "request_id", |mut caller: Caller<'_, CoreHost>, out: i32, cap: i32| {
        caller.data().ctx.require("request_id")?;
        let id = caller.data().ctx.request_id.clone();
        Ok(write_out(&mut caller, Some(id.as_bytes()), out, cap))
    })?;
    linker.func_wrap("edgefn", "request_header", |mut caller: Caller<'_, CoreHost>, ptr: i32, len: i32, out: i32, cap: i32| {
        caller.data().ctx.require("request_header")?;
        let Some(name) = read_str(&mut caller, ptr, len) else { return Ok(code::BAD_ARGUMENT) };
        let value = caller.data().ctx.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(&name)).map(|(_, v)| v.clone());
        Ok(write_out(&mut caller, value.as_deref().map(str::as_bytes), out, cap))
    })?;
    linker.func_wrap_async("edgefn", "kv_get", |mut caller: Caller<'_, CoreHost>, (ptr, len, out, cap): (i32, i32, i32, i32)| {
        Box::new(async move {
            caller.data().ctx.require("kv_get")?;
            let Some(key) = read_str(&mut caller, ptr, len) else { return Ok(code::BAD_ARGUMENT) };
            let ctx = caller.data().ctx.clone();
            let Some(services) = ctx.services.clone() else { return Ok(code::FAILED) };
            match services.kv_get(&ctx.function_id, &key).await {
                Ok(value) => Ok(write_out(&mut caller, value.as_deref(), out, cap)),
                Err(e) => {
                    ctx.log(LogLevel::Error, &format!("kv_get `{key}` failed: {e:#}"));
                    Ok(code::FAILED)
                }
            }
        })
    })?;
    linker.func_wrap_async(
        "edgefn",
        "kv_put",
        |mut caller: Caller<'_, CoreHost>, (kptr, klen, vptr, vlen, ttl): (i32, i32, i32, i32, i64)| {
            Box::new(async move {
                caller.data().ctx.require("kv_put")?;
                let (Some(key), Some(value)) = (read_str(&mut caller, kptr, klen), read_bytes(&mut caller, vptr, vlen)) else {
                    return Ok(code::BAD_ARGUMENT);
                };
                let ctx = caller.data().ctx.clone();
                let Some(services) = ctx.services.clone() else { return Ok(code::FAILED) };
                let ttl = (ttl > 0).then(|| Duration::from_secs(ttl as u64));
                match services.kv_put(&ctx.function_id, &key, value, ttl).await {
                    Ok(()) => Ok(0),
                    Err(e) => {
                        ctx.log(LogLevel::Error, &format!("kv_put `{key}` failed: {e:#}"));
                        Ok(code::FAILED)
                    }
                }
            })
        },
    )?;
    linker.func_wrap_async("edgefn", "http_fetch", |mut caller: Caller<'_, CoreHost>, (ptr, len, out, cap): (i32, i32, i32, i32)| {
        Box::new(async move {
            caller.data().ctx.require("http_fetch")?;
            let Some(raw) = read_bytes(&mut caller, ptr, len) else { return Ok(code::BAD_ARGUMENT) };
            let ctx = caller.data().ctx.clone();
            let request = match parse_fetch(&raw) {
                Ok(r) => r,
                Err(why) => {
                    ctx.log(LogLevel::Warn, &format!("http_fetch: {why}"));
                    return Ok(code::BAD_ARGUMENT);
                }
            };
            let host = request.url.parse::<hyper::Uri>().ok().and_then(|u| u.host().map(str::to_string)).unwrap_or_default();
            if !host_allowed(&ctx.allow_hosts, &host) {
                tracing::warn!(function_id = %ctx.function_id, request_id = %ctx.request_id, host, "http_fetch denied: host not on the allow-list");
                return Ok(code::DENIED);
            }
            let Some(services) = ctx.services.clone() else { return Ok(code::FAILED) };
            match services.http_fetch(request).await {
                Ok(response) => Ok(write_out(&mut caller, Some(&response), out, cap)),
                Err(e) => {
                    ctx.log(LogLevel::Error, &format!("http_fetch to `{host}` failed: {e:#}"));
                    Ok(code::FAILED)
                }
            }
        })
    })?;
    Ok(())
}

fn memory(caller: &mut Caller<'_, CoreHost>) -> Option<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Some(m),
        _ => None,
    }
}

fn read_bytes(caller: &mut Caller<'_, CoreHost>, ptr: i32, len: i32) -> Option<Vec<u8>> {
    let memory = memory(caller)?;
    let (start, len) = (ptr as u32 as usize, usize::try_from(len).ok()?);
    memory.data(&*caller).get(start..start.checked_add(len)?).map(<[u8]>::to_vec)
}

fn read_str(caller: &mut Caller<'_, CoreHost>, ptr: i32, len: i32) -> Option<String> {
    String::from_utf8(read_bytes(caller, ptr, len)?).ok()
}

/// An AssemblyScript string: UTF-16LE code units, their byte length in the `u32` just
/// before `ptr`. Null (0) reads as "".
fn read_as_string(caller: &mut Caller<'_, CoreHost>, ptr: i32) -> Option<String> {
    if ptr == 0 {
        return Some(String::new());
    }
    let memory = memory(caller)?;
    let data = memory.data(&*caller);
    let start = (ptr as u32 as usize).checked_sub(4)?;
    let len = u32::from_le_bytes(data.get(start..start + 4)?.try_into().ok()?) as usize;
    let units: Vec<u16> =
        data.get(start + 4..start + 4 + len.min(4096))?.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    Some(String::from_utf16_lossy(&units))
}

/// Writes `value` to `out` when it fits in `cap` and returns its length (the guest
/// compares it with `cap` and calls again with a larger buffer if needed), or
/// [`code::NOT_FOUND`] for no value.
fn write_out(caller: &mut Caller<'_, CoreHost>, value: Option<&[u8]>, out: i32, cap: i32) -> i32 {
    let Some(value) = value else { return code::NOT_FOUND };
    let Ok(len) = i32::try_from(value.len()) else { return code::FAILED };
    if len <= cap {
        let Some(memory) = memory(caller) else { return code::BAD_ARGUMENT };
        if memory.write(&mut *caller, out as u32 as usize, value).is_err() {
            return code::BAD_ARGUMENT;
        }
    }
    len
}

/// Parses an `http_fetch` request: `METHOD URL` on the first line, header lines, an
/// empty line, the body — the mirror of the `handle` ABI's response.
fn parse_fetch(raw: &[u8]) -> Result<FetchRequest, String> {
    // After the request line the layout is that of a response, so its parser reads the rest.
    let first_end = raw.iter().position(|b| *b == b'\n').ok_or("no request line")?;
    let line = std::str::from_utf8(&raw[..first_end]).map_err(|_| "the request line is not UTF-8")?.trim();
    let (method, url) = line.split_once(' ').ok_or("the request line must be `METHOD URL`")?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("`{url}` is not an absolute http(s) URL"));
    }
    let mut rest = b"200\n".to_vec();
    rest.extend_from_slice(&raw[first_end + 1..]);
    let parsed = parse_response(&rest).map_err(|e| e.to_string())?;
    Ok(FetchRequest { method: method.to_string(), url: url.trim().to_string(), headers: parsed.headers, body: parsed.body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_matches_exact_names_and_subdomains_only() {
        let allow = vec!["api.example.com".to_string(), "*.trusted.org".to_string()];
        assert!(host_allowed(&allow, "api.example.com"));
        assert!(host_allowed(&allow, "API.example.com"));
        assert!(host_allowed(&allow, "a.trusted.org"));
        assert!(!host_allowed(&allow, "trusted.org"));
        assert!(!host_allowed(&allow, "eviltrusted.org"));
        assert!(!host_allowed(&allow, "example.com"));
    }

    #[test]
    fn grants_name_the_first_ungranted_import() {
        let user = Grants::for_class("user");
        assert_eq!(user.check(&["env.abort".into(), "wasi_snapshot_preview1.fd_write".into()]), Ok(()));
        assert_eq!(user.check(&["env.abort".into(), "edgefn.kv_get".into()]), Err("edgefn.kv_get".into()));
        assert!(Grants::for_class("admin").check(&["edgefn.http_fetch".into()]).is_ok());
        let system = Grants::for_class("system");
        assert_eq!(system.check(&["wasi:http/types@0.2.0".into(), "edgefn:host/log@0.1.0".into()]), Ok(()));
        assert_eq!(system.check(&["edgefn:host/kv@0.1.0".into()]), Err("edgefn:host/kv@0.1.0".into()));
        assert_eq!(user.check(&["edgefn:host/request@0.1.0".into()]), Err("edgefn:host/request@0.1.0".into()));
        assert!(Grants::from_names(&["fly"]).unwrap_err().contains("unknown host function `fly`"));
    }

    #[test]
    fn fetch_requests_parse_like_handle_responses() {
        let r = parse_fetch(b"POST https://api.example.com/x\ncontent-type: text/plain\n\nhi").unwrap();
        assert_eq!((r.method.as_str(), r.url.as_str(), r.body.as_slice()), ("POST", "https://api.example.com/x", &b"hi"[..]));
        assert_eq!(r.headers, vec![("content-type".to_string(), "text/plain".to_string())]);
        assert!(parse_fetch(b"GET /relative\n\n").unwrap_err().contains("absolute"));
    }
}
