//! A new object whose metadata cannot be set is removed again: nothing half-made is left.

use std::sync::atomic::Ordering;

use super::{errno, Fixture};
use crate::backend::{Backend, ROOT_NODE};

#[test]
fn test_failed_metadata_write_leaves_nothing_behind() {
    let Some(fx) = Fixture::new("test_failed_metadata_write_leaves_nothing_behind") else {
        return;
    };
    let d = fx.fs.mkdir(ROOT_NODE, b"d", 0o755, 0, 0).unwrap();
    fx.fs.fail_meta.store(true, Ordering::Relaxed);
    for parent in [ROOT_NODE, d.node] {
        let r = fx.fs.create(parent, b"f", libc::O_RDWR, 0o644, 1, 1);
        assert_eq!(errno(r), libc::EIO);
        assert_eq!(errno(fx.fs.mkdir(parent, b"sub", 0o755, 1, 1)), libc::EIO);
        let r = fx.fs.mknod(parent, b"p", libc::S_IFIFO | 0o644, 0, 1, 1);
        assert_eq!(errno(r), libc::EIO);
        let r = fx
            .fs
            .mknod(parent, b"c", libc::S_IFCHR | 0o644, 0x103, 1, 1);
        assert_eq!(errno(r), libc::EIO);
        assert_eq!(errno(fx.fs.symlink(parent, b"l", b"t", 1, 1)), libc::EIO);
    }
    assert_eq!(fx.listing(), vec!["d"]);
    assert_eq!(std::fs::read_dir(fx.share.join("d")).unwrap().count(), 0);
    for name in ["f", "sub", "p", "c", "l"] {
        assert_eq!(
            errno(fx.fs.lookup(ROOT_NODE, name.as_bytes())),
            libc::ENOENT
        );
    }
    // chmod fails as a whole and the old metadata stays.
    let set = crate::backend::SetAttr {
        mode: Some(0o600),
        ..Default::default()
    };
    assert_eq!(errno(fx.fs.setattr(d.node, None, &set)), libc::EIO);
    fx.fs.fail_meta.store(false, Ordering::Relaxed);
    assert_eq!(fx.fs.getattr(d.node).unwrap().mode, libc::S_IFDIR | 0o755);
    // Opening an existing file through create writes no metadata, so it cannot fail that way.
    fx.fs
        .create(ROOT_NODE, b"f", libc::O_RDWR, 0o644, 1, 1)
        .unwrap();
    fx.fs.fail_meta.store(true, Ordering::Relaxed);
    let (e, _) = fx
        .fs
        .create(ROOT_NODE, b"f", libc::O_RDWR, 0o600, 2, 2)
        .unwrap();
    assert_eq!((e.attr.uid, e.attr.mode), (1, libc::S_IFREG | 0o644));
    fx.assert_outside_untouched();
}

#[test]
fn test_create_existing_name_keeps_its_metadata() {
    let Some(fx) = Fixture::new("test_create_existing_name_keeps_its_metadata") else {
        return;
    };
    let (f, _) = fx
        .fs
        .create(ROOT_NODE, b"f", libc::O_RDWR, 0o640, 10, 20)
        .unwrap();
    let excl = libc::O_RDWR | libc::O_EXCL;
    assert_eq!(
        errno(fx.fs.create(ROOT_NODE, b"f", excl, 0o600, 1, 1)),
        libc::EEXIST
    );
    assert_eq!(
        errno(fx.fs.mkdir(ROOT_NODE, b"f", 0o755, 1, 1)),
        libc::EEXIST
    );
    assert_eq!(
        errno(fx.fs.symlink(ROOT_NODE, b"f", b"t", 1, 1)),
        libc::EEXIST
    );
    let a = fx.fs.getattr(f.node).unwrap();
    assert_eq!((a.uid, a.gid, a.mode), (10, 20, libc::S_IFREG | 0o640));
    assert_eq!(fx.listing(), vec!["f"]);
}
