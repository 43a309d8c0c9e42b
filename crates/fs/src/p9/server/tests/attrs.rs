//! Tgetattr, Tsetattr, Tstatfs, Txattrwalk, Txattrcreate.

use std::os::unix::fs::MetadataExt;

use super::*;
use crate::linux;
use crate::p9::consts::{getattr, setattr};
use crate::p9::{Data, Tgetattr, Tread, Tsetattr, Tstatfs, Twrite, Txattrcreate, Txattrwalk};

fn getattr(c: &mut Client, fid: u32) -> crate::p9::Rgetattr {
    match c.ok(Tgetattr {
        fid,
        request_mask: getattr::ALL,
    }) {
        Rmessage::Getattr(a) => a,
        other => panic!("{other:?}"),
    }
}

fn tsetattr(fid: u32, valid: u32) -> Tsetattr {
    Tsetattr {
        fid,
        valid,
        ..Tsetattr::default()
    }
}

#[test]
fn test_getattr_file_reports_host_stat() {
    let mut c = Client::new();
    std::fs::write(c.path("f"), b"12345").unwrap();
    std::fs::hard_link(c.path("f"), c.path("f2")).unwrap();
    c.walk(ROOT, 1, &["f"]);

    let a = getattr(&mut c, 1);

    let meta = std::fs::metadata(c.path("f")).unwrap();
    assert_eq!(a.valid & getattr::BASIC, getattr::BASIC);
    assert_eq!(a.qid.path, meta.ino());
    assert_eq!(a.qid.ty, 0);
    assert_eq!(a.mode, meta.mode());
    assert_eq!(a.nlink, 2);
    assert_eq!(a.size, 5);
    assert_eq!(a.uid, meta.uid());
    assert_eq!(a.mtime_sec as i64, meta.mtime());
    assert_eq!(a.mtime_nsec as i64, meta.mtime_nsec());
}

#[test]
fn test_getattr_directory_qid_is_dir() {
    let mut c = Client::new();

    let a = getattr(&mut c, ROOT);

    assert_eq!(a.qid.ty, crate::p9::consts::qid_type::DIR);
    assert_eq!(a.mode & linux::S_IFMT, linux::S_IFDIR);
}

#[test]
fn test_setattr_mode_size_and_given_times_are_applied() {
    let mut c = Client::new();
    std::fs::write(c.path("f"), b"0123456789").unwrap();
    c.walk(ROOT, 1, &["f"]);

    c.ok(Tsetattr {
        mode: 0o600,
        size: 3,
        atime_sec: 1_000_000,
        atime_nsec: 5,
        mtime_sec: 2_000_000,
        mtime_nsec: 7,
        ..tsetattr(
            1,
            setattr::MODE
                | setattr::SIZE
                | setattr::ATIME
                | setattr::ATIME_SET
                | setattr::MTIME
                | setattr::MTIME_SET,
        )
    });

    let meta = std::fs::metadata(c.path("f")).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o600);
    assert_eq!(meta.len(), 3);
    assert_eq!((meta.atime(), meta.atime_nsec()), (1_000_000, 5));
    assert_eq!((meta.mtime(), meta.mtime_nsec()), (2_000_000, 7));
}

#[test]
fn test_setattr_mtime_without_set_bit_uses_now() {
    let mut c = Client::new();
    std::fs::write(c.path("f"), b"").unwrap();
    c.walk(ROOT, 1, &["f"]);
    c.ok(Tsetattr {
        mtime_sec: 1,
        ..tsetattr(1, setattr::MTIME | setattr::MTIME_SET)
    });
    assert_eq!(std::fs::metadata(c.path("f")).unwrap().mtime(), 1);

    c.ok(Tsetattr {
        mtime_sec: 1,
        ..tsetattr(1, setattr::MTIME)
    });

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(std::fs::metadata(c.path("f")).unwrap().mtime() >= now - 60);
}

#[test]
fn test_setattr_bad_nanoseconds_answers_einval() {
    let mut c = Client::new();
    std::fs::write(c.path("f"), b"").unwrap();
    c.walk(ROOT, 1, &["f"]);

    let errno = c.err(Tsetattr {
        atime_nsec: 1_000_000_000,
        ..tsetattr(1, setattr::ATIME | setattr::ATIME_SET)
    });

    assert_eq!(errno, linux::EINVAL);
}

#[test]
fn test_statfs_root_reports_host_file_system() {
    let mut c = Client::new();

    let reply = c.ok(Tstatfs { fid: ROOT });

    match reply {
        Rmessage::Statfs(s) => {
            assert!(s.bsize > 0);
            assert!(s.blocks > 0);
            assert_eq!(s.namelen, 255);
        }
        other => panic!("{other:?}"),
    }
}

fn xattrwalk(c: &mut Client, fid: u32, newfid: u32, attr: &str) -> Vec<u8> {
    let size = match c.ok(Txattrwalk {
        fid,
        newfid,
        name: name(attr),
    }) {
        Rmessage::Xattrwalk(x) => x.size,
        other => panic!("{other:?}"),
    };
    let data = match c.ok(Tread {
        fid: newfid,
        offset: 0,
        count: u32::try_from(size).unwrap(),
    }) {
        Rmessage::Read(r) => r.data.0,
        other => panic!("{other:?}"),
    };
    assert_eq!(data.len() as u64, size);
    c.clunk(newfid);
    data
}

fn set_host_xattr(path: &std::path::Path, attr: &str, value: &[u8]) {
    let p = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    let n = std::ffi::CString::new(attr).unwrap();
    // SAFETY: valid NUL-terminated strings and a readable buffer of the given length.
    let ret = unsafe {
        libc::setxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(ret, 0, "{}", std::io::Error::last_os_error());
}

fn host_xattr(path: &std::path::Path, attr: &str) -> Option<Vec<u8>> {
    let p = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    let n = std::ffi::CString::new(attr).unwrap();
    let mut buf = vec![0u8; 65536];
    // SAFETY: valid strings and a writable buffer of the given length.
    let ret = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    let len = usize::try_from(ret).ok()?;
    buf.truncate(len);
    Some(buf)
}

#[test]
fn test_xattrwalk_lists_names_and_reads_value() {
    let mut c = Client::new();
    std::fs::write(c.path("f"), b"").unwrap();
    set_host_xattr(&c.path("f"), "user.one", b"first");
    set_host_xattr(&c.path("f"), "user.two", b"second");
    c.walk(ROOT, 1, &["f"]);

    let list = xattrwalk(&mut c, 1, 2, "");
    let value = xattrwalk(&mut c, 1, 2, "user.two");

    let names: Vec<&[u8]> = list.split(|b| *b == 0).filter(|n| !n.is_empty()).collect();
    assert!(names.contains(&&b"user.one"[..]), "{list:?}");
    assert!(names.contains(&&b"user.two"[..]), "{list:?}");
    assert_eq!(value, b"second");
    assert_eq!(c.server.refs.len(), 1);
}

#[test]
fn test_xattrwalk_missing_attribute_answers_enodata() {
    let mut c = Client::new();
    std::fs::write(c.path("f"), b"").unwrap();
    c.walk(ROOT, 1, &["f"]);

    let errno = c.err(Txattrwalk {
        fid: 1,
        newfid: 2,
        name: name("user.none"),
    });

    assert_eq!(errno, linux::ENODATA);
    assert_eq!(c.server.fid_count(), 2);
}

#[test]
fn test_xattrcreate_write_clunk_sets_attribute() {
    let mut c = Client::new();
    std::fs::write(c.path("f"), b"").unwrap();
    c.walk(ROOT, 1, &["f"]);
    c.walk(1, 2, &[]);

    c.ok(Txattrcreate {
        fid: 2,
        name: name("user.new"),
        attr_size: 6,
        flags: 0,
    });
    c.ok(Twrite {
        fid: 2,
        offset: 0,
        data: Data(b"abc".to_vec()),
    });
    c.ok(Twrite {
        fid: 2,
        offset: 3,
        data: Data(b"defXYZ".to_vec()),
    });
    assert_eq!(
        host_xattr(&c.path("f"), "user.new"),
        None,
        "set only on clunk"
    );
    c.clunk(2);

    assert_eq!(host_xattr(&c.path("f"), "user.new").unwrap(), b"abcdef");
    assert_eq!(xattrwalk(&mut c, 1, 3, "user.new"), b"abcdef");
}

#[test]
fn test_xattrcreate_zero_size_clunk_removes_attribute() {
    let mut c = Client::new();
    std::fs::write(c.path("f"), b"").unwrap();
    set_host_xattr(&c.path("f"), "user.gone", b"x");
    c.walk(ROOT, 1, &["f"]);

    c.ok(Txattrcreate {
        fid: 1,
        name: name("user.gone"),
        attr_size: 0,
        flags: 0,
    });
    c.clunk(1);

    assert_eq!(host_xattr(&c.path("f"), "user.gone"), None);
}

#[test]
fn test_xattrcreate_create_flag_on_existing_clunk_answers_eexist() {
    let mut c = Client::new();
    std::fs::write(c.path("f"), b"").unwrap();
    set_host_xattr(&c.path("f"), "user.a", b"old");
    c.walk(ROOT, 1, &["f"]);
    c.ok(Txattrcreate {
        fid: 1,
        name: name("user.a"),
        attr_size: 3,
        flags: crate::p9::consts::xattr_flags::CREATE,
    });
    c.ok(Twrite {
        fid: 1,
        offset: 0,
        data: Data(b"new".to_vec()),
    });

    assert_eq!(c.err(Tclunk { fid: 1 }), linux::EEXIST);

    assert_eq!(host_xattr(&c.path("f"), "user.a").unwrap(), b"old");
    assert_eq!(c.server.fid_count(), 1);
    assert_eq!(c.server.refs.len(), 0);
}

#[test]
fn test_xattrcreate_oversized_value_answers_e2big() {
    let mut c = Client::new();
    c.walk(ROOT, 1, &[]);

    let errno = c.err(Txattrcreate {
        fid: 1,
        name: name("user.big"),
        attr_size: 1 << 40,
        flags: 0,
    });

    assert_eq!(errno, linux::E2BIG);
}
