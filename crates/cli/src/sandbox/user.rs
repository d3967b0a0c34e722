//! The unprivileged host user a root worker builds as.
//!
//! Bubblewrap maps the build's uid to whoever starts it: started by root, the build's
//! uid 1000 is the host's root, and passes every permission check on what the sandbox can
//! see (the kernel settings under `/proc/sys` among them). So a worker running as root
//! starts bubblewrap as a dedicated user instead, and refuses to build without one.
//!
//! That user cannot reach the worker's own paths (a build directory in a private
//! temporary directory, a toolchain under `/root`), so the child that becomes bubblewrap
//! first makes a mount namespace of its own, opens each path bubblewrap needs (as root),
//! mounts a small tmpfs over `/tmp` and binds each path, by its descriptor, under
//! [`STAGE`] — then gives up its groups, group and user. Nothing of this is seen outside
//! that child.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::sys::stat::{Mode, umask};
use nix::unistd::{Gid, Uid, User, mkdir, setgid, setgroups, setuid};

/// Where the child that becomes bubblewrap sees the paths it binds.
pub const STAGE: &str = "/tmp/edgefn-sandbox";

/// The host user builds run as.
#[derive(Debug, Clone)]
pub struct BuildUser {
    name: String,
    uid: Uid,
    gid: Gid,
}

impl BuildUser {
    /// Finds `name` in the system's users; root is refused.
    pub fn lookup(name: &str) -> anyhow::Result<Self> {
        let Some(user) = User::from_name(name).with_context(|| format!("looking up the build user {name}"))? else {
            bail!("the build user `{name}` does not exist: make it with `useradd --system --no-create-home {name}`");
        };
        if user.uid.is_root() {
            bail!("the build user `{name}` is root: builds need an unprivileged user");
        }
        Ok(Self { name: name.to_string(), uid: user.uid, gid: user.gid })
    }

    /// Whether this is the user the worker runs as (then there is nothing to drop).
    pub fn is_current(&self) -> bool {
        self.uid == nix::unistd::geteuid()
    }

    /// The user's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Gives `dir` and everything under it to this user (links themselves, not what they
    /// point at).
    pub fn own(&self, dir: &Path) -> std::io::Result<()> {
        std::os::unix::fs::lchown(dir, Some(self.uid.as_raw()), Some(self.gid.as_raw()))?;
        if std::fs::symlink_metadata(dir)?.is_dir() {
            for entry in std::fs::read_dir(dir)? {
                self.own(&entry?.path())?;
            }
        }
        Ok(())
    }

    /// Makes `command` start as this user, seeing each of `paths` (at most
    /// [`MAX_STAGED`]) at `STAGE/<name>`.
    pub fn prepare(&self, command: &mut tokio::process::Command, paths: &[(&Path, &str)]) -> anyhow::Result<()> {
        if paths.len() > MAX_STAGED {
            bail!("at most {MAX_STAGED} paths can be staged for the build user");
        }
        let mut binds = Vec::new();
        for (path, name) in paths {
            let from = CString::new(path.as_os_str().as_encoded_bytes()).with_context(|| format!("staging {}", path.display()))?;
            binds.push((from, CString::new(format!("{STAGE}/{name}"))?));
        }
        let stage = CString::new(STAGE)?;
        let (uid, gid) = (self.uid, self.gid);
        let step = move || -> nix::Result<()> {
            // The worker's own umask (owner-only, for its data) would hide the stage from
            // the build user.
            umask(Mode::from_bits_truncate(0o022));
            unshare(CloneFlags::CLONE_NEWNS)?;
            mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)?;
            // Held open (in this namespace, as root) before the tmpfs below hides `/tmp`.
            let mut held: [Option<OwnedFd>; MAX_STAGED] = Default::default();
            for ((from, _), slot) in binds.iter().zip(held.iter_mut()) {
                *slot = Some(open(from.as_c_str(), OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())?);
            }
            let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
            mount(Some("tmpfs"), "/tmp", Some("tmpfs"), flags, Some("mode=0755,size=64k"))?;
            mkdir(stage.as_c_str(), Mode::from_bits_truncate(0o755))?;
            for ((_, to), fd) in binds.iter().zip(held.iter_mut()) {
                let Some(fd) = fd.take() else { return Err(Errno::EBADF) };
                let mut buf = [0u8; 32];
                mkdir(to.as_c_str(), Mode::from_bits_truncate(0o755))?;
                mount(
                    Some(fd_path(fd.as_raw_fd(), &mut buf)?),
                    to.as_c_str(),
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )?;
            }
            setgroups(&[])?;
            setgid(gid)?;
            setuid(uid)
        };
        // SAFETY: the closure runs in the forked child before exec and only makes system
        // calls (umask, unshare, mount, open, mkdir, close, setgroups, setgid, setuid) on
        // strings made before the fork or on the stack; it allocates nothing and takes no lock.
        #[expect(unsafe_code, reason = "the child must drop to the build user after making its mount namespace")]
        unsafe {
            command.pre_exec(move || step().map_err(std::io::Error::from));
        }
        Ok(())
    }
}

/// Most paths [`BuildUser::prepare`] stages (the build directory and the toolchain's two).
const MAX_STAGED: usize = 4;

/// `/proc/self/fd/<fd>`, written into `buf` without allocating (it runs between fork
/// and exec).
fn fd_path(fd: RawFd, buf: &mut [u8; 32]) -> nix::Result<&CStr> {
    const PREFIX: &[u8] = b"/proc/self/fd/";
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut digits = [0u8; 10];
    let (mut n, mut len) = (u32::try_from(fd).map_err(|_| Errno::EBADF)?, 0);
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for (i, digit) in digits[..len].iter().rev().enumerate() {
        buf[PREFIX.len() + i] = *digit;
    }
    buf[PREFIX.len() + len] = 0;
    CStr::from_bytes_with_nul(&buf[..=PREFIX.len() + len]).map_err(|_| Errno::EINVAL)
}

/// Where bubblewrap, started as `user` (or as the worker itself), finds `path`, staged
/// under `name`.
pub fn seen_at(user: Option<&BuildUser>, path: &Path, name: &str) -> PathBuf {
    match user {
        Some(_) => Path::new(STAGE).join(name),
        None => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_descriptor_path_is_written_without_allocating() {
        let mut buf = [0u8; 32];
        assert_eq!(super::fd_path(7, &mut buf).unwrap().to_str().unwrap(), "/proc/self/fd/7");
        assert_eq!(super::fd_path(1234567, &mut buf).unwrap().to_str().unwrap(), "/proc/self/fd/1234567");
    }
}
