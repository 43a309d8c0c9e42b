//! mount(2)'s flags with Linux's values on every host, so the mount logic (which options of
//! containerd's mounts are flags, which are data) is the same code, and tested, everywhere.

bitflags::bitflags! {
    /// The `MS_*` flags the shim uses (Linux `<sys/mount.h>` values).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct MountFlags: u64 {
        /// MS_RDONLY.
        const RDONLY = 1;
        /// MS_NOSUID.
        const NOSUID = 2;
        /// MS_NODEV.
        const NODEV = 4;
        /// MS_NOEXEC.
        const NOEXEC = 8;
        /// MS_SYNCHRONOUS.
        const SYNCHRONOUS = 16;
        /// MS_REMOUNT.
        const REMOUNT = 32;
        /// MS_DIRSYNC.
        const DIRSYNC = 128;
        /// MS_NOATIME.
        const NOATIME = 1024;
        /// MS_NODIRATIME.
        const NODIRATIME = 2048;
        /// MS_BIND.
        const BIND = 4096;
        /// MS_REC.
        const REC = 16384;
        /// MS_RELATIME.
        const RELATIME = 1 << 21;
        /// MS_STRICTATIME.
        const STRICTATIME = 1 << 24;
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::MountFlags;

    #[test]
    fn test_values_are_linux_ones() {
        for (ours, libc) in [
            (MountFlags::RDONLY, libc::MS_RDONLY),
            (MountFlags::NOSUID, libc::MS_NOSUID),
            (MountFlags::NODEV, libc::MS_NODEV),
            (MountFlags::NOEXEC, libc::MS_NOEXEC),
            (MountFlags::SYNCHRONOUS, libc::MS_SYNCHRONOUS),
            (MountFlags::REMOUNT, libc::MS_REMOUNT),
            (MountFlags::DIRSYNC, libc::MS_DIRSYNC),
            (MountFlags::NOATIME, libc::MS_NOATIME),
            (MountFlags::NODIRATIME, libc::MS_NODIRATIME),
            (MountFlags::BIND, libc::MS_BIND),
            (MountFlags::REC, libc::MS_REC),
            (MountFlags::RELATIME, libc::MS_RELATIME),
            (MountFlags::STRICTATIME, libc::MS_STRICTATIME),
        ] {
            assert_eq!(ours.bits(), libc, "{ours:?}");
        }
    }
}
