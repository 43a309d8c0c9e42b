//! The host's mounts on Windows: there are none. Windows has no bind mounts, so a container's
//! files cannot be mounted beneath the VM's share as on Linux: a Linux image's rootfs arrives
//! as `lcow-layer` disks (virtio-blk) and a bind mount is served by its own NTFS share
//! (docs/windows.md). Asking to mount is an error that says so; the table is always empty, so
//! cleanup removes only what the shim made.

use std::io;
use std::path::{Path, PathBuf};

use crate::mounts::{HostMounts, MountFlags};

/// No mounts: every request is refused with a reason, the table is empty.
#[derive(Debug, Default, Clone, Copy)]
pub struct WindowsMounts;

/// This host's mounts.
pub type Mounts = WindowsMounts;

fn unsupported(what: &str, target: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!(
            "cannot {what} {} on Windows: Windows has no bind mounts (a rootfs comes as \
             lcow-layer disks, a bind mount as its own share)",
            target.display()
        ),
    )
}

impl HostMounts for WindowsMounts {
    fn mount(
        &self,
        _source: Option<&str>,
        target: &Path,
        _fstype: Option<&str>,
        _flags: MountFlags,
        _data: Option<&str>,
    ) -> io::Result<()> {
        Err(unsupported("mount on", target))
    }

    fn unmount(&self, target: &Path) -> io::Result<()> {
        Err(unsupported("unmount", target))
    }

    fn mount_points(&self) -> io::Result<Vec<PathBuf>> {
        Ok(Vec::new())
    }
}
