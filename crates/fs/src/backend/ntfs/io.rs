//! Open files: open, create, read, write, fsync, fallocate, lseek.
//!
//! The access mode becomes NT access rights (`O_RDONLY`: read data; `O_WRONLY`: write and
//! append data; `O_RDWR`: both), `O_TRUNC` truncates after the open, `O_APPEND` writes at the
//! end of the file whatever the offset (as Linux `pwrite` on an `O_APPEND` descriptor does),
//! and `O_EXCL` with create is `FILE_CREATE`. Other flags mean nothing to NTFS and are dropped.

use std::sync::Mutex;

use super::attr::kind_of;
use super::nt::{access, Action, Disposition, Nt, Want};
use super::{nt_error, Handle, Ntfs, NODE_ACCESS};
use crate::backend::server_locks::Access;
use crate::backend::{Entry, Error, HandleId, NodeId, Result};
use crate::linux::{self, S_IFDIR, S_IFLNK, S_IFREG};
use crate::wsl::meta::Meta;
use crate::wsl::status::errno_of_io;

/// `SEEK_SET`, `SEEK_CUR`, `SEEK_END`, `SEEK_DATA`, `SEEK_HOLE`.
const SEEK_SET: i32 = 0;
const SEEK_END: i32 = 2;
const SEEK_DATA: i32 = 3;
const SEEK_HOLE: i32 = 4;

/// The access mode of `flags`, or `EINVAL`; `EOPNOTSUPP` for `O_TMPFILE`.
fn access_mode(flags: i32) -> Result<Access> {
    if flags & linux::O_ACCMODE == linux::O_ACCMODE {
        return Err(Error::refused(linux::EINVAL, "bad access mode"));
    }
    if flags & linux::O_TMPFILE == linux::O_TMPFILE {
        return Err(Error::refused(linux::EOPNOTSUPP, "O_TMPFILE"));
    }
    Ok(Access::of_flags(flags))
}

/// The NT access rights of an access mode.
fn rights(mode: Access) -> u32 {
    let data = match mode {
        Access::Read => access::READ_DATA,
        Access::Write => access::WRITE_DATA | access::APPEND_DATA,
        Access::ReadWrite => access::READ_DATA | access::WRITE_DATA | access::APPEND_DATA,
    };
    data | access::READ_ATTRIBUTES | access::SYNCHRONIZE
}

fn io_error(op: &'static str) -> impl Fn(u32) -> Error {
    move |status| Error::refused(errno_of_io(status), op)
}

impl<N: Nt> Ntfs<N> {
    fn insert_handle(&self, file: N::File, key: (u64, u64), mode: Access, flags: i32) -> HandleId {
        self.handles.insert(Handle {
            file,
            key,
            access: mode,
            append: flags & linux::O_APPEND != 0,
            listing: Mutex::new(None),
        })
    }

    pub(super) fn do_open(&self, id: NodeId, flags: i32) -> Result<HandleId> {
        let mode = access_mode(flags)?;
        let writes = mode != Access::Read || flags & linux::O_TRUNC != 0;
        if writes {
            self.writable()?;
        }
        let node = self.node(id)?;
        let info = self.nt.info(&node.file).map_err(nt_error("stat"))?;
        match kind_of(&info) {
            S_IFREG => {}
            S_IFDIR if mode == Access::Read => {}
            S_IFDIR => {
                return Err(Error::refused(
                    linux::EISDIR,
                    "directory opened for writing",
                ))
            }
            S_IFLNK => return Err(Error::refused(linux::ELOOP, "open of a symlink")),
            _ => return Err(Error::refused(linux::ENXIO, "open of a special file")),
        }
        let file = self.reopen(&node.file, rights(mode))?;
        if flags & linux::O_TRUNC != 0 && mode != Access::Read && !info.is_dir() {
            self.nt.set_size(&file, 0).map_err(nt_error("truncate"))?;
        }
        let handle = self.insert_handle(file, node.key, mode, flags);
        tracing::debug!(node = id, handle, flags, "open");
        Ok(handle)
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
        let access_mode = access_mode(flags)?;
        let meta = Meta {
            uid: Some(uid),
            gid: Some(gid),
            mode: Some(S_IFREG | (mode & 0o7777)),
            dev: None,
        };
        let disposition = if flags & linux::O_EXCL != 0 {
            Disposition::Create
        } else {
            Disposition::OpenIf
        };
        let (file, action) = self.make(
            parent,
            name,
            Want::NonDirectory,
            &meta,
            rights(access_mode),
            disposition,
        )?;
        if action == Action::Opened && flags & linux::O_TRUNC != 0 && access_mode != Access::Read {
            self.nt.set_size(&file, 0).map_err(nt_error("truncate"))?;
        }
        let node_file = self.reopen(&file, NODE_ACCESS)?;
        let entry = self.enter(node_file)?;
        let key = self.node(entry.node)?.key;
        let handle = self.insert_handle(file, key, access_mode, flags);
        tracing::debug!(node = entry.node, handle, flags, ?action, "create");
        Ok((entry, handle))
    }

    pub(super) fn do_read(&self, id: HandleId, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let h = self.handle(id)?;
        self.nt.read(&h.file, offset, buf).map_err(io_error("read"))
    }

    pub(super) fn do_write(&self, id: HandleId, offset: u64, data: &[u8]) -> Result<usize> {
        let h = self.handle(id)?;
        let at = (!h.append).then_some(offset);
        self.nt.write(&h.file, at, data).map_err(io_error("write"))
    }

    pub(super) fn do_fsync(&self, id: HandleId) -> Result<()> {
        let h = self.handle(id)?;
        if h.access == Access::Read {
            // Nothing written through it; NTFS refuses a flush without write access.
            return Ok(());
        }
        self.nt.flush(&h.file).map_err(nt_error("flush"))
    }

    pub(super) fn do_fallocate(
        &self,
        id: HandleId,
        mode: i32,
        offset: u64,
        len: u64,
    ) -> Result<()> {
        if mode != 0 {
            return Err(Error::refused(
                linux::EOPNOTSUPP,
                "fallocate modes on an NTFS share",
            ));
        }
        self.writable()?;
        let h = self.handle(id)?;
        let end = offset
            .checked_add(len)
            .filter(|e| *e <= i64::MAX as u64)
            .ok_or(Error::refused(
                linux::EFBIG,
                "fallocate past the largest offset",
            ))?;
        let info = self.nt.info(&h.file).map_err(nt_error("stat"))?;
        if end > info.size {
            self.nt.set_size(&h.file, end).map_err(io_error("extend"))?;
        }
        Ok(())
    }

    pub(super) fn do_lseek(&self, id: HandleId, offset: i64, whence: i32) -> Result<u64> {
        let h = self.handle(id)?;
        let size = self.nt.info(&h.file).map_err(nt_error("stat"))?.size;
        let off =
            u64::try_from(offset).map_err(|_| Error::refused(linux::EINVAL, "negative offset"));
        match whence {
            SEEK_SET => off,
            SEEK_END => size
                .checked_add_signed(offset)
                .ok_or(Error::refused(linux::EINVAL, "offset before the start")),
            // NTFS reports no holes here: the whole file is data.
            SEEK_DATA => off.and_then(|o| {
                if o < size {
                    Ok(o)
                } else {
                    Err(Error::refused(linux::ENXIO, "SEEK_DATA past the end"))
                }
            }),
            SEEK_HOLE => off.and_then(|o| {
                if o < size {
                    Ok(size)
                } else {
                    Err(Error::refused(linux::ENXIO, "SEEK_HOLE past the end"))
                }
            }),
            _ => Err(Error::refused(linux::EINVAL, "lseek whence")),
        }
    }
}
