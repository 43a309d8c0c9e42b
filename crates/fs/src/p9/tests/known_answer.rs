//! Known answers: messages against bytes written out by hand from the protocol's layouts.

use super::*;

/// What the Linux kernel sends first on a 9P2000.L mount with `msize=8192`:
/// `p9_client_rpc(c, P9_TVERSION, "ds", 8192, "9P2000.L")` under `P9_NOTAG`.
#[rustfmt::skip]
pub(super) const LINUX_TVERSION_8192: [u8; 21] = [
    0x15, 0x00, 0x00, 0x00,                         // size 21
    100,                                            // Tversion
    0xff, 0xff,                                     // NOTAG
    0x00, 0x20, 0x00, 0x00,                         // msize 8192
    0x08, 0x00, b'9', b'P', b'2', b'0', b'0', b'0', b'.', b'L',
];

#[test]
fn test_tversion_linux_bytes_decode_to_9p2000l_8192() {
    let (tag, msg) = decode_tmessage(&LINUX_TVERSION_8192).unwrap();
    assert_eq!(tag, consts::NOTAG);
    assert_eq!(
        msg,
        Tmessage::Version(Tversion {
            msize: 8192,
            version: P9String::from(consts::VERSION_9P2000_L),
        })
    );
}

#[test]
fn test_tversion_encode_matches_linux_bytes() {
    let msg: Tmessage = Tversion {
        msize: 8192,
        version: "9P2000.L".into(),
    }
    .into();
    assert_eq!(frame_t(consts::NOTAG, &msg), LINUX_TVERSION_8192);
}

#[test]
fn test_rgetattr_encode_matches_kernel_layout() {
    let msg: Rmessage = sample_rgetattr().into();
    let mut out = Vec::new();
    encode_rmessage(0x0102, &msg, &mut out).unwrap();
    #[rustfmt::skip]
    let expected: Vec<u8> = [
        &[0xa0, 0x00, 0x00, 0x00][..],                   // size 160 = 7 + 153
        &[25],                                           // Rgetattr
        &[0x02, 0x01],                                   // tag
        &[0xff, 0x3f, 0, 0, 0, 0, 0, 0],                 // valid = P9_GETATTR_ALL
        &[0x00, 0x11, 0, 0, 0, 0x22, 0, 0, 0, 0, 0, 0, 0], // qid type, version, path
        &[0xa4, 0x81, 0, 0],                             // mode 0o100644
        &[0xe8, 0x03, 0, 0],                             // uid 1000
        &[0xe9, 0x03, 0, 0],                             // gid 1001
        &[3, 0, 0, 0, 0, 0, 0, 0],                       // nlink
        &[4, 0, 0, 0, 0, 0, 0, 0],                       // rdev
        &[5, 0, 0, 0, 0, 0, 0, 0],                       // size
        &[6, 0, 0, 0, 0, 0, 0, 0],                       // blksize
        &[7, 0, 0, 0, 0, 0, 0, 0],                       // blocks
        &[8, 0, 0, 0, 0, 0, 0, 0],                       // atime_sec
        &[9, 0, 0, 0, 0, 0, 0, 0],                       // atime_nsec
        &[10, 0, 0, 0, 0, 0, 0, 0],                      // mtime_sec
        &[11, 0, 0, 0, 0, 0, 0, 0],                      // mtime_nsec
        &[12, 0, 0, 0, 0, 0, 0, 0],                      // ctime_sec
        &[13, 0, 0, 0, 0, 0, 0, 0],                      // ctime_nsec
        &[14, 0, 0, 0, 0, 0, 0, 0],                      // btime_sec
        &[15, 0, 0, 0, 0, 0, 0, 0],                      // btime_nsec
        &[16, 0, 0, 0, 0, 0, 0, 0],                      // gen
        &[17, 0, 0, 0, 0, 0, 0, 0],                      // data_version
    ]
    .concat();
    assert_eq!(out, expected);
    assert_eq!(decode_rmessage(&expected).unwrap(), (0x0102, msg));
}

#[test]
fn test_rlerror_enoent_bytes() {
    let mut out = Vec::new();
    encode_rmessage(1, &Rlerror { ecode: 2 }.into(), &mut out).unwrap();
    assert_eq!(out, [11, 0, 0, 0, 7, 1, 0, 2, 0, 0, 0]);
}

#[test]
fn test_twalk_bytes_decode() {
    #[rustfmt::skip]
    let bytes = [
        24, 0, 0, 0, 110, 5, 0,
        1, 0, 0, 0,             // fid
        2, 0, 0, 0,             // newfid
        2, 0,                   // nwname
        1, 0, b'a',
        2, 0, b'b', b'c',
    ];
    let (tag, msg) = decode_tmessage(&bytes).unwrap();
    assert_eq!(tag, 5);
    assert_eq!(
        msg,
        Tmessage::Walk(Twalk {
            fid: 1,
            newfid: 2,
            wnames: vec![name("a"), name("bc")],
        })
    );
}

#[test]
fn test_tlock_bytes_decode() {
    #[rustfmt::skip]
    let bytes = [
        40, 0, 0, 0, 52, 0, 1,
        1, 0, 0, 0,             // fid
        1,                      // type WRLCK
        1, 0, 0, 0,             // flags BLOCK
        0, 0, 0, 0, 0, 0, 0, 0, // start
        0, 0, 0, 0, 0, 0, 0, 0, // length (to EOF)
        0x10, 0, 0, 0,          // proc_id
        2, 0, b'v', b'm',       // client_id
    ];
    let (tag, msg) = decode_tmessage(&bytes).unwrap();
    assert_eq!(tag, 0x100);
    assert_eq!(
        msg,
        Tmessage::Lock(Tlock {
            fid: 1,
            ty: consts::lock_type::WRLCK,
            flags: consts::lock_flags::BLOCK,
            start: 0,
            length: 0,
            proc_id: 0x10,
            client_id: "vm".into(),
        })
    );
}

#[test]
fn test_tsetattr_bytes_decode() {
    #[rustfmt::skip]
    let bytes = [
        67, 0, 0, 0, 26, 0, 0,
        7, 0, 0, 0,             // fid
        0x08, 0, 0, 0,          // valid = P9_ATTR_SIZE
        0, 0, 0, 0,             // mode
        0, 0, 0, 0,             // uid
        0, 0, 0, 0,             // gid
        0, 0x10, 0, 0, 0, 0, 0, 0, // size 4096
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let (_, msg) = decode_tmessage(&bytes).unwrap();
    assert_eq!(
        msg,
        Tmessage::Setattr(Tsetattr {
            fid: 7,
            valid: consts::setattr::SIZE,
            size: 4096,
            ..Tsetattr::default()
        })
    );
}

#[test]
fn test_frame_size_reads_and_bounds_the_size_field() {
    assert_eq!(frame_size(&LINUX_TVERSION_8192[..4], 8192).unwrap(), 21);
    assert_eq!(
        frame_size(&[0x01, 0x20, 0, 0], 8192),
        Err(WireError::MessageTooLarge {
            size: 8193,
            msize: 8192
        })
    );
    assert_eq!(
        frame_size(&[6, 0, 0, 0], 8192),
        Err(WireError::MessageTooSmall(6))
    );
    assert!(matches!(
        frame_size(&[6, 0], 8192),
        Err(WireError::Truncated { .. })
    ));
}
