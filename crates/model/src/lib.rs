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

/// Declares a string-named enum with `as_str`, `Display` and `FromStr` (errors name the
/// kind of value and the text given).
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// The name stored and shown.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::UnknownValue;
            fn from_str(s: &str) -> Result<Self, $crate::UnknownValue> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    _ => Err($crate::UnknownValue { what: $what, value: s.to_string() }),
                }
            }
        }
    };
}

mod address;
mod function;
mod router;
mod snapshot;

pub use address::{
    BadHost, canonical_host, canonical_host_pattern, ip_of, is_ip_literal, normalize_path, path_is_normal, route_path_problem,
};
pub use function::{Class, Function, Kind, Status, Target, UnknownValue, Version};
pub use router::{Lookup, PathMatch, RouteError, RouteSpec, Router, route_scope};
pub use snapshot::{Resource, ResourceName, Route, Snapshot};
