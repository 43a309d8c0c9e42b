//! Confinement, as for the passthrough backend (which the mapped one wraps): nothing outside
//! the share is read, written or changed, whatever names, symlinks or races the guest uses; and
//! the mapped symlinks the guest makes are data the server never follows.

use std::fs;
use std::os::unix::fs::symlink;

use super::{errno, Fixture};
use crate::backend::{Backend, SetAttr, TimeSet, ROOT_NODE};

#[test]
fn test_bad_names_einval_everywhere() {
    let Some(fx) = Fixture::new("test_bad_names_einval_everywhere") else {
        return;
    };
    let (f, _) = fx
        .fs
        .create(ROOT_NODE, b"f", libc::O_RDWR, 0o644, 0, 0)
        .unwrap();
    for name in [
        &b"../outside/sentinel"[..],
        b"/etc/passwd",
        b"a/b",
        b"x\0y",
        b"..",
        b".",
        b"",
    ] {
        assert_eq!(errno(fx.fs.lookup(ROOT_NODE, name)), libc::EINVAL);
        let r = fx.fs.create(ROOT_NODE, name, libc::O_RDWR, 0o644, 0, 0);
        assert_eq!(errno(r), libc::EINVAL);
        assert_eq!(
            errno(fx.fs.mkdir(ROOT_NODE, name, 0o755, 0, 0)),
            libc::EINVAL
        );
        let r = fx.fs.mknod(ROOT_NODE, name, libc::S_IFIFO | 0o644, 0, 0, 0);
        assert_eq!(errno(r), libc::EINVAL);
        assert_eq!(
            errno(fx.fs.symlink(ROOT_NODE, name, b"t", 0, 0)),
            libc::EINVAL
        );
        assert_eq!(errno(fx.fs.link(f.node, ROOT_NODE, name)), libc::EINVAL);
        assert_eq!(errno(fx.fs.unlink(ROOT_NODE, name)), libc::EINVAL);
        assert_eq!(
            errno(fx.fs.rename(ROOT_NODE, b"f", ROOT_NODE, name, 0)),
            libc::EINVAL
        );
    }
    let long = vec![b'a'; 256];
    assert_eq!(errno(fx.fs.lookup(ROOT_NODE, &long)), libc::ENAMETOOLONG);
    assert_eq!(
        errno(fx.fs.mkdir(ROOT_NODE, &long, 0o755, 0, 0)),
        libc::ENAMETOOLONG
    );
    assert_eq!(fx.listing(), vec!["f"]);
    fx.assert_outside_untouched();
}

#[test]
fn test_host_symlinks_out_of_share_not_followed() {
    let Some(fx) = Fixture::new("test_host_symlinks_out_of_share_not_followed") else {
        return;
    };
    symlink(fx.outside.join("sentinel"), fx.share.join("abs")).unwrap();
    symlink("../outside", fx.share.join("rel")).unwrap();
    let l = fx.root_lookup("abs");
    assert_eq!(l.attr.mode & libc::S_IFMT, libc::S_IFLNK);
    assert_eq!(errno(fx.fs.open(l.node, libc::O_RDWR)), libc::ELOOP);
    assert_eq!(errno(fx.fs.getxattr(l.node, b"user.x")), libc::ENODATA);
    let set = SetAttr {
        mode: Some(0o777),
        ..SetAttr::default()
    };
    assert_eq!(errno(fx.fs.setattr(l.node, None, &set)), libc::EOPNOTSUPP);
    let set = SetAttr {
        uid: Some(4321),
        ..SetAttr::default()
    };
    assert_eq!(errno(fx.fs.setattr(l.node, None, &set)), libc::EOPNOTSUPP);
    let d = fx.root_lookup("rel");
    assert_eq!(errno(fx.fs.lookup(d.node, b"sentinel")), libc::ENOTDIR);
    assert_eq!(errno(fx.fs.mkdir(d.node, b"x", 0o755, 0, 0)), libc::ENOTDIR);
    let r = fx
        .fs
        .mknod(d.node, b"x", libc::S_IFCHR | 0o644, 0x103, 0, 0);
    assert_eq!(errno(r), libc::ENOTDIR);
    assert_eq!(
        errno(fx.fs.symlink(d.node, b"x", b"y", 0, 0)),
        libc::ENOTDIR
    );
    let r = fx.fs.create(d.node, b"x", libc::O_RDWR, 0o644, 0, 0);
    assert_eq!(errno(r), libc::ENOTDIR);
    // Creating over a host symlink's name never goes through it.
    let r = fx.fs.create(ROOT_NODE, b"abs", libc::O_RDWR, 0o644, 0, 0);
    assert_eq!(errno(r), libc::ELOOP);
    let flags = libc::O_RDWR | libc::O_TRUNC;
    let r = fx.fs.create(ROOT_NODE, b"abs", flags, 0o644, 0, 0);
    assert_eq!(errno(r), libc::ELOOP);
    // Listing a directory holding them reads no metadata through them.
    let root = fx
        .fs
        .open(ROOT_NODE, libc::O_RDONLY | libc::O_DIRECTORY)
        .unwrap();
    fx.fs.readdir(root, 0, &mut |_| true).unwrap();
    fx.assert_outside_untouched();
}

#[test]
fn test_guest_symlink_to_outside_is_only_data() {
    let Some(fx) = Fixture::new("test_guest_symlink_to_outside_is_only_data") else {
        return;
    };
    let target = fx.outside.join("sentinel");
    let target = target.to_str().unwrap().as_bytes();
    let l = fx.fs.symlink(ROOT_NODE, b"l", target, 0, 0).unwrap();
    let rel = fx
        .fs
        .symlink(ROOT_NODE, b"rel", b"../outside", 0, 0)
        .unwrap();
    assert_eq!(fx.fs.readlink(l.node).unwrap(), target);
    assert_eq!(errno(fx.fs.open(l.node, libc::O_RDWR)), libc::ELOOP);
    assert_eq!(errno(fx.fs.lookup(rel.node, b"sentinel")), libc::ENOTDIR);
    let r = fx.fs.create(rel.node, b"x", libc::O_RDWR, 0o644, 0, 0);
    assert_eq!(errno(r), libc::ENOTDIR);
    let set = SetAttr {
        uid: Some(1),
        atime: TimeSet::Now,
        mtime: TimeSet::Now,
        ..SetAttr::default()
    };
    fx.fs.setattr(l.node, None, &set).unwrap();
    fx.fs.link(l.node, ROOT_NODE, b"l2").unwrap();
    fx.fs.rename(ROOT_NODE, b"l2", ROOT_NODE, b"l3", 0).unwrap();
    fx.fs.unlink(ROOT_NODE, b"l3").unwrap();
    fx.assert_outside_untouched();
}

/// A directory looked up by the guest is replaced on the host by a symlink to the outside
/// before the guest uses it: the held node still names the original directory, for the
/// metadata-writing creations too.
#[test]
fn test_dir_swapped_for_symlink_after_lookup_stays_inside() {
    let Some(fx) = Fixture::new("test_dir_swapped_for_symlink_after_lookup_stays_inside") else {
        return;
    };
    let d = fx.fs.mkdir(ROOT_NODE, b"d", 0o755, 0, 0).unwrap();
    fs::rename(fx.share.join("d"), fx.share.join("d.old")).unwrap();
    symlink(&fx.outside, fx.share.join("d")).unwrap();

    assert_eq!(errno(fx.fs.lookup(d.node, b"sentinel")), libc::ENOENT);
    fx.fs
        .create(d.node, b"f", libc::O_RDWR, 0o644, 1, 1)
        .unwrap();
    fx.fs.mkdir(d.node, b"sub", 0o755, 1, 1).unwrap();
    fx.fs
        .mknod(d.node, b"p", libc::S_IFIFO | 0o644, 0, 1, 1)
        .unwrap();
    fx.fs.symlink(d.node, b"l", b"../../outside", 1, 1).unwrap();
    let mut names: Vec<String> = fs::read_dir(fx.share.join("d.old"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["f", "l", "p", "sub"]);
    let h = fx
        .fs
        .open(d.node, libc::O_RDONLY | libc::O_DIRECTORY)
        .unwrap();
    let mut seen = Vec::new();
    fx.fs
        .readdir(h, 0, &mut |e| {
            seen.push(e.name.clone());
            true
        })
        .unwrap();
    assert!(!seen.contains(&b"sentinel".to_vec()));
    fx.assert_outside_untouched();
}

/// A file looked up by the guest is replaced by a symlink to the sentinel before setattr and
/// xattr calls: the metadata is written to the original inode.
#[test]
fn test_file_swapped_for_symlink_after_lookup_acts_on_original() {
    let Some(fx) = Fixture::new("test_file_swapped_for_symlink_after_lookup_acts_on_original")
    else {
        return;
    };
    fx.put("f", b"original");
    let f = fx.root_lookup("f");
    fs::rename(fx.share.join("f"), fx.share.join("f.old")).unwrap();
    symlink(fx.outside.join("sentinel"), fx.share.join("f")).unwrap();
    let set = SetAttr {
        mode: Some(0o640),
        uid: Some(77),
        gid: Some(88),
        size: Some(2),
        ..SetAttr::default()
    };
    let a = fx.fs.setattr(f.node, None, &set).unwrap();
    assert_eq!((a.uid, a.gid, a.mode), (77, 88, libc::S_IFREG | 0o640));
    fx.fs.setxattr(f.node, b"user.k", b"v", 0).unwrap();
    assert_eq!(
        fx.fs.readlink(f.node).map_err(|e| e.errno()),
        Err(libc::EINVAL)
    );
    assert_eq!(fs::read(fx.share.join("f.old")).unwrap(), b"or");
    assert_eq!(
        super::get_raw(&fx.share.join("f.old"), "user.LXUID"),
        Some(77u32.to_le_bytes().to_vec())
    );
    fx.assert_outside_untouched();
}
