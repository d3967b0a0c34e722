//! Model values to messages and back.

use edgefn_model::{Class, Function, Kind, PathMatch, Resource, Route, Status, Target, Version};
use prost::Message;
use sha2::{Digest, Sha256};

use crate::v1;

/// A message that does not make a valid model value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what}: {why}")]
pub struct Invalid {
    /// What was being read.
    pub what: String,
    /// Why it was refused.
    pub why: String,
}

fn invalid(what: impl Into<String>, why: impl Into<String>) -> Invalid {
    Invalid { what: what.into(), why: why.into() }
}

/// A resource's content version: the SHA-256 of its encoding (maps are encoded in key
/// order, so equal resources have equal versions).
pub fn resource_version(resource: &v1::Resource) -> String {
    let mut body = resource.clone();
    body.version.clear();
    hex::encode(&Sha256::digest(body.encode_to_vec())[..12])
}

impl From<&Resource> for v1::Resource {
    fn from(resource: &Resource) -> Self {
        let body = match resource {
            Resource::Function(f) => v1::resource::Body::Function(f.into()),
            Resource::Route(r) => v1::resource::Body::Route(r.into()),
        };
        let mut out = v1::Resource { name: resource.name().to_string(), version: String::new(), body: Some(body) };
        out.version = resource_version(&out);
        out
    }
}

impl TryFrom<&v1::Resource> for Resource {
    type Error = Invalid;
    fn try_from(r: &v1::Resource) -> Result<Self, Invalid> {
        let resource = match &r.body {
            Some(v1::resource::Body::Function(f)) => Resource::Function(f.try_into()?),
            Some(v1::resource::Body::Route(route)) => Resource::Route(route.try_into()?),
            None => return Err(invalid(&r.name, "no body (a resource kind this node does not know)")),
        };
        if resource.name().to_string() != r.name {
            return Err(invalid(&r.name, format!("its body is {}", resource.name())));
        }
        Ok(resource)
    }
}

impl From<Class> for v1::Class {
    fn from(c: Class) -> Self {
        match c {
            Class::System => Self::System,
            Class::Admin => Self::Admin,
            Class::User => Self::User,
        }
    }
}

impl From<Status> for v1::Status {
    fn from(s: Status) -> Self {
        match s {
            Status::Uploading => Self::Uploading,
            Status::Active => Self::Active,
            Status::Disabled => Self::Disabled,
            Status::Error => Self::Error,
        }
    }
}

impl From<Kind> for v1::Kind {
    fn from(k: Kind) -> Self {
        match k {
            Kind::Core => Self::Core,
            Kind::Component => Self::Component,
        }
    }
}

impl From<PathMatch> for v1::PathMatch {
    fn from(m: PathMatch) -> Self {
        match m {
            PathMatch::Exact => Self::Exact,
            PathMatch::Prefix => Self::Prefix,
            PathMatch::Regex => Self::Regex,
        }
    }
}

impl From<&Function> for v1::Function {
    fn from(f: &Function) -> Self {
        Self {
            id: f.id.clone(),
            name: f.name.clone(),
            owner: f.owner.clone(),
            class: v1::Class::from(f.class).into(),
            status: v1::Status::from(f.status).into(),
            timeout_ms: f.timeout_ms,
            max_memory_pages: f.max_memory_pages,
            max_instances: f.max_instances,
            reuse_instances: f.reuse_instances,
            http_timeout_ms: f.http_timeout_ms,
            max_body_bytes: f.max_body_bytes,
            env: (*f.env).clone(),
            allow_hosts: (*f.allow_hosts).clone(),
            latest: f.latest.clone(),
            versions: f
                .versions
                .values()
                .map(|v| v1::Version {
                    label: v.label.clone(),
                    sha256: v.sha256.clone(),
                    size: v.size,
                    kind: v1::Kind::from(v.kind).into(),
                })
                .collect(),
        }
    }
}

impl TryFrom<&v1::Function> for Function {
    type Error = Invalid;
    fn try_from(f: &v1::Function) -> Result<Self, Invalid> {
        let what = || format!("function/{}", f.id);
        let class = match v1::Class::try_from(f.class) {
            Ok(v1::Class::System) => Class::System,
            Ok(v1::Class::Admin) => Class::Admin,
            Ok(v1::Class::User) => Class::User,
            _ => return Err(invalid(what(), format!("unknown class {}", f.class))),
        };
        let status = match v1::Status::try_from(f.status) {
            Ok(v1::Status::Uploading) => Status::Uploading,
            Ok(v1::Status::Active) => Status::Active,
            Ok(v1::Status::Disabled) => Status::Disabled,
            Ok(v1::Status::Error) => Status::Error,
            _ => return Err(invalid(what(), format!("unknown status {}", f.status))),
        };
        let mut versions = std::collections::BTreeMap::new();
        for v in &f.versions {
            let kind = match v1::Kind::try_from(v.kind) {
                Ok(v1::Kind::Core) => Kind::Core,
                Ok(v1::Kind::Component) => Kind::Component,
                _ => return Err(invalid(what(), format!("version {}: unknown kind {}", v.label, v.kind))),
            };
            if v.sha256.len() != 64 || !v.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid(what(), format!("version {}: `{}` is not a SHA-256", v.label, v.sha256)));
            }
            versions.insert(v.label.clone(), Version { label: v.label.clone(), sha256: v.sha256.clone(), size: v.size, kind });
        }
        Ok(Function {
            id: f.id.clone(),
            name: f.name.clone(),
            owner: f.owner.clone(),
            class,
            status,
            timeout_ms: f.timeout_ms,
            max_memory_pages: f.max_memory_pages,
            max_instances: f.max_instances,
            reuse_instances: f.reuse_instances,
            http_timeout_ms: f.http_timeout_ms,
            max_body_bytes: f.max_body_bytes,
            env: std::sync::Arc::new(f.env.clone()),
            allow_hosts: std::sync::Arc::new(f.allow_hosts.clone()),
            latest: f.latest.clone(),
            versions,
        })
    }
}

impl From<&Route> for v1::Route {
    fn from(r: &Route) -> Self {
        Self {
            id: r.id.clone(),
            host: r.host.clone(),
            path: r.path.clone(),
            r#match: v1::PathMatch::from(r.kind).into(),
            methods: r.methods.clone(),
            priority: r.priority,
            pop_selector: r.pop_selector.clone(),
            seq: r.seq,
            function_id: r.target.function_id.clone(),
            version: r.target.version.clone(),
        }
    }
}

impl TryFrom<&v1::Route> for Route {
    type Error = Invalid;
    fn try_from(r: &v1::Route) -> Result<Self, Invalid> {
        let kind = match v1::PathMatch::try_from(r.r#match) {
            Ok(v1::PathMatch::Exact) => PathMatch::Exact,
            Ok(v1::PathMatch::Prefix) => PathMatch::Prefix,
            Ok(v1::PathMatch::Regex) => PathMatch::Regex,
            _ => return Err(invalid(format!("route/{}", r.id), format!("unknown match kind {}", r.r#match))),
        };
        Ok(Route {
            id: r.id.clone(),
            host: r.host.clone(),
            path: r.path.clone(),
            kind,
            methods: r.methods.clone(),
            priority: r.priority,
            pop_selector: r.pop_selector.clone(),
            seq: r.seq,
            target: Target { function_id: r.function_id.clone(), version: r.version.clone() },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn function() -> Function {
        Function {
            id: "f1".into(),
            name: "hello".into(),
            owner: "p1".into(),
            class: Class::User,
            status: Status::Active,
            timeout_ms: 1000,
            max_memory_pages: 16,
            max_instances: 4,
            reuse_instances: true,
            http_timeout_ms: Some(1500),
            max_body_bytes: Some(1 << 20),
            env: std::sync::Arc::new([("B".to_string(), "2".to_string()), ("A".to_string(), "1".to_string())].into()),
            allow_hosts: std::sync::Arc::new(vec!["api.example.com".into()]),
            latest: Some("1.0.0".into()),
            versions: [("1.0.0".to_string(), Version { label: "1.0.0".into(), sha256: "a".repeat(64), size: 10, kind: Kind::Core })].into(),
        }
    }

    #[test]
    fn resources_survive_the_wire() {
        let f = Resource::Function(function());
        let mut route = Route::new("r1", "/hello", PathMatch::Prefix, Target { function_id: "f1".into(), version: None });
        route.host = Some("*.example.com".into());
        let r = Resource::Route(route);
        for resource in [f, r] {
            let wire = v1::Resource::from(&resource);
            let decoded = v1::Resource::decode(wire.encode_to_vec().as_slice()).unwrap();
            assert_eq!(Resource::try_from(&decoded).unwrap(), resource);
            assert_eq!(decoded.version, resource_version(&decoded));
        }
    }

    #[test]
    fn versions_change_with_content_only() {
        let a = v1::Resource::from(&Resource::Function(function()));
        assert_eq!(a.version, v1::Resource::from(&Resource::Function(function())).version);
        let mut changed = function();
        changed.timeout_ms = 2000;
        assert_ne!(a.version, v1::Resource::from(&Resource::Function(changed)).version);
    }

    #[test]
    fn a_newer_peers_unknown_fields_are_ignored() {
        let mut bytes = v1::Hello { protocol: 2, revision: 7, ..Default::default() }.encode_to_vec();
        // Field 99, varint 1, and field 100, a length-delimited "xyz": what a newer node adds.
        bytes.extend_from_slice(&[0x98, 0x06, 0x01, 0xa2, 0x06, 0x03, b'x', b'y', b'z']);
        let hello = v1::Hello::decode(bytes.as_slice()).unwrap();
        assert_eq!((hello.protocol, hello.revision), (2, 7));
    }

    #[test]
    fn unknown_enums_and_names_are_refused() {
        let mut wire = v1::Resource::from(&Resource::Function(function()));
        if let Some(v1::resource::Body::Function(f)) = &mut wire.body {
            f.class = 42;
        }
        assert!(Resource::try_from(&wire).unwrap_err().why.contains("unknown class 42"));
        let mut wire = v1::Resource::from(&Resource::Function(function()));
        wire.name = "route/f1".into();
        assert!(Resource::try_from(&wire).is_err());
        let mut wire = v1::Resource::from(&Resource::Function(function()));
        wire.body = None;
        assert!(Resource::try_from(&wire).is_err());
    }
}
