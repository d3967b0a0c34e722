//! The system calls no build may make, as a seccomp filter bubblewrap installs before it
//! starts the build's command.
//!
//! A build compiles and links: it reads and writes files, runs processes and, in the
//! dependency step, opens sockets. It has no reason to mount file systems, trace or read
//! another process's memory, use the kernel's key rings, load BPF programs or kernel
//! modules, set the clock, reboot, swap, or enter other namespaces — each of them is a way
//! at the kernel's attack surface or at another process, so each answers `EPERM`. The
//! filter matches the machine's own architecture; a system call of any other (a 32-bit
//! call on a 64-bit kernel, where numbers differ) ends the process.

use std::collections::BTreeMap;

use anyhow::Context;
use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};

/// The refused system calls, by what they reach.
const DENIED: &[libc::c_long] = &[
    // File systems and the root: mounts, new mount API, pivots, handles by inode.
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_quotactl,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    // Other processes.
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_kcmp,
    libc::SYS_pidfd_getfd,
    // Namespaces (bubblewrap also turns off new user namespaces).
    libc::SYS_setns,
    libc::SYS_unshare,
    // Kernel key rings.
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_keyctl,
    // BPF, perf and fault handling from user space.
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    // The kernel itself: modules, kexec, reboot, its log, accounting, the clock.
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_reboot,
    libc::SYS_syslog,
    libc::SYS_acct,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_iopl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ioperm,
    libc::SYS_vhangup,
    libc::SYS_lookup_dcookie,
];

/// The filter as bubblewrap reads it from a file descriptor: the program's instructions,
/// each `struct sock_filter` in the machine's byte order.
pub fn program() -> anyhow::Result<Vec<u8>> {
    let arch = TargetArch::try_from(std::env::consts::ARCH).context("no seccomp filter for this architecture")?;
    let rules = DENIED.iter().map(|&nr| (nr, Vec::new())).collect::<BTreeMap<_, _>>();
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(libc::EPERM as u32), arch)
        .context("building the seccomp filter")?;
    let program: BpfProgram = filter.try_into().context("compiling the seccomp filter")?;
    let mut bytes = Vec::with_capacity(program.len() * 8);
    for instruction in program {
        bytes.extend_from_slice(&instruction.code.to_ne_bytes());
        bytes.push(instruction.jt);
        bytes.push(instruction.jf);
        bytes.extend_from_slice(&instruction.k.to_ne_bytes());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_filter_compiles_to_whole_instructions() {
        let program = super::program().unwrap();
        assert!(!program.is_empty());
        assert_eq!(program.len() % 8, 0);
    }
}
