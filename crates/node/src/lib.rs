//! The edgefn edge node: decides which function answers an HTTP request and runs it.
//!
//! [`Router`] maps host + path + method to a route in time that does not grow with the
//! number of routes:
//!
//! ```
//! use edgefn_node::{Lookup, PathMatch, RouteSpec, Router};
//! let routes = vec![RouteSpec::new("r1", "/hello", PathMatch::Exact, "hello-fn")];
//! let router = Router::new(routes, None).unwrap();
//! assert!(matches!(router.lookup("example.com", "/hello", "GET"), Lookup::Found(r) if r.target == "hello-fn"));
//! ```

mod router;

pub use router::{Lookup, PathMatch, RouteError, RouteSpec, Router};
