//! 9P2000.L requests: one struct per T-message, fields in wire order (the layouts of the
//! Linux kernel's `net/9p/client.c` and QEMU's `hw/9pfs/9p.c`), and the [`Tmessage`] enum.

use super::consts::msg;
use super::wire::{decode_elements, Data, Name, P9String, Reader, WireError, WireFormat, MAXWELEM};

wire_struct! {
    /// Tversion: `msize[4] version[s]` — negotiates the protocol and the largest message.
    Tversion {
        /// Largest message the client will send or accept.
        msize: u32,
        /// Protocol version, `9P2000.L`.
        version: P9String,
    }
}

wire_struct! {
    /// Tauth: `afid[4] uname[s] aname[s] n_uname[4]` — opens an authentication fid.
    Tauth {
        /// Fid to use for the authentication exchange.
        afid: u32,
        /// User name.
        uname: P9String,
        /// File tree to attach.
        aname: P9String,
        /// Numeric user id, or [`super::consts::NONUNAME`].
        n_uname: u32,
    }
}

wire_struct! {
    /// Tattach: `fid[4] afid[4] uname[s] aname[s] n_uname[4]` — binds `fid` to a tree's root.
    Tattach {
        /// New fid for the root.
        fid: u32,
        /// Authentication fid, or [`super::consts::NOFID`].
        afid: u32,
        /// User name.
        uname: P9String,
        /// File tree to attach.
        aname: P9String,
        /// Numeric user id, or [`super::consts::NONUNAME`].
        n_uname: u32,
    }
}

wire_struct! {
    /// Tflush: `oldtag[2]` — cancels the request with tag `oldtag`.
    Tflush {
        /// Tag of the request to cancel.
        oldtag: u16,
    }
}

/// Twalk: `fid[4] newfid[4] nwname[2] nwname*(wname[s])` — walks `fid` by up to
/// [`MAXWELEM`] names to `newfid`. Each name is at most [`super::wire::MAX_NAME_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Twalk {
    /// Starting fid.
    pub fid: u32,
    /// Fid for the result (may equal `fid`).
    pub newfid: u32,
    /// Path elements, at most [`MAXWELEM`].
    pub wnames: Vec<Name>,
}

impl WireFormat for Twalk {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        if self.wnames.len() > MAXWELEM {
            return Err(WireError::TooManyWalkElements(self.wnames.len()));
        }
        self.fid.encode(out)?;
        self.newfid.encode(out)?;
        self.wnames.encode(out)
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let fid = u32::decode(r)?;
        let newfid = u32::decode(r)?;
        let count = usize::from(u16::decode(r)?);
        if count > MAXWELEM {
            return Err(WireError::TooManyWalkElements(count));
        }
        Ok(Self {
            fid,
            newfid,
            wnames: decode_elements(r, count)?,
        })
    }
}

wire_struct! {
    /// Tread: `fid[4] offset[8] count[4]`.
    Tread {
        /// Open fid.
        fid: u32,
        /// Byte offset.
        offset: u64,
        /// Most bytes to return (the server bounds it by msize).
        count: u32,
    }
}

wire_struct! {
    /// Twrite: `fid[4] offset[8] count[4] data[count]`.
    Twrite {
        /// Open fid.
        fid: u32,
        /// Byte offset.
        offset: u64,
        /// Bytes to write.
        data: Data,
    }
}

wire_struct! {
    /// Tclunk: `fid[4]` — forgets a fid.
    Tclunk {
        /// Fid to release.
        fid: u32,
    }
}

wire_struct! {
    /// Tremove: `fid[4]` — removes the file and clunks the fid.
    Tremove {
        /// Fid of the file to remove.
        fid: u32,
    }
}

wire_struct! {
    /// Tstatfs: `fid[4]`.
    Tstatfs {
        /// Any fid in the file system.
        fid: u32,
    }
}

wire_struct! {
    /// Tlopen: `fid[4] flags[4]` — opens the file `fid` names.
    Tlopen {
        /// Fid to open.
        fid: u32,
        /// Open flags ([`super::consts::open_flags`]).
        flags: u32,
    }
}

wire_struct! {
    /// Tlcreate: `fid[4] name[s] flags[4] mode[4] gid[4]` — creates and opens a file in the
    /// directory `fid`, which then names the new file.
    Tlcreate {
        /// Directory fid; becomes the new open file.
        fid: u32,
        /// Name of the new file.
        name: Name,
        /// Open flags ([`super::consts::open_flags`]).
        flags: u32,
        /// Permission bits.
        mode: u32,
        /// Group of the new file.
        gid: u32,
    }
}

wire_struct! {
    /// Tsymlink: `fid[4] name[s] symtgt[s] gid[4]`.
    Tsymlink {
        /// Directory fid.
        fid: u32,
        /// Name of the link.
        name: Name,
        /// Link target.
        symtgt: P9String,
        /// Group of the link.
        gid: u32,
    }
}

wire_struct! {
    /// Tmknod: `dfid[4] name[s] mode[4] major[4] minor[4] gid[4]`.
    Tmknod {
        /// Directory fid.
        dfid: u32,
        /// Name of the node.
        name: Name,
        /// File type and permission bits.
        mode: u32,
        /// Device major number.
        major: u32,
        /// Device minor number.
        minor: u32,
        /// Group of the node.
        gid: u32,
    }
}

wire_struct! {
    /// Trename: `fid[4] dfid[4] name[s]` — moves `fid` into directory `dfid` as `name`.
    Trename {
        /// File to move.
        fid: u32,
        /// Destination directory.
        dfid: u32,
        /// New name.
        name: Name,
    }
}

wire_struct! {
    /// Treadlink: `fid[4]`.
    Treadlink {
        /// Symlink fid.
        fid: u32,
    }
}

wire_struct! {
    /// Tgetattr: `fid[4] request_mask[8]`.
    Tgetattr {
        /// File fid.
        fid: u32,
        /// Fields wanted ([`super::consts::getattr`]).
        request_mask: u64,
    }
}

wire_struct! {
    /// Tsetattr: `fid[4] valid[4] mode[4] uid[4] gid[4] size[8] atime_sec[8] atime_nsec[8]
    /// mtime_sec[8] mtime_nsec[8]`.
    Tsetattr {
        /// File fid.
        fid: u32,
        /// Fields to set ([`super::consts::setattr`]).
        valid: u32,
        /// New permission bits.
        mode: u32,
        /// New owner.
        uid: u32,
        /// New group.
        gid: u32,
        /// New size.
        size: u64,
        /// New atime, seconds.
        atime_sec: u64,
        /// New atime, nanoseconds.
        atime_nsec: u64,
        /// New mtime, seconds.
        mtime_sec: u64,
        /// New mtime, nanoseconds.
        mtime_nsec: u64,
    }
}

wire_struct! {
    /// Txattrwalk: `fid[4] newfid[4] name[s]` — opens attribute `name` (or, if empty, the
    /// list of names) of `fid` for reading as `newfid`.
    Txattrwalk {
        /// File fid.
        fid: u32,
        /// Fid for the attribute.
        newfid: u32,
        /// Attribute name; empty lists the names.
        name: Name,
    }
}

wire_struct! {
    /// Txattrcreate: `fid[4] name[s] attr_size[8] flags[4]` — turns `fid` into a write
    /// handle for attribute `name`, set on clunk.
    Txattrcreate {
        /// File fid; becomes the attribute handle.
        fid: u32,
        /// Attribute name.
        name: Name,
        /// Total size of the value to be written.
        attr_size: u64,
        /// [`super::consts::xattr_flags`].
        flags: u32,
    }
}

wire_struct! {
    /// Treaddir: `fid[4] offset[8] count[4]`.
    Treaddir {
        /// Open directory fid.
        fid: u32,
        /// Offset cookie from a previous entry, 0 to start.
        offset: u64,
        /// Most bytes of entries to return.
        count: u32,
    }
}

wire_struct! {
    /// Tfsync: `fid[4] datasync[4]`.
    Tfsync {
        /// Open fid.
        fid: u32,
        /// Non-zero: flush data only (fdatasync).
        datasync: u32,
    }
}

wire_struct! {
    /// Tlock: `fid[4] type[1] flags[4] start[8] length[8] proc_id[4] client_id[s]` — a POSIX
    /// byte-range lock request.
    Tlock {
        /// Open fid.
        fid: u32,
        /// [`super::consts::lock_type`].
        ty: u8,
        /// [`super::consts::lock_flags`].
        flags: u32,
        /// First byte.
        start: u64,
        /// Bytes covered; 0 means to the end of the file.
        length: u64,
        /// Owner process id on the client.
        proc_id: u32,
        /// Client identity (the guest's host name).
        client_id: P9String,
    }
}

wire_struct! {
    /// Tgetlock: `fid[4] type[1] start[8] length[8] proc_id[4] client_id[s]` — asks whether a
    /// lock could be placed.
    Tgetlock {
        /// Open fid.
        fid: u32,
        /// [`super::consts::lock_type`].
        ty: u8,
        /// First byte.
        start: u64,
        /// Bytes covered; 0 means to the end of the file.
        length: u64,
        /// Owner process id on the client.
        proc_id: u32,
        /// Client identity.
        client_id: P9String,
    }
}

wire_struct! {
    /// Tlink: `dfid[4] fid[4] name[s]` — hard-links `fid` into `dfid` as `name`.
    Tlink {
        /// Directory fid.
        dfid: u32,
        /// Existing file.
        fid: u32,
        /// Name of the new link.
        name: Name,
    }
}

wire_struct! {
    /// Tmkdir: `dfid[4] name[s] mode[4] gid[4]`.
    Tmkdir {
        /// Parent directory fid.
        dfid: u32,
        /// Name of the new directory.
        name: Name,
        /// Permission bits.
        mode: u32,
        /// Group of the new directory.
        gid: u32,
    }
}

wire_struct! {
    /// Trenameat: `olddirfid[4] oldname[s] newdirfid[4] newname[s]`.
    Trenameat {
        /// Source directory fid.
        olddirfid: u32,
        /// Source name.
        oldname: Name,
        /// Destination directory fid.
        newdirfid: u32,
        /// Destination name.
        newname: Name,
    }
}

wire_struct! {
    /// Tunlinkat: `dirfd[4] name[s] flags[4]`.
    Tunlinkat {
        /// Directory fid.
        dirfd: u32,
        /// Name to remove.
        name: Name,
        /// [`super::consts::unlinkat_flags`].
        flags: u32,
    }
}

message_enum! {
    /// A 9P2000.L request. Tlerror (6) is reserved and never sent, so it has no variant and
    /// decodes as [`WireError::UnknownType`], as do the reply types and the legacy 9P2000
    /// messages (Topen, Tcreate, Tstat, Twstat).
    Tmessage {
        /// Tversion (100).
        Version(Tversion) = msg::TVERSION,
        /// Tauth (102).
        Auth(Tauth) = msg::TAUTH,
        /// Tattach (104).
        Attach(Tattach) = msg::TATTACH,
        /// Tflush (108).
        Flush(Tflush) = msg::TFLUSH,
        /// Twalk (110).
        Walk(Twalk) = msg::TWALK,
        /// Tread (116).
        Read(Tread) = msg::TREAD,
        /// Twrite (118).
        Write(Twrite) = msg::TWRITE,
        /// Tclunk (120).
        Clunk(Tclunk) = msg::TCLUNK,
        /// Tremove (122).
        Remove(Tremove) = msg::TREMOVE,
        /// Tstatfs (8).
        Statfs(Tstatfs) = msg::TSTATFS,
        /// Tlopen (12).
        Lopen(Tlopen) = msg::TLOPEN,
        /// Tlcreate (14).
        Lcreate(Tlcreate) = msg::TLCREATE,
        /// Tsymlink (16).
        Symlink(Tsymlink) = msg::TSYMLINK,
        /// Tmknod (18).
        Mknod(Tmknod) = msg::TMKNOD,
        /// Trename (20).
        Rename(Trename) = msg::TRENAME,
        /// Treadlink (22).
        Readlink(Treadlink) = msg::TREADLINK,
        /// Tgetattr (24).
        Getattr(Tgetattr) = msg::TGETATTR,
        /// Tsetattr (26).
        Setattr(Tsetattr) = msg::TSETATTR,
        /// Txattrwalk (30).
        Xattrwalk(Txattrwalk) = msg::TXATTRWALK,
        /// Txattrcreate (32).
        Xattrcreate(Txattrcreate) = msg::TXATTRCREATE,
        /// Treaddir (40).
        Readdir(Treaddir) = msg::TREADDIR,
        /// Tfsync (50).
        Fsync(Tfsync) = msg::TFSYNC,
        /// Tlock (52).
        Lock(Tlock) = msg::TLOCK,
        /// Tgetlock (54).
        Getlock(Tgetlock) = msg::TGETLOCK,
        /// Tlink (70).
        Link(Tlink) = msg::TLINK,
        /// Tmkdir (72).
        Mkdir(Tmkdir) = msg::TMKDIR,
        /// Trenameat (74).
        Renameat(Trenameat) = msg::TRENAMEAT,
        /// Tunlinkat (76).
        Unlinkat(Tunlinkat) = msg::TUNLINKAT,
    }
}
