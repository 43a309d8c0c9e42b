//! The guest's xattrs pass through; the metadata names are hidden and refused.

use super::{errno, le, Fixture};
use crate::backend::{Backend, ROOT_NODE, XATTR_CREATE};

const RESERVED: [&[u8]; 4] = [b"user.LXUID", b"user.LXGID", b"user.LXMOD", b"user.LXDEV"];

#[test]
fn test_reserved_names_hidden_and_refused() {
    let Some(fx) = Fixture::new("test_reserved_names_hidden_and_refused") else {
        return;
    };
    let c = fx
        .fs
        .mknod(ROOT_NODE, b"c", libc::S_IFCHR | 0o600, 0x103, 1000, 1000)
        .unwrap();
    fx.fs.setxattr(c.node, b"user.mine", b"v", 0).unwrap();
    let list = fx.fs.listxattr(c.node).unwrap();
    let names: Vec<&[u8]> = list.split(|b| *b == 0).filter(|n| !n.is_empty()).collect();
    assert_eq!(names, vec![&b"user.mine"[..]], "only the guest's own xattr");
    assert_eq!(*list.last().unwrap(), 0);
    assert_eq!(fx.fs.getxattr(c.node, b"user.mine").unwrap(), b"v");
    for name in RESERVED {
        assert_eq!(errno(fx.fs.getxattr(c.node, name)), libc::ENODATA);
        assert_eq!(errno(fx.fs.setxattr(c.node, name, &le(0), 0)), libc::EPERM);
        let r = fx.fs.setxattr(c.node, name, &le(0), XATTR_CREATE);
        assert_eq!(errno(r), libc::EPERM);
        assert_eq!(errno(fx.fs.removexattr(c.node, name)), libc::EPERM);
    }
    // The metadata is untouched.
    assert_eq!(fx.raw("c", "user.LXUID"), Some(le(1000)));
    assert_eq!(fx.raw("c", "user.LXMOD"), Some(le(libc::S_IFCHR | 0o600)));
    let a = fx.fs.getattr(c.node).unwrap();
    assert_eq!(
        (a.uid, a.mode, a.rdev),
        (1000, libc::S_IFCHR | 0o600, 0x103)
    );
    // Similar names are the guest's.
    fx.fs.setxattr(c.node, b"user.LXUIDX", b"1", 0).unwrap();
    fx.fs.setxattr(c.node, b"user.lxuid", b"2", 0).unwrap();
    assert_eq!(fx.fs.getxattr(c.node, b"user.lxuid").unwrap(), b"2");
    fx.fs.removexattr(c.node, b"user.mine").unwrap();
    assert_eq!(errno(fx.fs.getxattr(c.node, b"user.mine")), libc::ENODATA);
}

#[test]
fn test_posix_acl_cannot_be_set() {
    let Some(fx) = Fixture::new("test_posix_acl_cannot_be_set") else {
        return;
    };
    let d = fx.fs.mkdir(ROOT_NODE, b"d", 0o755, 0, 0).unwrap();
    for name in [&b"system.posix_acl_access"[..], b"system.posix_acl_default"] {
        let r = fx.fs.setxattr(d.node, name, &[2, 0, 0, 0], 0);
        assert_eq!(errno(r), libc::EOPNOTSUPP);
    }
    super::assert_host_plain(&fx.host("d"));
}

#[test]
fn test_xattrs_on_directory_pass_through() {
    let Some(fx) = Fixture::new("test_xattrs_on_directory_pass_through") else {
        return;
    };
    let d = fx.fs.mkdir(ROOT_NODE, b"d", 0o755, 0, 0).unwrap();
    fx.fs.setxattr(d.node, b"user.d", b"dir", 0).unwrap();
    assert_eq!(fx.fs.getxattr(d.node, b"user.d").unwrap(), b"dir");
    assert_eq!(fx.raw("d", "user.d"), Some(b"dir".to_vec()));
    assert_eq!(fx.fs.listxattr(d.node).unwrap(), b"user.d\0");
}
