//! Names and metadata: lookup, forget, getattr, setattr, mkdir, mknod, symlink, link, unlink,
//! rmdir, rename, create, statfs.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use super::{errno, root_or_skip, Fixture};
use crate::backend::{
    Backend, SetAttr, TimeSet, Timespec, RENAME_EXCHANGE, RENAME_NOREPLACE, ROOT_NODE,
};

#[test]
fn test_lookup_existing_file_returns_host_attr() {
    let fx = Fixture::new();
    fx.put("f", b"hello");
    let e = fx.root_lookup("f");
    let m = fs::metadata(fx.share.join("f")).unwrap();
    assert_eq!(e.attr.ino, m.ino());
    assert_eq!(e.attr.size, 5);
    assert_eq!(e.attr.mode, m.mode());
    assert_eq!(e.attr.nlink, 1);
    assert_eq!(e.attr.uid, m.uid());
    assert_eq!(e.attr.mtime.sec, m.mtime());
    assert_eq!(i64::from(e.attr.mtime.nsec), m.mtime_nsec());
    assert_eq!(e.attr.blksize, m.blksize());
}

#[test]
fn test_lookup_missing_name_enoent() {
    let fx = Fixture::new();
    assert_eq!(errno(fx.fs.lookup(ROOT_NODE, b"nope")), libc::ENOENT);
}

#[test]
fn test_lookup_in_file_enotdir() {
    let fx = Fixture::new();
    fx.put("f", b"");
    let e = fx.root_lookup("f");
    assert_eq!(errno(fx.fs.lookup(e.node, b"x")), libc::ENOTDIR);
}

#[test]
fn test_lookup_same_inode_twice_same_node() {
    let fx = Fixture::new();
    fx.put("f", b"");
    let a = fx.root_lookup("f");
    let b = fx.root_lookup("f");
    assert_eq!(a.node, b.node);
}

#[test]
fn test_forget_all_references_node_stale() {
    let fx = Fixture::new();
    fx.put("f", b"");
    let a = fx.root_lookup("f");
    fx.root_lookup("f");
    assert_eq!(fx.fs.nodes.len(), 2);
    fx.fs.forget(a.node, 1);
    assert!(fx.fs.getattr(a.node).is_ok());
    fx.fs.forget(a.node, 1);
    assert_eq!(fx.fs.nodes.len(), 1);
    assert_eq!(errno(fx.fs.getattr(a.node)), libc::ESTALE);
}

#[test]
fn test_forget_root_node_stays() {
    let fx = Fixture::new();
    fx.fs.forget(ROOT_NODE, 100);
    assert!(fx.fs.getattr(ROOT_NODE).is_ok());
}

#[test]
fn test_unknown_node_and_handle_estale_ebadf() {
    let fx = Fixture::new();
    assert_eq!(errno(fx.fs.getattr(9999)), libc::ESTALE);
    assert_eq!(errno(fx.fs.lookup(9999, b"x")), libc::ESTALE);
    let mut buf = [0u8; 4];
    assert_eq!(errno(fx.fs.read(9999, 0, &mut buf)), libc::EBADF);
    assert_eq!(errno(fx.fs.release(9999)), libc::EBADF);
}

#[test]
fn test_mkdir_new_dir_exact_mode_ignores_umask() {
    let fx = Fixture::new();
    let e = fx.fs.mkdir(ROOT_NODE, b"d", 0o777, 0, 0).unwrap();
    assert_eq!(e.attr.mode, libc::S_IFDIR | 0o777);
    let m = fs::metadata(fx.share.join("d")).unwrap();
    assert!(m.is_dir());
    assert_eq!(m.permissions().mode() & 0o7777, 0o777);
    assert_eq!(e.attr.nlink, 2);
}

#[test]
fn test_mkdir_existing_name_eexist() {
    let fx = Fixture::new();
    fx.put("f", b"");
    assert_eq!(
        errno(fx.fs.mkdir(ROOT_NODE, b"f", 0o755, 0, 0)),
        libc::EEXIST
    );
}

#[test]
fn test_mknod_fifo_socket_regular_created() {
    let fx = Fixture::new();
    for (name, kind) in [
        ("fifo", libc::S_IFIFO),
        ("sock", libc::S_IFSOCK),
        ("reg", libc::S_IFREG),
    ] {
        let e = fx
            .fs
            .mknod(ROOT_NODE, name.as_bytes(), kind | 0o640, 0, 0, 0)
            .unwrap();
        assert_eq!(e.attr.mode, kind | 0o640, "{name}");
        let m = fs::symlink_metadata(fx.share.join(name)).unwrap();
        assert_eq!(m.mode(), kind | 0o640, "{name}");
    }
}

#[test]
fn test_mknod_char_and_block_devices_created() {
    if !root_or_skip("test_mknod_char_and_block_devices_created") {
        return;
    }
    let fx = Fixture::new();
    let null = libc::makedev(1, 3);
    let e = fx
        .fs
        .mknod(ROOT_NODE, b"null", libc::S_IFCHR | 0o666, null, 0, 0)
        .unwrap();
    assert_eq!(e.attr.mode & libc::S_IFMT, libc::S_IFCHR);
    assert_eq!(e.attr.rdev, null);
    let loop0 = libc::makedev(7, 0);
    let e = fx
        .fs
        .mknod(ROOT_NODE, b"loop", libc::S_IFBLK | 0o600, loop0, 0, 0)
        .unwrap();
    assert_eq!(e.attr.rdev, loop0);
    assert_eq!(
        fs::symlink_metadata(fx.share.join("loop")).unwrap().rdev(),
        loop0
    );
}

#[test]
fn test_mknod_directory_type_einval() {
    let fx = Fixture::new();
    let r = fx.fs.mknod(ROOT_NODE, b"d", libc::S_IFDIR | 0o755, 0, 0, 0);
    assert_eq!(errno(r), libc::EINVAL);
}

#[test]
fn test_symlink_readlink_returns_target() {
    let fx = Fixture::new();
    let e = fx.fs.symlink(ROOT_NODE, b"l", b"some/where", 0, 0).unwrap();
    assert_eq!(e.attr.mode & libc::S_IFMT, libc::S_IFLNK);
    assert_eq!(fx.fs.readlink(e.node).unwrap(), b"some/where");
    let host = fs::read_link(fx.share.join("l")).unwrap();
    assert_eq!(host.to_str().unwrap(), "some/where");
}

#[test]
fn test_readlink_regular_file_einval() {
    let fx = Fixture::new();
    fx.put("f", b"");
    let e = fx.root_lookup("f");
    assert_eq!(errno(fx.fs.readlink(e.node)), libc::EINVAL);
}

#[test]
fn test_link_hard_link_nlink_real() {
    let fx = Fixture::new();
    fx.put("f", b"data");
    let f = fx.root_lookup("f");
    let l = fx.fs.link(f.node, ROOT_NODE, b"g").unwrap();
    assert_eq!(l.node, f.node, "one inode, one node");
    assert_eq!(l.attr.nlink, 2);
    assert_eq!(fx.fs.getattr(f.node).unwrap().nlink, 2);
    assert_eq!(fs::metadata(fx.share.join("g")).unwrap().nlink(), 2);
    fx.fs.unlink(ROOT_NODE, b"f").unwrap();
    assert_eq!(fx.fs.getattr(l.node).unwrap().nlink, 1);
    fx.fs.unlink(ROOT_NODE, b"g").unwrap();
    assert_eq!(fx.fs.getattr(l.node).unwrap().nlink, 0);
}

#[test]
fn test_link_symlink_links_the_link_itself() {
    let fx = Fixture::new();
    let l = fx.fs.symlink(ROOT_NODE, b"l", b"target", 0, 0).unwrap();
    let h = fx.fs.link(l.node, ROOT_NODE, b"l2").unwrap();
    assert_eq!(h.attr.nlink, 2);
    let host = fs::read_link(fx.share.join("l2")).unwrap();
    assert_eq!(host.to_str().unwrap(), "target");
}

#[test]
fn test_link_directory_eperm() {
    let fx = Fixture::new();
    let d = fx.fs.mkdir(ROOT_NODE, b"d", 0o755, 0, 0).unwrap();
    assert_eq!(errno(fx.fs.link(d.node, ROOT_NODE, b"d2")), libc::EPERM);
}

#[test]
fn test_link_existing_name_eexist() {
    let fx = Fixture::new();
    fx.put("f", b"");
    fx.put("g", b"");
    let f = fx.root_lookup("f");
    assert_eq!(errno(fx.fs.link(f.node, ROOT_NODE, b"g")), libc::EEXIST);
}

#[test]
fn test_unlink_errors_enoent_eisdir() {
    let fx = Fixture::new();
    fs::create_dir(fx.share.join("d")).unwrap();
    assert_eq!(errno(fx.fs.unlink(ROOT_NODE, b"nope")), libc::ENOENT);
    assert_eq!(errno(fx.fs.unlink(ROOT_NODE, b"d")), libc::EISDIR);
}

#[test]
fn test_rmdir_empty_removed_nonempty_enotempty() {
    let fx = Fixture::new();
    fs::create_dir(fx.share.join("e")).unwrap();
    fs::create_dir(fx.share.join("n")).unwrap();
    fx.put("n/x", b"");
    fx.put("f", b"");
    fx.fs.rmdir(ROOT_NODE, b"e").unwrap();
    assert!(!fx.share.join("e").exists());
    assert_eq!(errno(fx.fs.rmdir(ROOT_NODE, b"n")), libc::ENOTEMPTY);
    assert_eq!(errno(fx.fs.rmdir(ROOT_NODE, b"f")), libc::ENOTDIR);
}

#[test]
fn test_rename_plain_moves_between_dirs() {
    let fx = Fixture::new();
    fx.put("f", b"x");
    let d = fx.fs.mkdir(ROOT_NODE, b"d", 0o755, 0, 0).unwrap();
    fx.fs.rename(ROOT_NODE, b"f", d.node, b"g", 0).unwrap();
    assert!(!fx.share.join("f").exists());
    assert_eq!(fs::read(fx.share.join("d/g")).unwrap(), b"x");
}

#[test]
fn test_rename_noreplace_existing_eexist() {
    let fx = Fixture::new();
    fx.put("a", b"a");
    fx.put("b", b"b");
    let r = fx
        .fs
        .rename(ROOT_NODE, b"a", ROOT_NODE, b"b", RENAME_NOREPLACE);
    assert_eq!(errno(r), libc::EEXIST);
    assert_eq!(fs::read(fx.share.join("b")).unwrap(), b"b");
}

#[test]
fn test_rename_exchange_swaps_names() {
    let fx = Fixture::new();
    fx.put("a", b"a");
    fs::create_dir(fx.share.join("b")).unwrap();
    fx.fs
        .rename(ROOT_NODE, b"a", ROOT_NODE, b"b", RENAME_EXCHANGE)
        .unwrap();
    assert!(fx.share.join("a").is_dir());
    assert_eq!(fs::read(fx.share.join("b")).unwrap(), b"a");
}

#[test]
fn test_rename_unknown_flags_einval() {
    let fx = Fixture::new();
    fx.put("a", b"");
    let r = fx.fs.rename(ROOT_NODE, b"a", ROOT_NODE, b"b", 4); // RENAME_WHITEOUT
    assert_eq!(errno(r), libc::EINVAL);
}

#[test]
fn test_setattr_mode_applied_exactly() {
    let fx = Fixture::new();
    fx.put("f", b"");
    let e = fx.root_lookup("f");
    let set = SetAttr {
        mode: Some(0o4751),
        ..SetAttr::default()
    };
    let a = fx.fs.setattr(e.node, None, &set).unwrap();
    assert_eq!(a.mode, libc::S_IFREG | 0o4751);
    assert_eq!(
        fs::metadata(fx.share.join("f")).unwrap().mode() & 0o7777,
        0o4751
    );
}

#[test]
fn test_setattr_uid_gid_changed_on_host() {
    if !root_or_skip("test_setattr_uid_gid_changed_on_host") {
        return;
    }
    let fx = Fixture::new();
    fx.put("f", b"");
    let e = fx.root_lookup("f");
    let set = SetAttr {
        uid: Some(1234),
        gid: Some(5678),
        ..SetAttr::default()
    };
    let a = fx.fs.setattr(e.node, None, &set).unwrap();
    assert_eq!((a.uid, a.gid), (1234, 5678));
    let m = fs::metadata(fx.share.join("f")).unwrap();
    assert_eq!((m.uid(), m.gid()), (1234, 5678));
}

#[test]
fn test_setattr_size_truncates_and_extends() {
    let fx = Fixture::new();
    fx.put("f", b"0123456789");
    let e = fx.root_lookup("f");
    let a = fx
        .fs
        .setattr(
            e.node,
            None,
            &SetAttr {
                size: Some(4),
                ..SetAttr::default()
            },
        )
        .unwrap();
    assert_eq!(a.size, 4);
    assert_eq!(fs::read(fx.share.join("f")).unwrap(), b"0123");
    let h = fx.fs.open(e.node, libc::O_RDWR).unwrap();
    let a = fx
        .fs
        .setattr(
            e.node,
            Some(h),
            &SetAttr {
                size: Some(8),
                ..SetAttr::default()
            },
        )
        .unwrap();
    assert_eq!(a.size, 8);
    assert_eq!(fs::read(fx.share.join("f")).unwrap(), b"0123\0\0\0\0");
}

#[test]
fn test_setattr_size_on_directory_eisdir() {
    let fx = Fixture::new();
    let set = SetAttr {
        size: Some(0),
        ..SetAttr::default()
    };
    assert_eq!(errno(fx.fs.setattr(ROOT_NODE, None, &set)), libc::EISDIR);
}

#[test]
fn test_setattr_times_explicit_now_and_omit() {
    let fx = Fixture::new();
    fx.put("f", b"");
    let e = fx.root_lookup("f");
    let t = Timespec {
        sec: 1_000_000_000,
        nsec: 123_456_789,
    };
    let set = SetAttr {
        atime: TimeSet::At(t),
        mtime: TimeSet::At(t),
        ..SetAttr::default()
    };
    let a = fx.fs.setattr(e.node, None, &set).unwrap();
    assert_eq!((a.atime, a.mtime), (t, t));
    // Omit keeps atime; Now moves mtime to the present.
    let set = SetAttr {
        atime: TimeSet::Omit,
        mtime: TimeSet::Now,
        ..SetAttr::default()
    };
    let a = fx.fs.setattr(e.node, None, &set).unwrap();
    assert_eq!(a.atime, t);
    assert!(a.mtime.sec > t.sec + 100_000_000);
    let m = fs::metadata(fx.share.join("f")).unwrap();
    assert_eq!((m.atime(), m.atime_nsec()), (t.sec, 123_456_789));
}

#[test]
fn test_setattr_chmod_symlink_eopnotsupp() {
    let fx = Fixture::new();
    let l = fx.fs.symlink(ROOT_NODE, b"l", b"t", 0, 0).unwrap();
    let set = SetAttr {
        mode: Some(0o600),
        ..SetAttr::default()
    };
    assert_eq!(errno(fx.fs.setattr(l.node, None, &set)), libc::EOPNOTSUPP);
}

#[test]
fn test_create_new_file_owner_and_exact_mode() {
    let fx = Fixture::new();
    let (uid, gid) = if root_or_skip("test_create_new_file_owner_and_exact_mode (owner part)") {
        (4321, 8765)
    } else {
        // SAFETY: getuid/getgid have no preconditions.
        unsafe { (libc::getuid(), libc::getgid()) }
    };
    let (e, h) = fx
        .fs
        .create(ROOT_NODE, b"new", libc::O_RDWR, 0o2777, uid, gid)
        .unwrap();
    assert_eq!(e.attr.mode, libc::S_IFREG | 0o2777);
    assert_eq!((e.attr.uid, e.attr.gid), (uid, gid));
    let m = fs::metadata(fx.share.join("new")).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (uid, gid, 0o2777));
    // (An unprivileged write would now clear S_ISGID, as Linux does.)
    assert_eq!(fx.fs.write(h, 0, b"abc").unwrap(), 3);
    fx.fs.release(h).unwrap();
    assert_eq!(fs::read(fx.share.join("new")).unwrap(), b"abc");
}

#[test]
fn test_create_excl_existing_eexist() {
    let fx = Fixture::new();
    fx.put("f", b"keep");
    let r = fx
        .fs
        .create(ROOT_NODE, b"f", libc::O_RDWR | libc::O_EXCL, 0o644, 0, 0);
    assert_eq!(errno(r), libc::EEXIST);
    assert_eq!(fs::read(fx.share.join("f")).unwrap(), b"keep");
}

#[test]
fn test_create_existing_without_excl_opens_same_inode() {
    let fx = Fixture::new();
    fx.put("f", b"keep");
    fs::set_permissions(fx.share.join("f"), fs::Permissions::from_mode(0o600)).unwrap();
    let before = fx.root_lookup("f");
    let (e, h) = fx
        .fs
        .create(ROOT_NODE, b"f", libc::O_RDWR, 0o777, 0, 0)
        .unwrap();
    assert_eq!(e.node, before.node);
    assert_eq!(
        e.attr.mode & 0o7777,
        0o600,
        "an existing file keeps its mode"
    );
    assert_eq!(fx.read_all(h), b"keep");
    let (_, h) = fx
        .fs
        .create(ROOT_NODE, b"f", libc::O_RDWR | libc::O_TRUNC, 0o777, 0, 0)
        .unwrap();
    assert_eq!(fx.read_all(h), b"");
}

#[test]
fn test_create_over_directory_eisdir() {
    let fx = Fixture::new();
    fs::create_dir(fx.share.join("d")).unwrap();
    let r = fx.fs.create(ROOT_NODE, b"d", libc::O_RDONLY, 0o644, 0, 0);
    assert_eq!(errno(r), libc::EISDIR);
}

#[test]
fn test_statfs_root_reports_host_numbers() {
    let fx = Fixture::new();
    let s = fx.fs.statfs(ROOT_NODE).unwrap();
    assert!(s.blocks > 0);
    assert!(s.bsize > 0);
    assert_eq!(s.namelen, 255);
}
