//! A fake [`HostMounts`] for tests: a mount table in memory, with failures on demand.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{HostMounts, MountFlags};

/// One mount(2) call as the fake saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountCall {
    /// The source.
    pub source: Option<String>,
    /// The target.
    pub target: PathBuf,
    /// The filesystem type.
    pub fstype: Option<String>,
    /// The flags.
    pub flags: MountFlags,
    /// The filesystem data.
    pub data: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    table: Vec<PathBuf>,
    calls: Vec<MountCall>,
    unmounted: Vec<PathBuf>,
    fail_unmount: HashSet<PathBuf>,
    keep: HashSet<PathBuf>,
    fail_mount: HashSet<PathBuf>,
    table_unreadable: bool,
}

/// A mount table in memory. Nothing is mounted for real: a "mounted" directory stays an
/// ordinary directory.
#[derive(Debug, Default)]
pub struct FakeMounts {
    state: Mutex<State>,
}

impl FakeMounts {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lists `path` as a mount point.
    pub fn add_mount_point(&self, path: &Path) {
        self.state().table.push(path.to_owned());
    }

    /// Unmounting `path` fails with EBUSY.
    pub fn fail_unmount(&self, path: &Path) {
        self.state().fail_unmount.insert(path.to_owned());
    }

    /// Unmounting `path` works again.
    pub fn allow_unmount(&self, path: &Path) {
        self.state().fail_unmount.remove(path);
    }

    /// Unmounting `path` succeeds but it stays listed.
    pub fn keep_after_unmount(&self, path: &Path) {
        self.state().keep.insert(path.to_owned());
    }

    /// Mounting on `path` fails with EPERM.
    pub fn fail_mount(&self, path: &Path) {
        self.state().fail_mount.insert(path.to_owned());
    }

    /// Reading the mount table fails.
    pub fn fail_mount_table(&self) {
        self.state().table_unreadable = true;
    }

    /// Whether `path` is listed as mounted.
    pub fn mounted(&self, path: &Path) -> bool {
        self.state().table.iter().any(|p| p == path)
    }

    /// The mount points listed beneath `dir`.
    pub fn mounted_beneath(&self, dir: &Path) -> Vec<PathBuf> {
        self.state()
            .table
            .iter()
            .filter(|p| p.starts_with(dir))
            .cloned()
            .collect()
    }

    /// The mount(2) calls so far.
    pub fn calls(&self) -> Vec<MountCall> {
        self.state().calls.clone()
    }

    /// The paths unmounted so far, in order.
    pub fn unmounted(&self) -> Vec<PathBuf> {
        self.state().unmounted.clone()
    }
}

impl HostMounts for FakeMounts {
    fn mount(
        &self,
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: MountFlags,
        data: Option<&str>,
    ) -> io::Result<()> {
        let mut s = self.state();
        s.calls.push(MountCall {
            source: source.map(str::to_owned),
            target: target.to_owned(),
            fstype: fstype.map(str::to_owned),
            flags,
            data: data.map(str::to_owned),
        });
        if s.fail_mount.contains(target) {
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
        if !flags.contains(MountFlags::REMOUNT) {
            s.table.push(target.to_owned());
        }
        Ok(())
    }

    fn unmount(&self, target: &Path) -> io::Result<()> {
        let mut s = self.state();
        if s.fail_unmount.contains(target) {
            return Err(io::Error::from_raw_os_error(libc::EBUSY));
        }
        s.unmounted.push(target.to_owned());
        if !s.keep.contains(target) {
            if let Some(i) = s.table.iter().rposition(|p| p == target) {
                s.table.remove(i);
            }
        }
        Ok(())
    }

    fn mount_points(&self) -> io::Result<Vec<PathBuf>> {
        let s = self.state();
        if s.table_unreadable {
            return Err(io::Error::from_raw_os_error(libc::EACCES));
        }
        Ok(s.table.clone())
    }
}
