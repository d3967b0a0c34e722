//! Sandbox limits per module class (`system`, `admin`, `user`): the most memory and time
//! a call may use and the host functions its modules may import. Seed defaults
//! (wasm-edge-integration.md §6.2); `edgefn up` may change them in its config file. A
//! module's own settings are capped by its class on every execution.

use serde::Deserialize;

use crate::host::Grants;

/// Most bytes of an HTTP request body, and of a response body, of a function that sets no
/// limit of its own: `wasmtime serve` streams without a limit; 100 MiB lets uploads and
/// downloads of real files through while bounding what one request moves.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 100 * 1024 * 1024;

/// Limits of one class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassLimits {
    /// Most linear memory of one call.
    pub max_memory_bytes: u64,
    /// Longest a call may run.
    pub max_execution_ms: u64,
    /// Most bytes of an HTTP request or response body a module may set.
    pub max_body_bytes: u64,
    /// Host functions its modules may import.
    pub grants: Grants,
}

impl ClassLimits {
    /// `timeout_ms` and `max_memory_pages` of a module, capped by this class.
    pub fn cap(&self, timeout_ms: i64, max_memory_pages: i64) -> (u64, u64) {
        let pages = (self.max_memory_bytes / 65536).min(max_memory_pages.max(0) as u64);
        ((timeout_ms.max(0) as u64).min(self.max_execution_ms), pages * 65536)
    }

    /// A module's body limit (`None`: the default), capped by this class.
    pub fn body_limit(&self, max_body_bytes: Option<u64>) -> u64 {
        max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES).min(self.max_body_bytes)
    }
}

/// Limits of every class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classes {
    /// Platform functions runnable by everyone.
    pub system: ClassLimits,
    /// Admins' own functions.
    pub admin: ClassLimits,
    /// Everyone else's.
    pub user: ClassLimits,
}

impl Default for Classes {
    fn default() -> Self {
        let limits = |mb: u64, secs: u64, body_mb: u64, class: &str| ClassLimits {
            max_memory_bytes: mb * 1024 * 1024,
            max_execution_ms: secs * 1000,
            max_body_bytes: body_mb * 1024 * 1024,
            grants: Grants::for_class(class),
        };
        Self { system: limits(100, 30, 1024, "system"), admin: limits(500, 60, 1024, "admin"), user: limits(50, 10, 100, "user") }
    }
}

impl Classes {
    /// The limits of `class`; an unknown class gets the strictest (`user`'s).
    pub fn of(&self, class: &str) -> &ClassLimits {
        match class {
            "system" => &self.system,
            "admin" => &self.admin,
            _ => &self.user,
        }
    }

    /// These limits with the changes of a config file's `[classes.<name>]` tables.
    pub fn with(mut self, file: &ClassesFile) -> Result<Self, String> {
        for (class, change) in [("system", &file.system), ("admin", &file.admin), ("user", &file.user)] {
            let Some(change) = change else { continue };
            let limits = match class {
                "system" => &mut self.system,
                "admin" => &mut self.admin,
                _ => &mut self.user,
            };
            if let Some(mb) = change.max_memory_mb {
                limits.max_memory_bytes = mb * 1024 * 1024;
            }
            if let Some(ms) = change.max_execution_ms {
                limits.max_execution_ms = ms;
            }
            if let Some(mb) = change.max_body_mb {
                limits.max_body_bytes = mb * 1024 * 1024;
            }
            if let Some(names) = &change.host_functions {
                limits.grants = Grants::from_names(names).map_err(|e| format!("classes.{class}.host_functions: {e}"))?;
            }
        }
        Ok(self)
    }
}

/// `[classes]` of a config file: each class's changes to the defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassesFile {
    system: Option<ClassFile>,
    admin: Option<ClassFile>,
    user: Option<ClassFile>,
}

/// One class's changes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassFile {
    max_memory_mb: Option<u64>,
    max_execution_ms: Option<u64>,
    max_body_mb: Option<u64>,
    host_functions: Option<Vec<String>>,
}
