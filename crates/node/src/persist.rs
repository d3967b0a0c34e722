//! The applied snapshot on the node's disk, so a node restarted without its control
//! plane serves what it served before. Written whole (temporary file, fsync, rename,
//! fsync of the directory); a file that cannot be read is set aside, never fatal.

use std::io::Write;
use std::path::{Path, PathBuf};

use edgefn_model::Snapshot;

/// The state file's name under the data directory.
pub const STATE_FILE: &str = "state.json";

/// Writes `snapshot` to `dir`'s state file atomically.
pub fn save(dir: &Path, snapshot: &Snapshot) -> anyhow::Result<()> {
    let path = dir.join(STATE_FILE);
    let partial = dir.join(format!("{STATE_FILE}.partial"));
    let mut file = std::fs::File::create(&partial)?;
    serde_json::to_writer(&mut file, snapshot)?;
    file.flush()?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&partial, &path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// The snapshot saved in `dir`, or an empty one when there is none. A file that cannot
/// be read is renamed aside (`state.json.corrupt-<ms>`), logged, and the node starts
/// empty and resyncs.
pub fn load(dir: &Path) -> Snapshot {
    let path = dir.join(STATE_FILE);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Snapshot::default(),
        Err(e) => return set_aside(&path, &e.to_string()),
    };
    match serde_json::from_slice(&text) {
        Ok(snapshot) => snapshot,
        Err(e) => set_aside(&path, &e.to_string()),
    }
}

fn set_aside(path: &Path, why: &str) -> Snapshot {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let aside = PathBuf::from(format!("{}.corrupt-{now}", path.display()));
    let moved = std::fs::rename(path, &aside);
    tracing::error!(
        file = %path.display(), error = why, set_aside_as = %aside.display(), moved = moved.is_ok(),
        "the saved state could not be read; starting empty and resyncing from the control plane"
    );
    Snapshot::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corrupt_file_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()), Snapshot::default());
        let snapshot = Snapshot { revision: 42, ..Default::default() };
        save(dir.path(), &snapshot).unwrap();
        assert_eq!(load(dir.path()).revision, 42);
        std::fs::write(dir.path().join(STATE_FILE), b"{\"revision\": 4").unwrap();
        assert_eq!(load(dir.path()), Snapshot::default());
        let names: Vec<String> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert!(names.iter().any(|n| n.starts_with("state.json.corrupt-")), "{names:?}");
        assert!(!names.contains(&STATE_FILE.to_string()));
    }
}
