//! Tests of the FUSE wire format: round trips of every op, known answers against bytes laid
//! out by hand from the uapi structs, and hostile input.

#![allow(clippy::unwrap_used)]

mod hostile;
mod known_answer;
mod replies;
mod roundtrip;

use super::*;

/// A header with recognisable fields; `len` and `opcode` are filled in by the encoder.
pub(super) fn header(unique: u64) -> InHeader {
    InHeader {
        unique,
        nodeid: 0x1122_3344_5566_7788,
        uid: 1000,
        gid: 1001,
        pid: 4242,
        ..InHeader::default()
    }
}

/// A request of `op` under the default header.
pub(super) fn request(op: Operation<'_>) -> Request<'_> {
    Request {
        header: header(7),
        op,
        extensions: &[],
    }
}

/// A lock with recognisable fields.
pub(super) fn lock() -> FileLock {
    FileLock {
        start: 10,
        end: u64::MAX >> 1,
        typ: 1,
        pid: 77,
    }
}

/// Attributes with every field distinct.
pub(super) fn attr() -> Attr {
    Attr {
        ino: 1,
        size: 2,
        blocks: 3,
        atime: 4,
        mtime: 5,
        ctime: 6,
        atimensec: 7,
        mtimensec: 8,
        ctimensec: 9,
        mode: 0o100644,
        nlink: 11,
        uid: 12,
        gid: 13,
        rdev: 14,
        blksize: 4096,
        flags: 16,
    }
}

/// One operation of every kind the decoder knows, with non-default field values.
pub(super) fn sample_ops() -> Vec<Operation<'static>> {
    static DATA: [u8; 3000] = [0xa5; 3000];
    let read = ReadIn {
        fh: 3,
        offset: 4096,
        size: 8192,
        read_flags: consts::flags::FUSE_READ_LOCKOWNER,
        lock_owner: 99,
        flags: 2,
        ..Default::default()
    };
    let release = ReleaseIn {
        fh: 5,
        flags: 0o2,
        release_flags: consts::flags::FUSE_RELEASE_FLOCK_UNLOCK,
        lock_owner: 6,
    };
    let fsync = FsyncIn {
        fh: 8,
        fsync_flags: 1,
        ..Default::default()
    };
    let lk = LkIn {
        fh: 9,
        owner: 10,
        lk: lock(),
        lk_flags: consts::flags::FUSE_LK_FLOCK,
        ..Default::default()
    };
    let create = CreateIn {
        flags: 0o100102,
        mode: 0o100600,
        umask: 0o022,
        open_flags: 1,
    };
    vec![
        Operation::Init(InitIn {
            major: 7,
            minor: 37,
            max_readahead: 131072,
            flags: 0x7bff_fffb,
            flags2: 3,
            ..Default::default()
        }),
        Operation::Lookup { name: b"etc" },
        Operation::Forget(ForgetIn { nlookup: 3 }),
        Operation::BatchForget(vec![
            ForgetOne {
                nodeid: 2,
                nlookup: 1,
            },
            ForgetOne {
                nodeid: 3,
                nlookup: 9,
            },
        ]),
        Operation::BatchForget(Vec::new()),
        Operation::Getattr(GetattrIn {
            getattr_flags: 1,
            fh: 12,
            ..Default::default()
        }),
        Operation::Setattr(SetattrIn {
            valid: 0xfff,
            fh: 1,
            size: 2,
            lock_owner: 3,
            atime: 4,
            mtime: 5,
            ctime: 6,
            atimensec: 7,
            mtimensec: 8,
            ctimensec: 9,
            mode: 0o644,
            uid: 10,
            gid: 11,
            ..Default::default()
        }),
        Operation::Readlink,
        Operation::Symlink {
            name: b"link",
            target: b"../some/where/else",
        },
        Operation::Mknod {
            arg: MknodIn {
                mode: 0o20644,
                rdev: 0x0103,
                umask: 0o022,
                ..Default::default()
            },
            name: b"null",
        },
        Operation::Mkdir {
            arg: MkdirIn {
                mode: 0o755,
                umask: 0o022,
            },
            name: b"dir",
        },
        Operation::Unlink { name: b"file" },
        Operation::Rmdir { name: b"dir" },
        Operation::Rename {
            arg: RenameIn { newdir: 44 },
            old: b"a",
            new: b"b",
        },
        Operation::Rename2 {
            arg: Rename2In {
                newdir: 45,
                flags: 2,
                ..Default::default()
            },
            old: b"old name",
            new: b"new name",
        },
        Operation::Link {
            arg: LinkIn { oldnodeid: 46 },
            name: b"hard",
        },
        Operation::Open(OpenIn {
            flags: 0o2,
            open_flags: 1,
        }),
        Operation::Read(read),
        Operation::Write {
            arg: WriteIn {
                fh: 3,
                offset: 12,
                size: 3000,
                write_flags: 2,
                lock_owner: 5,
                flags: 1,
                ..Default::default()
            },
            data: &DATA,
        },
        Operation::Statfs,
        Operation::Release(release),
        Operation::Fsync(fsync),
        Operation::Setxattr {
            arg: SetxattrIn {
                size: 5,
                flags: 1,
                ..Default::default()
            },
            name: b"user.mapped.uid",
            value: b"1\x002\x003",
        },
        Operation::Setxattr {
            arg: SetxattrIn::default(),
            name: b"user.empty",
            value: b"",
        },
        Operation::Getxattr {
            arg: GetxattrIn {
                size: 64,
                ..Default::default()
            },
            name: b"security.capability",
        },
        Operation::Listxattr(GetxattrIn {
            size: 0,
            ..Default::default()
        }),
        Operation::Removexattr { name: b"user.x" },
        Operation::Flush(FlushIn {
            fh: 4,
            lock_owner: 5,
            ..Default::default()
        }),
        Operation::Opendir(OpenIn {
            flags: 0o200000,
            open_flags: 0,
        }),
        Operation::Readdir(read),
        Operation::Readdirplus(read),
        Operation::Releasedir(release),
        Operation::Fsyncdir(fsync),
        Operation::Getlk(lk),
        Operation::Setlk(lk),
        Operation::Setlkw(lk),
        Operation::Access(AccessIn {
            mask: 7,
            ..Default::default()
        }),
        Operation::Create {
            arg: create,
            name: b"new.txt",
        },
        Operation::Interrupt(InterruptIn { unique: 8 }),
        Operation::Destroy,
        Operation::Fallocate(FallocateIn {
            fh: 1,
            offset: 2,
            length: 3,
            mode: 3,
            ..Default::default()
        }),
        Operation::Lseek(LseekIn {
            fh: 1,
            offset: 2,
            whence: 3,
            ..Default::default()
        }),
        Operation::CopyFileRange(CopyFileRangeIn {
            fh_in: 1,
            off_in: 2,
            nodeid_out: 3,
            fh_out: 4,
            off_out: 5,
            len: 6,
            flags: 7,
        }),
        Operation::Syncfs(SyncfsIn::default()),
        Operation::Tmpfile {
            arg: create,
            name: b"/",
        },
        Operation::Unknown(consts::opcode::FUSE_IOCTL),
        Operation::Unknown(0xdead_beef),
    ]
}

/// The encoded form of `op` under the default header.
pub(super) fn encode(op: Operation<'_>) -> Vec<u8> {
    encode_request(&request(op)).unwrap()
}

/// Overwrites the header's len field.
pub(super) fn set_len(buf: &mut [u8], len: u32) {
    buf[..4].copy_from_slice(&len.to_le_bytes());
}
