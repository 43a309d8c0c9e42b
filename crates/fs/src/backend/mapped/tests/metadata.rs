//! Owner, group and mode: kept in the xattrs, never on the host inode.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::{assert_host_plain, errno, le, root_or_skip, xattr_tempdir, Fixture};
use crate::backend::mapped::{Config, Mapped};
use crate::backend::{Backend, SetAttr, TimeSet, Timespec, ROOT_NODE};

#[test]
fn test_create_as_1000_shows_guest_owner_host_owned_by_server() {
    let Some(fx) = Fixture::new("test_create_as_1000_shows_guest_owner_host_owned_by_server")
    else {
        return;
    };
    let (e, h) = fx
        .fs
        .create(ROOT_NODE, b"f", libc::O_RDWR, 0o640, 1000, 1000)
        .unwrap();
    assert_eq!((e.attr.uid, e.attr.gid), (1000, 1000));
    assert_eq!(e.attr.mode, libc::S_IFREG | 0o640);
    assert_eq!(fx.fs.write(h, 0, b"hello").unwrap(), 5);
    assert_eq!(fx.read_all(h), b"hello");
    let a = fx.fs.getattr(e.node).unwrap();
    assert_eq!((a.uid, a.gid, a.mode), (1000, 1000, libc::S_IFREG | 0o640));
    assert_eq!(a.size, 5);
    let again = fx.root_lookup("f");
    assert_eq!(again.node, e.node);
    assert_eq!(again.attr.mode, libc::S_IFREG | 0o640);

    let host = fx.host("f");
    assert_host_plain(&host);
    assert_eq!(host.len(), 5);
    assert_eq!(fx.raw("f", "user.LXUID"), Some(le(1000)));
    assert_eq!(fx.raw("f", "user.LXGID"), Some(le(1000)));
    assert_eq!(fx.raw("f", "user.LXMOD"), Some(le(libc::S_IFREG | 0o640)));
    assert_eq!(fx.raw("f", "user.LXDEV"), None);
    fx.assert_outside_untouched();
}

#[test]
fn test_mkdir_guest_mode_in_xattr_host_dir_0700() {
    let Some(fx) = Fixture::new("test_mkdir_guest_mode_in_xattr_host_dir_0700") else {
        return;
    };
    let d = fx.fs.mkdir(ROOT_NODE, b"d", 0o1777, 0, 0).unwrap();
    assert_eq!(d.attr.mode, libc::S_IFDIR | 0o1777);
    assert_eq!((d.attr.uid, d.attr.gid), (0, 0));
    // A guest mode that would lock the server out does not reach the host.
    let locked = fx.fs.mkdir(d.node, b"locked", 0o000, 5, 6).unwrap();
    assert_eq!(locked.attr.mode, libc::S_IFDIR);
    let (inner, h) = fx
        .fs
        .create(locked.node, b"in", libc::O_WRONLY, 0o000, 5, 6)
        .unwrap();
    assert_eq!(inner.attr.mode, libc::S_IFREG);
    fx.fs.write(h, 0, b"x").unwrap();
    assert_host_plain(&fx.host("d"));
    assert_host_plain(&fx.host("d/locked"));
    assert_host_plain(&fx.host("d/locked/in"));
    assert_eq!(fx.raw("d", "user.LXMOD"), Some(le(libc::S_IFDIR | 0o1777)));
}

#[test]
fn test_chmod_chown_change_only_xattrs() {
    let Some(fx) = Fixture::new("test_chmod_chown_change_only_xattrs") else {
        return;
    };
    let (e, _) = fx
        .fs
        .create(ROOT_NODE, b"f", libc::O_RDWR, 0o644, 1000, 1000)
        .unwrap();
    let before = fx.host("f");
    let set = SetAttr {
        mode: Some(0o4755),
        ..SetAttr::default()
    };
    let a = fx.fs.setattr(e.node, None, &set).unwrap();
    assert_eq!(a.mode, libc::S_IFREG | 0o4755);
    let set = SetAttr {
        uid: Some(123),
        gid: Some(456),
        ..SetAttr::default()
    };
    let a = fx.fs.setattr(e.node, None, &set).unwrap();
    assert_eq!((a.uid, a.gid, a.mode), (123, 456, libc::S_IFREG | 0o4755));
    // Type bits in a chmod are ignored: the file type stays.
    let set = SetAttr {
        mode: Some(libc::S_IFDIR | 0o600),
        ..SetAttr::default()
    };
    let a = fx.fs.setattr(e.node, None, &set).unwrap();
    assert_eq!(a.mode, libc::S_IFREG | 0o600);
    let a = fx.fs.getattr(e.node).unwrap();
    assert_eq!((a.uid, a.gid, a.mode), (123, 456, libc::S_IFREG | 0o600));

    let after = fx.host("f");
    assert_eq!(
        (after.mode(), after.uid(), after.gid()),
        (before.mode(), before.uid(), before.gid()),
        "host mode and owner unchanged"
    );
    assert_host_plain(&after);
    assert_eq!(fx.raw("f", "user.LXUID"), Some(vec![123, 0, 0, 0]));
    assert_eq!(fx.raw("f", "user.LXGID"), Some(vec![0xc8, 1, 0, 0]));
    assert_eq!(fx.raw("f", "user.LXMOD"), Some(vec![0x80, 0x81, 0, 0])); // 0o100600
}

#[test]
fn test_setattr_size_and_times_go_to_host() {
    let Some(fx) = Fixture::new("test_setattr_size_and_times_go_to_host") else {
        return;
    };
    let (e, _) = fx
        .fs
        .create(ROOT_NODE, b"f", libc::O_RDWR, 0o644, 7, 7)
        .unwrap();
    let t = Timespec {
        sec: 1_000_000_000,
        nsec: 5,
    };
    let set = SetAttr {
        size: Some(100),
        mtime: TimeSet::At(t),
        uid: Some(8),
        ..SetAttr::default()
    };
    let a = fx.fs.setattr(e.node, None, &set).unwrap();
    assert_eq!((a.size, a.mtime, a.uid), (100, t, 8));
    let host = fx.host("f");
    assert_eq!(host.len(), 100);
    assert_eq!(host.mtime(), 1_000_000_000);
    assert_host_plain(&host);
    // Truncating a directory or a special file is refused on the guest's type.
    let d = fx.fs.mkdir(ROOT_NODE, b"d", 0o755, 0, 0).unwrap();
    let p = fx
        .fs
        .mknod(ROOT_NODE, b"p", libc::S_IFIFO | 0o644, 0, 0, 0)
        .unwrap();
    let trunc = SetAttr {
        size: Some(0),
        ..SetAttr::default()
    };
    assert_eq!(errno(fx.fs.setattr(d.node, None, &trunc)), libc::EISDIR);
    assert_eq!(errno(fx.fs.setattr(p.node, None, &trunc)), libc::EINVAL);
}

#[test]
fn test_preexisting_file_without_xattrs_shows_host_values() {
    let Some(fx) = Fixture::new("test_preexisting_file_without_xattrs_shows_host_values") else {
        return;
    };
    fx.put("old", b"data");
    fs::set_permissions(fx.share.join("old"), fs::Permissions::from_mode(0o640)).unwrap();
    let chowned = root_or_skip("test_preexisting_file_without_xattrs_shows_host_values (chown)");
    if chowned {
        std::os::unix::fs::lchown(fx.share.join("old"), Some(4242), Some(4343)).unwrap();
    }
    let host = fx.host("old");
    let e = fx.root_lookup("old");
    assert_eq!(e.attr.mode, libc::S_IFREG | 0o640);
    assert_eq!((e.attr.uid, e.attr.gid), (host.uid(), host.gid()));
    assert_eq!(e.attr.size, 4);
    if chowned {
        assert_eq!((e.attr.uid, e.attr.gid), (4242, 4343));
    }
    // chmod writes LXMOD only; the owner still comes from the host.
    let set = SetAttr {
        mode: Some(0o600),
        ..SetAttr::default()
    };
    let a = fx.fs.setattr(e.node, None, &set).unwrap();
    assert_eq!(a.mode, libc::S_IFREG | 0o600);
    assert_eq!((a.uid, a.gid), (host.uid(), host.gid()));
    assert_eq!(fx.raw("old", "user.LXMOD"), Some(le(libc::S_IFREG | 0o600)));
    assert_eq!(fx.raw("old", "user.LXUID"), None);
    assert_eq!(fx.host("old").mode() & 0o7777, 0o640, "host mode unchanged");
    // A malformed value is ignored.
    super::set_raw(&fx.share.join("old"), "user.LXUID", b"xyz").unwrap();
    assert_eq!(fx.fs.getattr(e.node).unwrap().uid, host.uid());
}

#[test]
fn test_sgid_directory_passes_group_and_bit() {
    let Some(fx) = Fixture::new("test_sgid_directory_passes_group_and_bit") else {
        return;
    };
    let d = fx.fs.mkdir(ROOT_NODE, b"d", 0o2775, 0, 50).unwrap();
    assert_eq!(d.attr.mode, libc::S_IFDIR | 0o2775);
    let (f, _) = fx
        .fs
        .create(d.node, b"f", libc::O_RDWR, 0o644, 1000, 1000)
        .unwrap();
    assert_eq!((f.attr.uid, f.attr.gid), (1000, 50));
    assert_eq!(f.attr.mode, libc::S_IFREG | 0o644);
    let sub = fx.fs.mkdir(d.node, b"sub", 0o755, 1000, 1000).unwrap();
    assert_eq!((sub.attr.gid, sub.attr.mode), (50, libc::S_IFDIR | 0o2755));
    let l = fx.fs.symlink(d.node, b"l", b"f", 1000, 1000).unwrap();
    assert_eq!(l.attr.gid, 50);
    // Outside the set-group-id directory the caller's group is kept.
    let (g, _) = fx
        .fs
        .create(ROOT_NODE, b"g", libc::O_RDWR, 0o644, 1000, 1000)
        .unwrap();
    assert_eq!(g.attr.gid, 1000);
}

#[test]
fn test_new_refuses_file_system_without_user_xattrs() {
    // procfs stores no user xattrs.
    let err = Mapped::new(Path::new("/proc/self"), Config::default()).unwrap_err();
    assert_eq!(err.errno(), libc::EOPNOTSUPP);
    let text = err.to_string();
    assert!(text.contains("user.* xattr"), "{text}");
    assert!(text.contains("mapped backend"), "{text}");
}

/// The server drops to an unprivileged file-system identity (this thread only): chown, chmod,
/// device nodes and symlinks still work, as metadata, and every host object stays its own.
#[test]
fn test_unprivileged_server_needs_no_privilege() {
    const NOBODY: u32 = 65534;
    if !root_or_skip("test_unprivileged_server_needs_no_privilege") {
        return;
    }
    let Some(tmp) = xattr_tempdir("test_unprivileged_server_needs_no_privilege") else {
        return;
    };
    let share = tmp.path().join("share");
    fs::create_dir(&share).unwrap();
    fs::set_permissions(&share, fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&share, Some(NOBODY), Some(NOBODY)).unwrap();
    let secret = tmp.path().join("secret");
    fs::write(&secret, b"root only").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let fs = Mapped::new(&share, Config::default()).unwrap();

    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: setfsgid/setfsuid change only this thread's file-system ids (and drop its
            // file-system capabilities); the thread ends with the scope.
            unsafe {
                libc::syscall(libc::SYS_setfsgid, NOBODY);
                libc::syscall(libc::SYS_setfsuid, NOBODY);
            }
            // The thread really is unprivileged now.
            let denied = fs::File::open(&secret).unwrap_err();
            assert_eq!(denied.raw_os_error(), Some(libc::EACCES));

            let (f, h) = fs
                .create(ROOT_NODE, b"f", libc::O_RDWR, 0o644, 0, 0)
                .unwrap();
            fs.write(h, 0, b"data").unwrap();
            let set = SetAttr {
                uid: Some(1000),
                gid: Some(1000),
                mode: Some(0o4711),
                ..SetAttr::default()
            };
            let a = fs.setattr(f.node, None, &set).unwrap();
            assert_eq!((a.uid, a.gid, a.mode), (1000, 1000, libc::S_IFREG | 0o4711));
            let dev = libc::makedev(1, 3) as u64;
            let c = fs
                .mknod(ROOT_NODE, b"null", libc::S_IFCHR | 0o666, dev, 0, 0)
                .unwrap();
            assert_eq!((c.attr.mode, c.attr.rdev), (libc::S_IFCHR | 0o666, dev));
            fs.symlink(ROOT_NODE, b"l", b"f", 0, 0).unwrap();
            let d = fs.mkdir(ROOT_NODE, b"d", 0o000, 0, 0).unwrap();
            let (_, h2) = fs.create(d.node, b"in", libc::O_RDWR, 0o000, 0, 0).unwrap();
            fs.write(h2, 0, b"x").unwrap();
            fs.link(f.node, d.node, b"hard").unwrap();
            let h3 = fs.open(f.node, libc::O_RDWR).unwrap();
            assert_eq!(fs.write(h3, 4, b"more").unwrap(), 4);
        });
    });

    for rel in ["f", "null", "l", "d", "d/in"] {
        let m = fs::symlink_metadata(share.join(rel)).unwrap();
        assert_eq!(m.uid(), NOBODY, "{rel}");
        let kind = m.mode() & libc::S_IFMT;
        let want = if kind == libc::S_IFDIR { 0o700 } else { 0o600 };
        assert_eq!(m.mode() & 0o7777, want, "{rel}");
        assert!(kind == libc::S_IFREG || kind == libc::S_IFDIR, "{rel}");
    }
    assert_eq!(fs::read(share.join("d/hard")).unwrap(), b"datamore");
    assert_eq!(
        super::get_raw(&share.join("f"), "user.LXUID"),
        Some(le(1000))
    );
}
