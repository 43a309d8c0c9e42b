//! The host's mount table behind a trait (youki's `Syscall` shape), so the mount and cleanup
//! logic runs against a fake in unit tests and against the host's own in the shim
//! (`crate::sys::Mounts`: mount(2) on Linux; on Windows, which has no bind mounts, a table that
//! is always empty and refuses to mount).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use super::MountFlags;

/// Mounting, unmounting and reading the mount table.
pub trait HostMounts: Send + Sync + fmt::Debug {
    /// mount(2).
    fn mount(
        &self,
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: MountFlags,
        data: Option<&str>,
    ) -> io::Result<()>;

    /// Detaches the mount on `target` (umount2 with MNT_DETACH: gone from the table at once).
    fn unmount(&self, target: &Path) -> io::Result<()>;

    /// Every mount point of this mount namespace; an error when the table cannot be read
    /// (which callers treat as "anything may be mounted").
    fn mount_points(&self) -> io::Result<Vec<PathBuf>>;
}

/// The mount points (field 5) of a mountinfo text; an error for a line without one.
pub fn parse_mountinfo(info: &str) -> io::Result<Vec<PathBuf>> {
    info.lines()
        .map(|l| {
            l.split(' ')
                .nth(4)
                .map(|p| PathBuf::from(unescape_mountinfo(p)))
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("mountinfo line without a mount point: {l:?}"),
                    )
                })
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|d| (b'0'..=b'7').contains(d))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn test_unescape_mountinfo() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
        assert_eq!(unescape_mountinfo("/end\\04"), "/end\\04");
    }

    #[test]
    fn test_parse_mountinfo_fields_and_bad_line() {
        let info = "22 1 0:21 / /run rw,nosuid - tmpfs tmpfs rw\n\
                    30 22 0:30 / /run/lcow/x\\040y rw - overlay overlay rw\n";
        assert_eq!(
            parse_mountinfo(info).unwrap(),
            [PathBuf::from("/run"), PathBuf::from("/run/lcow/x y")]
        );
        assert!(parse_mountinfo("garbage\n").is_err());
    }
}
