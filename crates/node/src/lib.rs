//! The edgefn edge node: decides which function answers an HTTP request and runs it.
//!
//! [`Router`] maps host + path + method to a route in time that does not grow with the
//! number of routes; [`Node`] is the HTTP ingress (HTTP/1.1 and HTTP/2 on hyper) that
//! looks a request up, runs the function and answers.
//!
//! ```
//! use edgefn_node::{Lookup, PathMatch, RouteSpec, Router};
//! let routes = vec![RouteSpec::new("r1", "/hello", PathMatch::Exact, "hello-fn")];
//! let router = Router::new(routes, None).unwrap();
//! assert!(matches!(router.lookup("example.com", "/hello", "GET"), Lookup::Found(r) if r.target == "hello-fn"));
//! ```

mod ingress;
mod metrics;
mod router;
mod services;

pub use ingress::{Node, NodeConfig, Target, route_spec};
pub use router::{Lookup, PathMatch, RouteError, RouteSpec, Router, route_scope};
pub use services::{MAX_KV_KEY_BYTES, MAX_KV_VALUE_BYTES, NodeServices};
