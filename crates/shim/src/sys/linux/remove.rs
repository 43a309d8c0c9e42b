//! Removing a directory tree on Linux without following links or crossing mounts: the walk
//! goes by file descriptor (`openat` with `O_NOFOLLOW`, `unlinkat`), and refuses a directory
//! that is the root of a mount or on another device than its parent.

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::dir::Dir;
use nix::fcntl::{open, openat, OFlag};
use nix::sys::stat::{fstat, fstatat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

use crate::cleanup::{CleanupError, MAX_DEPTH};

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
        source: io::Error::from(source),
    }
}

/// Removes the directory `dir` and everything in it, walking by descriptor.
pub fn remove_tree(dir: &Path) -> Result<(), CleanupError> {
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
    std::fs::remove_dir(dir).map_err(|source| CleanupError::Remove {
        path: dir.to_owned(),
        source,
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
    use std::path::PathBuf;

    use crate::cleanup::{remove_unmounted, CleanupError};
    use crate::mounts::fake::FakeMounts;
    use crate::mounts::{HostMounts, MountFlags};
    use crate::sys::LinuxMounts;

    use super::*;

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
            flags: MountFlags,
            data: Option<&str>,
        ) -> io::Result<()> {
            LinuxMounts.mount(source, target, fstype, flags, data)
        }
        fn unmount(&self, target: &Path) -> io::Result<()> {
            if self.fail_unmount {
                return Err(io::Error::from_raw_os_error(libc::EBUSY));
            }
            LinuxMounts.unmount(target)
        }
        fn mount_points(&self) -> io::Result<Vec<PathBuf>> {
            if self.hide_mounts {
                return Ok(Vec::new());
            }
            LinuxMounts.mount_points()
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
        let real = LinuxMounts;
        real.mount(
            Some(source.to_str().unwrap()),
            &target,
            None,
            MountFlags::BIND,
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
