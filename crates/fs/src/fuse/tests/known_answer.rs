//! Known answers: bytes laid out by hand from the uapi structs, as the Linux 6.1 guest kernel
//! sends them over virtio-fs, checked against the decoder and the encoders.

use super::*;
use crate::fuse::consts::init_flags::*;
use crate::linux;

/// FUSE_INIT as 6.1's `fuse_send_init` sends it for virtio-fs without DAX: the first request
/// (unique 2, nodeid 0, no credentials), protocol 7.37, readahead 32 pages, the flags the
/// kernel offers (all of bits 0..30 except FILE_OPS and MAP_ALIGNMENT, SUBMOUNTS included
/// because virtio-fs sets auto_submounts) and FUSE_SECURITY_CTX in flags2.
pub(super) const LINUX_INIT: [u8; 104] = [
    // fuse_in_header
    0x68, 0x00, 0x00, 0x00, // len 104
    0x1a, 0x00, 0x00, 0x00, // opcode 26 (FUSE_INIT)
    0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // unique 2
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // nodeid 0
    0x00, 0x00, 0x00, 0x00, // uid
    0x00, 0x00, 0x00, 0x00, // gid
    0x00, 0x00, 0x00, 0x00, // pid
    0x00, 0x00, 0x00, 0x00, // total_extlen, padding
    // fuse_init_in
    0x07, 0x00, 0x00, 0x00, // major 7
    0x25, 0x00, 0x00, 0x00, // minor 37
    0x00, 0x00, 0x02, 0x00, // max_readahead 131072
    0xfb, 0xff, 0xff, 0x7b, // flags
    0x01, 0x00, 0x00, 0x00, // flags2: FUSE_SECURITY_CTX >> 32
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // unused[11]
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
];

#[test]
fn test_linux_init_request_decodes_known_fields() {
    let req = decode_request(&LINUX_INIT).unwrap();
    assert_eq!(
        req.header,
        InHeader {
            len: 104,
            opcode: consts::opcode::FUSE_INIT,
            unique: 2,
            ..InHeader::default()
        }
    );
    let Operation::Init(init) = req.op else {
        panic!("not init: {:?}", req.op);
    };
    let flags = u64::from(init.flags) | (u64::from(init.flags2) << 32);
    let want = FUSE_ASYNC_READ
        | FUSE_POSIX_LOCKS
        | FUSE_ATOMIC_O_TRUNC
        | FUSE_EXPORT_SUPPORT
        | FUSE_BIG_WRITES
        | FUSE_DONT_MASK
        | (0b111 << 7) // SPLICE_WRITE, SPLICE_MOVE, SPLICE_READ
        | FUSE_FLOCK_LOCKS
        | (1 << 11) // HAS_IOCTL_DIR
        | FUSE_AUTO_INVAL_DATA
        | FUSE_DO_READDIRPLUS
        | FUSE_READDIRPLUS_AUTO
        | FUSE_ASYNC_DIO
        | FUSE_WRITEBACK_CACHE
        | FUSE_NO_OPEN_SUPPORT
        | FUSE_PARALLEL_DIROPS
        | FUSE_HANDLE_KILLPRIV
        | FUSE_POSIX_ACL
        | FUSE_ABORT_ERROR
        | FUSE_MAX_PAGES
        | FUSE_CACHE_SYMLINKS
        | FUSE_NO_OPENDIR_SUPPORT
        | FUSE_EXPLICIT_INVAL_DATA
        | FUSE_SUBMOUNTS
        | FUSE_HANDLE_KILLPRIV_V2
        | FUSE_SETXATTR_EXT
        | FUSE_INIT_EXT
        | FUSE_SECURITY_CTX;
    assert_eq!(flags, want);
    assert_eq!(
        (init.major, init.minor, init.max_readahead),
        (7, 37, 131072)
    );
}

#[test]
fn test_linux_init_request_encoder_reproduces_bytes() {
    let req = decode_request(&LINUX_INIT).unwrap();
    assert_eq!(encode_request(&req).unwrap(), LINUX_INIT);
}

#[test]
fn test_lookup_request_known_bytes_decode() {
    let mut buf = vec![
        0x2c, 0x00, 0x00, 0x00, // len 44
        0x01, 0x00, 0x00, 0x00, // FUSE_LOOKUP
        0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // unique 4
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // nodeid 1 (root)
        0xe8, 0x03, 0x00, 0x00, // uid 1000
        0xe9, 0x03, 0x00, 0x00, // gid 1001
        0x10, 0x00, 0x00, 0x00, // pid 16
        0x00, 0x00, 0x00, 0x00, // total_extlen, padding
    ];
    buf.extend_from_slice(b"etc\0");
    let req = decode_request(&buf).unwrap();
    assert_eq!(req.op, Operation::Lookup { name: b"etc" });
    assert_eq!(req.header.nodeid, FUSE_ROOT_ID);
    assert_eq!(
        (req.header.uid, req.header.gid, req.header.pid),
        (1000, 1001, 16)
    );
}

#[test]
fn test_reply_error_enoent_known_bytes() {
    let buf = reply_error(2, linux::ENOENT);
    assert_eq!(
        buf,
        [
            0x10, 0x00, 0x00, 0x00, // len 16
            0xfe, 0xff, 0xff, 0xff, // error -2
            0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // unique 2
        ]
    );
}

#[test]
fn test_reply_init_known_bytes() {
    let out = InitOut {
        major: 7,
        minor: 38,
        max_readahead: 131072,
        flags: 0x4000_0402, // POSIX_LOCKS, FLOCK_LOCKS, INIT_EXT
        max_background: 16,
        congestion_threshold: 12,
        max_write: 1 << 20,
        time_gran: 1,
        max_pages: 256,
        map_alignment: 0,
        flags2: 0,
        ..Default::default()
    };
    let mut want = vec![
        0x50, 0x00, 0x00, 0x00, // len 80
        0x00, 0x00, 0x00, 0x00, // error 0
        0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // unique 2
        0x07, 0x00, 0x00, 0x00, // major
        0x26, 0x00, 0x00, 0x00, // minor 38
        0x00, 0x00, 0x02, 0x00, // max_readahead
        0x02, 0x04, 0x00, 0x40, // flags
        0x10, 0x00, 0x0c, 0x00, // max_background, congestion_threshold
        0x00, 0x00, 0x10, 0x00, // max_write
        0x01, 0x00, 0x00, 0x00, // time_gran
        0x00, 0x01, 0x00, 0x00, // max_pages, map_alignment
        0x00, 0x00, 0x00, 0x00, // flags2
    ];
    want.resize(80, 0); // unused[7]
    assert_eq!(reply_ok(2, &out), want);
}

#[test]
fn test_dirent_known_bytes_padded_to_eight() {
    let mut w = DirentWriter::new(4096);
    let added = w
        .add(&DirEntry {
            ino: 0x10,
            off: 1,
            typ: 4,
            name: b"abc",
        })
        .unwrap();
    assert!(added);
    let want = [
        0x10, 0, 0, 0, 0, 0, 0, 0, // ino
        0x01, 0, 0, 0, 0, 0, 0, 0, // off
        0x03, 0, 0, 0, // namelen
        0x04, 0, 0, 0, // type DT_DIR
        b'a', b'b', b'c', 0, 0, 0, 0, 0, // name, padded to 8
    ];
    assert_eq!(w.into_bytes(), want);
}
