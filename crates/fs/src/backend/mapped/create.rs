//! Making objects: create, mkdir, mknod, symlink. Each makes a plain host file or directory,
//! sets its metadata, and removes it again if that fails (see the module doc of [`super`]).

use std::os::fd::AsRawFd;

use super::attr::PATH_MAX;
use super::meta::{self, Meta};
use super::{Mapped, HOST_DIR_MODE, HOST_FILE_MODE};
use crate::backend::passthrough::internal::NewObject;
use crate::backend::passthrough::sys;
use crate::backend::{Backend, Entry, Error, HandleId, NodeId, Result};

/// Writes all of `data` at offset 0 of `fd`.
fn write_all(fd: std::os::fd::BorrowedFd<'_>, data: &[u8]) -> Result<()> {
    let mut done = 0;
    while done < data.len() {
        let rest = &data[done..];
        // SAFETY: `rest` is readable for its length; the descriptor is our own.
        let n = unsafe {
            libc::pwrite(
                fd.as_raw_fd(),
                rest.as_ptr().cast(),
                rest.len(),
                done as libc::off_t,
            )
        };
        let n = usize::try_from(n).map_err(|_| Error::last_os("pwrite(symlink)"))?;
        if n == 0 {
            return Err(Error::refused(libc::EIO, "short write of a symlink target"));
        }
        done += n;
    }
    Ok(())
}

impl Mapped {
    /// The group and mode a new object in `parent` gets: a set-group-id directory passes on its
    /// group, and its set-group-id bit to new directories (Linux `inode_init_owner`).
    fn inherit(&self, parent: NodeId, gid: u32, mode: u32, is_dir: bool) -> Result<(u32, u32)> {
        let dir = self.do_getattr(parent)?;
        if dir.mode & libc::S_IFMT == libc::S_IFDIR && dir.mode & libc::S_ISGID != 0 {
            let mode = if is_dir { mode | libc::S_ISGID } else { mode };
            Ok((dir.gid, mode))
        } else {
            Ok((gid, mode))
        }
    }

    /// Completes a new host object: fixes its host mode if asked, writes `content`, then the
    /// metadata. On failure the object is removed again and the error returned.
    fn settle(
        &self,
        new: &NewObject<'_>,
        host_mode: Option<u32>,
        content: Option<&[u8]>,
        m: &Meta,
    ) -> Result<()> {
        let result = (|| {
            if let Some(want) = host_mode {
                let st = sys::stat_fd(new.fd)?;
                if st.st_mode & 0o7777 != want {
                    sys::chmod_fd(new.fd, want)?;
                }
            }
            if let Some(data) = content {
                write_all(new.fd, data)?;
            }
            self.write_meta(new.fd, m)
        })();
        if let Err(e) = result {
            match new.remove() {
                Ok(()) => {
                    tracing::debug!(errno = e.errno(), "new object removed: metadata not set")
                }
                Err(undo) => tracing::warn!(
                    errno = e.errno(),
                    undo_errno = undo.errno(),
                    "new object without metadata could not be removed"
                ),
            }
            return Err(e);
        }
        Ok(())
    }

    /// Makes a plain host object with metadata `m` (and contents `content`).
    fn make(&self, parent: NodeId, name: &[u8], m: Meta, content: Option<&[u8]>) -> Result<Entry> {
        let is_dir = m.mode.map(|x| x & libc::S_IFMT) == Some(libc::S_IFDIR);
        let host_mode = if is_dir {
            HOST_DIR_MODE
        } else {
            HOST_FILE_MODE
        };
        let entry = self
            .inner
            .make_plain(parent, name, is_dir, host_mode, |new| {
                self.settle(new, None, content, &m)
            })?;
        tracing::debug!(parent, node = entry.node, mode = ?m.mode, uid = ?m.uid, gid = ?m.gid, "mapped make");
        Ok(Entry {
            node: entry.node,
            attr: meta::overlay(entry.attr, &m),
        })
    }

    pub(super) fn do_create(
        &self,
        parent: NodeId,
        name: &[u8],
        flags: i32,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(Entry, HandleId)> {
        self.inner.check_writable()?;
        let (gid, perm) = self.inherit(parent, gid, mode & 0o7777, false)?;
        let m = Meta {
            uid: Some(uid),
            gid: Some(gid),
            mode: Some(libc::S_IFREG | perm),
            dev: None,
        };
        if flags & libc::O_TRUNC != 0 && flags & libc::O_EXCL == 0 {
            // Opening an existing mapped symlink is ELOOP: find out before O_TRUNC empties it.
            match self.lookup(parent, name) {
                Ok(e) => {
                    self.inner.forget(e.node, 1);
                    if e.attr.mode & libc::S_IFMT == libc::S_IFLNK {
                        return Err(Error::refused(libc::ELOOP, "create over a symlink"));
                    }
                }
                Err(e) if e.errno() == libc::ENOENT => {}
                Err(e) => return Err(e),
            }
        }
        let mut made = false;
        let (entry, handle) =
            self.inner
                .create_with(parent, name, flags, HOST_FILE_MODE, |new| {
                    made = true;
                    self.settle(new, Some(HOST_FILE_MODE), None, &m)
                })?;
        if made {
            tracing::debug!(
                parent,
                node = entry.node,
                handle,
                uid,
                gid,
                perm,
                "mapped create"
            );
            return Ok((
                Entry {
                    node: entry.node,
                    attr: meta::overlay(entry.attr, &m),
                },
                handle,
            ));
        }
        // An existing file was opened: the guest sees its own metadata.
        let found = self.overlay_entry(entry).and_then(|e| {
            if e.attr.mode & libc::S_IFMT == libc::S_IFLNK {
                self.inner.forget(e.node, 1);
                Err(Error::refused(libc::ELOOP, "create over a symlink"))
            } else {
                Ok(e)
            }
        });
        match found {
            Ok(e) => Ok((e, handle)),
            Err(err) => {
                if let Err(e) = self.inner.release(handle) {
                    tracing::debug!(errno = e.errno(), "release after a failed create");
                }
                Err(err)
            }
        }
    }

    pub(super) fn do_mkdir(
        &self,
        parent: NodeId,
        name: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<Entry> {
        self.inner.check_writable()?;
        let (gid, perm) = self.inherit(parent, gid, mode & 0o7777, true)?;
        let m = Meta {
            uid: Some(uid),
            gid: Some(gid),
            mode: Some(libc::S_IFDIR | perm),
            dev: None,
        };
        self.make(parent, name, m, None)
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
        self.inner.check_writable()?;
        let kind = match mode & libc::S_IFMT {
            0 | libc::S_IFREG => libc::S_IFREG,
            k @ (libc::S_IFIFO | libc::S_IFSOCK | libc::S_IFCHR | libc::S_IFBLK) => k,
            libc::S_IFDIR => return Err(Error::refused(libc::EINVAL, "mknod of a directory")),
            _ => return Err(Error::refused(libc::EINVAL, "unknown file type")),
        };
        let dev = (kind == libc::S_IFCHR || kind == libc::S_IFBLK).then(|| meta::split_dev(rdev));
        let (gid, perm) = self.inherit(parent, gid, mode & 0o7777, false)?;
        let m = Meta {
            uid: Some(uid),
            gid: Some(gid),
            mode: Some(kind | perm),
            dev,
        };
        self.make(parent, name, m, None)
    }

    pub(super) fn do_symlink(
        &self,
        parent: NodeId,
        name: &[u8],
        target: &[u8],
        uid: u32,
        gid: u32,
    ) -> Result<Entry> {
        self.inner.check_writable()?;
        if target.is_empty() {
            return Err(Error::refused(libc::ENOENT, "empty symlink target"));
        }
        if target.len() >= PATH_MAX {
            return Err(Error::refused(
                libc::ENAMETOOLONG,
                "symlink target too long",
            ));
        }
        if target.contains(&0) {
            return Err(Error::refused(libc::EINVAL, "symlink target contains NUL"));
        }
        let (gid, _) = self.inherit(parent, gid, 0o777, false)?;
        let m = Meta {
            uid: Some(uid),
            gid: Some(gid),
            mode: Some(libc::S_IFLNK | 0o777),
            dev: None,
        };
        self.make(parent, name, m, Some(target))
    }
}
