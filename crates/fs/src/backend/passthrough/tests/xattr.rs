//! Extended attributes.

use super::{errno, Fixture};
use crate::backend::{Backend, XATTR_CREATE, XATTR_REPLACE};

#[test]
fn test_setxattr_user_roundtrip_and_listed() {
    let fx = Fixture::new();
    fx.put("f", b"");
    let f = fx.root_lookup("f");
    fx.fs.setxattr(f.node, b"user.one", b"1", 0).unwrap();
    fx.fs
        .setxattr(f.node, b"user.two", &[7u8; 2000], 0)
        .unwrap();
    assert_eq!(fx.fs.getxattr(f.node, b"user.one").unwrap(), b"1");
    assert_eq!(
        fx.fs.getxattr(f.node, b"user.two").unwrap(),
        vec![7u8; 2000]
    );
    let list = fx.fs.listxattr(f.node).unwrap();
    let names: Vec<&[u8]> = list.split(|b| *b == 0).filter(|n| !n.is_empty()).collect();
    assert!(names.contains(&&b"user.one"[..]));
    assert!(names.contains(&&b"user.two"[..]));
    assert_eq!(*list.last().unwrap(), 0);
}

#[test]
fn test_setxattr_on_directory_roundtrip() {
    let fx = Fixture::new();
    std::fs::create_dir(fx.share.join("d")).unwrap();
    let d = fx.root_lookup("d");
    fx.fs.setxattr(d.node, b"user.d", b"dir", 0).unwrap();
    assert_eq!(fx.fs.getxattr(d.node, b"user.d").unwrap(), b"dir");
}

#[test]
fn test_setxattr_create_existing_eexist_replace_missing_enodata() {
    let fx = Fixture::new();
    fx.put("f", b"");
    let f = fx.root_lookup("f");
    fx.fs
        .setxattr(f.node, b"user.a", b"1", XATTR_CREATE)
        .unwrap();
    assert_eq!(
        errno(fx.fs.setxattr(f.node, b"user.a", b"2", XATTR_CREATE)),
        libc::EEXIST
    );
    assert_eq!(
        errno(fx.fs.setxattr(f.node, b"user.b", b"2", XATTR_REPLACE)),
        libc::ENODATA
    );
    fx.fs
        .setxattr(f.node, b"user.a", b"3", XATTR_REPLACE)
        .unwrap();
    assert_eq!(fx.fs.getxattr(f.node, b"user.a").unwrap(), b"3");
    assert_eq!(
        errno(fx.fs.setxattr(f.node, b"user.a", b"3", 8)),
        libc::EINVAL
    );
}

#[test]
fn test_getxattr_missing_enodata() {
    let fx = Fixture::new();
    fx.put("f", b"");
    let f = fx.root_lookup("f");
    assert_eq!(errno(fx.fs.getxattr(f.node, b"user.none")), libc::ENODATA);
}

#[test]
fn test_removexattr_removes_then_enodata() {
    let fx = Fixture::new();
    fx.put("f", b"");
    let f = fx.root_lookup("f");
    fx.fs.setxattr(f.node, b"user.a", b"1", 0).unwrap();
    fx.fs.removexattr(f.node, b"user.a").unwrap();
    assert_eq!(errno(fx.fs.getxattr(f.node, b"user.a")), libc::ENODATA);
    assert_eq!(errno(fx.fs.removexattr(f.node, b"user.a")), libc::ENODATA);
}

#[test]
fn test_xattr_bad_names_refused() {
    let fx = Fixture::new();
    fx.put("f", b"");
    let f = fx.root_lookup("f");
    let long = vec![b'u'; 256];
    assert_eq!(errno(fx.fs.getxattr(f.node, &long)), libc::ERANGE);
    assert_eq!(errno(fx.fs.getxattr(f.node, b"")), libc::ERANGE);
    assert_eq!(
        errno(fx.fs.setxattr(f.node, b"user.\0x", b"", 0)),
        libc::EINVAL
    );
    let big = vec![0u8; 65537];
    assert_eq!(
        errno(fx.fs.setxattr(f.node, b"user.big", &big, 0)),
        libc::E2BIG
    );
}

#[test]
fn test_xattr_symlink_to_outside_touches_neither() {
    let fx = Fixture::new();
    std::os::unix::fs::symlink(fx.outside.join("sentinel"), fx.share.join("l")).unwrap();
    let l = fx.root_lookup("l");
    assert_eq!(fx.fs.listxattr(l.node).unwrap(), b"");
    assert_eq!(errno(fx.fs.getxattr(l.node, b"user.x")), libc::ENODATA);
    let r = fx.fs.setxattr(l.node, b"trusted.x", b"v", 0);
    assert_eq!(errno(r), libc::EOPNOTSUPP);
    assert_eq!(errno(fx.fs.removexattr(l.node, b"user.x")), libc::ENODATA);
    fx.assert_outside_untouched();
}
