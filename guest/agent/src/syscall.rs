//! The kernel-touching calls of the agent behind one trait (youki's `Syscall` pattern).
//!
//! Everything that changes the guest's kernel state — mounts, device nodes, the hostname,
//! signals, cgroup file writes, power-off — goes through [`Syscall`], so the logic that decides
//! *what* to do (the mount plan, resource writes, kills) is unit-tested without root against
//! [`fake::RecordingSyscall`]. Reads of kernel files are plain `std::fs` reads: tests point them
//! at sample files in a temp dir.

use std::fmt::Debug;
use std::io;
use std::path::Path;

use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};

/// A character device node to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CharDev {
    /// Device major number.
    pub major: u64,
    /// Device minor number.
    pub minor: u64,
    /// Permission bits.
    pub mode: u32,
}

/// The calls that change kernel state.
pub trait Syscall: Send + Sync + Debug {
    /// mount(2).
    fn mount(
        &self,
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> io::Result<()>;
    /// umount2(2); `detach` is `MNT_DETACH`.
    fn umount(&self, target: &Path, detach: bool) -> io::Result<()>;
    /// `mkdir -p` with `mode` for the directories it creates.
    fn mkdir_all(&self, path: &Path, mode: u32) -> io::Result<()>;
    /// mknod(2) of a character device.
    fn mknod_char(&self, path: &Path, dev: CharDev) -> io::Result<()>;
    /// symlink(2): `link` points to `target`.
    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()>;
    /// unlink(2).
    fn unlink(&self, path: &Path) -> io::Result<()>;
    /// sethostname(2).
    fn sethostname(&self, name: &str) -> io::Result<()>;
    /// kill(2). `pid` must be positive: process groups and "everyone" are never signalled.
    fn kill(&self, pid: i32, signal: i32) -> io::Result<()>;
    /// Writes `contents` to an existing (cgroup or proc) file in one write(2).
    fn write_file(&self, path: &Path, contents: &str) -> io::Result<()>;
    /// sync(2).
    fn sync(&self);
    /// reboot(2) with `RB_POWER_OFF`; returns only on failure.
    fn power_off(&self) -> io::Result<()>;
    /// Sets `lo` of the caller's network namespace up (SIOCSIFFLAGS), as runc and crun do
    /// for a new namespace: services that listen on localhost need it.
    fn loopback_up(&self) -> io::Result<()>;
}

/// The real calls.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxSyscall;

impl Syscall for LinuxSyscall {
    fn mount(
        &self,
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> io::Result<()> {
        nix::mount::mount(source, target, fstype, flags, data).map_err(io::Error::from)
    }

    fn umount(&self, target: &Path, detach: bool) -> io::Result<()> {
        let flags = if detach {
            MntFlags::MNT_DETACH
        } else {
            MntFlags::empty()
        };
        nix::mount::umount2(target, flags).map_err(io::Error::from)
    }

    fn mkdir_all(&self, path: &Path, mode: u32) -> io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(path)
    }

    fn mknod_char(&self, path: &Path, dev: CharDev) -> io::Result<()> {
        nix::sys::stat::mknod(
            path,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(dev.mode),
            nix::sys::stat::makedev(dev.major, dev.minor),
        )
        .map_err(io::Error::from)?;
        // mknod is subject to the umask; set the exact mode.
        nix::sys::stat::fchmodat(
            None,
            path,
            Mode::from_bits_truncate(dev.mode),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .map_err(io::Error::from)
    }

    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()> {
        std::os::unix::fs::symlink(target, link)
    }

    fn unlink(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sethostname(&self, name: &str) -> io::Result<()> {
        nix::unistd::sethostname(name).map_err(io::Error::from)
    }

    fn kill(&self, pid: i32, signal: i32) -> io::Result<()> {
        if pid <= 0 {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        // SAFETY: kill(2) takes plain integers and touches no memory of ours; pid > 0 so it
        // names exactly one process.
        let rc = unsafe { libc::kill(pid, signal) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn write_file(&self, path: &Path, contents: &str) -> io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(false)
            .open(path)?;
        // cgroup files take one value per write(2): a short write is an error.
        let n = f.write(contents.as_bytes())?;
        if n == contents.len() {
            Ok(())
        } else {
            Err(io::Error::from(io::ErrorKind::WriteZero))
        }
    }

    fn sync(&self) {
        nix::unistd::sync();
    }

    fn power_off(&self) -> io::Result<()> {
        nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF)
            .map(|_| ())
            .map_err(io::Error::from)
    }

    fn loopback_up(&self) -> io::Result<()> {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        // SAFETY: socket(2) takes plain integers; the descriptor it returns is owned below.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nothing else owns.
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: ifreq is plain old data (integers and unions of them): all zeroes is valid.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        // SAFETY: SIOCGIFFLAGS reads the NUL-terminated name from `req` and writes the flags
        // into it; `req` lives across the call.
        if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
        let flags = unsafe { req.ifr_ifru.ifru_flags };
        let up = libc::IFF_UP as libc::c_short;
        if flags & up != 0 {
            return Ok(());
        }
        req.ifr_ifru.ifru_flags = flags | up;
        // SAFETY: SIOCSIFFLAGS reads the name and flags from `req`, which lives across the call.
        if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub mod fake {
    //! A [`Syscall`] that records every call and changes nothing.

    use std::sync::Mutex;

    use super::*;

    /// One recorded call, with owned arguments.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Call {
        Mount {
            source: Option<String>,
            target: String,
            fstype: Option<String>,
            flags: MsFlags,
            data: Option<String>,
        },
        Umount(String),
        Mkdir(String),
        Mknod(String, CharDev),
        Symlink {
            target: String,
            link: String,
        },
        Unlink(String),
        Hostname(String),
        Kill(i32, i32),
        Write(String, String),
        Sync,
        PowerOff,
        LoopbackUp,
    }

    /// Records calls; fails those matching a rule set with [`RecordingSyscall::fail_when`].
    #[derive(Default)]
    pub struct RecordingSyscall {
        calls: Mutex<Vec<Call>>,
        #[allow(clippy::type_complexity)]
        fail: Mutex<Vec<Box<dyn Fn(&Call) -> Option<i32> + Send>>>,
    }

    impl Debug for RecordingSyscall {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("RecordingSyscall").finish_non_exhaustive()
        }
    }

    impl RecordingSyscall {
        /// Calls for which `rule` returns `Some(errno)` fail with that errno (still recorded).
        pub fn fail_when(&self, rule: impl Fn(&Call) -> Option<i32> + Send + 'static) {
            self.fail.lock().unwrap().push(Box::new(rule));
        }

        /// Every call so far.
        pub fn calls(&self) -> Vec<Call> {
            self.calls.lock().unwrap().clone()
        }

        fn record(&self, call: Call) -> io::Result<()> {
            let errno = self.fail.lock().unwrap().iter().find_map(|r| r(&call));
            self.calls.lock().unwrap().push(call);
            match errno {
                Some(e) => Err(io::Error::from_raw_os_error(e)),
                None => Ok(()),
            }
        }
    }

    fn s(p: &Path) -> String {
        p.display().to_string()
    }

    impl Syscall for RecordingSyscall {
        fn mount(
            &self,
            source: Option<&str>,
            target: &Path,
            fstype: Option<&str>,
            flags: MsFlags,
            data: Option<&str>,
        ) -> io::Result<()> {
            self.record(Call::Mount {
                source: source.map(str::to_owned),
                target: s(target),
                fstype: fstype.map(str::to_owned),
                flags,
                data: data.map(str::to_owned),
            })
        }
        fn umount(&self, target: &Path, _detach: bool) -> io::Result<()> {
            self.record(Call::Umount(s(target)))
        }
        fn mkdir_all(&self, path: &Path, _mode: u32) -> io::Result<()> {
            self.record(Call::Mkdir(s(path)))
        }
        fn mknod_char(&self, path: &Path, dev: CharDev) -> io::Result<()> {
            self.record(Call::Mknod(s(path), dev))
        }
        fn symlink(&self, target: &Path, link: &Path) -> io::Result<()> {
            self.record(Call::Symlink {
                target: s(target),
                link: s(link),
            })
        }
        fn unlink(&self, path: &Path) -> io::Result<()> {
            self.record(Call::Unlink(s(path)))
        }
        fn sethostname(&self, name: &str) -> io::Result<()> {
            self.record(Call::Hostname(name.to_owned()))
        }
        fn kill(&self, pid: i32, signal: i32) -> io::Result<()> {
            assert!(pid > 0, "kill of a non-positive pid {pid}");
            self.record(Call::Kill(pid, signal))
        }
        fn write_file(&self, path: &Path, contents: &str) -> io::Result<()> {
            self.record(Call::Write(s(path), contents.to_owned()))
        }
        fn sync(&self) {
            let _ = self.record(Call::Sync);
        }
        fn power_off(&self) -> io::Result<()> {
            self.record(Call::PowerOff)
        }
        fn loopback_up(&self) -> io::Result<()> {
            self.record(Call::LoopbackUp)
        }
    }
}
