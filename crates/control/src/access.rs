//! Who may do what with a module: the class matrix of the seeds (`system`, `admin`,
//! `user`), project roles (`owner`, `developer`, `viewer`), `is_public` and
//! `allowed_users`. [`decide`] answers every check of the API; the matrix test walks it
//! through HTTP and docs/permissions.md is its table.
//!
//! A module the caller may not read is answered 404, as if it did not exist; one it may
//! read but not act on, 403.

use std::collections::HashMap;

use edgefn_store::{Module, User};

use crate::error::ApiError;

/// An operation on a module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// See it, its versions and its routes.
    Read,
    /// Call its functions.
    Execute,
    /// Upload a new version.
    Version,
    /// Change its settings (PATCH); for `system` modules only the status.
    Update,
    /// Add and remove its routes.
    Route,
    /// Delete it.
    Delete,
    /// See every execution and the statistics (others see only their own executions).
    History,
}

impl Op {
    /// The name used in messages.
    fn verb(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::Execute => "run",
            Op::Version => "add versions to",
            Op::Update => "change",
            Op::Route => "route to",
            Op::Delete => "delete",
            Op::History => "see all executions of",
        }
    }
}

/// The caller: a user and its role in each project it belongs to.
pub struct Caller {
    /// The user.
    pub user: User,
    /// Role by project id.
    pub roles: HashMap<String, String>,
}

impl Caller {
    /// Its role in the module's project, if any.
    fn role_in(&self, module: &Module) -> Option<&str> {
        module.project_id.as_ref().and_then(|p| self.roles.get(p)).map(String::as_str)
    }

    /// `Ok` for a platform admin; otherwise a 403 saying only admins `action`.
    pub fn require_admin(&self, action: &str) -> Result<(), ApiError> {
        if self.user.is_admin() { Ok(()) } else { Err(ApiError::forbidden(format!("only admins {action}"))) }
    }

    /// Whether it may create a module of `class` in the project where it has `role`.
    pub fn may_create(&self, class: &str, role: Option<&str>) -> Result<(), ApiError> {
        if matches!(class, "system" | "admin") {
            self.require_admin(&format!("create `{class}` modules"))?;
        }
        if !self.user.is_admin() && !matches!(role, Some("owner" | "developer")) {
            return Err(ApiError::forbidden("uploading to this project needs the owner or developer role"));
        }
        Ok(())
    }
}

/// Whether `caller` may do `op` on `module`: `Ok`, or the error to answer.
pub fn decide(caller: &Caller, module: &Module, op: Op) -> Result<(), ApiError> {
    let user = &caller.user;
    let admin = user.is_admin();
    let owner = module.owner_id == user.id;
    let role = caller.role_in(module);
    let developer = matches!(role, Some("owner" | "developer"));
    let shared = module.is_public || module.allowed_users.contains(&user.id);
    let readable = admin
        || match module.owner_type.as_str() {
            "system" => true,
            "user" => owner || role.is_some() || shared,
            _ => false,
        };
    if !readable {
        return Err(ApiError::not_found(format!("module {} not found", module.id)));
    }
    let allowed = match (module.owner_type.as_str(), op) {
        (_, Op::Read) => true,
        (_, Op::Execute) if module.status != "active" => {
            return Err(ApiError::forbidden(format!("module {} is {} and cannot be run", module.name, module.status)));
        }
        ("system", Op::Execute) => true,
        ("user", Op::Execute) => admin || owner || developer || shared,
        ("user", Op::Version | Op::Update | Op::Route) => admin || owner || developer,
        ("user", Op::Delete) => admin || owner || role == Some("owner"),
        ("user", Op::History) => admin || owner,
        _ => admin,
    };
    if allowed { Ok(()) } else { Err(ApiError::forbidden(format!("you may not {} module {}", op.verb(), module.name))) }
}

/// Of the modules a key names (an id, or a name several owners may use), the one the
/// caller means: its own first, then the oldest it may read. 404 when it may read none.
pub fn pick(caller: &Caller, key: &str, candidates: Vec<Module>) -> Result<Module, ApiError> {
    let mut readable: Vec<Module> = candidates.into_iter().filter(|m| decide(caller, m, Op::Read).is_ok()).collect();
    let own = readable.iter().position(|m| m.id == key || m.owner_id == caller.user.id).unwrap_or(0);
    if readable.is_empty() {
        return Err(ApiError::not_found(format!("module {key} not found")));
    }
    Ok(readable.swap_remove(own))
}
