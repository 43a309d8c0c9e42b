//! Tversion, Tauth, Tattach, Tclunk, Tflush, decoding errors and msize.

use super::*;
use crate::linux;
use crate::p9::consts::max_read_count;
use crate::p9::{Data, Tauth, Tflush, Tgetattr, Tread, Twrite, MAX_MSIZE};

#[test]
fn test_version_large_msize_negotiates_server_max() {
    let mut c = Client::new();

    let reply = c.call(Tversion {
        msize: u32::MAX,
        version: "9P2000.L".into(),
    });

    assert!(
        matches!(reply, Rmessage::Version(ref v) if v.msize == MAX_MSIZE),
        "{reply:?}"
    );
    assert_eq!(c.server.msize(), MAX_MSIZE);
}

#[test]
fn test_version_unknown_protocol_answers_unknown() {
    let mut c = Client::new();

    let reply = c.call(Tversion {
        msize: 8192,
        version: "9P2000.u".into(),
    });

    match reply {
        Rmessage::Version(v) => assert_eq!(v.version.as_bytes(), b"unknown"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn test_version_mid_session_clunks_every_fid() {
    let mut c = Client::new();
    std::fs::write(c.path("f"), b"x").unwrap();
    c.open_rw(1, &["f"]);
    c.walk(ROOT, 2, &[]);
    assert_eq!(c.server.fid_count(), 3);

    c.ok(Tversion {
        msize: 8192,
        version: "9P2000.L".into(),
    });

    assert_eq!(c.server.fid_count(), 0);
    assert_eq!(c.server.refs.len(), 0);
    assert_eq!(c.err(Tclunk { fid: 1 }), linux::EBADF);
    assert_eq!(c.server.msize(), 8192);
}

#[test]
fn test_auth_any_request_answers_eopnotsupp() {
    let mut c = Client::new();

    let errno = c.err(Tauth {
        afid: 5,
        uname: "root".into(),
        aname: "".into(),
        n_uname: 0,
    });

    assert_eq!(errno, linux::EOPNOTSUPP);
}

#[test]
fn test_attach_fid_in_use_answers_ebadf() {
    let mut c = Client::new();

    let errno = c.err(Tattach {
        fid: ROOT,
        afid: NOFID,
        uname: "root".into(),
        aname: "".into(),
        n_uname: 0,
    });

    assert_eq!(errno, linux::EBADF);
}

#[test]
fn test_getattr_unknown_fid_answers_ebadf() {
    let mut c = Client::new();

    let errno = c.err(Tgetattr {
        fid: 77,
        request_mask: u64::MAX,
    });

    assert_eq!(errno, linux::EBADF);
}

#[test]
fn test_clunk_walked_and_open_fids_releases_nodes() {
    let mut c = Client::new();
    std::fs::create_dir(c.path("d")).unwrap();
    std::fs::write(c.path("d/f"), b"x").unwrap();
    c.walk(ROOT, 1, &["d"]);
    c.open_rw(2, &["d", "f"]);
    c.walk(2, 3, &[]);
    assert_eq!(c.server.refs.len(), 2);

    c.clunk(1);
    c.clunk(2);
    assert_eq!(c.server.refs.len(), 2, "fid 3 still holds d and f");
    c.clunk(3);

    assert_eq!(c.server.refs.len(), 0);
    assert_eq!(c.server.fid_count(), 1);
    assert_eq!(c.err(Tclunk { fid: 2 }), linux::EBADF);
}

#[test]
fn test_decode_garbage_body_answers_lerror_with_tag() {
    let c = Client::new();
    // size 9, type Tgetattr, tag 0x4242, and a body two bytes long (needs twelve).
    let req = [9, 0, 0, 0, 24, 0x42, 0x42, 1, 2];

    let reply = c.server.handle(&req);

    let (tag, msg) = decode_rmessage(&reply).unwrap();
    assert_eq!(tag, 0x4242);
    assert_eq!(errno_of(&msg), Some(linux::EINVAL));
}

#[test]
fn test_decode_unknown_type_answers_einval() {
    let c = Client::new();
    let req = [7, 0, 0, 0, 200, 3, 0];

    let (tag, msg) = decode_rmessage(&c.server.handle(&req)).unwrap();

    assert_eq!(tag, 3);
    assert_eq!(errno_of(&msg), Some(linux::EINVAL));
}

#[test]
fn test_decode_too_short_for_tag_answers_nothing() {
    let c = Client::new();

    assert!(c.server.handle(&[]).is_empty());
    assert!(c.server.handle(&[7, 0, 0, 0, 100, 1]).is_empty());
}

#[test]
fn test_msize_write_larger_than_msize_answers_emsgsize() {
    let mut c = Client::new();
    c.ok(Tversion {
        msize: 4096,
        version: "9P2000.L".into(),
    });
    c.attach(ROOT);
    std::fs::write(c.path("f"), b"").unwrap();
    c.open_rw(1, &["f"]);

    let errno = c.err(Twrite {
        fid: 1,
        offset: 0,
        data: Data(vec![7; 5000]),
    });

    assert_eq!(errno, linux::EMSGSIZE);
    assert_eq!(std::fs::metadata(c.path("f")).unwrap().len(), 0);
}

#[test]
fn test_msize_read_count_is_capped_to_msize() {
    let mut c = Client::new();
    c.ok(Tversion {
        msize: 4096,
        version: "9P2000.L".into(),
    });
    c.attach(ROOT);
    std::fs::write(c.path("big"), vec![1u8; 10_000]).unwrap();
    c.open_rw(1, &["big"]);

    let reply = c.ok(Tread {
        fid: 1,
        offset: 0,
        count: 100_000,
    });

    match reply {
        Rmessage::Read(r) => assert_eq!(r.data.0.len(), max_read_count(4096) as usize),
        other => panic!("{other:?}"),
    }
}

#[test]
fn test_msize_tiny_client_msize_answers_unknown() {
    let mut c = Client::new();

    let reply = c.call(Tversion {
        msize: 100,
        version: "9P2000.L".into(),
    });

    assert!(matches!(reply, Rmessage::Version(ref v) if v.version.as_bytes() == b"unknown"));
}

#[test]
fn test_flush_unknown_tag_answers_rflush() {
    let mut c = Client::new();

    let reply = c.call(Tflush { oldtag: 999 });

    assert_eq!(reply, Rmessage::Flush(crate::p9::Rflush));
}

#[test]
fn test_server_type_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}

    assert_send_sync::<Server<crate::backend::passthrough::Passthrough>>();
}
