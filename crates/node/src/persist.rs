//! The applied state on the node's disk, so a node restarted without its control plane
//! serves what it served before. One redb file: a row per function and per route, and
//! the revision; a delivery writes the rows it changed and the revision in one
//! transaction (one `fsync`), so its cost follows the delivery, not the number of
//! functions, and a crash leaves the state of the last delivery acknowledged. A file that
//! cannot be read is set aside, never fatal; a `state.json` of an older node is moved in.

use std::path::{Path, PathBuf};

use edgefn_model::{Function, ResourceName, Route, Snapshot};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

/// The state file's name under the data directory.
pub const STATE_FILE: &str = "state.redb";
/// The whole-file state of nodes before this one.
const OLD_STATE_FILE: &str = "state.json";

const FUNCTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("functions");
const ROUTES: TableDefinition<&str, &[u8]> = TableDefinition::new("routes");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// The node's saved state.
pub struct Saved {
    db: Database,
}

impl Saved {
    /// Opens the state in `dir` and reads it; an empty state when there is none. A file
    /// that cannot be read is renamed aside (`state.redb.corrupt-<ms>`), logged, and the
    /// node starts empty and resyncs.
    pub fn open(dir: &Path) -> anyhow::Result<(Self, Snapshot)> {
        let path = dir.join(STATE_FILE);
        let opened = Database::create(&path).map_err(anyhow::Error::from).and_then(|db| {
            let saved = Self { db };
            let snapshot = saved.read()?;
            Ok((saved, snapshot))
        });
        let (saved, snapshot) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                set_aside(&path, &format!("{e:#}"));
                let saved = Self { db: Database::create(&path)? };
                (saved, Snapshot::default())
            }
        };
        let old = dir.join(OLD_STATE_FILE);
        if snapshot.revision == 0 && old.exists() {
            let snapshot = read_old(&old);
            saved.replace(&snapshot)?;
            std::fs::remove_file(&old)?;
            tracing::info!(revision = snapshot.revision, "moved the saved state from state.json to state.redb");
            return Ok((saved, snapshot));
        }
        Ok((saved, snapshot))
    }

    fn read(&self) -> anyhow::Result<Snapshot> {
        let tx = self.db.begin_read()?;
        let mut snapshot = Snapshot::default();
        let Ok(meta) = tx.open_table(META) else { return Ok(snapshot) };
        snapshot.revision = meta.get("revision")?.map_or(0, |r| r.value());
        for row in tx.open_table(FUNCTIONS)?.iter()? {
            let (id, json) = row?;
            let function: Function = serde_json::from_slice(json.value())?;
            snapshot.functions.insert(id.value().to_string(), function);
        }
        for row in tx.open_table(ROUTES)?.iter()? {
            let (id, json) = row?;
            let route: Route = serde_json::from_slice(json.value())?;
            snapshot.routes.insert(id.value().to_string(), route);
        }
        Ok(snapshot)
    }

    /// Writes the resources `names` as `next` holds them (dropping those it lacks) and
    /// its revision, in one durable transaction.
    pub fn update<'a>(&self, next: &Snapshot, names: impl IntoIterator<Item = &'a ResourceName>) -> anyhow::Result<()> {
        let tx = self.db.begin_write()?;
        write(&tx, next, names)?;
        tx.commit()?;
        Ok(())
    }

    /// Replaces everything with `snapshot`, in one durable transaction.
    pub fn replace(&self, snapshot: &Snapshot) -> anyhow::Result<()> {
        let tx = self.db.begin_write()?;
        tx.delete_table(FUNCTIONS)?;
        tx.delete_table(ROUTES)?;
        let functions = snapshot.functions.keys().map(|id| ResourceName::Function(id.clone()));
        let names: Vec<ResourceName> = functions.chain(snapshot.routes.keys().map(|id| ResourceName::Route(id.clone()))).collect();
        write(&tx, snapshot, &names)?;
        tx.commit()?;
        Ok(())
    }
}

fn write<'a>(tx: &redb::WriteTransaction, next: &Snapshot, names: impl IntoIterator<Item = &'a ResourceName>) -> anyhow::Result<()> {
    let mut functions = tx.open_table(FUNCTIONS)?;
    let mut routes = tx.open_table(ROUTES)?;
    for name in names {
        match name {
            ResourceName::Function(id) => match next.functions.get(id) {
                Some(f) => drop(functions.insert(id.as_str(), serde_json::to_vec(f)?.as_slice())?),
                None => drop(functions.remove(id.as_str())?),
            },
            ResourceName::Route(id) => match next.routes.get(id) {
                Some(r) => drop(routes.insert(id.as_str(), serde_json::to_vec(r)?.as_slice())?),
                None => drop(routes.remove(id.as_str())?),
            },
        }
    }
    tx.open_table(META)?.insert("revision", next.revision)?;
    Ok(())
}

/// The state an older node saved whole as JSON; empty when it cannot be read.
fn read_old(path: &Path) -> Snapshot {
    match std::fs::read(path).map_err(anyhow::Error::from).and_then(|text| Ok(serde_json::from_slice(&text)?)) {
        Ok(snapshot) => snapshot,
        Err(e) => {
            tracing::error!(file = %path.display(), error = %format!("{e:#}"), "an older node's saved state could not be read; starting empty");
            Snapshot::default()
        }
    }
}

fn set_aside(path: &Path, why: &str) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let aside = PathBuf::from(format!("{}.corrupt-{now}", path.display()));
    let moved = std::fs::rename(path, &aside);
    tracing::error!(
        file = %path.display(), error = why, set_aside_as = %aside.display(), moved = moved.is_ok(),
        "the saved state could not be read; starting empty and resyncing from the control plane"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgefn_model::{PathMatch, Target};

    fn route(id: &str, function: &str) -> Route {
        Route::new(id, &format!("/{id}"), PathMatch::Exact, Target { function_id: function.to_string(), version: None })
    }

    #[test]
    fn updates_are_kept_across_reopening_and_a_corrupt_file_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let (saved, empty) = Saved::open(dir.path()).unwrap();
        assert_eq!(empty, Snapshot::default());
        let mut next = Snapshot { revision: 7, ..Default::default() };
        next.routes.insert("a".into(), route("a", "f"));
        next.routes.insert("b".into(), route("b", "f"));
        saved.update(&next, &[ResourceName::Route("a".into()), ResourceName::Route("b".into())]).unwrap();
        next.routes.remove("a");
        next.revision = 8;
        saved.update(&next, &[ResourceName::Route("a".into())]).unwrap();
        drop(saved);
        let (_, read) = Saved::open(dir.path()).unwrap();
        assert_eq!(read, next);

        std::fs::write(dir.path().join(STATE_FILE), b"not a database").unwrap();
        let (_, read) = Saved::open(dir.path()).unwrap();
        assert_eq!(read, Snapshot::default());
        let names: Vec<String> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert!(names.iter().any(|n| n.starts_with("state.redb.corrupt-")), "{names:?}");
    }

    #[test]
    fn an_older_nodes_json_state_is_moved_in() {
        let dir = tempfile::tempdir().unwrap();
        let mut old = Snapshot { revision: 42, ..Default::default() };
        old.routes.insert("a".into(), route("a", "f"));
        std::fs::write(dir.path().join(OLD_STATE_FILE), serde_json::to_vec(&old).unwrap()).unwrap();
        let (_, read) = Saved::open(dir.path()).unwrap();
        assert_eq!(read, old);
        assert!(!dir.path().join(OLD_STATE_FILE).exists());
        let (_, again) = Saved::open(dir.path()).unwrap();
        assert_eq!(again, old);
    }
}
