//! 9P2000.L replies: one struct per R-message, fields in wire order, and the [`Rmessage`]
//! enum. Replies with no body are unit structs.

use super::consts::msg;
use super::wire::{decode_elements, Data, P9String, Qid, Reader, WireError, WireFormat, MAXWELEM};

wire_struct! {
    /// Rlerror: `ecode[4]` — the request failed with a Linux errno.
    Rlerror {
        /// Linux errno.
        ecode: u32,
    }
}

wire_struct! {
    /// Rversion: `msize[4] version[s]`.
    Rversion {
        /// Negotiated msize, at most the client's.
        msize: u32,
        /// `9P2000.L`, or `unknown`.
        version: P9String,
    }
}

wire_struct! {
    /// Rauth: `aqid[13]`.
    Rauth {
        /// Qid of the authentication file.
        aqid: Qid,
    }
}

wire_struct! {
    /// Rattach: `qid[13]`.
    Rattach {
        /// Qid of the tree's root.
        qid: Qid,
    }
}

wire_struct! {
    /// Rflush: empty.
    Rflush;
}

/// Rwalk: `nwqid[2] nwqid*(wqid[13])` — one qid per name walked, at most [`MAXWELEM`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rwalk {
    /// Qids of the elements walked.
    pub wqids: Vec<Qid>,
}

impl WireFormat for Rwalk {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        if self.wqids.len() > MAXWELEM {
            return Err(WireError::TooManyWalkElements(self.wqids.len()));
        }
        self.wqids.encode(out)
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let count = usize::from(u16::decode(r)?);
        if count > MAXWELEM {
            return Err(WireError::TooManyWalkElements(count));
        }
        Ok(Self {
            wqids: decode_elements(r, count)?,
        })
    }
}

wire_struct! {
    /// Rread: `count[4] data[count]`.
    Rread {
        /// Bytes read.
        data: Data,
    }
}

wire_struct! {
    /// Rwrite: `count[4]`.
    Rwrite {
        /// Bytes written.
        count: u32,
    }
}

wire_struct! {
    /// Rclunk: empty.
    Rclunk;
}

wire_struct! {
    /// Rremove: empty.
    Rremove;
}

wire_struct! {
    /// Rstatfs: `type[4] bsize[4] blocks[8] bfree[8] bavail[8] files[8] ffree[8] fsid[8]
    /// namelen[4]`.
    Rstatfs {
        /// File system type (`f_type`).
        ty: u32,
        /// Block size.
        bsize: u32,
        /// Total blocks.
        blocks: u64,
        /// Free blocks.
        bfree: u64,
        /// Blocks free to unprivileged users.
        bavail: u64,
        /// Total inodes.
        files: u64,
        /// Free inodes.
        ffree: u64,
        /// File system id.
        fsid: u64,
        /// Longest name.
        namelen: u32,
    }
}

wire_struct! {
    /// Rlopen: `qid[13] iounit[4]`.
    Rlopen {
        /// Qid of the opened file.
        qid: Qid,
        /// Largest I/O the client should issue in one message, 0 for msize-bound.
        iounit: u32,
    }
}

wire_struct! {
    /// Rlcreate: `qid[13] iounit[4]`.
    Rlcreate {
        /// Qid of the new file.
        qid: Qid,
        /// As in [`Rlopen`].
        iounit: u32,
    }
}

wire_struct! {
    /// Rsymlink: `qid[13]`.
    Rsymlink {
        /// Qid of the new link.
        qid: Qid,
    }
}

wire_struct! {
    /// Rmknod: `qid[13]`.
    Rmknod {
        /// Qid of the new node.
        qid: Qid,
    }
}

wire_struct! {
    /// Rrename: empty.
    Rrename;
}

wire_struct! {
    /// Rreadlink: `target[s]`.
    Rreadlink {
        /// Link target.
        target: P9String,
    }
}

wire_struct! {
    /// Rgetattr: `valid[8] qid[13] mode[4] uid[4] gid[4] nlink[8] rdev[8] size[8] blksize[8]
    /// blocks[8] atime_sec[8] atime_nsec[8] mtime_sec[8] mtime_nsec[8] ctime_sec[8]
    /// ctime_nsec[8] btime_sec[8] btime_nsec[8] gen[8] data_version[8]` — 153 bytes.
    Rgetattr {
        /// Fields that hold values ([`super::consts::getattr`]).
        valid: u64,
        /// Qid of the file.
        qid: Qid,
        /// Linux `st_mode` (file type and permission bits).
        mode: u32,
        /// Owner.
        uid: u32,
        /// Group.
        gid: u32,
        /// Hard links.
        nlink: u64,
        /// Device number, for device files.
        rdev: u64,
        /// Size in bytes.
        size: u64,
        /// Preferred I/O block size.
        blksize: u64,
        /// 512-byte blocks allocated.
        blocks: u64,
        /// Access time, seconds.
        atime_sec: u64,
        /// Access time, nanoseconds.
        atime_nsec: u64,
        /// Modification time, seconds.
        mtime_sec: u64,
        /// Modification time, nanoseconds.
        mtime_nsec: u64,
        /// Status change time, seconds.
        ctime_sec: u64,
        /// Status change time, nanoseconds.
        ctime_nsec: u64,
        /// Birth time, seconds.
        btime_sec: u64,
        /// Birth time, nanoseconds.
        btime_nsec: u64,
        /// Inode generation.
        gen: u64,
        /// Data version.
        data_version: u64,
    }
}

wire_struct! {
    /// Rsetattr: empty.
    Rsetattr;
}

wire_struct! {
    /// Rxattrwalk: `size[8]` — the size of the attribute value (or name list) to read.
    Rxattrwalk {
        /// Bytes the attribute fid will read.
        size: u64,
    }
}

wire_struct! {
    /// Rxattrcreate: empty.
    Rxattrcreate;
}

wire_struct! {
    /// Rreaddir: `count[4] data[count]` — packed directory entries (see
    /// [`super::dirent::DirentWriter`]).
    Rreaddir {
        /// Packed entries.
        data: Data,
    }
}

wire_struct! {
    /// Rfsync: empty.
    Rfsync;
}

wire_struct! {
    /// Rlock: `status[1]`.
    Rlock {
        /// [`super::consts::lock_status`].
        status: u8,
    }
}

wire_struct! {
    /// Rgetlock: `type[1] start[8] length[8] proc_id[4] client_id[s]` — the conflicting lock,
    /// or type UNLCK if the requested lock could be placed.
    Rgetlock {
        /// [`super::consts::lock_type`].
        ty: u8,
        /// First byte.
        start: u64,
        /// Bytes covered; 0 means to the end of the file.
        length: u64,
        /// Owner process id.
        proc_id: u32,
        /// Owner client identity.
        client_id: P9String,
    }
}

wire_struct! {
    /// Rlink: empty.
    Rlink;
}

wire_struct! {
    /// Rmkdir: `qid[13]`.
    Rmkdir {
        /// Qid of the new directory.
        qid: Qid,
    }
}

wire_struct! {
    /// Rrenameat: empty.
    Rrenameat;
}

wire_struct! {
    /// Runlinkat: empty.
    Runlinkat;
}

message_enum! {
    /// A 9P2000.L reply. The legacy 9P2000 Rerror (107) has no variant: 9P2000.L reports
    /// errors with [`Rlerror`].
    Rmessage {
        /// Rlerror (7).
        Lerror(Rlerror) = msg::RLERROR,
        /// Rversion (101).
        Version(Rversion) = msg::RVERSION,
        /// Rauth (103).
        Auth(Rauth) = msg::RAUTH,
        /// Rattach (105).
        Attach(Rattach) = msg::RATTACH,
        /// Rflush (109).
        Flush(Rflush) = msg::RFLUSH,
        /// Rwalk (111).
        Walk(Rwalk) = msg::RWALK,
        /// Rread (117).
        Read(Rread) = msg::RREAD,
        /// Rwrite (119).
        Write(Rwrite) = msg::RWRITE,
        /// Rclunk (121).
        Clunk(Rclunk) = msg::RCLUNK,
        /// Rremove (123).
        Remove(Rremove) = msg::RREMOVE,
        /// Rstatfs (9).
        Statfs(Rstatfs) = msg::RSTATFS,
        /// Rlopen (13).
        Lopen(Rlopen) = msg::RLOPEN,
        /// Rlcreate (15).
        Lcreate(Rlcreate) = msg::RLCREATE,
        /// Rsymlink (17).
        Symlink(Rsymlink) = msg::RSYMLINK,
        /// Rmknod (19).
        Mknod(Rmknod) = msg::RMKNOD,
        /// Rrename (21).
        Rename(Rrename) = msg::RRENAME,
        /// Rreadlink (23).
        Readlink(Rreadlink) = msg::RREADLINK,
        /// Rgetattr (25).
        Getattr(Rgetattr) = msg::RGETATTR,
        /// Rsetattr (27).
        Setattr(Rsetattr) = msg::RSETATTR,
        /// Rxattrwalk (31).
        Xattrwalk(Rxattrwalk) = msg::RXATTRWALK,
        /// Rxattrcreate (33).
        Xattrcreate(Rxattrcreate) = msg::RXATTRCREATE,
        /// Rreaddir (41).
        Readdir(Rreaddir) = msg::RREADDIR,
        /// Rfsync (51).
        Fsync(Rfsync) = msg::RFSYNC,
        /// Rlock (53).
        Lock(Rlock) = msg::RLOCK,
        /// Rgetlock (55).
        Getlock(Rgetlock) = msg::RGETLOCK,
        /// Rlink (71).
        Link(Rlink) = msg::RLINK,
        /// Rmkdir (73).
        Mkdir(Rmkdir) = msg::RMKDIR,
        /// Rrenameat (75).
        Renameat(Rrenameat) = msg::RRENAMEAT,
        /// Runlinkat (77).
        Unlinkat(Runlinkat) = msg::RUNLINKAT,
    }
}
