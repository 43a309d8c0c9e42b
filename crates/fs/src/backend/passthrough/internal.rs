//! Crate-internal entry points for backends layered on top of [`Passthrough`] (the mapped
//! backend keeps the passthrough's confinement, node and handle tables, I/O and locks, and adds
//! a metadata layer). Nothing here changes how the passthrough backend itself behaves.

use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use super::confine::{check_name, open_beneath};
use super::handles::Handle;
use super::nodes::Node;
use super::{sys, Passthrough};
use crate::backend::{Entry, Error, HandleId, NodeId, Result};

/// A file or directory just created by [`Passthrough::create_with`] or
/// [`Passthrough::make_plain`], before it becomes a node.
#[derive(Debug)]
pub(crate) struct NewObject<'a> {
    /// The parent directory (O_PATH).
    pub(crate) dir: BorrowedFd<'a>,
    /// The new name in `dir`.
    pub(crate) name: &'a CStr,
    /// A descriptor of the new inode (`O_RDWR` or the create flags for a file, `O_RDONLY |
    /// O_DIRECTORY` for a directory).
    pub(crate) fd: BorrowedFd<'a>,
    /// Whether it is a directory.
    pub(crate) is_dir: bool,
}

impl NewObject<'_> {
    /// Undoes the creation: removes the name if it still names the new inode. Best effort, for
    /// an object whose set-up failed half-way (the caller reports the set-up's error).
    pub(crate) fn remove(&self) -> Result<()> {
        let ours = sys::key_of(&sys::stat_fd(self.fd)?);
        let name = self.name.to_owned();
        let now = open_beneath(self.dir, &name, libc::O_PATH, 0)?;
        if sys::key_of(&sys::stat_fd(now.as_fd())?) != ours {
            return Err(Error::refused(
                libc::ESTALE,
                "the new name was replaced before it could be removed",
            ));
        }
        let flags = if self.is_dir { libc::AT_REMOVEDIR } else { 0 };
        sys::cvt(
            // SAFETY: a valid NUL-terminated name; nothing is written to memory.
            unsafe { libc::unlinkat(self.dir.as_raw_fd(), name.as_ptr(), flags) },
            "unlinkat",
        )?;
        Ok(())
    }
}

impl Passthrough {
    /// `EROFS` on a read-only share.
    pub(crate) fn check_writable(&self) -> Result<()> {
        self.writable()
    }

    /// The live node `id` (`ESTALE` if unknown).
    pub(crate) fn node_of(&self, id: NodeId) -> Result<Arc<Node>> {
        self.node(id)
    }

    /// The open handle `id` (`EBADF` if unknown).
    pub(crate) fn handle_of(&self, id: HandleId) -> Result<Arc<Handle>> {
        self.handle(id)
    }

    /// Opens the inode behind `fd` anew with `flags`, through `/proc/self/fd` (see `confine`).
    pub(crate) fn reopen_fd(&self, fd: BorrowedFd<'_>, flags: i32) -> Result<OwnedFd> {
        self.proc.reopen(fd, flags)
    }

    /// Makes an empty regular file (`is_dir == false`) or directory `name` in `parent` with
    /// exactly host mode `host_mode` (the umask is undone), owned by the server, calls `on_new`
    /// on it, and only then makes it a node with one lookup reference. An error from `on_new`
    /// is returned as it is: the caller undoes what it wants with [`NewObject::remove`].
    pub(crate) fn make_plain(
        &self,
        parent: NodeId,
        name: &[u8],
        is_dir: bool,
        host_mode: u32,
        on_new: impl FnOnce(&NewObject<'_>) -> Result<()>,
    ) -> Result<Entry> {
        self.writable()?;
        let cname = check_name(name)?;
        let dir = self.node(parent)?;
        if !dir.is_dir() {
            return Err(Error::refused(libc::ENOTDIR, "create in a non-directory"));
        }
        let host_mode = host_mode & 0o7777;
        let fd = if is_dir {
            sys::cvt(
                // SAFETY: a valid NUL-terminated name; nothing is written to memory.
                unsafe { libc::mkdirat(dir.fd().as_raw_fd(), cname.as_ptr(), host_mode) },
                "mkdirat",
            )?;
            match open_beneath(dir.fd(), &cname, libc::O_RDONLY | libc::O_DIRECTORY, 0) {
                Ok(fd) => fd,
                Err(e) => {
                    // SAFETY: a valid NUL-terminated name; nothing is written to memory. Only an
                    // empty directory can be removed, so nothing but what we made can go.
                    unsafe {
                        libc::unlinkat(dir.fd().as_raw_fd(), cname.as_ptr(), libc::AT_REMOVEDIR)
                    };
                    return Err(e);
                }
            }
        } else {
            let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL;
            open_beneath(dir.fd(), &cname, flags, host_mode)?
        };
        let new = NewObject {
            dir: dir.fd(),
            name: &cname,
            fd: fd.as_fd(),
            is_dir,
        };
        let st = sys::stat_fd(fd.as_fd())?;
        if st.st_mode & 0o7777 != host_mode {
            if let Err(e) = sys::chmod_fd(fd.as_fd(), host_mode) {
                if let Err(undo) = new.remove() {
                    tracing::warn!(errno = undo.errno(), "could not remove a half-made object");
                }
                return Err(e);
            }
        }
        on_new(&new)?;
        let path_fd = self.proc.reopen(fd.as_fd(), libc::O_PATH)?;
        let entry = self.enter(path_fd)?;
        tracing::debug!(parent, node = entry.node, is_dir, "make_plain");
        Ok(entry)
    }
}
