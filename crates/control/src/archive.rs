//! Source archives of builds (a gzipped tar): checked entry by entry before anything is
//! stored or extracted, and the toolchain chosen from the files at their root.
//!
//! Refused: absolute paths, `..`, entries under a symbolic link of the archive, symbolic
//! links leading out of the tree, hard links, devices and FIFOs, more than
//! [`MAX_ENTRIES`] entries or [`MAX_UNPACKED_BYTES`] of files.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use edgefn_store::Toolchain;
use tar::EntryType;

/// Most bytes of files an archive may unpack to.
pub const MAX_UNPACKED_BYTES: u64 = 256 * 1024 * 1024;
/// Most entries an archive may hold.
pub const MAX_ENTRIES: usize = 20_000;

/// What a checked archive holds.
#[derive(Debug, Default)]
pub struct Listing {
    /// Names at the root (files and directories).
    pub root: BTreeSet<String>,
    /// Bytes of all files.
    pub unpacked_bytes: u64,
    /// Entries.
    pub entries: usize,
}

/// Checks every entry of a gzipped tar; the first rule broken is the error.
pub fn check(gzipped: &[u8]) -> Result<Listing, String> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(gzipped));
    let mut listing = Listing::default();
    let mut links = BTreeSet::new();
    let entries = archive.entries().map_err(|e| format!("not a gzipped tar archive: {e}"))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("not a readable gzipped tar archive: {e}"))?;
        listing.entries += 1;
        if listing.entries > MAX_ENTRIES {
            return Err(format!("the archive has more than {MAX_ENTRIES} entries"));
        }
        let path = entry.path().map_err(|e| format!("an entry's path is not readable: {e}"))?.into_owned();
        let shown = path.display().to_string();
        let parts = relative_parts(&path).map_err(|why| format!("entry `{shown}` {why}"))?;
        if parts.is_empty() {
            continue; // `./`
        }
        for depth in 1..parts.len() {
            if links.contains(&parts[..depth]) {
                return Err(format!("entry `{shown}` lies under the symbolic link `{}`", parts[..depth].join("/")));
            }
        }
        let kind = entry.header().entry_type();
        match kind {
            EntryType::Regular | EntryType::Continuous => {
                listing.unpacked_bytes += entry.size();
                if listing.unpacked_bytes > MAX_UNPACKED_BYTES {
                    return Err(format!("the archive unpacks to more than {} MiB", MAX_UNPACKED_BYTES / (1024 * 1024)));
                }
            }
            EntryType::Directory => {}
            EntryType::Symlink => {
                let target = entry.link_name().map_err(|e| format!("entry `{shown}`: unreadable link target: {e}"))?.unwrap_or_default();
                stays_inside(&parts, &target).map_err(|why| format!("symbolic link `{shown}` -> `{}` {why}", target.display()))?;
                links.insert(parts.clone());
            }
            EntryType::Link => return Err(format!("entry `{shown}` is a hard link; archives may not hold hard links")),
            EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName | EntryType::GNULongLink => continue,
            other => {
                return Err(format!("entry `{shown}` is a {other:?} entry; only files, directories and links inside the tree are taken"));
            }
        }
        listing.root.insert(parts[0].clone());
    }
    Ok(listing)
}

/// The path's parts, refusing absolute paths and `..`.
fn relative_parts(path: &Path) -> Result<Vec<String>, &'static str> {
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str().ok_or("has a name that is not UTF-8")?.to_string()),
            Component::CurDir => {}
            Component::ParentDir => return Err("contains `..`"),
            Component::RootDir | Component::Prefix(_) => return Err("is an absolute path"),
        }
    }
    Ok(parts)
}

/// Whether a link at `at` pointing to `target` stays inside the tree.
fn stays_inside(at: &[String], target: &Path) -> Result<(), &'static str> {
    let mut depth = at.len() as isize - 1; // the link's directory
    for component in target.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return Err("leads out of the tree");
                }
            }
            Component::RootDir | Component::Prefix(_) => return Err("is absolute"),
        }
    }
    Ok(())
}

/// The toolchain for a project with these root names: the one asked for (if its
/// project file is there), else Cargo.toml → Rust, asconfig.json → AssemblyScript,
/// package.json → JavaScript.
pub fn toolchain(root: &BTreeSet<String>, asked: Option<Toolchain>) -> Result<Toolchain, String> {
    let has = |name: &str| root.contains(name);
    match asked {
        Some(Toolchain::Rust) if !has("Cargo.toml") => Err("toolchain rust needs a Cargo.toml at the archive's root".into()),
        Some(t @ (Toolchain::Js | Toolchain::Assemblyscript)) if !has("package.json") => {
            Err(format!("toolchain {} needs a package.json at the archive's root", t.as_str()))
        }
        Some(t) => Ok(t),
        None if has("Cargo.toml") => Ok(Toolchain::Rust),
        None if has("asconfig.json") && has("package.json") => Ok(Toolchain::Assemblyscript),
        None if has("package.json") => Ok(Toolchain::Js),
        None => Err("no Cargo.toml (Rust), asconfig.json (AssemblyScript) or package.json (JavaScript/TypeScript) at the archive's root: \
                     send the project's directory itself"
            .into()),
    }
}

/// Unpacks a checked archive into `dir`.
pub fn unpack(gzipped: &[u8], dir: &Path) -> Result<(), String> {
    check(gzipped)?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(gzipped));
    archive.set_preserve_permissions(false);
    archive.set_unpack_xattrs(false);
    archive.unpack(dir).map_err(|e| format!("unpacking the source: {e}"))
}

/// Packs the files under `dir` into a gzipped tar, leaving out the directories named in
/// `skip` (at any depth): what `edgefn build --remote` sends.
pub fn pack(dir: &Path, skip: &[&str]) -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default()));
    tar.follow_symlinks(false);
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let mut names: Vec<_> = std::fs::read_dir(dir.join(&rel))?.collect::<Result<_, _>>()?;
        names.sort_by_key(|e| e.file_name());
        for entry in names {
            let name = entry.file_name();
            let path = rel.join(&name);
            if entry.file_type()?.is_dir() {
                if !skip.iter().any(|s| name == **s) {
                    tar.append_dir(&path, entry.path())?;
                    stack.push(path);
                }
            } else {
                tar.append_path_with_name(entry.path(), &path)?;
            }
        }
    }
    tar.into_inner()?.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gzipped tar of `(path, kind, link target)` entries, paths written raw so bad
    /// ones can be made.
    fn archive(entries: &[(&str, EntryType, &str)]) -> Vec<u8> {
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default()));
        for (path, kind, target) in entries {
            let mut header = tar::Header::new_gnu();
            let name = &mut header.as_gnu_mut().expect("gnu header").name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_entry_type(*kind);
            header.set_mode(0o644);
            let body: &[u8] = if *kind == EntryType::Regular { b"data" } else { b"" };
            header.set_size(body.len() as u64);
            if !target.is_empty() {
                header.set_link_name(target).expect("link name");
            }
            header.set_cksum();
            tar.append(&header, body).expect("append");
        }
        tar.into_inner().expect("tar").finish().expect("gzip")
    }

    fn refused(entries: &[(&str, EntryType, &str)]) -> String {
        check(&archive(entries)).expect_err("refused")
    }

    #[test]
    fn a_plain_tree_is_listed_with_its_root_names() {
        let listing = check(&archive(&[
            ("./Cargo.toml", EntryType::Regular, ""),
            ("src/", EntryType::Directory, ""),
            ("src/lib.rs", EntryType::Regular, ""),
            ("src/alias.rs", EntryType::Symlink, "lib.rs"),
            ("up", EntryType::Symlink, "src/../Cargo.toml"),
        ]))
        .expect("accepted");
        assert_eq!(listing.root.into_iter().collect::<Vec<_>>(), ["Cargo.toml", "src", "up"]);
        assert_eq!(listing.unpacked_bytes, 8);
        assert_eq!(listing.entries, 5);
    }

    #[test]
    fn paths_and_links_leaving_the_tree_are_refused() {
        assert_eq!(refused(&[("/etc/passwd", EntryType::Regular, "")]), "entry `/etc/passwd` is an absolute path");
        assert_eq!(refused(&[("src/../../x", EntryType::Regular, "")]), "entry `src/../../x` contains `..`");
        assert_eq!(refused(&[("l", EntryType::Symlink, "/etc")]), "symbolic link `l` -> `/etc` is absolute");
        assert_eq!(refused(&[("a/l", EntryType::Symlink, "../..")]), "symbolic link `a/l` -> `../..` leads out of the tree");
        assert_eq!(refused(&[("h", EntryType::Link, "Cargo.toml")]), "entry `h` is a hard link; archives may not hold hard links");
        assert_eq!(
            refused(&[("d", EntryType::Symlink, "."), ("d/x", EntryType::Regular, "")]),
            "entry `d/x` lies under the symbolic link `d`"
        );
        assert!(refused(&[("fifo", EntryType::Fifo, "")]).contains("only files, directories and links"));
        assert!(check(b"not gzip").expect_err("refused").starts_with("not a"));
    }

    #[test]
    fn the_toolchain_follows_the_project_files() {
        let root = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(toolchain(&root(&["Cargo.toml", "package.json"]), None), Ok(Toolchain::Rust));
        assert_eq!(toolchain(&root(&["asconfig.json", "package.json"]), None), Ok(Toolchain::Assemblyscript));
        assert_eq!(toolchain(&root(&["package.json", "app.ts"]), None), Ok(Toolchain::Js));
        assert!(toolchain(&root(&["README.md"]), None).expect_err("none").starts_with("no Cargo.toml"));
        assert_eq!(
            toolchain(&root(&["package.json"]), Some(Toolchain::Rust)),
            Err("toolchain rust needs a Cargo.toml at the archive's root".into())
        );
    }

    #[test]
    fn a_packed_directory_unpacks_to_the_same_files() {
        let src = tempfile::tempdir().expect("dir");
        std::fs::create_dir_all(src.path().join("src")).expect("mkdir");
        std::fs::create_dir_all(src.path().join("target/debug")).expect("mkdir");
        std::fs::write(src.path().join("Cargo.toml"), "[package]").expect("write");
        std::fs::write(src.path().join("src/lib.rs"), "fn f() {}").expect("write");
        std::fs::write(src.path().join("target/debug/big"), "skipped").expect("write");
        let packed = pack(src.path(), &["target"]).expect("pack");
        assert_eq!(check(&packed).expect("valid").root.into_iter().collect::<Vec<_>>(), ["Cargo.toml", "src"]);
        let dst = tempfile::tempdir().expect("dir");
        unpack(&packed, dst.path()).expect("unpack");
        assert_eq!(std::fs::read_to_string(dst.path().join("src/lib.rs")).expect("read"), "fn f() {}");
        assert!(!dst.path().join("target").exists());
    }
}
