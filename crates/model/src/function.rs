//! A function as a node serves it: its settings and the versions its routes name.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A name that is not one of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}`")]
pub struct UnknownValue {
    /// Which kind of value.
    pub what: &'static str,
    /// The text given.
    pub value: String,
}

named_enum! {
    /// Who a function belongs to, which sets its sandbox limits and grants.
    Class, "class" {
        /// Made by an admin for everyone; immutable.
        System = "system",
        /// For admins only.
        Admin = "admin",
        /// A user's own.
        User = "user",
    }
}

named_enum! {
    /// Whether a function may run.
    Status, "status" {
        /// Its first version is being stored.
        Uploading = "uploading",
        /// Runs.
        Active = "active",
        /// Turned off by its owner or an admin: requests get 503.
        Disabled = "disabled",
        /// Its upload failed.
        Error = "error",
    }
}

named_enum! {
    /// What a version's bytes are.
    Kind, "kind" {
        /// A core WebAssembly module.
        Core = "core",
        /// A component.
        Component = "component",
    }
}

/// One version of a function a node may run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Version {
    /// Label (`1.2.0`).
    pub label: String,
    /// Hex SHA-256 of the bytes: the artifact's address.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Core module or component.
    pub kind: Kind,
}

/// A function with the settings a node runs it with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Function {
    /// UUID.
    pub id: String,
    /// Name, for messages.
    pub name: String,
    /// Whose capacity it uses: its project, or its owner when it has none.
    pub owner: String,
    /// Sandbox class.
    pub class: Class,
    /// Whether it runs.
    pub status: Status,
    /// Longest a call may run.
    pub timeout_ms: u64,
    /// Most 64 KiB pages of linear memory.
    pub max_memory_pages: u64,
    /// Requests it runs at once on a node.
    pub max_instances: u32,
    /// Whether an instance serves more than one request.
    pub reuse_instances: bool,
    /// Longest an HTTP request may run; `None` is the node's default.
    pub http_timeout_ms: Option<u64>,
    /// Most bytes of an HTTP request or response body; `None` is the default (100 MiB).
    /// Capped by the class on the node.
    pub max_body_bytes: Option<u64>,
    /// Values `env_get` reads (shared with every call).
    pub env: Arc<BTreeMap<String, String>>,
    /// Hosts outbound HTTP may reach (shared with every call).
    pub allow_hosts: Arc<Vec<String>>,
    /// The newest version's label.
    pub latest: Option<String>,
    /// The versions routes name (the newest, and any pinned), by label.
    pub versions: BTreeMap<String, Version>,
}

impl Function {
    /// The version a route's target runs: the pinned label, or the newest.
    pub fn version(&self, pinned: Option<&str>) -> Option<&Version> {
        self.versions.get(pinned.or(self.latest.as_deref())?)
    }
}

/// What a route points at.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// Function id.
    pub function_id: String,
    /// Pinned version label, or `None` for the newest.
    pub version: Option<String>,
}
