//! Everything a node applies at one revision of the control plane.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::function::{Function, Target, UnknownValue, Version};
use crate::router::RouteSpec;

/// A route as nodes serve it.
pub type Route = RouteSpec<Target>;

/// The name of a resource a node holds: `function/<id>` or `route/<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceName {
    /// A function, by id.
    Function(String),
    /// A route, by id.
    Route(String),
}

impl fmt::Display for ResourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Function(id) => write!(f, "function/{id}"),
            Self::Route(id) => write!(f, "route/{id}"),
        }
    }
}

impl FromStr for ResourceName {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, UnknownValue> {
        match s.split_once('/') {
            Some(("function", id)) if !id.is_empty() => Ok(Self::Function(id.to_string())),
            Some(("route", id)) if !id.is_empty() => Ok(Self::Route(id.to_string())),
            _ => Err(UnknownValue { what: "resource", value: s.to_string() }),
        }
    }
}

/// One resource of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// A function with the versions its routes name.
    Function(Function),
    /// A route.
    Route(Route),
}

impl Resource {
    /// Its name.
    pub fn name(&self) -> ResourceName {
        match self {
            Self::Function(f) => ResourceName::Function(f.id.clone()),
            Self::Route(r) => ResourceName::Route(r.id.clone()),
        }
    }
}

/// The functions and routes of one revision. Nodes keep the one they applied on disk and
/// serve from it until the control plane says otherwise. Its maps are persistent: a copy
/// costs nothing, so a node applies a delivery to a copy of what it serves in time that
/// follows the delivery, not the number of functions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// The control plane's revision this state is at.
    pub revision: u64,
    /// Functions by id.
    pub functions: imbl::OrdMap<String, Function>,
    /// Routes by id.
    pub routes: imbl::OrdMap<String, Route>,
}

impl Snapshot {
    /// The version a route's target runs, with its function.
    pub fn resolve(&self, target: &Target) -> Option<(&Function, &Version)> {
        let function = self.functions.get(&target.function_id)?;
        Some((function, function.version(target.version.as_deref())?))
    }

    /// Every resource, in name order.
    pub fn resources(&self) -> impl Iterator<Item = Resource> + '_ {
        let functions = self.functions.values().cloned().map(Resource::Function);
        functions.chain(self.routes.values().cloned().map(Resource::Route))
    }

    /// The resource of a name.
    pub fn get(&self, name: &ResourceName) -> Option<Resource> {
        match name {
            ResourceName::Function(id) => self.functions.get(id).cloned().map(Resource::Function),
            ResourceName::Route(id) => self.routes.get(id).cloned().map(Resource::Route),
        }
    }

    /// Adds or replaces a resource.
    pub fn upsert(&mut self, resource: Resource) {
        match resource {
            Resource::Function(f) => {
                self.functions.insert(f.id.clone(), f);
            }
            Resource::Route(r) => {
                self.routes.insert(r.id.clone(), r);
            }
        }
    }

    /// Drops a resource; a missing one is not an error.
    pub fn remove(&mut self, name: &ResourceName) {
        match name {
            ResourceName::Function(id) => {
                self.functions.remove(id);
            }
            ResourceName::Route(id) => {
                self.routes.remove(id);
            }
        }
    }

    /// The artifacts this state runs, by digest.
    pub fn digests(&self) -> BTreeSet<&str> {
        self.functions.values().flat_map(|f| f.versions.values()).map(|v| v.sha256.as_str()).collect()
    }
}
