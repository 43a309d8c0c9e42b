//! The host side of a FUSE mount: getting a `/dev/fuse` connection mounted at a directory, moving
//! requests and replies through it, and unmounting.
//!
//! As root the server opens `/dev/fuse` and calls mount(2) itself. Without privilege it asks the
//! set-uid helper `fusermount3` (Debian package `fuse3`), which mounts and hands the connected
//! descriptor back over a unix socket (SCM_RIGHTS; the `_FUSE_COMMFD` protocol libfuse uses).

use std::io::{self, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::socket::{
    recvmsg, socketpair, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType,
};

/// The helper that mounts FUSE file systems for unprivileged users.
const FUSERMOUNT: &str = "fusermount3";

/// How the mount was made, hence how it is undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mounter {
    /// mount(2) by this (privileged) process.
    Kernel,
    /// `fusermount3`, for an unprivileged server.
    Fusermount,
}

/// What the mount looks like to users of MNT.
#[derive(Debug, Clone)]
pub struct MountOptions {
    /// Mount read-only.
    pub read_only: bool,
    /// Let users other than the server's see the mount (always on as root; needs
    /// `user_allow_other` in /etc/fuse.conf for an unprivileged server).
    pub allow_other: bool,
    /// The source shown in /proc/mounts.
    pub fsname: String,
}

/// A mounted FUSE connection.
#[derive(Debug)]
pub struct FuseMount {
    dev: OwnedFd,
    mnt: PathBuf,
    how: Mounter,
}

impl FuseMount {
    /// Mounts a new FUSE connection at `mnt`.
    pub fn mount(mnt: &Path, opts: &MountOptions) -> Result<Self> {
        let meta = std::fs::metadata(mnt)
            .with_context(|| format!("mount point {} is not usable", mnt.display()))?;
        if !meta.is_dir() {
            bail!("mount point {} is not a directory", mnt.display());
        }
        let mnt = mnt
            .canonicalize()
            .with_context(|| format!("cannot resolve mount point {}", mnt.display()))?;
        if nix::unistd::geteuid().is_root() {
            Self::mount_kernel(&mnt, opts)
        } else {
            Self::mount_fusermount(&mnt, opts)
        }
    }

    fn mount_kernel(mnt: &Path, opts: &MountOptions) -> Result<Self> {
        let dev = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/fuse")
            .context("cannot open /dev/fuse (is the fuse module loaded?)")?;
        let dev = OwnedFd::from(dev);
        let data = format!(
            "fd={},rootmode=40000,user_id=0,group_id=0,default_permissions,allow_other",
            dev.as_raw_fd()
        );
        let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
        if opts.read_only {
            flags |= MsFlags::MS_RDONLY;
        }
        mount(
            Some(opts.fsname.as_str()),
            mnt,
            Some("fuse.lcow-fs"),
            flags,
            Some(data.as_str()),
        )
        .with_context(|| format!("mount(2) of a FUSE file system at {} failed", mnt.display()))?;
        Ok(FuseMount {
            dev,
            mnt: mnt.to_path_buf(),
            how: Mounter::Kernel,
        })
    }

    fn mount_fusermount(mnt: &Path, opts: &MountOptions) -> Result<Self> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .context("socketpair for fusermount3")?;
        let mut o = vec!["nosuid", "nodev", "default_permissions", "subtype=lcow-fs"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        o.push(if opts.read_only { "ro" } else { "rw" }.into());
        if opts.allow_other {
            o.push("allow_other".into());
        }
        o.push(format!("fsname={}", opts.fsname.replace(',', "_")));
        let theirs_raw = theirs.as_raw_fd();
        let mut cmd = Command::new(FUSERMOUNT);
        cmd.arg("-o").arg(o.join(",")).arg("--").arg(mnt);
        cmd.env("_FUSE_COMMFD", theirs_raw.to_string());
        // SAFETY: between fork and exec the closure only calls fcntl(2), which is
        // async-signal-safe, on a descriptor this process owns.
        unsafe {
            cmd.pre_exec(move || clear_cloexec(theirs_raw));
        }
        let mut child = cmd.spawn().with_context(|| {
            format!("cannot run {FUSERMOUNT} to mount without privilege (install Debian's fuse3, or run as root)")
        })?;
        drop(theirs);
        let dev = receive_fd(ours.as_fd());
        let status = child.wait().context("waiting for fusermount3")?;
        if !status.success() {
            bail!(
                "{FUSERMOUNT} could not mount {} ({status}; its message is above){}",
                mnt.display(),
                if opts.allow_other {
                    "; note that --allow-other needs user_allow_other in /etc/fuse.conf"
                } else {
                    ""
                }
            );
        }
        let dev = dev.context("fusermount3 did not pass the /dev/fuse descriptor back")?;
        Ok(FuseMount {
            dev,
            mnt: mnt.to_path_buf(),
            how: Mounter::Fusermount,
        })
    }

    /// The connection's descriptor.
    pub fn dev(&self) -> BorrowedFd<'_> {
        self.dev.as_fd()
    }

    /// Where it is mounted.
    pub fn mount_point(&self) -> &Path {
        &self.mnt
    }

    /// Unmounts: a normal unmount, or with `lazy` a detach that lets current users finish (the
    /// connection then lives until the last of them is gone).
    pub fn unmount(&self, lazy: bool) -> Result<()> {
        match self.how {
            Mounter::Kernel => {
                let flags = if lazy {
                    MntFlags::MNT_DETACH
                } else {
                    MntFlags::empty()
                };
                umount2(&self.mnt, flags)
                    .with_context(|| format!("unmount of {} failed", self.mnt.display()))
            }
            Mounter::Fusermount => {
                let mut cmd = Command::new(FUSERMOUNT);
                cmd.arg("-u").arg("-q");
                if lazy {
                    cmd.arg("-z");
                }
                let status = cmd
                    .arg("--")
                    .arg(&self.mnt)
                    .status()
                    .context("cannot run fusermount3 -u")?;
                if !status.success() {
                    bail!("{FUSERMOUNT} -u {} failed ({status})", self.mnt.display());
                }
                Ok(())
            }
        }
    }
}

fn clear_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_SETFD on a descriptor this process owns; no memory is involved.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Receives the one descriptor fusermount3 sends.
fn receive_fd(sock: BorrowedFd<'_>) -> Result<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = loop {
        match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(Errno::EINTR) => continue,
            other => break other.context("recvmsg from fusermount3")?,
        }
    };
    for cmsg in msg.cmsgs().context("control message from fusermount3")? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            let mut fds = fds.into_iter();
            if let Some(fd) = fds.next() {
                for extra in fds {
                    // SAFETY: the kernel installed this descriptor for us; nothing else owns it.
                    drop(unsafe { OwnedFd::from_raw_fd(extra) });
                }
                // SAFETY: as above: a fresh descriptor received through SCM_RIGHTS.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    bail!("no descriptor in fusermount3's message")
}

/// Reads one request into `buf`. `Ok(None)` means the file system is gone (unmounted or
/// aborted).
pub fn read_request(dev: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Option<usize>> {
    loop {
        match nix::unistd::read(dev.as_raw_fd(), buf) {
            Ok(n) => return Ok(Some(n)),
            // Interrupted, or a request the kernel withdrew before we read it.
            Err(Errno::EINTR) | Err(Errno::EAGAIN) | Err(Errno::ENOENT) => continue,
            Err(Errno::ENODEV) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Writes one reply. A reply to a request the kernel no longer waits for (interrupted) is
/// refused with ENOENT, which is normal and ignored.
pub fn write_reply(dev: BorrowedFd<'_>, reply: &[u8]) -> io::Result<()> {
    loop {
        match nix::unistd::write(dev, reply) {
            Ok(n) if n == reply.len() => return Ok(()),
            Ok(n) => {
                return Err(io::Error::other(format!(
                    "short write of a FUSE reply ({n} of {} bytes)",
                    reply.len()
                )))
            }
            Err(Errno::EINTR) => continue,
            Err(Errno::ENOENT) | Err(Errno::ENODEV) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}

/// A printable form of a path for the mount table's source field.
pub fn fsname_of(src: &Path) -> String {
    src.to_string_lossy()
        .chars()
        .map(|c| {
            if c.is_whitespace() || c == ',' {
                '_'
            } else {
                c
            }
        })
        .collect()
}
