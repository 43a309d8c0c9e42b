//! Confinement: nothing outside the share is read, written or changed, whatever names,
//! symlinks or races the guest uses.

use std::fs;
use std::os::unix::fs::symlink;

use super::{errno, root_or_skip, Fixture};
use crate::backend::{Backend, SetAttr, TimeSet, ROOT_NODE};

#[test]
fn test_lookup_dot_dotdot_empty_einval() {
    let fx = Fixture::new();
    for name in [&b".."[..], b".", b""] {
        assert_eq!(
            errno(fx.fs.lookup(ROOT_NODE, name)),
            libc::EINVAL,
            "{name:?}"
        );
    }
    fs::create_dir(fx.share.join("d")).unwrap();
    let d = fx.root_lookup("d");
    assert_eq!(errno(fx.fs.lookup(d.node, b"..")), libc::EINVAL);
    fx.assert_outside_untouched();
}

#[test]
fn test_names_with_slash_or_nul_einval_everywhere() {
    let fx = Fixture::new();
    fx.put("f", b"");
    let f = fx.root_lookup("f");
    for name in [&b"../outside/sentinel"[..], b"/etc/passwd", b"a/b", b"x\0y"] {
        assert_eq!(errno(fx.fs.lookup(ROOT_NODE, name)), libc::EINVAL);
        let r = fx.fs.create(ROOT_NODE, name, libc::O_RDWR, 0o644, 0, 0);
        assert_eq!(errno(r), libc::EINVAL);
        assert_eq!(
            errno(fx.fs.mkdir(ROOT_NODE, name, 0o755, 0, 0)),
            libc::EINVAL
        );
        assert_eq!(
            errno(fx.fs.symlink(ROOT_NODE, name, b"t", 0, 0)),
            libc::EINVAL
        );
        assert_eq!(errno(fx.fs.link(f.node, ROOT_NODE, name)), libc::EINVAL);
        assert_eq!(errno(fx.fs.unlink(ROOT_NODE, name)), libc::EINVAL);
        assert_eq!(errno(fx.fs.rmdir(ROOT_NODE, name)), libc::EINVAL);
        assert_eq!(
            errno(fx.fs.rename(ROOT_NODE, b"f", ROOT_NODE, name, 0)),
            libc::EINVAL
        );
        assert_eq!(
            errno(fx.fs.rename(ROOT_NODE, name, ROOT_NODE, b"g", 0)),
            libc::EINVAL
        );
    }
    assert!(fx.share.join("f").exists());
    fx.assert_outside_untouched();
}

#[test]
fn test_overlong_name_enametoolong() {
    let fx = Fixture::new();
    let long = vec![b'a'; 256];
    assert_eq!(errno(fx.fs.lookup(ROOT_NODE, &long)), libc::ENAMETOOLONG);
    let r = fx.fs.create(ROOT_NODE, &long, libc::O_RDWR, 0o644, 0, 0);
    assert_eq!(errno(r), libc::ENAMETOOLONG);
    let ok = vec![b'a'; 255];
    fx.fs
        .create(ROOT_NODE, &ok, libc::O_RDWR, 0o644, 0, 0)
        .unwrap();
}

#[test]
fn test_absolute_symlink_out_of_share_not_followed() {
    let fx = Fixture::new();
    symlink(fx.outside.join("sentinel"), fx.share.join("abs")).unwrap();
    symlink(&fx.outside, fx.share.join("absdir")).unwrap();
    let l = fx.root_lookup("abs");
    assert_eq!(
        l.attr.mode & libc::S_IFMT,
        libc::S_IFLNK,
        "the link, not its target"
    );
    assert_eq!(errno(fx.fs.open(l.node, libc::O_RDONLY)), libc::ELOOP);
    assert_eq!(
        errno(fx.fs.open(l.node, libc::O_RDWR | libc::O_TRUNC)),
        libc::ELOOP
    );
    let d = fx.root_lookup("absdir");
    assert_eq!(errno(fx.fs.lookup(d.node, b"sentinel")), libc::ENOTDIR);
    assert_eq!(errno(fx.fs.open(d.node, libc::O_RDONLY)), libc::ELOOP);
    let r = fx.fs.create(d.node, b"new", libc::O_RDWR, 0o644, 0, 0);
    assert_eq!(errno(r), libc::ENOTDIR);
    fx.assert_outside_untouched();
}

#[test]
fn test_relative_symlink_out_of_share_not_followed() {
    let fx = Fixture::new();
    symlink("../outside", fx.share.join("rel")).unwrap();
    symlink("../outside/sentinel", fx.share.join("relf")).unwrap();
    let d = fx.root_lookup("rel");
    assert_eq!(errno(fx.fs.lookup(d.node, b"sentinel")), libc::ENOTDIR);
    assert_eq!(errno(fx.fs.mkdir(d.node, b"x", 0o755, 0, 0)), libc::ENOTDIR);
    assert_eq!(errno(fx.fs.unlink(d.node, b"sentinel")), libc::ENOTDIR);
    let f = fx.root_lookup("relf");
    assert_eq!(errno(fx.fs.open(f.node, libc::O_RDONLY)), libc::ELOOP);
    assert_eq!(errno(fx.fs.getxattr(f.node, b"user.x")), libc::ENODATA);
    fx.assert_outside_untouched();
}

#[test]
fn test_create_through_symlink_name_eloop_nothing_created() {
    let fx = Fixture::new();
    symlink(fx.outside.join("newfile"), fx.share.join("dangling")).unwrap();
    symlink(fx.outside.join("sentinel"), fx.share.join("tosentinel")).unwrap();
    let r = fx
        .fs
        .create(ROOT_NODE, b"dangling", libc::O_RDWR, 0o644, 0, 0);
    assert_eq!(errno(r), libc::ELOOP);
    let flags = libc::O_RDWR | libc::O_TRUNC;
    let r = fx.fs.create(ROOT_NODE, b"tosentinel", flags, 0o644, 0, 0);
    assert_eq!(errno(r), libc::ELOOP);
    let r = fx
        .fs
        .mknod(ROOT_NODE, b"dangling", libc::S_IFREG | 0o644, 0, 0, 0);
    assert_eq!(errno(r), libc::EEXIST);
    assert!(!fx.outside.join("newfile").exists());
    fx.assert_outside_untouched();
}

#[test]
fn test_setattr_on_symlink_to_outside_changes_link_only() {
    let fx = Fixture::new();
    symlink(fx.outside.join("sentinel"), fx.share.join("l")).unwrap();
    let l = fx.root_lookup("l");
    let set = SetAttr {
        atime: TimeSet::Now,
        mtime: TimeSet::Now,
        ..SetAttr::default()
    };
    fx.fs.setattr(l.node, None, &set).unwrap();
    let set = SetAttr {
        size: Some(0),
        ..SetAttr::default()
    };
    assert_eq!(errno(fx.fs.setattr(l.node, None, &set)), libc::EINVAL);
    if root_or_skip("test_setattr_on_symlink_to_outside_changes_link_only (chown part)") {
        let set = SetAttr {
            uid: Some(999),
            gid: Some(999),
            ..SetAttr::default()
        };
        let a = fx.fs.setattr(l.node, None, &set).unwrap();
        assert_eq!(a.uid, 999);
    }
    fx.assert_outside_untouched();
}

#[test]
fn test_link_and_rename_of_symlink_stay_inside() {
    let fx = Fixture::new();
    symlink(fx.outside.join("sentinel"), fx.share.join("l")).unwrap();
    let l = fx.root_lookup("l");
    let h = fx.fs.link(l.node, ROOT_NODE, b"l2").unwrap();
    assert_eq!(h.attr.mode & libc::S_IFMT, libc::S_IFLNK);
    fx.fs.rename(ROOT_NODE, b"l2", ROOT_NODE, b"l3", 0).unwrap();
    fx.fs.unlink(ROOT_NODE, b"l3").unwrap();
    fx.assert_outside_untouched();
}

/// A directory looked up by the guest is replaced on the host by a symlink to the outside
/// before the guest opens it: the held node still names the original directory.
#[test]
fn test_dir_swapped_for_symlink_after_lookup_stays_inside() {
    let fx = Fixture::new();
    fs::create_dir(fx.share.join("d")).unwrap();
    fx.put("d/inner", b"inner");
    let d = fx.root_lookup("d");
    // The swap, between lookup and open.
    fs::rename(fx.share.join("d"), fx.share.join("d.old")).unwrap();
    symlink(&fx.outside, fx.share.join("d")).unwrap();

    let h = fx
        .fs
        .open(d.node, libc::O_RDONLY | libc::O_DIRECTORY)
        .unwrap();
    let mut names = Vec::new();
    fx.fs
        .readdir(h, 0, &mut |e| {
            names.push(e.name.clone());
            true
        })
        .unwrap();
    assert!(names.contains(&b"inner".to_vec()));
    assert!(!names.contains(&b"sentinel".to_vec()));
    assert_eq!(errno(fx.fs.lookup(d.node, b"sentinel")), libc::ENOENT);
    let (_, fh) = fx
        .fs
        .create(d.node, b"created", libc::O_RDWR, 0o644, 0, 0)
        .unwrap();
    fx.fs.write(fh, 0, b"x").unwrap();
    assert!(fx.share.join("d.old/created").exists());
    fx.fs.mkdir(d.node, b"sub", 0o755, 0, 0).unwrap();
    assert!(fx.share.join("d.old/sub").is_dir());
    // A fresh lookup of the name now finds the symlink itself, which is never followed.
    let again = fx.root_lookup("d");
    assert_ne!(again.node, d.node);
    assert_eq!(errno(fx.fs.lookup(again.node, b"sentinel")), libc::ENOTDIR);
    fx.assert_outside_untouched();
}

/// A file looked up by the guest is replaced by a symlink to the sentinel before open, setattr
/// and xattr calls: they all act on the original inode.
#[test]
fn test_file_swapped_for_symlink_after_lookup_acts_on_original() {
    let fx = Fixture::new();
    fx.put("f", b"original");
    let f = fx.root_lookup("f");
    fs::rename(fx.share.join("f"), fx.share.join("f.old")).unwrap();
    symlink(fx.outside.join("sentinel"), fx.share.join("f")).unwrap();

    let h = fx.fs.open(f.node, libc::O_RDWR | libc::O_TRUNC).unwrap();
    fx.fs.write(h, 0, b"new").unwrap();
    let set = SetAttr {
        mode: Some(0o600),
        size: Some(2),
        mtime: TimeSet::Now,
        ..SetAttr::default()
    };
    fx.fs.setattr(f.node, None, &set).unwrap();
    fx.fs.setxattr(f.node, b"user.k", b"v", 0).unwrap();
    assert_eq!(fs::read(fx.share.join("f.old")).unwrap(), b"ne");
    fx.assert_outside_untouched();
}

/// The share root's own parent is unreachable: `..` is refused at the root as everywhere.
#[test]
fn test_root_parent_unreachable() {
    let fx = Fixture::new();
    assert_eq!(errno(fx.fs.lookup(ROOT_NODE, b"..")), libc::EINVAL);
    assert_eq!(errno(fx.fs.lookup(ROOT_NODE, b"outside")), libc::ENOENT);
    fx.assert_outside_untouched();
}
