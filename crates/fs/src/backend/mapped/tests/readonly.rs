//! A read-only share refuses every change with EROFS, metadata included.

use std::fs;

use super::{errno, Fixture};
use crate::backend::{Backend, SetAttr, TimeSet, ROOT_NODE};

#[test]
fn test_readonly_share_every_change_erofs() {
    let Some(fx) = Fixture::read_only("test_readonly_share_every_change_erofs") else {
        return;
    };
    fx.put("f", b"data");
    fs::create_dir(fx.share.join("d")).unwrap();
    super::set_raw(&fx.share.join("f"), "user.LXUID", &5u32.to_le_bytes()).unwrap();
    let f = fx.root_lookup("f");
    assert_eq!(f.attr.uid, 5);
    let h = fx.fs.open(f.node, libc::O_RDONLY).unwrap();
    let rofs = libc::EROFS;
    assert_eq!(errno(fx.fs.open(f.node, libc::O_WRONLY)), rofs);
    assert_eq!(
        errno(fx.fs.create(ROOT_NODE, b"n", libc::O_RDWR, 0o644, 0, 0)),
        rofs
    );
    assert_eq!(errno(fx.fs.mkdir(ROOT_NODE, b"n", 0o755, 0, 0)), rofs);
    assert_eq!(
        errno(fx.fs.mknod(ROOT_NODE, b"n", libc::S_IFIFO | 0o644, 0, 0, 0)),
        rofs
    );
    assert_eq!(errno(fx.fs.symlink(ROOT_NODE, b"n", b"f", 0, 0)), rofs);
    assert_eq!(errno(fx.fs.link(f.node, ROOT_NODE, b"n")), rofs);
    assert_eq!(errno(fx.fs.unlink(ROOT_NODE, b"f")), rofs);
    assert_eq!(errno(fx.fs.rmdir(ROOT_NODE, b"d")), rofs);
    assert_eq!(
        errno(fx.fs.rename(ROOT_NODE, b"f", ROOT_NODE, b"g", 0)),
        rofs
    );
    for set in [
        SetAttr {
            mode: Some(0o777),
            ..SetAttr::default()
        },
        SetAttr {
            uid: Some(0),
            ..SetAttr::default()
        },
        SetAttr {
            gid: Some(0),
            ..SetAttr::default()
        },
        SetAttr {
            size: Some(0),
            ..SetAttr::default()
        },
        SetAttr {
            mtime: TimeSet::Now,
            ..SetAttr::default()
        },
    ] {
        assert_eq!(errno(fx.fs.setattr(f.node, None, &set)), rofs);
    }
    assert_eq!(errno(fx.fs.setxattr(f.node, b"user.x", b"1", 0)), rofs);
    assert_eq!(errno(fx.fs.removexattr(f.node, b"user.x")), rofs);
    assert_eq!(errno(fx.fs.write(h, 0, b"x")), rofs);
    assert_eq!(errno(fx.fs.fallocate(h, 0, 0, 10)), rofs);
    // Reads still work and the host is unchanged.
    assert_eq!(fx.read_all(h), b"data");
    assert_eq!(fx.fs.getattr(f.node).unwrap().uid, 5);
    assert!(fx.fs.setattr(f.node, None, &SetAttr::default()).is_ok());
    assert_eq!(fs::read(fx.share.join("f")).unwrap(), b"data");
    assert_eq!(fx.raw("f", "user.LXUID"), Some(5u32.to_le_bytes().to_vec()));
    assert_eq!(fx.raw("f", "user.LXMOD"), None);
    assert_eq!(fx.listing(), vec!["d", "f"]);
}
