//! The host's mounts on Linux: mount(2), umount2(2) and `/proc/self/mountinfo`.

use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::mounts::{parse_mountinfo, HostMounts, MountFlags};

/// The real thing: mount(2), umount2(2) and `/proc/self/mountinfo`.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxMounts;

/// This host's mounts.
pub type Mounts = LinuxMounts;

impl HostMounts for LinuxMounts {
    fn mount(
        &self,
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: MountFlags,
        data: Option<&str>,
    ) -> io::Result<()> {
        let flags = MsFlags::from_bits_truncate(flags.bits());
        mount(source, target, fstype, flags, data).map_err(io::Error::from)
    }

    fn unmount(&self, target: &Path) -> io::Result<()> {
        umount2(target, MntFlags::MNT_DETACH).map_err(io::Error::from)
    }

    fn mount_points(&self) -> io::Result<Vec<PathBuf>> {
        let info = std::fs::read_to_string("/proc/self/mountinfo")?;
        parse_mountinfo(&info)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn test_linux_mount_table_has_root() {
        let points = LinuxMounts.mount_points().unwrap();
        assert!(points.iter().any(|p| p == Path::new("/")), "{points:?}");
    }
}
