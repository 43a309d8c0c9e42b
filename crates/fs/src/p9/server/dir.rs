//! Directories and names: Treaddir, Tmkdir, Tmknod, Tsymlink, Tlink, Trename, Trenameat,
//! Tunlinkat, Tremove.
//!
//! Names are checked by the backend (one component: no `/`, NUL, `.` or `..`). Objects these
//! requests create are not bound to a fid, so the lookup reference each creation returns is
//! given back at once.

use super::fids::{ebadf, lock_live};
use super::{qid_of, Reply, Server};
use crate::backend::{dtype, Backend, Entry, Error, Result, ROOT_NODE};
use crate::linux;
use crate::p9::consts::{max_read_count, qid_type, unlinkat_flags};
use crate::p9::dirent::{DirEntry, DirentWriter};
use crate::p9::rmessage::{
    Rlink, Rmessage, Rmkdir, Rmknod, Rremove, Rrename, Rrenameat, Rsymlink, Runlinkat,
};
use crate::p9::tmessage::{
    Tlink, Tmkdir, Tmknod, Treaddir, Tremove, Trename, Trenameat, Tsymlink, Tunlinkat,
};
use crate::p9::wire::{Name, Qid};
use crate::wsl::meta::makedev;

/// The qid type a `d_type` implies.
fn qid_type_of_dtype(kind: u8) -> u8 {
    match kind {
        dtype::DIR => qid_type::DIR,
        dtype::LNK => qid_type::SYMLINK,
        _ => qid_type::FILE,
    }
}

impl<B: Backend> Server<B> {
    /// The node and owner of a fid.
    fn dir_of(&self, fid: u32) -> Result<(u64, u32)> {
        self.fids.with(fid, |f| Ok((f.node()?, f.uid)))
    }

    /// The qid of an entry just created, giving its lookup reference back.
    fn created(&self, entry: Entry) -> Qid {
        self.backend.forget(entry.node, 1);
        qid_of(&entry.attr)
    }

    /// Treaddir: packs entries from the backend offset `offset` into at most `count` bytes
    /// (bounded by msize). An empty reply is the end of the directory.
    pub(super) fn readdir(&self, t: &Treaddir) -> Reply {
        let count = t.count.min(max_read_count(self.msize()));
        let (handle, node, root_qid) = self.fids.with(t.fid, |f| {
            Ok((f.handle()?, f.node()?, f.path.first().map(|e| e.qid)))
        })?;
        let mut writer = DirentWriter::new(count);
        let mut too_small = false;
        let mut failure = None;
        self.backend.readdir(handle, t.offset, &mut |e| {
            let name = match Name::new(e.name.as_slice()) {
                Ok(name) => name,
                Err(err) => {
                    failure = Some(err);
                    return false;
                }
            };
            // The root's `..` is the root itself: never show the host's parent inode.
            let qid = match root_qid {
                Some(q) if node == ROOT_NODE && e.name == b".." => q,
                _ => Qid {
                    ty: qid_type_of_dtype(e.kind),
                    version: 0,
                    path: e.ino,
                },
            };
            let entry = DirEntry {
                qid,
                offset: e.offset,
                ty: e.kind,
                name,
            };
            match writer.push(&entry) {
                Ok(true) => true,
                Ok(false) => {
                    too_small = writer.is_empty();
                    false
                }
                Err(err) => {
                    failure = Some(err);
                    false
                }
            }
        })?;
        if writer.is_empty() {
            if let Some(err) = failure {
                tracing::debug!(error = %err, "directory entry cannot be sent");
                return Err(Error::refused(linux::EIO, "directory entry cannot be sent"));
            }
            if too_small {
                return Err(Error::refused(linux::EINVAL, "readdir count too small"));
            }
        }
        Ok(Rmessage::Readdir(writer.finish()))
    }

    /// Tmkdir.
    pub(super) fn mkdir(&self, t: &Tmkdir) -> Reply {
        let (dir, uid) = self.dir_of(t.dfid)?;
        let entry = self
            .backend
            .mkdir(dir, t.name.as_bytes(), t.mode & 0o7777, uid, t.gid)?;
        Ok(Rmessage::Mkdir(Rmkdir {
            qid: self.created(entry),
        }))
    }

    /// Tmknod: `mode` carries the file type; the device number is `makedev(major, minor)`.
    pub(super) fn mknod(&self, t: &Tmknod) -> Reply {
        let (dir, uid) = self.dir_of(t.dfid)?;
        let rdev = makedev(t.major, t.minor);
        let entry = self
            .backend
            .mknod(dir, t.name.as_bytes(), t.mode, rdev, uid, t.gid)?;
        Ok(Rmessage::Mknod(Rmknod {
            qid: self.created(entry),
        }))
    }

    /// Tsymlink.
    pub(super) fn symlink(&self, t: &Tsymlink) -> Reply {
        let (dir, uid) = self.dir_of(t.fid)?;
        let entry =
            self.backend
                .symlink(dir, t.name.as_bytes(), t.symtgt.as_bytes(), uid, t.gid)?;
        Ok(Rmessage::Symlink(Rsymlink {
            qid: self.created(entry),
        }))
    }

    /// Tlink: hard-links the file `fid` names into `dfid` as `name`.
    pub(super) fn link(&self, t: &Tlink) -> Reply {
        let (dir, _) = self.dir_of(t.dfid)?;
        let (node, _) = self.dir_of(t.fid)?;
        let entry = self.backend.link(node, dir, t.name.as_bytes())?;
        self.created(entry);
        Ok(Rmessage::Link(Rlink))
    }

    /// Trename: moves the file `fid` names into `dfid` as `name`. The fid's own path follows
    /// the move; other fids naming the file keep the path they were walked along.
    pub(super) fn rename(&self, t: &Trename) -> Reply {
        let fid = self.fids.get(t.fid)?;
        let (old_dir, old_name) = lock_live(&fid)?.parent_and_name()?;
        let new_path = self.fids.with(t.dfid, |d| {
            self.refs.hold_path(&d.path);
            Ok(d.path.clone())
        })?;
        let new_dir = new_path.last().map(|e| e.node).unwrap_or(ROOT_NODE);
        let name = t.name.as_bytes();
        if let Err(e) = self.backend.rename(old_dir, &old_name, new_dir, name, 0) {
            self.refs.release_path(&self.backend, &new_path);
            return Err(e);
        }
        // Re-root the fid's path beneath the new parent.
        let old_parents = {
            let mut f = match lock_live(&fid) {
                Ok(f) => f,
                Err(_) => {
                    self.refs.release_path(&self.backend, &new_path);
                    return Ok(Rmessage::Rename(Rrename));
                }
            };
            match f.path.pop() {
                Some(mut last) => {
                    last.name = name.to_vec();
                    let old = std::mem::replace(&mut f.path, new_path);
                    f.path.push(last);
                    old
                }
                None => new_path,
            }
        };
        self.refs.release_path(&self.backend, &old_parents);
        Ok(Rmessage::Rename(Rrename))
    }

    /// Trenameat.
    pub(super) fn renameat(&self, t: &Trenameat) -> Reply {
        let (old_dir, _) = self.dir_of(t.olddirfid)?;
        let (new_dir, _) = self.dir_of(t.newdirfid)?;
        self.backend.rename(
            old_dir,
            t.oldname.as_bytes(),
            new_dir,
            t.newname.as_bytes(),
            0,
        )?;
        Ok(Rmessage::Renameat(Rrenameat))
    }

    /// Tunlinkat: `AT_REMOVEDIR` removes a directory, otherwise a non-directory.
    pub(super) fn unlinkat(&self, t: &Tunlinkat) -> Reply {
        let (dir, _) = self.dir_of(t.dirfd)?;
        if t.flags & !unlinkat_flags::REMOVEDIR != 0 {
            return Err(Error::refused(linux::EINVAL, "unknown unlinkat flags"));
        }
        if t.flags & unlinkat_flags::REMOVEDIR != 0 {
            self.backend.rmdir(dir, t.name.as_bytes())?;
        } else {
            self.backend.unlink(dir, t.name.as_bytes())?;
        }
        Ok(Rmessage::Unlinkat(Runlinkat))
    }

    /// Tremove: removes the file the fid names (by the name it was walked to) and clunks the
    /// fid, whether or not the removal succeeded.
    pub(super) fn remove(&self, t: &Tremove) -> Reply {
        let fid = self
            .fids
            .remove(t.fid)
            .ok_or_else(|| ebadf("unknown fid"))?;
        let target = lock_live(&fid).and_then(|f| {
            let (dir, name) = f.parent_and_name()?;
            Ok((dir, name, f.is_dir()))
        });
        let removed = target.and_then(|(dir, name, is_dir)| {
            if is_dir {
                self.backend.rmdir(dir, &name)
            } else {
                self.backend.unlink(dir, &name)
            }
        });
        let released = self.release_fid(t.fid, &fid);
        removed?;
        released?;
        Ok(Rmessage::Remove(Rremove))
    }
}
