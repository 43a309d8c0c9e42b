//! Attributes: getattr and setattr with the metadata overlay, open, readlink of mapped
//! symlinks.

use std::os::fd::{AsFd, AsRawFd};

use super::meta::{self, Meta};
use super::Mapped;
use crate::backend::passthrough::sys;
use crate::backend::{Attr, Backend, Error, HandleId, NodeId, Result, SetAttr, TimeSet};

/// Linux `PATH_MAX`: a symlink target is at most `PATH_MAX - 1` bytes.
pub(crate) const PATH_MAX: usize = 4096;

impl Mapped {
    /// The guest's attributes of a node and its current metadata.
    fn attr_and_meta(&self, id: NodeId) -> Result<(Attr, Meta)> {
        let node = self.inner.node_of(id)?;
        let host = sys::attr_of(&sys::stat_fd(node.fd())?);
        let m = meta::read(node.fd(), node.kind)?;
        Ok((meta::overlay(host, &m), m))
    }

    pub(super) fn do_getattr(&self, id: NodeId) -> Result<Attr> {
        self.attr_and_meta(id).map(|(attr, _)| attr)
    }

    pub(super) fn do_setattr(
        &self,
        id: NodeId,
        handle: Option<HandleId>,
        attr: &SetAttr,
    ) -> Result<Attr> {
        let changes_meta = attr.mode.is_some() || attr.uid.is_some() || attr.gid.is_some();
        if changes_meta {
            self.inner.check_writable()?;
        }
        let node = self.inner.node_of(id)?;
        let (cur, old) = self.attr_and_meta(id)?;
        let kind = cur.mode & libc::S_IFMT;
        if attr.mode.is_some() && kind == libc::S_IFLNK {
            return Err(Error::refused(libc::EOPNOTSUPP, "chmod of a symlink"));
        }
        if attr.size.is_some() {
            match kind {
                libc::S_IFREG => {}
                libc::S_IFDIR => return Err(Error::refused(libc::EISDIR, "truncate a directory")),
                _ => return Err(Error::refused(libc::EINVAL, "truncate a special file")),
            }
        }
        // The new metadata: only what changes is written; the file type always stays.
        let new = Meta {
            uid: attr.uid.filter(|u| *u != cur.uid),
            gid: attr.gid.filter(|g| *g != cur.gid),
            mode: attr
                .mode
                .map(|m| kind | (m & 0o7777))
                .filter(|m| *m != cur.mode),
            dev: None,
        };
        let writes_meta = new != Meta::default();
        if writes_meta && !meta::can_hold(node.kind) {
            return Err(Error::refused(
                libc::EOPNOTSUPP,
                "host symlinks and special files cannot carry guest metadata",
            ));
        }
        // Size and times first (the host can refuse them), then the metadata.
        let host = SetAttr {
            mode: None,
            uid: None,
            gid: None,
            ..*attr
        };
        let host_changes =
            host.size.is_some() || host.atime != TimeSet::Omit || host.mtime != TimeSet::Omit;
        let host_attr = if host_changes {
            self.inner.setattr(id, handle, &host)?
        } else {
            sys::attr_of(&sys::stat_fd(node.fd())?)
        };
        if writes_meta {
            self.write_meta(node.fd(), &new)?;
            tracing::debug!(
                node = id,
                uid = ?new.uid,
                gid = ?new.gid,
                mode = ?new.mode,
                "setattr: metadata"
            );
        }
        let merged = Meta {
            uid: new.uid.or(old.uid),
            gid: new.gid.or(old.gid),
            mode: new.mode.or(old.mode),
            dev: old.dev,
        };
        // The ctime moved with the xattr write: report the host's current one.
        let host_attr = if writes_meta {
            sys::attr_of(&sys::stat_fd(node.fd())?)
        } else {
            host_attr
        };
        Ok(meta::overlay(host_attr, &merged))
    }

    pub(super) fn do_open(&self, id: NodeId, flags: i32) -> Result<HandleId> {
        let node = self.inner.node_of(id)?;
        if node.kind == libc::S_IFREG {
            let m = meta::read(node.fd(), node.kind)?;
            if meta::guest_mode(libc::S_IFREG, m.mode) & libc::S_IFMT == libc::S_IFLNK {
                return Err(Error::refused(libc::ELOOP, "open of a symlink"));
            }
        }
        self.inner.open(id, flags)
    }

    pub(super) fn do_readlink(&self, id: NodeId) -> Result<Vec<u8>> {
        let node = self.inner.node_of(id)?;
        if node.is_symlink() {
            // A host symlink that was there before: the host's own target.
            return self.inner.readlink(id);
        }
        let m = meta::read(node.fd(), node.kind)?;
        if meta::guest_mode(node.kind, m.mode) & libc::S_IFMT != libc::S_IFLNK {
            return Err(Error::refused(libc::EINVAL, "not a symlink"));
        }
        let fd = self.inner.reopen_fd(node.fd(), libc::O_RDONLY)?;
        let mut buf = vec![0u8; PATH_MAX];
        let mut len = 0;
        while len < buf.len() {
            let rest = &mut buf[len..];
            // SAFETY: `rest` is writable for its length; the descriptor is our own.
            let n = unsafe {
                libc::pread(
                    fd.as_fd().as_raw_fd(),
                    rest.as_mut_ptr().cast(),
                    rest.len(),
                    len as libc::off_t,
                )
            };
            let n = usize::try_from(n).map_err(|_| Error::last_os("pread(symlink)"))?;
            if n == 0 {
                break;
            }
            len += n;
        }
        if len >= PATH_MAX {
            return Err(Error::refused(
                libc::EIO,
                "mapped symlink target longer than PATH_MAX",
            ));
        }
        buf.truncate(len);
        Ok(buf)
    }
}
