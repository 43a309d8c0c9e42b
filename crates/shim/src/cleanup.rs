//! Removing what the shim made on the host, and never anything else.
//!
//! A container's directory beneath the VM's share holds mount points of the user's data (the
//! rootfs layers, bind-mount sources). Removing it while one of them is still mounted would
//! delete the user's files through the mount, so removal fails closed:
//!
//! * the mount table is read first, and when it cannot be read nothing is removed;
//! * every mount beneath the directory is unmounted, deepest first; when one fails, or one is
//!   still listed afterwards, nothing is removed and the error names it;
//! * the removal (`crate::sys::remove_tree`) never follows a link: on Linux it walks by file
//!   descriptor and refuses to descend into a directory that is the root of a mount or on
//!   another device than its parent (a mount the table did not show); on Windows it removes a
//!   junction, symbolic link or volume mount point itself, never what it points to;
//! * a VM state directory is only removed when it holds the marker the shim wrote when it
//!   made it ([`STATE_MARKER`]).
//!
//! The errors reach containerd: its log, and the reply of the Delete that asked for it.

use std::io;
use std::path::{Path, PathBuf};

use crate::mounts::HostMounts;
use crate::sys::remove_tree;

/// The file that marks a directory as a VM state directory the shim made.
pub const STATE_MARKER: &str = "lcow-state";
/// How many times the mounts beneath a directory are unmounted before giving up (stacked
/// mounts and propagated copies each need their own unmount).
const UNMOUNT_ROUNDS: usize = 8;
/// The deepest directory the removal descends into.
pub(crate) const MAX_DEPTH: usize = 64;

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
        source: io::Error,
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
        source: io::Error,
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::fs;

    use super::*;
    use crate::mounts::fake::FakeMounts;

    #[test]
    fn test_remove_missing_dir_is_done() {
        let t = tempfile::tempdir().unwrap();
        remove_unmounted(&t.path().join("none"), &FakeMounts::default()).unwrap();
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
}
