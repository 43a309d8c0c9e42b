//! Removing what the shim made on the host, and never anything else.
//!
//! A container's directory beneath the VM's share holds mount points of the user's data (the
//! rootfs layers, bind-mount sources). Removing it while one of them is still mounted would
//! delete the user's files through the mount, so removal fails closed:
//!
//! * the mount table is read first, and when it cannot be read nothing is removed;
//! * every mount beneath the directory is unmounted, deepest first; when one fails, or one is
//!   still listed afterwards, nothing is removed and the error names it;
//! * the removal walks by file descriptor without following symbolic links, and refuses to
//!   descend into a directory that is the root of a mount or on another device than its
//!   parent (a mount the table did not show);
//! * a VM state directory is only removed when it holds the marker the shim wrote when it
//!   made it ([`STATE_MARKER`]).
//!
//! The errors reach containerd: its log, and the reply of the Delete that asked for it.

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::fcntl::{open, openat, OFlag};
use nix::sys::stat::{fstat, fstatat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

use crate::mounts::HostMounts;

/// The file that marks a directory as a VM state directory the shim made.
pub const STATE_MARKER: &str = "lcow-state";
/// How many times the mounts beneath a directory are unmounted before giving up (stacked
/// mounts and propagated copies each need their own unmount).
const UNMOUNT_ROUNDS: usize = 8;
/// The deepest directory the removal descends into.
const MAX_DEPTH: usize = 64;

/// Why something was kept.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    /// The mount table cannot be read, so it is unknown what is mounted beneath.
    #[error("cannot read the mount table, so {} is kept", dir.display())]
    MountTable {
        /// The directory kept.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A mount beneath the directory cannot be unmounted.
    #[error("cannot unmount {}, so {} is kept", mount.display(), dir.display())]
    Unmount {
        /// The mount point.
        mount: PathBuf,
        /// The directory kept.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: nix::Error,
    },
    /// A mount is still listed after every unmount round.
    #[error("{} is still mounted after {UNMOUNT_ROUNDS} unmounts, so {} is kept", mount.display(), dir.display())]
    StillMounted {
        /// The mount point.
        mount: PathBuf,
        /// The directory kept.
        dir: PathBuf,
    },
    /// The walk met a mount the table did not list.
    #[error("{} is a mount point (or on another device) that the mount table did not list; it and what holds it are kept", path.display())]
    CrossesMount {
        /// The mount point.
        path: PathBuf,
    },
    /// The path is not a directory (a symbolic link, a file).
    #[error("{} is not a directory; it is kept", path.display())]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// A VM state directory without the shim's marker.
    #[error("{} has no {STATE_MARKER} marker, so the shim did not make it; it is kept", path.display())]
    NotOurs {
        /// The directory.
        path: PathBuf,
    },
    /// The tree is deeper than the walk goes.
    #[error("{} is nested more than {MAX_DEPTH} directories deep; it is kept", path.display())]
    TooDeep {
        /// Where the walk stopped.
        path: PathBuf,
    },
    /// Removing an entry failed.
    #[error("cannot remove {}", path.display())]
    Remove {
        /// The entry.
        path: PathBuf,
        /// The cause.
        #[source]
        source: nix::Error,
    },
}

/// Unmounts everything beneath `dir` (itself included) and removes it; a missing `dir` is
/// done already. See the module doc for what makes it keep the directory.
pub fn remove_unmounted(dir: &Path, host: &dyn HostMounts) -> Result<(), CleanupError> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Ok(m) if !m.is_dir() => {
            return Err(CleanupError::NotADirectory {
                path: dir.to_owned(),
            })
        }
        _ => {}
    }
    unmount_beneath(dir, host)?;
    remove_tree(dir)
}

/// [`remove_unmounted`] for a VM state directory: only one that holds [`STATE_MARKER`].
pub fn remove_state_dir(dir: &Path, host: &dyn HostMounts) -> Result<(), CleanupError> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        _ => {}
    }
    let marked = std::fs::symlink_metadata(dir.join(STATE_MARKER)).is_ok_and(|m| m.is_file());
    if !marked {
        return Err(CleanupError::NotOurs {
            path: dir.to_owned(),
        });
    }
    remove_unmounted(dir, host)
}

/// The mount points beneath `dir` (itself included), deepest first.
fn mounts_beneath(dir: &Path, host: &dyn HostMounts) -> Result<Vec<PathBuf>, CleanupError> {
    let mut found: Vec<PathBuf> = host
        .mount_points()
        .map_err(|source| CleanupError::MountTable {
            dir: dir.to_owned(),
            source,
        })?
        .into_iter()
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    found.dedup();
    Ok(found)
}

fn unmount_beneath(dir: &Path, host: &dyn HostMounts) -> Result<(), CleanupError> {
    for _ in 0..UNMOUNT_ROUNDS {
        let mounts = mounts_beneath(dir, host)?;
        if mounts.is_empty() {
            return Ok(());
        }
        for mount in mounts {
            host.unmount(&mount)
                .map_err(|source| CleanupError::Unmount {
                    mount: mount.clone(),
                    dir: dir.to_owned(),
                    source,
                })?;
            tracing::debug!(mount = %mount.display(), "unmounted");
        }
    }
    match mounts_beneath(dir, host)?.into_iter().next() {
        None => Ok(()),
        Some(mount) => Err(CleanupError::StillMounted {
            mount,
            dir: dir.to_owned(),
        }),
    }
}

/// Whether the open directory `fd` is the root of a mount, where the kernel says (statx,
/// Linux 5.8 and later; older kernels leave the device check alone to catch mounts).
fn is_mount_root(fd: RawFd) -> bool {
    // SAFETY: an all-zero `statx` is a valid value of this plain C struct.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    let empty: &CStr = c"";
    // SAFETY: `fd` is an open descriptor, `empty` a NUL-terminated string and `stx` a writable
    // struct of the size the kernel expects; the call writes only into `stx`.
    let rc = unsafe {
        libc::statx(
            fd,
            empty.as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            libc::STATX_BASIC_STATS,
            &mut stx,
        )
    };
    let flag = libc::STATX_ATTR_MOUNT_ROOT as u64;
    rc == 0 && stx.stx_attributes_mask & flag != 0 && stx.stx_attributes & flag != 0
}

fn remove_err(path: &Path) -> impl FnOnce(nix::Error) -> CleanupError + '_ {
    move |source| CleanupError::Remove {
        path: path.to_owned(),
        source,
    }
}

/// Removes the directory `dir` and everything in it, walking by descriptor.
fn remove_tree(dir: &Path) -> Result<(), CleanupError> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let raw = open(dir, flags, Mode::empty()).map_err(|e| match e {
        nix::Error::ELOOP | nix::Error::ENOTDIR => CleanupError::NotADirectory {
            path: dir.to_owned(),
        },
        e => remove_err(dir)(e),
    })?;
    // SAFETY: `open` returned a new descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    if is_mount_root(fd.as_raw_fd()) {
        return Err(CleanupError::CrossesMount {
            path: dir.to_owned(),
        });
    }
    let dev = fstat(fd.as_raw_fd()).map_err(remove_err(dir))?.st_dev;
    empty_dir(&fd, dev, dir, 0)?;
    drop(fd);
    std::fs::remove_dir(dir).map_err(|e| CleanupError::Remove {
        path: dir.to_owned(),
        source: nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })
}

/// The names in the open directory `fd`, without `.` and `..`.
fn entries(fd: &OwnedFd, path: &Path) -> Result<Vec<CString>, CleanupError> {
    // Dir takes a descriptor of its own (it closes it); the caller keeps `fd` for the *at calls.
    let own = nix::unistd::dup(fd.as_raw_fd()).map_err(remove_err(path))?;
    let mut dir = Dir::from_fd(own).map_err(remove_err(path))?;
    let mut names = Vec::new();
    for entry in dir.iter() {
        let entry = entry.map_err(remove_err(path))?;
        let name = entry.file_name();
        if name.to_bytes() != b"." && name.to_bytes() != b".." {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// Removes everything in the open directory `fd` (at `path`, on device `dev`).
fn empty_dir(fd: &OwnedFd, dev: u64, path: &Path, depth: usize) -> Result<(), CleanupError> {
    if depth >= MAX_DEPTH {
        return Err(CleanupError::TooDeep {
            path: path.to_owned(),
        });
    }
    for name in entries(fd, path)? {
        let child = path.join(OsStr::from_bytes(name.to_bytes()));
        let st = fstatat(
            Some(fd.as_raw_fd()),
            name.as_c_str(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(remove_err(&child))?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR {
            unlinkat(
                Some(fd.as_raw_fd()),
                name.as_c_str(),
                UnlinkatFlags::NoRemoveDir,
            )
            .map_err(remove_err(&child))?;
            continue;
        }
        if st.st_dev != dev {
            return Err(CleanupError::CrossesMount { path: child });
        }
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let raw = openat(Some(fd.as_raw_fd()), name.as_c_str(), flags, Mode::empty())
            .map_err(remove_err(&child))?;
        // SAFETY: `openat` returned a new descriptor that nothing else owns.
        let sub = unsafe { OwnedFd::from_raw_fd(raw) };
        if is_mount_root(sub.as_raw_fd()) {
            return Err(CleanupError::CrossesMount { path: child });
        }
        empty_dir(&sub, dev, &child, depth + 1)?;
        drop(sub);
        unlinkat(
            Some(fd.as_raw_fd()),
            name.as_c_str(),
            UnlinkatFlags::RemoveDir,
        )
        .map_err(remove_err(&child))?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::mounts::fake::FakeMounts;

    #[test]
    fn test_remove_tree_removes_files_dirs_and_links_not_their_targets() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("keep"), "user data").unwrap();
        let dir = t.path().join("c1");
        fs::create_dir_all(dir.join("rootfs/deep/er")).unwrap();
        fs::write(dir.join("rootfs/deep/er/f"), "x").unwrap();
        symlink(&outside, dir.join("rootfs/link-to-dir")).unwrap();
        symlink(outside.join("keep"), dir.join("link-to-file")).unwrap();

        remove_unmounted(&dir, &FakeMounts::default()).unwrap();

        assert!(!dir.exists());
        assert_eq!(
            fs::read_to_string(outside.join("keep")).unwrap(),
            "user data"
        );
    }

    #[test]
    fn test_remove_missing_dir_is_done() {
        let t = tempfile::tempdir().unwrap();
        remove_unmounted(&t.path().join("none"), &FakeMounts::default()).unwrap();
    }

    #[test]
    fn test_symlink_in_place_of_dir_is_kept() {
        let t = tempfile::tempdir().unwrap();
        let target = t.path().join("target");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("keep"), "").unwrap();
        let link = t.path().join("c1");
        symlink(&target, &link).unwrap();
        let e = remove_unmounted(&link, &FakeMounts::default()).unwrap_err();
        assert!(matches!(e, CleanupError::NotADirectory { .. }), "{e}");
        assert!(target.join("keep").exists());
    }

    #[test]
    fn test_unreadable_mount_table_keeps_everything() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("c1");
        fs::create_dir_all(dir.join("rootfs")).unwrap();
        let host = FakeMounts::default();
        host.fail_mount_table();
        let e = remove_unmounted(&dir, &host).unwrap_err();
        assert!(matches!(e, CleanupError::MountTable { .. }), "{e}");
        assert!(e.to_string().contains("is kept"), "{e}");
        assert!(dir.join("rootfs").exists());
    }

    #[test]
    fn test_failed_unmount_keeps_everything_and_stops() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("c1");
        fs::create_dir_all(dir.join("rootfs")).unwrap();
        fs::create_dir_all(dir.join("m0")).unwrap();
        let host = FakeMounts::default();
        host.add_mount_point(&dir.join("rootfs"));
        host.add_mount_point(&dir.join("m0"));
        host.fail_unmount(&dir.join("m0"));

        let e = remove_unmounted(&dir, &host).unwrap_err();

        assert!(
            matches!(&e, CleanupError::Unmount { mount, .. } if mount.ends_with("m0")),
            "{e}"
        );
        assert!(dir.join("rootfs").exists() && dir.join("m0").exists());
        assert!(host.mounted(&dir.join("m0")));
    }

    #[test]
    fn test_unmounts_deepest_first_then_removes() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("c1");
        fs::create_dir_all(dir.join("rootfs/proc")).unwrap();
        let host = FakeMounts::default();
        host.add_mount_point(&dir.join("rootfs"));
        host.add_mount_point(&dir.join("rootfs/proc"));
        remove_unmounted(&dir, &host).unwrap();
        assert_eq!(
            host.unmounted(),
            [dir.join("rootfs/proc"), dir.join("rootfs")]
        );
        assert!(!dir.exists());
    }

    #[test]
    fn test_mount_that_never_goes_away_is_still_mounted() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("c1");
        fs::create_dir_all(&dir).unwrap();
        let host = FakeMounts::default();
        host.add_mount_point(&dir);
        host.keep_after_unmount(&dir);
        let e = remove_unmounted(&dir, &host).unwrap_err();
        assert!(matches!(e, CleanupError::StillMounted { .. }), "{e}");
        assert!(dir.exists());
    }

    #[test]
    fn test_state_dir_without_marker_is_not_ours() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("state");
        fs::create_dir_all(dir.join("shared")).unwrap();
        let e = remove_state_dir(&dir, &FakeMounts::default()).unwrap_err();
        assert!(matches!(e, CleanupError::NotOurs { .. }), "{e}");
        assert!(dir.join("shared").exists());
        fs::write(dir.join(STATE_MARKER), "").unwrap();
        remove_state_dir(&dir, &FakeMounts::default()).unwrap();
        assert!(!dir.exists());
    }

    /// The real mount table, with unmounts that fail or a table that hides mounts.
    #[derive(Debug)]
    struct Rigged {
        fail_unmount: bool,
        hide_mounts: bool,
    }

    impl HostMounts for Rigged {
        fn mount(
            &self,
            source: Option<&str>,
            target: &Path,
            fstype: Option<&str>,
            flags: nix::mount::MsFlags,
            data: Option<&str>,
        ) -> nix::Result<()> {
            crate::mounts::LinuxMounts.mount(source, target, fstype, flags, data)
        }
        fn unmount(&self, target: &Path) -> nix::Result<()> {
            if self.fail_unmount {
                return Err(nix::Error::EBUSY);
            }
            crate::mounts::LinuxMounts.unmount(target)
        }
        fn mount_points(&self) -> io::Result<Vec<PathBuf>> {
            if self.hide_mounts {
                return Ok(Vec::new());
            }
            crate::mounts::LinuxMounts.mount_points()
        }
    }

    /// As root, for real: a bind mount of a directory holding a sentinel survives a failed
    /// unmount and a mount table that does not show it; a working cleanup then removes only
    /// the shim's directory.
    #[test]
    fn test_real_bind_mount_sentinel_survives_every_failure() {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIP: needs root to bind-mount (the fake-table tests cover the logic)");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let source = t.path().join("user-data");
        fs::create_dir(&source).unwrap();
        fs::write(source.join("sentinel"), "user data").unwrap();
        let dir = t.path().join("c1");
        let target = dir.join("m0");
        fs::create_dir_all(&target).unwrap();
        let real = crate::mounts::LinuxMounts;
        real.mount(
            Some(source.to_str().unwrap()),
            &target,
            None,
            nix::mount::MsFlags::MS_BIND,
            None,
        )
        .unwrap();
        let sentinel = || fs::read_to_string(source.join("sentinel")).ok();

        let failing = Rigged {
            fail_unmount: true,
            hide_mounts: false,
        };
        let e = remove_unmounted(&dir, &failing).unwrap_err();
        assert!(matches!(e, CleanupError::Unmount { .. }), "{e}");
        assert_eq!(sentinel().as_deref(), Some("user data"));

        let blind = Rigged {
            fail_unmount: false,
            hide_mounts: true,
        };
        let e = remove_unmounted(&dir, &blind).unwrap_err();
        assert!(
            matches!(&e, CleanupError::CrossesMount { path } if path == &target),
            "{e}"
        );
        assert_eq!(sentinel().as_deref(), Some("user data"));

        remove_unmounted(&dir, &real).unwrap();
        assert!(!dir.exists());
        assert_eq!(sentinel().as_deref(), Some("user data"));
    }
}
