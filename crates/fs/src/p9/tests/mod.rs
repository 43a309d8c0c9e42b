//! Tests of the 9P2000.L wire format: round trips of every message, known answers against
//! hand-written bytes, and hostile input.

#![allow(clippy::unwrap_used)]

mod hostile;
mod known_answer;
mod roundtrip;

use super::*;

/// A name from a literal, for tests.
pub(super) fn name(s: &str) -> Name {
    Name::try_from(s).unwrap()
}

/// A qid with recognisable fields.
pub(super) fn qid(n: u64) -> Qid {
    Qid {
        ty: 0x80,
        version: 0x0102_0304,
        path: n,
    }
}

/// One request of every type, with non-default field values.
pub(super) fn sample_tmessages() -> Vec<Tmessage> {
    vec![
        Tversion {
            msize: 8192,
            version: "9P2000.L".into(),
        }
        .into(),
        Tauth {
            afid: 1,
            uname: "root".into(),
            aname: "/share".into(),
            n_uname: 0,
        }
        .into(),
        Tattach {
            fid: 2,
            afid: consts::NOFID,
            uname: "user".into(),
            aname: "".into(),
            n_uname: 1000,
        }
        .into(),
        Tflush { oldtag: 9 }.into(),
        Twalk {
            fid: 2,
            newfid: 3,
            wnames: vec![name("usr"), name("lib"), name("\u{e9}t\u{e9}")],
        }
        .into(),
        Tread {
            fid: 3,
            offset: 1 << 40,
            count: 4096,
        }
        .into(),
        Twrite {
            fid: 3,
            offset: 17,
            data: Data(b"hello world".to_vec()),
        }
        .into(),
        Tclunk { fid: 3 }.into(),
        Tremove { fid: 4 }.into(),
        Tstatfs { fid: 2 }.into(),
        Tlopen {
            fid: 3,
            flags: consts::open_flags::RDWR | consts::open_flags::TRUNC,
        }
        .into(),
        Tlcreate {
            fid: 5,
            name: name("new.txt"),
            flags: consts::open_flags::CREATE | consts::open_flags::WRONLY,
            mode: 0o644,
            gid: 100,
        }
        .into(),
        Tsymlink {
            fid: 5,
            name: name("link"),
            symtgt: "../target/file".into(),
            gid: 100,
        }
        .into(),
        Tmknod {
            dfid: 5,
            name: name("null"),
            mode: 0o20666,
            major: 1,
            minor: 3,
            gid: 0,
        }
        .into(),
        Trename {
            fid: 6,
            dfid: 5,
            name: name("renamed"),
        }
        .into(),
        Treadlink { fid: 7 }.into(),
        Tgetattr {
            fid: 7,
            request_mask: consts::getattr::ALL,
        }
        .into(),
        Tsetattr {
            fid: 7,
            valid: consts::setattr::MODE | consts::setattr::ATIME | consts::setattr::ATIME_SET,
            mode: 0o600,
            uid: 1,
            gid: 2,
            size: 3,
            atime_sec: 4,
            atime_nsec: 5,
            mtime_sec: 6,
            mtime_nsec: 7,
        }
        .into(),
        Txattrwalk {
            fid: 7,
            newfid: 8,
            name: name("user.mime_type"),
        }
        .into(),
        Txattrcreate {
            fid: 8,
            name: name("user.lcow.uid"),
            attr_size: 4,
            flags: consts::xattr_flags::CREATE,
        }
        .into(),
        Treaddir {
            fid: 9,
            offset: 42,
            count: 8168,
        }
        .into(),
        Tfsync {
            fid: 9,
            datasync: 1,
        }
        .into(),
        Tlock {
            fid: 9,
            ty: consts::lock_type::WRLCK,
            flags: consts::lock_flags::BLOCK,
            start: 0,
            length: 0,
            proc_id: 1234,
            client_id: "guest".into(),
        }
        .into(),
        Tgetlock {
            fid: 9,
            ty: consts::lock_type::RDLCK,
            start: 10,
            length: 20,
            proc_id: 99,
            client_id: "guest".into(),
        }
        .into(),
        Tlink {
            dfid: 5,
            fid: 9,
            name: name("hard"),
        }
        .into(),
        Tmkdir {
            dfid: 5,
            name: name("dir"),
            mode: 0o755,
            gid: 100,
        }
        .into(),
        Trenameat {
            olddirfid: 5,
            oldname: name("a"),
            newdirfid: 6,
            newname: name("b"),
        }
        .into(),
        Tunlinkat {
            dirfd: 5,
            name: name("dir"),
            flags: consts::unlinkat_flags::REMOVEDIR,
        }
        .into(),
    ]
}

/// One reply of every type, with non-default field values.
pub(super) fn sample_rmessages() -> Vec<Rmessage> {
    vec![
        Rlerror { ecode: 2 }.into(),
        Rversion {
            msize: 8192,
            version: "9P2000.L".into(),
        }
        .into(),
        Rauth { aqid: qid(1) }.into(),
        Rattach { qid: qid(2) }.into(),
        Rflush.into(),
        Rwalk {
            wqids: vec![qid(3), qid(4)],
        }
        .into(),
        Rread {
            data: Data(vec![1, 2, 3, 0, 255]),
        }
        .into(),
        Rwrite { count: 11 }.into(),
        Rclunk.into(),
        Rremove.into(),
        Rstatfs {
            ty: 0x0102_1994,
            bsize: 4096,
            blocks: 1 << 30,
            bfree: 1 << 20,
            bavail: 1 << 19,
            files: 1 << 16,
            ffree: 1 << 15,
            fsid: 0xdead_beef,
            namelen: 255,
        }
        .into(),
        Rlopen {
            qid: qid(5),
            iounit: 0,
        }
        .into(),
        Rlcreate {
            qid: qid(6),
            iounit: 4096,
        }
        .into(),
        Rsymlink { qid: qid(7) }.into(),
        Rmknod { qid: qid(8) }.into(),
        Rrename.into(),
        Rreadlink {
            target: "/etc/alternatives/x".into(),
        }
        .into(),
        sample_rgetattr().into(),
        Rsetattr.into(),
        Rxattrwalk { size: 77 }.into(),
        Rxattrcreate.into(),
        Rreaddir {
            data: Data(vec![9; 24]),
        }
        .into(),
        Rfsync.into(),
        Rlock {
            status: consts::lock_status::BLOCKED,
        }
        .into(),
        Rgetlock {
            ty: consts::lock_type::WRLCK,
            start: 1,
            length: 2,
            proc_id: 3,
            client_id: "other".into(),
        }
        .into(),
        Rlink.into(),
        Rmkdir { qid: qid(9) }.into(),
        Rrenameat.into(),
        Runlinkat.into(),
    ]
}

/// An Rgetattr with every field distinct.
pub(super) fn sample_rgetattr() -> Rgetattr {
    Rgetattr {
        valid: consts::getattr::ALL,
        qid: Qid {
            ty: 0,
            version: 0x11,
            path: 0x22,
        },
        mode: 0o100644,
        uid: 1000,
        gid: 1001,
        nlink: 3,
        rdev: 4,
        size: 5,
        blksize: 6,
        blocks: 7,
        atime_sec: 8,
        atime_nsec: 9,
        mtime_sec: 10,
        mtime_nsec: 11,
        ctime_sec: 12,
        ctime_nsec: 13,
        btime_sec: 14,
        btime_nsec: 15,
        gen: 16,
        data_version: 17,
    }
}

/// `msg` framed with `tag`.
pub(super) fn frame_t(tag: u16, msg: &Tmessage) -> Vec<u8> {
    let mut out = Vec::new();
    encode_tmessage(tag, msg, &mut out).unwrap();
    out
}

/// Rewrites the size field of a framed message to `size`.
pub(super) fn set_size(buf: &mut [u8], size: u32) {
    buf[..4].copy_from_slice(&size.to_le_bytes());
}
