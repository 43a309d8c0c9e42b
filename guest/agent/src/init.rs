//! Bringing the guest up as PID 1: the mount plan, cgroup v2, the hostname, and the facts
//! about the root filesystem that decide how containers enter their rootfs.
//!
//! The plan is data ([`mount_plan`]) run through [`Syscall`], so its order and its fallbacks
//! are unit-tested without root.

use std::io;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

use crate::syscall::{CharDev, Syscall};

/// Errors of the guest setup.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// An essential mount failed.
    #[error("failed to mount {fstype} on {target}")]
    Mount {
        /// The filesystem type.
        fstype: &'static str,
        /// Where.
        target: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Creating a directory or node failed.
    #[error("failed to create {path}")]
    Create {
        /// The path.
        path: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// One mount of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountStep {
    /// The filesystem type (also the source name).
    pub fstype: &'static str,
    /// Where.
    pub target: &'static str,
    /// Flags.
    pub flags: MsFlags,
    /// Filesystem options.
    pub data: Option<&'static str>,
    /// Whether the agent can do without it (a warning instead of an error).
    pub optional: bool,
}

const NOSUID_NODEV_NOEXEC: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

/// Mounts /proc: first, since the log level comes from /proc/cmdline.
pub fn mount_proc(sys: &dyn Syscall) -> Result<(), InitError> {
    mkdir(sys, "/proc")?;
    let step = MountStep {
        fstype: "proc",
        target: "/proc",
        flags: NOSUID_NODEV_NOEXEC,
        data: None,
        optional: false,
    };
    mount(sys, &step).map_err(|source| InitError::Mount {
        fstype: "proc",
        target: "/proc",
        source,
    })
}

/// The mounts PID 1 makes after /proc ([`mount_proc`]), in order. `/dev` is devtmpfs, with a
/// tmpfs fallback (see [`setup_guest`]).
pub fn mount_plan() -> Vec<MountStep> {
    let step = |fstype, target, flags, data, optional| MountStep {
        fstype,
        target,
        flags,
        data,
        optional,
    };
    vec![
        step("sysfs", "/sys", NOSUID_NODEV_NOEXEC, None, false),
        step(
            "devtmpfs",
            "/dev",
            MsFlags::MS_NOSUID,
            Some("mode=0755"),
            false,
        ),
        step(
            "devpts",
            "/dev/pts",
            MsFlags::MS_NOSUID.union(MsFlags::MS_NOEXEC),
            Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
            false,
        ),
        step(
            "tmpfs",
            "/dev/shm",
            MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
            Some("mode=1777"),
            true,
        ),
        step(
            "tmpfs",
            "/run",
            MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
            Some("mode=0755"),
            false,
        ),
        step("cgroup2", "/sys/fs/cgroup", NOSUID_NODEV_NOEXEC, None, true),
    ]
}

/// The device nodes made when devtmpfs is missing: (name, major, minor, mode).
pub const DEV_NODES: [(&str, u64, u64, u32); 8] = [
    ("null", 1, 3, 0o666),
    ("zero", 1, 5, 0o666),
    ("full", 1, 7, 0o666),
    ("random", 1, 8, 0o666),
    ("urandom", 1, 9, 0o666),
    ("tty", 5, 0, 0o666),
    ("console", 5, 1, 0o600),
    ("ptmx", 5, 2, 0o666),
];

/// Symlinks in /dev: (link, target).
const DEV_LINKS: [(&str, &str); 5] = [
    ("/dev/fd", "/proc/self/fd"),
    ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"),
    ("/dev/stderr", "/proc/self/fd/2"),
    ("/dev/ptmx", "pts/ptmx"),
];

fn exists(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EEXIST)
}

fn mkdir(sys: &dyn Syscall, path: &str) -> Result<(), InitError> {
    sys.mkdir_all(Path::new(path), 0o755)
        .map_err(|source| InitError::Create {
            path: path.to_owned(),
            source,
        })
}

fn mount(sys: &dyn Syscall, s: &MountStep) -> io::Result<()> {
    sys.mount(
        Some(s.fstype),
        Path::new(s.target),
        Some(s.fstype),
        s.flags,
        s.data,
    )
}

/// A tmpfs /dev with the essential nodes, for kernels without devtmpfs.
fn dev_fallback(sys: &dyn Syscall) -> Result<(), InitError> {
    sys.mount(
        Some("tmpfs"),
        Path::new("/dev"),
        Some("tmpfs"),
        MsFlags::MS_NOSUID,
        Some("mode=0755"),
    )
    .map_err(|source| InitError::Mount {
        fstype: "tmpfs",
        target: "/dev",
        source,
    })?;
    for (name, major, minor, mode) in DEV_NODES {
        let path = PathBuf::from("/dev").join(name);
        match sys.mknod_char(&path, CharDev { major, minor, mode }) {
            Ok(()) => {}
            Err(e) if exists(&e) => {}
            Err(source) => {
                return Err(InitError::Create {
                    path: path.display().to_string(),
                    source,
                })
            }
        }
    }
    Ok(())
}

/// Runs the mount plan, makes /dev's symlinks, enables cgroup controllers and sets the
/// hostname. Essential failures are errors; optional ones are logged.
pub fn setup_guest(sys: &dyn Syscall, hostname: &str) -> Result<(), InitError> {
    for step in mount_plan() {
        mkdir(sys, step.target)?;
        match mount(sys, &step) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                tracing::debug!(target = step.target, "already mounted");
            }
            Err(e) if step.fstype == "devtmpfs" => {
                tracing::warn!(error = %e, "no devtmpfs: using a tmpfs /dev with static nodes");
                dev_fallback(sys)?;
            }
            Err(e) if step.optional => {
                tracing::warn!(fstype = step.fstype, target = step.target, error = %e, "optional mount failed");
            }
            Err(source) => {
                return Err(InitError::Mount {
                    fstype: step.fstype,
                    target: step.target,
                    source,
                })
            }
        }
    }
    for (link, target) in DEV_LINKS {
        let (link, target) = (Path::new(link), Path::new(target));
        if let Err(e) = sys.symlink(target, link) {
            // devtmpfs makes /dev/ptmx a device node: replace it with the link to our devpts.
            let replaced = exists(&e) && link == Path::new("/dev/ptmx") && {
                let _ = sys.unlink(link);
                sys.symlink(target, link).is_ok()
            };
            if !replaced && !exists(&e) {
                tracing::warn!(link = %link.display(), error = %e, "cannot create /dev symlink");
            }
        }
    }
    let enabled = crate::cgroup::enable_controllers(sys, Path::new(crate::cgroup::CGROUP_ROOT));
    tracing::debug!(?enabled, "cgroup controllers");
    if let Err(e) = sys.sethostname(hostname) {
        tracing::warn!(error = %e, "cannot set the hostname");
    }
    // Containers share the VM's network namespace (see bundle::prepare_spec): its `lo` is
    // their localhost.
    if let Err(e) = sys.loopback_up() {
        tracing::warn!(error = %e, "cannot set lo up: localhost will not work in containers");
    }
    Ok(())
}

/// Settings read from the kernel command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmdline {
    /// `lcow.log=error|warn|info|debug|trace`.
    pub log_level: tracing::Level,
    /// `lcow.hostname=NAME`.
    pub hostname: String,
}

fn valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Parses `/proc/cmdline`; unknown or invalid values keep the defaults (info, "lcow").
pub fn parse_cmdline(cmdline: &str) -> Cmdline {
    let mut c = Cmdline {
        log_level: tracing::Level::INFO,
        hostname: "lcow".to_owned(),
    };
    for word in cmdline.split_whitespace() {
        if let Some(level) = word.strip_prefix("lcow.log=") {
            if let Ok(level) = level.parse() {
                c.log_level = level;
            }
        } else if let Some(name) = word.strip_prefix("lcow.hostname=") {
            if valid_hostname(name) {
                c.hostname = name.to_owned();
            }
        }
    }
    c
}

/// statfs f_type of ramfs (linux/magic.h).
const RAMFS_MAGIC: i64 = 0x8584_58f6;
/// statfs f_type of tmpfs (linux/magic.h).
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// Whether `/` is the initial rootfs, where pivot_root(2) fails with EINVAL.
///
/// The initramfs is unpacked into "rootfs", a ramfs or tmpfs that is the root of the mount
/// tree and can never be unmounted or pivoted away from. statfs tells ramfs/tmpfs; the
/// mountinfo entry for `/` (fs type "rootfs") tells the initial one from a later tmpfs root.
pub fn root_is_initramfs(statfs_magic: i64, mountinfo: Option<&str>) -> bool {
    let ram_or_tmp = statfs_magic == RAMFS_MAGIC || statfs_magic == TMPFS_MAGIC;
    if !ram_or_tmp {
        return false;
    }
    match mountinfo {
        // "36 35 98:0 / / rw - rootfs rootfs rw": the field after " - " is the fs type.
        Some(info) => {
            info.lines().any(|line| {
                let mut halves = line.splitn(2, " - ");
                let left = halves.next().unwrap_or("");
                let fstype = halves.next().and_then(|r| r.split(' ').next());
                left.split(' ').nth(4) == Some("/") && fstype == Some("rootfs")
            }) || statfs_magic == RAMFS_MAGIC
        }
        None => true,
    }
}

/// [`root_is_initramfs`] for this process's `/`.
pub fn detect_no_pivot() -> bool {
    let magic = match nix::sys::statfs::statfs("/") {
        Ok(s) => s.filesystem_type().0,
        Err(e) => {
            tracing::warn!(error = %e, "statfs(/) failed; assuming pivot_root works");
            return false;
        }
    };
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok();
    root_is_initramfs(magic, info.as_deref())
}

/// Makes sure fds 0, 1 and 2 are open (the kernel leaves them closed when the initramfs has
/// no /dev/console), so no pipe or socket of ours ever lands on them.
pub fn ensure_std_fds() {
    for fd in 0..3 {
        // SAFETY: F_GETFD only queries the descriptor table.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1 {
            continue;
        }
        let path = if Path::new("/dev/console").exists() {
            c"/dev/console"
        } else {
            c"/dev/null"
        };
        // SAFETY: `path` is a NUL-terminated string; open returns the lowest free descriptor,
        // which is `fd` since the lower ones are open; we keep it open for the process's life.
        let opened = unsafe { libc::open(path.as_ptr(), libc::O_RDWR) };
        if opened != fd && opened >= 0 {
            // SAFETY: dup2 onto a descriptor we just found closed, then closing our temporary.
            unsafe {
                libc::dup2(opened, fd);
                libc::close(opened);
            }
        }
    }
}

extern "C" fn ignore_signal(_: libc::c_int) {}

/// Replaces Rust's `SIG_IGN` for SIGPIPE with an empty handler: writes to closed pipes still
/// fail with EPIPE in the agent, but container processes, which inherit ignored signals across
/// exec and not handled ones, get the default SIGPIPE back.
pub fn install_sigpipe_handler() -> io::Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(
        SigHandler::Handler(ignore_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler is async-signal-safe (it does nothing).
    unsafe { sigaction(Signal::SIGPIPE, &action) }
        .map(|_| ())
        .map_err(io::Error::from)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::syscall::fake::{Call, RecordingSyscall};

    fn mounts(calls: &[Call]) -> Vec<(String, String)> {
        calls
            .iter()
            .filter_map(|c| match c {
                Call::Mount { fstype, target, .. } => {
                    Some((fstype.clone().unwrap_or_default(), target.clone()))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn test_setup_guest_mounts_in_order_and_sets_hostname() {
        // Arrange
        let sys = RecordingSyscall::default();
        // Act
        setup_guest(&sys, "guest1").unwrap();
        // Assert
        let calls = sys.calls();
        let want = [
            ("sysfs", "/sys"),
            ("devtmpfs", "/dev"),
            ("devpts", "/dev/pts"),
            ("tmpfs", "/dev/shm"),
            ("tmpfs", "/run"),
            ("cgroup2", "/sys/fs/cgroup"),
        ];
        let got = mounts(&calls);
        assert_eq!(
            got,
            want.iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect::<Vec<_>>()
        );
        assert!(calls.iter().any(|c| matches!(c, Call::Mount { target, data, .. }
            if target == "/dev/pts" && data.as_deref().is_some_and(|d| d.contains("ptmxmode=0666") && d.contains("newinstance")))));
        assert!(calls.contains(&Call::Symlink {
            target: "pts/ptmx".into(),
            link: "/dev/ptmx".into()
        }));
        assert!(calls.contains(&Call::Hostname("guest1".into())));
        assert!(calls.contains(&Call::LoopbackUp));
        assert!(!calls.iter().any(|c| matches!(c, Call::Mknod(..))));
    }

    #[test]
    fn test_setup_guest_without_devtmpfs_falls_back_to_tmpfs_and_mknod() {
        // Arrange
        let sys = RecordingSyscall::default();
        sys.fail_when(|c| match c {
            Call::Mount {
                fstype: Some(f), ..
            } if f == "devtmpfs" => Some(libc::ENODEV),
            _ => None,
        });
        // The first link over /dev/ptmx meets the node made by mknod.
        let first = std::sync::atomic::AtomicBool::new(true);
        sys.fail_when(move |c| match c {
            Call::Symlink { link, .. } if link == "/dev/ptmx" => first
                .swap(false, std::sync::atomic::Ordering::SeqCst)
                .then_some(libc::EEXIST),
            _ => None,
        });
        // Act
        setup_guest(&sys, "lcow").unwrap();
        // Assert
        let calls = sys.calls();
        assert!(mounts(&calls).contains(&("tmpfs".into(), "/dev".into())));
        let nodes: Vec<String> = calls
            .iter()
            .filter_map(|c| match c {
                Call::Mknod(p, _) => Some(p.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            nodes,
            [
                "/dev/null",
                "/dev/zero",
                "/dev/full",
                "/dev/random",
                "/dev/urandom",
                "/dev/tty",
                "/dev/console",
                "/dev/ptmx"
            ]
        );
        assert!(calls.contains(&Call::Mknod(
            "/dev/null".into(),
            CharDev {
                major: 1,
                minor: 3,
                mode: 0o666
            }
        )));
        // The ptmx node is replaced by the link into the new devpts instance.
        assert!(calls.contains(&Call::Unlink("/dev/ptmx".into())));
    }

    #[test]
    fn test_setup_guest_essential_mount_failure_is_an_error() {
        let sys = RecordingSyscall::default();
        sys.fail_when(|c| match c {
            Call::Mount {
                fstype: Some(f), ..
            } if f == "sysfs" => Some(libc::EPERM),
            _ => None,
        });
        let err = setup_guest(&sys, "lcow").unwrap_err();
        assert!(matches!(
            err,
            InitError::Mount {
                fstype: "sysfs",
                ..
            }
        ));
    }

    #[test]
    fn test_mount_proc_creates_and_mounts_proc() {
        let sys = RecordingSyscall::default();
        mount_proc(&sys).unwrap();
        let calls = sys.calls();
        assert_eq!(calls[0], Call::Mkdir("/proc".into()));
        assert_eq!(mounts(&calls), [("proc".to_owned(), "/proc".to_owned())]);
    }

    #[test]
    fn test_setup_guest_optional_cgroup2_failure_is_tolerated() {
        let sys = RecordingSyscall::default();
        sys.fail_when(|c| match c {
            Call::Mount {
                fstype: Some(f), ..
            } if f == "cgroup2" => Some(libc::ENODEV),
            _ => None,
        });
        setup_guest(&sys, "lcow").unwrap();
    }

    #[test]
    fn test_parse_cmdline_log_level_and_hostname() {
        let c = parse_cmdline("console=ttyS0 lcow.log=debug lcow.hostname=pod-1 quiet\n");
        assert_eq!(c.log_level, tracing::Level::DEBUG);
        assert_eq!(c.hostname, "pod-1");
        let d = parse_cmdline("lcow.log=loud lcow.hostname=bad/name");
        assert_eq!(d.log_level, tracing::Level::INFO);
        assert_eq!(d.hostname, "lcow");
    }

    #[test]
    fn test_root_is_initramfs_detection() {
        let ramfs = RAMFS_MAGIC;
        let tmpfs = TMPFS_MAGIC;
        let ext4 = 0xEF53;
        let initial = "1 1 0:2 / / rw - rootfs rootfs rw\n20 1 0:5 / /proc rw - proc proc rw\n";
        let switched = "22 1 0:30 / / rw - tmpfs tmpfs rw\n";
        assert!(root_is_initramfs(ramfs, Some(initial)));
        assert!(root_is_initramfs(tmpfs, Some(initial)));
        assert!(!root_is_initramfs(tmpfs, Some(switched)));
        assert!(!root_is_initramfs(ext4, Some(initial)));
        assert!(root_is_initramfs(ramfs, None));
    }
}
