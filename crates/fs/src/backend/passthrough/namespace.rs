//! Operations on names and inode metadata: lookup, setattr, mknod/mkdir, symlink, link, unlink,
//! rmdir, rename.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use super::confine::{check_name, open_beneath, ProcFd};
use super::{sys, Passthrough};
use crate::backend::{
    Attr, Entry, Error, HandleId, NodeId, Result, SetAttr, TimeSet, RENAME_EXCHANGE,
    RENAME_NOREPLACE,
};

impl Passthrough {
    pub(super) fn do_lookup(&self, parent: NodeId, name: &[u8]) -> Result<Entry> {
        let name = check_name(name)?;
        let dir = self.node(parent)?;
        if !dir.is_dir() {
            return Err(Error::refused(libc::ENOTDIR, "lookup in a non-directory"));
        }
        let fd = open_beneath(dir.fd(), &name, libc::O_PATH, 0)?;
        let entry = self.enter(fd)?;
        tracing::trace!(parent, node = entry.node, "lookup");
        Ok(entry)
    }

    /// Gives a new inode the owner and exact mode the guest asked for (the server's umask and a
    /// root-owned creation are undone). An unprivileged server cannot give files away: `EPERM`
    /// from `chown` is then logged and the host's ownership stays.
    pub(super) fn settle_new(
        &self,
        fd: BorrowedFd<'_>,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<()> {
        let st = sys::stat_fd(fd)?;
        if st.st_uid != uid || st.st_gid != gid {
            match sys::chown_fd(fd, Some(uid), Some(gid)) {
                Err(e) if e.errno() == libc::EPERM => {
                    tracing::debug!(uid, gid, "unprivileged server: new file keeps host owner");
                }
                other => other?,
            }
        }
        let kind = st.st_mode & libc::S_IFMT;
        if kind == libc::S_IFLNK {
            return Ok(());
        }
        let mut want = mode & 0o7777;
        if kind == libc::S_IFDIR {
            // A directory made in a set-group-id directory inherits the bit on the host.
            want |= st.st_mode & libc::S_ISGID;
        }
        if st.st_mode & 0o7777 != want || want & (libc::S_ISUID | libc::S_ISGID) != 0 {
            sys::chmod_fd(fd, want)?;
        }
        Ok(())
    }

    pub(super) fn do_mknod(
        &self,
        parent: NodeId,
        name: &[u8],
        mode: u32,
        rdev: u64,
        uid: u32,
        gid: u32,
    ) -> Result<Entry> {
        self.writable()?;
        let cname = check_name(name)?;
        let dir = self.node(parent)?;
        let kind = mode & libc::S_IFMT;
        let perm = mode & 0o7777;
        let ret = match kind {
            // SAFETY: a valid NUL-terminated name; nothing is written to memory.
            libc::S_IFDIR => unsafe { libc::mkdirat(dir.fd().as_raw_fd(), cname.as_ptr(), perm) },
            0 | libc::S_IFREG | libc::S_IFIFO | libc::S_IFSOCK | libc::S_IFCHR | libc::S_IFBLK => {
                let kind = if kind == 0 { libc::S_IFREG } else { kind };
                let rdev = if kind == libc::S_IFCHR || kind == libc::S_IFBLK {
                    rdev
                } else {
                    0
                };
                // SAFETY: a valid NUL-terminated name; nothing is written to memory.
                unsafe {
                    libc::mknodat(
                        dir.fd().as_raw_fd(),
                        cname.as_ptr(),
                        kind | perm,
                        rdev as libc::dev_t,
                    )
                }
            }
            _ => return Err(Error::refused(libc::EINVAL, "unknown file type")),
        };
        sys::cvt(
            ret,
            if kind == libc::S_IFDIR {
                "mkdirat"
            } else {
                "mknodat"
            },
        )?;
        let fd = open_beneath(dir.fd(), &cname, libc::O_PATH, 0)?;
        self.settle_new(fd.as_fd(), mode, uid, gid)?;
        let entry = self.enter(fd)?;
        tracing::debug!(parent, node = entry.node, mode, "mknod");
        Ok(entry)
    }

    pub(super) fn do_symlink(
        &self,
        parent: NodeId,
        name: &[u8],
        target: &[u8],
        uid: u32,
        gid: u32,
    ) -> Result<Entry> {
        self.writable()?;
        let cname = check_name(name)?;
        let target = std::ffi::CString::new(target)
            .map_err(|_| Error::refused(libc::EINVAL, "symlink target contains NUL"))?;
        let dir = self.node(parent)?;
        sys::cvt(
            // SAFETY: two valid NUL-terminated strings; nothing is written to memory. The target is
            // stored as data: the server never follows it.
            unsafe { libc::symlinkat(target.as_ptr(), dir.fd().as_raw_fd(), cname.as_ptr()) },
            "symlinkat",
        )?;
        let fd = open_beneath(dir.fd(), &cname, libc::O_PATH, 0)?;
        self.settle_new(fd.as_fd(), 0o777, uid, gid)?;
        let entry = self.enter(fd)?;
        tracing::debug!(parent, node = entry.node, "symlink");
        Ok(entry)
    }

    pub(super) fn do_link(&self, node: NodeId, new_parent: NodeId, name: &[u8]) -> Result<Entry> {
        self.writable()?;
        let cname = check_name(name)?;
        let src = self.node(node)?;
        if src.is_dir() {
            return Err(Error::refused(libc::EPERM, "hard link to a directory"));
        }
        let dir = self.node(new_parent)?;
        // SAFETY: valid NUL-terminated names; nothing is written to memory.
        let ret = unsafe {
            libc::linkat(
                src.fd().as_raw_fd(),
                c"".as_ptr(),
                dir.fd().as_raw_fd(),
                cname.as_ptr(),
                libc::AT_EMPTY_PATH,
            )
        };
        if let Err(e) = sys::cvt(ret, "linkat") {
            // Without CAP_DAC_READ_SEARCH, AT_EMPTY_PATH is ENOENT: name the inode through its
            // /proc/self/fd magic link instead (it leads to the inode, not to a path).
            if e.errno() != libc::ENOENT {
                return Err(e);
            }
            let path = ProcFd::path(src.fd());
            sys::cvt(
                // SAFETY: valid NUL-terminated paths; nothing is written to memory.
                unsafe {
                    libc::linkat(
                        libc::AT_FDCWD,
                        path.as_ptr(),
                        dir.fd().as_raw_fd(),
                        cname.as_ptr(),
                        libc::AT_SYMLINK_FOLLOW,
                    )
                },
                "linkat",
            )?;
        }
        // The new name is the same inode: add a reference to the existing node.
        let fd = src
            .fd()
            .try_clone_to_owned()
            .map_err(|source| Error::Host { op: "dup", source })?;
        let entry = self.enter(fd)?;
        tracing::debug!(node = entry.node, new_parent, "link");
        Ok(entry)
    }

    pub(super) fn do_remove(&self, parent: NodeId, name: &[u8], flags: i32) -> Result<()> {
        self.writable()?;
        let cname = check_name(name)?;
        let dir = self.node(parent)?;
        sys::cvt(
            // SAFETY: a valid NUL-terminated name; nothing is written to memory.
            unsafe { libc::unlinkat(dir.fd().as_raw_fd(), cname.as_ptr(), flags) },
            "unlinkat",
        )?;
        tracing::debug!(parent, dir = flags != 0, "remove");
        Ok(())
    }

    pub(super) fn do_rename(
        &self,
        old_parent: NodeId,
        old_name: &[u8],
        new_parent: NodeId,
        new_name: &[u8],
        flags: u32,
    ) -> Result<()> {
        self.writable()?;
        if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE) != 0 {
            return Err(Error::refused(libc::EINVAL, "unsupported rename flags"));
        }
        let old = check_name(old_name)?;
        let new = check_name(new_name)?;
        let old_dir = self.node(old_parent)?;
        let new_dir = self.node(new_parent)?;
        // SAFETY: valid NUL-terminated names; nothing is written to memory. The raw syscall
        // avoids depending on a glibc renameat2 wrapper.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                old_dir.fd().as_raw_fd(),
                old.as_ptr(),
                new_dir.fd().as_raw_fd(),
                new.as_ptr(),
                flags,
            )
        };
        sys::cvt_size(ret, "renameat2")?;
        tracing::debug!(old_parent, new_parent, flags, "rename");
        Ok(())
    }

    pub(super) fn do_setattr(
        &self,
        id: NodeId,
        handle: Option<HandleId>,
        attr: &SetAttr,
    ) -> Result<Attr> {
        let node = self.node(id)?;
        let nothing = attr.mode.is_none()
            && attr.uid.is_none()
            && attr.gid.is_none()
            && attr.size.is_none()
            && attr.atime == TimeSet::Omit
            && attr.mtime == TimeSet::Omit;
        if !nothing {
            self.writable()?;
        }
        if attr.uid.is_some() || attr.gid.is_some() {
            sys::chown_fd(node.fd(), attr.uid, attr.gid)?;
        }
        if let Some(mode) = attr.mode {
            if node.is_symlink() {
                return Err(Error::refused(libc::EOPNOTSUPP, "chmod of a symlink"));
            }
            sys::chmod_fd(node.fd(), mode)?;
        }
        if let Some(size) = attr.size {
            let size = i64::try_from(size)
                .map_err(|_| Error::refused(libc::EFBIG, "size beyond off_t"))?;
            match node.kind {
                libc::S_IFREG => {}
                libc::S_IFDIR => return Err(Error::refused(libc::EISDIR, "truncate a directory")),
                _ => return Err(Error::refused(libc::EINVAL, "truncate a special file")),
            }
            let ret = if let Some(h) = handle {
                let h = self.handle(h)?;
                if h.key != node.key {
                    return Err(Error::refused(libc::EBADF, "handle of another node"));
                }
                // SAFETY: ftruncate on our own descriptor; no memory is touched.
                unsafe { libc::ftruncate(h.fd().as_raw_fd(), size) }
            } else {
                let fd = self.proc.reopen(node.fd(), libc::O_WRONLY)?;
                // SAFETY: ftruncate on our own descriptor; no memory is touched.
                unsafe { libc::ftruncate(fd.as_raw_fd(), size) }
            };
            sys::cvt(ret, "ftruncate")?;
        }
        if attr.atime != TimeSet::Omit || attr.mtime != TimeSet::Omit {
            sys::set_times(node.fd(), attr.atime, attr.mtime)?;
        }
        tracing::trace!(node = id, "setattr");
        Ok(sys::attr_of(&sys::stat_fd(node.fd())?))
    }
}
