//! Attributes: what `getattr` shows from NTFS's stat and the LX EAs, `setattr`, `statfs`.

use super::nt::{access, attributes, Info, Nt, NtTime, Times};
use super::{nt_error, Ntfs};
use crate::backend::{Attr, Error, HandleId, NodeId, Result, SetAttr, StatFs, TimeSet, Timespec};
use crate::linux::{self, S_IFBLK, S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use crate::wsl::ea;
use crate::wsl::meta::{makedev, Meta};
use crate::wsl::reparse::{self, Reparse};
use crate::wsl::status::{STATUS_EAS_NOT_SUPPORTED, STATUS_NO_EAS_ON_FILE};

/// 100 ns intervals between 1601-01-01 and 1970-01-01.
const EPOCH_DIFF: i64 = 116_444_736_000_000_000;
/// `statfs` type of an NTFS share (Linux's `NTFS_SB_MAGIC`).
const NTFS_MAGIC: u32 = 0x5346_544e;

/// A time as the guest sees it.
pub(super) fn timespec_of(t: NtTime) -> Timespec {
    let since = t - EPOCH_DIFF;
    Timespec {
        sec: since.div_euclid(10_000_000),
        // 0..10^7 intervals of 100 ns.
        nsec: (since.rem_euclid(10_000_000) * 100) as u32,
    }
}

/// A guest time as NTFS keeps it (to 100 ns).
pub(super) fn nt_time_of(t: Timespec) -> NtTime {
    t.sec
        .saturating_mul(10_000_000)
        .saturating_add(i64::from(t.nsec / 100))
        .saturating_add(EPOCH_DIFF)
}

/// The current time as NTFS keeps it.
pub(super) fn nt_now() -> NtTime {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    nt_time_of(Timespec {
        sec: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        nsec: since.subsec_nanos(),
    })
}

/// What `getattr` found, with the volume serial the node table keys on.
pub(super) struct Stat {
    pub(super) attr: Attr,
    pub(super) dev_key: u64,
}

/// The Linux type NTFS's stat implies: a reparse tag first, then the directory attribute.
pub(super) fn kind_of(info: &Info) -> u32 {
    match reparse::kind_of_tag(info.reparse_tag) {
        Some(kind) => kind,
        None if info.is_dir() => S_IFDIR,
        None => S_IFREG,
    }
}

impl<N: Nt> Ntfs<N> {
    /// The LX metadata EAs of `file` (none when it has no EAs or the volume keeps none).
    pub(super) fn meta_of(&self, file: &N::File) -> Result<Meta> {
        let chain = match self.nt.eas(file) {
            Ok(chain) => chain,
            Err(STATUS_NO_EAS_ON_FILE | STATUS_EAS_NOT_SUPPORTED) => Vec::new(),
            Err(status) => return Err(nt_error("query EAs")(status)),
        };
        match ea::decode(&chain) {
            Ok(eas) => Ok(Meta::from_eas(&eas)),
            Err(e) => {
                tracing::debug!(error = %e, "malformed EAs ignored");
                Ok(Meta::default())
            }
        }
    }

    /// The guest's attributes of an open file.
    pub(super) fn attr_of(&self, file: &N::File) -> Result<Stat> {
        let info = self.nt.info(file).map_err(nt_error("stat"))?;
        let meta = self.meta_of(file)?;
        let kind = kind_of(&info);
        let mut perm = match kind {
            S_IFDIR => 0o755,
            S_IFLNK => 0o777,
            _ => 0o644,
        };
        if kind == S_IFREG && info.attributes & attributes::READONLY != 0 {
            perm &= !0o222;
        }
        match meta.mode {
            Some(m) if m & S_IFMT == kind => perm = m & 0o7777,
            Some(m) => tracing::debug!(lxmod = m, kind, "LXMOD of another type ignored"),
            None => {}
        }
        let size = if kind == S_IFLNK {
            self.symlink_target(file, &info)
                .map_or(0, |t| t.len() as u64)
        } else if kind == S_IFDIR {
            0
        } else {
            info.size
        };
        let rdev = match (kind, meta.dev) {
            (S_IFCHR | S_IFBLK, Some((major, minor))) => makedev(major, minor),
            _ => 0,
        };
        let changed = if info.changed == 0 {
            info.written
        } else {
            info.changed
        };
        let attr = Attr {
            ino: info.file_id,
            mode: kind | perm,
            nlink: if kind == S_IFDIR {
                1
            } else {
                u64::from(info.nlink.max(1))
            },
            uid: meta.uid.unwrap_or(self.config.uid),
            gid: meta.gid.unwrap_or(self.config.gid),
            rdev,
            size,
            blksize: 4096,
            blocks: info.allocated.div_ceil(512),
            atime: timespec_of(info.accessed),
            mtime: timespec_of(info.written),
            ctime: timespec_of(changed),
        };
        Ok(Stat {
            attr,
            dev_key: info.volume,
        })
    }

    /// The target of a symlink (an LX symlink, or an NT link read as one).
    pub(super) fn symlink_target(&self, file: &N::File, info: &Info) -> Result<Vec<u8>> {
        let buf = self
            .nt
            .reparse_point(file)
            .map_err(nt_error("read reparse point"))?;
        match reparse::decode(&buf) {
            Ok(Reparse::Symlink(target)) => Ok(target),
            Ok(Reparse::LxSymlinkInData) => {
                // A version 1 LX symlink: the target is the file's data.
                let len = usize::try_from(info.size)
                    .ok()
                    .filter(|n| (1..=reparse::MAX_TARGET).contains(n))
                    .ok_or(Error::refused(linux::EIO, "LX symlink v1 of a bad size"))?;
                let data = self.reopen(file, access::READ_DATA | access::SYNCHRONIZE)?;
                let mut target = vec![0u8; len];
                let n = self
                    .nt
                    .read(&data, 0, &mut target)
                    .map_err(nt_error("read LX symlink v1"))?;
                target.truncate(n);
                Ok(target)
            }
            Ok(_) => Err(Error::refused(linux::EINVAL, "not a symlink")),
            Err(e) => {
                tracing::debug!(error = %e, "reparse point unreadable as a symlink");
                Err(Error::refused(linux::EIO, "symlink reparse data malformed"))
            }
        }
    }

    pub(super) fn do_setattr(
        &self,
        id: NodeId,
        handle: Option<HandleId>,
        attr: &SetAttr,
    ) -> Result<Attr> {
        let node = self.node(id)?;
        let changes = attr.mode.is_some()
            || attr.uid.is_some()
            || attr.gid.is_some()
            || attr.size.is_some()
            || attr.atime != TimeSet::Omit
            || attr.mtime != TimeSet::Omit;
        if !changes {
            return Ok(self.attr_of(&node.file)?.attr);
        }
        self.writable()?;
        let cur = self.attr_of(&node.file)?.attr;
        let kind = cur.mode & S_IFMT;
        if attr.mode.is_some() && kind == S_IFLNK {
            return Err(Error::refused(linux::EOPNOTSUPP, "chmod of a symlink"));
        }
        if let Some(size) = attr.size {
            match kind {
                S_IFREG => {}
                S_IFDIR => return Err(Error::refused(linux::EISDIR, "truncate a directory")),
                _ => return Err(Error::refused(linux::EINVAL, "truncate a special file")),
            }
            match handle {
                Some(h) => {
                    let h = self.handle(h)?;
                    self.nt.set_size(&h.file, size)
                }
                None => {
                    let f = self.reopen(&node.file, access::WRITE_DATA | access::SYNCHRONIZE)?;
                    self.nt.set_size(&f, size)
                }
            }
            .map_err(nt_error("truncate"))?;
        }
        if attr.atime != TimeSet::Omit || attr.mtime != TimeSet::Omit {
            let at = |t: TimeSet| match t {
                TimeSet::Omit => None,
                TimeSet::Now => Some(nt_now()),
                TimeSet::At(ts) => Some(nt_time_of(ts)),
            };
            let times = Times {
                accessed: at(attr.atime),
                written: at(attr.mtime),
                changed: None,
            };
            let f = self.reopen(&node.file, access::WRITE_ATTRIBUTES | access::SYNCHRONIZE)?;
            self.nt
                .set_times(&f, &times)
                .map_err(nt_error("set times"))?;
        }
        let meta = Meta {
            uid: attr.uid.filter(|u| *u != cur.uid),
            gid: attr.gid.filter(|g| *g != cur.gid),
            mode: attr
                .mode
                .map(|m| kind | (m & 0o7777))
                .filter(|m| *m != cur.mode),
            dev: None,
        };
        if meta != Meta::default() {
            let chain = ea::encode(&meta.to_eas())
                .map_err(|_| Error::refused(linux::EIO, "metadata EAs unencodable"))?;
            let f = self.reopen(&node.file, access::WRITE_EA | access::SYNCHRONIZE)?;
            self.nt
                .set_eas(&f, &chain)
                .map_err(nt_error("write metadata EAs"))?;
        }
        Ok(self.attr_of(&node.file)?.attr)
    }

    pub(super) fn do_statfs(&self, id: NodeId) -> Result<StatFs> {
        let node = self.node(id)?;
        let v = self
            .nt
            .volume(&node.file)
            .map_err(nt_error("volume information"))?;
        Ok(StatFs {
            fs_type: NTFS_MAGIC,
            bsize: v.cluster,
            frsize: v.cluster,
            blocks: v.total,
            bfree: v.free,
            bavail: v.available,
            files: 0,
            ffree: 0,
            fsid: v.serial,
            namelen: crate::backend::NAME_MAX as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_time_conversion_roundtrips_to_100ns() {
        assert_eq!(timespec_of(EPOCH_DIFF), Timespec { sec: 0, nsec: 0 });
        let t = Timespec {
            sec: 1_700_000_000,
            nsec: 123_456_700,
        };
        assert_eq!(timespec_of(nt_time_of(t)), t);
        // Before 1970.
        let old = Timespec {
            sec: -1,
            nsec: 500_000_000,
        };
        assert_eq!(timespec_of(nt_time_of(old)), old);
        // Nanoseconds below 100 are lost, as on NTFS.
        let fine = Timespec { sec: 5, nsec: 99 };
        assert_eq!(timespec_of(nt_time_of(fine)), Timespec { sec: 5, nsec: 0 });
    }
}
