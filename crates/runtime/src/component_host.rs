//! Host functions for components: the `edgefn:host` WIT interfaces in `wit/host.wit`,
//! the counterparts of the core imports in [`crate::host`], with the same grants, the
//! same [`crate::CallContext`] and the same node services. An interface the module's class is
//! not granted is refused before it runs ([`crate::Grants::check`]); a call of an
//! ungranted function traps as a second line of defence.

use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};

use crate::host::LogLevel;
use crate::invoke::ComponentHost;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "edgefn:host/imports",
        imports: { default: async | trappable },
    });
}

use bindings::edgefn::host::{config, kv, log, metrics, request};

/// The grant each interface's functions need, by `interface#function`.
pub(crate) const INTERFACE_GRANTS: [(&str, &[&str]); 5] = [
    ("log", &["log"]),
    ("metrics", &["metrics_increment"]),
    ("kv", &["kv_get", "kv_put"]),
    ("config", &["env_get"]),
    ("request", &["request_id", "request_header"]),
];

/// Defines every `edgefn:host` interface in `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<ComponentHost>) -> wasmtime::Result<()> {
    bindings::Imports::add_to_linker::<ComponentHost, HasSelf<ComponentHost>>(linker, |h| h)
}

impl log::Host for ComponentHost {
    async fn write(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        self.ctx.require("log")?;
        let level = match level {
            log::Level::Debug => LogLevel::Debug,
            log::Level::Info => LogLevel::Info,
            log::Level::Warn => LogLevel::Warn,
            log::Level::Error => LogLevel::Error,
        };
        self.ctx.log(level, &message);
        Ok(())
    }
}

impl metrics::Host for ComponentHost {
    async fn increment(&mut self, name: String, value: u64) -> wasmtime::Result<()> {
        self.ctx.require("metrics_increment")?;
        if let Some(s) = &self.ctx.services {
            s.metrics_increment(&self.ctx, &name, value);
        }
        Ok(())
    }
}

impl kv::Host for ComponentHost {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, String>> {
        self.ctx.require("kv_get")?;
        let Some(services) = self.ctx.services.clone() else { return Ok(Err("no key-value store here".into())) };
        Ok(services.kv_get(&self.ctx.function_id, &key).await.map_err(|e| format!("kv get `{key}` failed: {e:#}")))
    }

    async fn put(&mut self, key: String, value: Vec<u8>, ttl_seconds: Option<u32>) -> wasmtime::Result<Result<(), String>> {
        self.ctx.require("kv_put")?;
        let Some(services) = self.ctx.services.clone() else { return Ok(Err("no key-value store here".into())) };
        let ttl = ttl_seconds.filter(|s| *s > 0).map(|s| Duration::from_secs(s.into()));
        Ok(services.kv_put(&self.ctx.function_id, &key, value, ttl).await.map_err(|e| format!("kv put `{key}` failed: {e:#}")))
    }
}

impl config::Host for ComponentHost {
    async fn get(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        self.ctx.require("env_get")?;
        Ok(self.ctx.env.get(&name).cloned())
    }
}

impl request::Host for ComponentHost {
    async fn id(&mut self) -> wasmtime::Result<String> {
        self.ctx.require("request_id")?;
        Ok(self.ctx.request_id.clone())
    }

    async fn header(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        self.ctx.require("request_header")?;
        Ok(self.ctx.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(&name)).map(|(_, v)| v.clone()))
    }
}
