//! What the control plane and the edge nodes agree on, and nothing that runs anywhere in
//! particular: the typed values a node serves ([`Function`], [`Version`], [`Route`]), the
//! [`Snapshot`] of everything a node applies, and the [`Router`] that both use — the
//! control plane to check a route before it stores it, the node to answer requests.
//!
//! ```
//! use edgefn_model::{Lookup, PathMatch, RouteSpec, Router};
//! let routes = vec![RouteSpec::new("r1", "/hello", PathMatch::Exact, "hello-fn")];
//! let router = Router::new(routes).unwrap();
//! assert!(matches!(router.lookup("example.com", "/hello", "GET"), Lookup::Found(r) if r.target == "hello-fn"));
//! ```

mod function;
mod router;
mod snapshot;

pub use function::{Class, Function, Kind, Status, Target, UnknownValue, Version};
pub use router::{Lookup, PathMatch, RouteError, RouteSpec, Router, route_scope};
pub use snapshot::{Resource, ResourceName, Route, Snapshot};
