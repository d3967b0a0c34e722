//! A module's configuration values (read by guests with `env_get` or `config.get`), kept
//! secret: the API takes them and never gives them back. Each value is stored with a
//! random salt of its own; reads, listings and audit entries show only a fingerprint,
//! `sha256:` and 16 hex digits of SHA-256(salt, name, value), which changes when the
//! value does and cannot be checked against guesses without the database itself.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// Configuration values with their salts. Serializes as `{"NAME": "sha256:…"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    values: Arc<BTreeMap<String, String>>,
    salts: BTreeMap<String, String>,
}

/// One value as stored: `{"value": "…", "salt": "…"}` (a bare string is an older row's
/// value without a salt).
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Stored {
    Salted { value: String, salt: String },
    Plain(String),
}

impl Env {
    /// The values, for the guest that reads them.
    pub fn values(&self) -> &Arc<BTreeMap<String, String>> {
        &self.values
    }

    /// The fingerprint of each value, by name.
    pub fn fingerprints(&self) -> BTreeMap<String, String> {
        self.values.iter().map(|(name, value)| (name.clone(), self.fingerprint(name, value))).collect()
    }

    fn fingerprint(&self, name: &str, value: &str) -> String {
        let salt = self.salts.get(name).map_or("", String::as_str);
        let mut hasher = Sha256::new();
        for part in [salt, name, value] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        format!("sha256:{}", &hex::encode(hasher.finalize())[..16])
    }

    /// These values replacing the current ones: a value that did not change keeps its
    /// salt (and so its fingerprint); every other gets a new random salt.
    pub(crate) fn replaced_by(&self, values: BTreeMap<String, String>) -> Self {
        let salts = values
            .iter()
            .map(|(name, value)| {
                let kept = self.salts.get(name).filter(|_| self.values.get(name) == Some(value));
                (name.clone(), kept.cloned().unwrap_or_else(|| hex::encode(rand::random::<[u8; 16]>())))
            })
            .collect();
        Self { values: Arc::new(values), salts }
    }

    /// The column's JSON.
    pub(crate) fn to_stored_json(&self) -> String {
        let stored: BTreeMap<&String, Stored> = self
            .values
            .iter()
            .map(|(name, value)| (name, Stored::Salted { value: value.clone(), salt: self.salts.get(name).cloned().unwrap_or_default() }))
            .collect();
        serde_json::to_string(&stored).expect("strings serialize")
    }
}

impl Serialize for Env {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.fingerprints().serialize(serializer)
    }
}

/// Reads the column's JSON (the stored form, not what [`Serialize`] writes).
impl<'de> Deserialize<'de> for Env {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let stored = BTreeMap::<String, Stored>::deserialize(deserializer)?;
        let (mut values, mut salts) = (BTreeMap::new(), BTreeMap::new());
        for (name, entry) in stored {
            let (value, salt) = match entry {
                Stored::Salted { value, salt } => (value, salt),
                Stored::Plain(value) => (value, String::new()),
            };
            values.insert(name.clone(), value);
            salts.insert(name, salt);
        }
        Ok(Self { values: Arc::new(values), salts })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_the_column_and_never_reach_json() {
        let env = Env::default().replaced_by(BTreeMap::from([("TOKEN".into(), "s3cret".into()), ("MODE".into(), "on".into())]));
        let stored: Env = serde_json::from_str(&env.to_stored_json()).unwrap();
        assert_eq!(stored, env);
        let shown = serde_json::to_string(&env).unwrap();
        assert!(!shown.contains("s3cret") && shown.contains("\"TOKEN\":\"sha256:"), "{shown}");
    }

    #[test]
    fn fingerprints_follow_changes_and_differ_between_modules() {
        let a = Env::default().replaced_by(BTreeMap::from([("K".into(), "v".into())]));
        let same = a.replaced_by(BTreeMap::from([("K".into(), "v".into())]));
        let changed = a.replaced_by(BTreeMap::from([("K".into(), "w".into())]));
        let other = Env::default().replaced_by(BTreeMap::from([("K".into(), "v".into())]));
        assert_eq!(a.fingerprints(), same.fingerprints());
        assert_ne!(a.fingerprints(), changed.fingerprints());
        assert_ne!(a.fingerprints(), other.fingerprints(), "salted per value, so equal values do not show as equal");
        let legacy: Env = serde_json::from_str(r#"{"K": "v"}"#).unwrap();
        assert_eq!(legacy.values().get("K").map(String::as_str), Some("v"));
    }
}
