//! Data directories only their owner can read.
//!
//! A control plane's data directory holds every tenant's configuration values and secrets
//! (in its database), the admin token and the cluster's keys; a node's holds the state the
//! control plane sent it, secrets included, and compiled native code it will run. Any other
//! local user who could read them would read every tenant's secrets, and one who could
//! write the compiled code would run native code in the node. So `up`, `control` and
//! `node` make what they create owner-only (umask 077) and, at start, take group and other
//! permissions off everything already in the directory — an install from before this rule
//! is tightened, and says so in the log.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::Context;
use nix::sys::stat::{Mode, umask};

/// Makes `dir` (created if missing) and everything under it owner-only, and what this
/// process creates from now on too.
pub fn data_dir(dir: &Path) -> anyhow::Result<()> {
    umask(Mode::from_bits_truncate(0o077));
    std::fs::create_dir_all(dir).with_context(|| format!("creating the data directory {}", dir.display()))?;
    let tightened = tighten(dir).with_context(|| format!("making {} readable by its owner only", dir.display()))?;
    if tightened > 0 {
        tracing::warn!(dir = %dir.display(), tightened, "other users could read files of the data directory: now only its owner can");
    }
    Ok(())
}

/// Takes group and other permissions off `path` and everything under it (links are left
/// as they are, and not followed); answers how many entries changed.
fn tighten(path: &Path) -> std::io::Result<usize> {
    let meta = std::fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Ok(0);
    }
    let mode = meta.permissions().mode() & 0o7777;
    let mut changed = 0;
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))?;
        changed += 1;
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            changed += tighten(&entry?.path())?;
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn an_open_install_is_tightened_and_links_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let outside = dir.path().join("outside");
        std::fs::write(&outside, "x").unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::create_dir_all(data.join("node/compiled")).unwrap();
        std::fs::write(data.join("edgefn.db"), "db").unwrap();
        std::fs::write(data.join("node/state.redb"), "{}").unwrap();
        std::fs::write(data.join("run"), "#!/bin/sh").unwrap();
        std::os::unix::fs::symlink(&outside, data.join("link")).unwrap();
        for (path, mode) in
            [("", 0o755), ("node", 0o755), ("node/compiled", 0o775), ("edgefn.db", 0o644), ("node/state.redb", 0o666), ("run", 0o755)]
        {
            std::fs::set_permissions(data.join(path), std::fs::Permissions::from_mode(mode)).unwrap();
        }
        assert_eq!(tighten(&data).unwrap(), 6);
        for (path, want) in
            [("", 0o700), ("node", 0o700), ("node/compiled", 0o700), ("edgefn.db", 0o600), ("node/state.redb", 0o600), ("run", 0o700)]
        {
            assert_eq!(mode(&data.join(path)), want, "{path}");
        }
        assert_eq!(mode(&outside), 0o644, "a link's target is not changed");
        assert_eq!(tighten(&data).unwrap(), 0, "nothing left to do");
    }
}
