//! Names: mkdir, mknod, symlink, readlink, link, unlink, rmdir, rename.

use super::attr::kind_of;
use super::nt::{access, attributes, Action, Disposition, Nt, OpenRequest, Want};
use super::{new_name, nt_error, nt_name, Ntfs, NODE_ACCESS};
use crate::backend::{Entry, Error, NodeId, Result, RENAME_EXCHANGE, RENAME_NOREPLACE};
use crate::linux::{self, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK};
use crate::wsl::ea;
use crate::wsl::meta::{split_dev, Meta};
use crate::wsl::reparse;

/// The access a handle that removes or renames a name needs.
const DELETE_ACCESS: u32 = access::DELETE | access::READ_ATTRIBUTES | access::SYNCHRONIZE;

impl<N: Nt> Ntfs<N> {
    /// Makes `name` in `parent` with its metadata EAs written in the same call; the handle has
    /// [`NODE_ACCESS`] and `extra`.
    pub(super) fn make(
        &self,
        parent: NodeId,
        name: &[u8],
        want: Want,
        meta: &Meta,
        extra: u32,
        disposition: Disposition,
    ) -> Result<(N::File, Action)> {
        self.writable()?;
        let parent = self.node(parent)?;
        let nt = new_name(name)?;
        let chain = ea::encode(&meta.to_eas())
            .map_err(|_| Error::refused(linux::EIO, "metadata EAs unencodable"))?;
        let request = OpenRequest {
            access: NODE_ACCESS | extra,
            disposition,
            want,
            attributes: if want == Want::Directory {
                0
            } else {
                attributes::NORMAL
            },
            eas: &chain,
        };
        self.nt
            .open(&parent.file, &nt, &request)
            .map_err(nt_error("create"))
    }

    /// Makes a file whose type is a reparse point (`buffer`), removing it again if the reparse
    /// point cannot be set, so no file of the wrong type stays behind.
    fn make_reparse(
        &self,
        parent: NodeId,
        name: &[u8],
        meta: &Meta,
        buffer: &[u8],
    ) -> Result<Entry> {
        let extra = access::WRITE_DATA | access::WRITE_ATTRIBUTES | access::DELETE;
        let (file, _) = self.make(
            parent,
            name,
            Want::NonDirectory,
            meta,
            extra,
            Disposition::Create,
        )?;
        if let Err(status) = self.nt.set_reparse_point(&file, buffer) {
            // We made it a moment ago, under this handle: removing it deletes only our file.
            if let Err(undo) = self.nt.delete(&file) {
                tracing::warn!(status = undo, "cannot remove a half-made special file");
            }
            return Err(nt_error("set reparse point")(status));
        }
        self.enter(file)
    }

    pub(super) fn do_mkdir(
        &self,
        parent: NodeId,
        name: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<Entry> {
        let meta = Meta {
            uid: Some(uid),
            gid: Some(gid),
            mode: Some(S_IFDIR | (mode & 0o7777)),
            dev: None,
        };
        let (file, _) = self.make(
            parent,
            name,
            Want::Directory,
            &meta,
            access::WRITE_ATTRIBUTES,
            Disposition::Create,
        )?;
        if self.config.case_sensitive_dirs {
            if let Err(status) = self.nt.set_case_sensitive(&file, true) {
                tracing::debug!(status, "volume keeps the new directory case-insensitive");
            }
        }
        self.enter(file)
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
        let kind = match mode & S_IFMT {
            0 => S_IFREG,
            k => k,
        };
        let mut meta = Meta {
            uid: Some(uid),
            gid: Some(gid),
            mode: Some(kind | (mode & 0o7777)),
            dev: None,
        };
        match kind {
            S_IFREG => {
                let (file, _) = self.make(
                    parent,
                    name,
                    Want::NonDirectory,
                    &meta,
                    0,
                    Disposition::Create,
                )?;
                self.enter(file)
            }
            S_IFIFO | S_IFSOCK | S_IFCHR | S_IFBLK => {
                if kind == S_IFCHR || kind == S_IFBLK {
                    meta.dev = Some(split_dev(rdev));
                }
                let buffer = reparse::special(kind)
                    .ok_or(Error::refused(linux::EINVAL, "mknod of an unknown type"))?;
                self.make_reparse(parent, name, &meta, &buffer)
            }
            _ => Err(Error::refused(
                linux::EINVAL,
                "mknod of a directory or symlink",
            )),
        }
    }

    pub(super) fn do_symlink(
        &self,
        parent: NodeId,
        name: &[u8],
        target: &[u8],
        uid: u32,
        gid: u32,
    ) -> Result<Entry> {
        if target.is_empty() {
            return Err(Error::refused(linux::ENOENT, "empty symlink target"));
        }
        let buffer = reparse::lx_symlink(target)
            .map_err(|_| Error::refused(linux::ENAMETOOLONG, "symlink target too long"))?;
        let meta = Meta {
            uid: Some(uid),
            gid: Some(gid),
            mode: Some(S_IFLNK | 0o777),
            dev: None,
        };
        self.make_reparse(parent, name, &meta, &buffer)
    }

    pub(super) fn do_readlink(&self, id: NodeId) -> Result<Vec<u8>> {
        let node = self.node(id)?;
        let info = self.nt.info(&node.file).map_err(nt_error("stat"))?;
        if kind_of(&info) != S_IFLNK {
            return Err(Error::refused(linux::EINVAL, "readlink of a non-symlink"));
        }
        self.symlink_target(&node.file, &info)
    }

    pub(super) fn do_link(&self, id: NodeId, new_parent: NodeId, name: &[u8]) -> Result<Entry> {
        self.writable()?;
        let node = self.node(id)?;
        let info = self.nt.info(&node.file).map_err(nt_error("stat"))?;
        if info.is_dir() && kind_of(&info) == S_IFDIR {
            return Err(Error::refused(linux::EPERM, "hard link to a directory"));
        }
        let parent = self.node(new_parent)?;
        let nt = new_name(name)?;
        self.nt
            .link(&node.file, &parent.file, &nt)
            .map_err(nt_error("link"))?;
        let file = self.open_child(&parent.file, &nt, NODE_ACCESS, Want::Any)?;
        self.enter(file)
    }

    /// `unlink` (`dir` false) or `rmdir` (`dir` true) of `name`, with POSIX semantics.
    pub(super) fn do_remove(&self, parent: NodeId, name: &[u8], dir: bool) -> Result<()> {
        self.writable()?;
        let parent = self.node(parent)?;
        let file = self.open_child(&parent.file, &nt_name(name)?, DELETE_ACCESS, Want::Any)?;
        let info = self.nt.info(&file).map_err(nt_error("stat"))?;
        let is_dir = kind_of(&info) == S_IFDIR;
        if dir && !is_dir {
            return Err(Error::refused(linux::ENOTDIR, "rmdir of a non-directory"));
        }
        if !dir && is_dir {
            return Err(Error::refused(linux::EISDIR, "unlink of a directory"));
        }
        self.nt.delete(&file).map_err(nt_error("delete"))
    }

    pub(super) fn do_rename(
        &self,
        old_parent: NodeId,
        old_name: &[u8],
        new_parent: NodeId,
        new_name_: &[u8],
        flags: u32,
    ) -> Result<()> {
        if flags & RENAME_EXCHANGE != 0 {
            return Err(Error::refused(
                linux::EINVAL,
                "RENAME_EXCHANGE cannot be atomic on NTFS",
            ));
        }
        if flags & !RENAME_NOREPLACE != 0 {
            return Err(Error::refused(linux::EINVAL, "unknown rename flags"));
        }
        self.writable()?;
        let from_dir = self.node(old_parent)?;
        let to_dir = self.node(new_parent)?;
        let src = self.open_child(
            &from_dir.file,
            &nt_name(old_name)?,
            DELETE_ACCESS,
            Want::Any,
        )?;
        let target = new_name(new_name_)?;
        let src_info = self.nt.info(&src).map_err(nt_error("stat"))?;
        let src_is_dir = kind_of(&src_info) == S_IFDIR;
        let existing = match self.open_child(&to_dir.file, &target, DELETE_ACCESS, Want::Any) {
            Ok(f) => Some(f),
            Err(e) if e.errno() == linux::ENOENT => None,
            Err(e) => return Err(e),
        };
        let mut replace = false;
        if let Some(dst) = existing {
            if flags & RENAME_NOREPLACE != 0 {
                return Err(Error::refused(linux::EEXIST, "rename target exists"));
            }
            let dst_info = self.nt.info(&dst).map_err(nt_error("stat"))?;
            let same = (dst_info.volume, dst_info.file_id) == (src_info.volume, src_info.file_id);
            // The same file: a change of case in a case-insensitive directory renames it in
            // place; two names of one file (hard links) POSIX renames nothing.
            let case_change = old_parent == new_parent && old_name.eq_ignore_ascii_case(new_name_);
            if same && !case_change {
                return Ok(());
            }
            if !same {
                let dst_is_dir = kind_of(&dst_info) == S_IFDIR;
                match (src_is_dir, dst_is_dir) {
                    (false, true) => {
                        return Err(Error::refused(
                            linux::EISDIR,
                            "rename of a file over a directory",
                        ))
                    }
                    (true, false) => {
                        return Err(Error::refused(
                            linux::ENOTDIR,
                            "rename of a directory over a file",
                        ))
                    }
                    (true, true) => {
                        // NTFS replaces no directory: remove the (empty) target first.
                        self.nt
                            .delete(&dst)
                            .map_err(nt_error("remove the rename target directory"))?;
                    }
                    (false, false) => replace = true,
                }
            }
            // Our own handle on the target must not stand in the way of replacing it.
            drop(dst);
        }
        self.nt
            .rename(&src, &to_dir.file, &target, replace)
            .map_err(nt_error("rename"))
    }
}
