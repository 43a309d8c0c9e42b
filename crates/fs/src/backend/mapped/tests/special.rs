//! Special files, symlinks and hard links: regular host files whose type is metadata.

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};

use super::{assert_host_plain, errno, le, Fixture};
use crate::backend::{dtype, Backend, SetAttr, ROOT_NODE};

#[test]
fn test_mknod_fifo_and_socket_are_regular_host_files() {
    let Some(fx) = Fixture::new("test_mknod_fifo_and_socket_are_regular_host_files") else {
        return;
    };
    let p = fx
        .fs
        .mknod(ROOT_NODE, b"p", libc::S_IFIFO | 0o620, 0, 1, 2)
        .unwrap();
    assert_eq!(p.attr.mode, libc::S_IFIFO | 0o620);
    assert_eq!((p.attr.uid, p.attr.gid, p.attr.rdev), (1, 2, 0));
    let s = fx
        .fs
        .mknod(ROOT_NODE, b"s", libc::S_IFSOCK | 0o755, 0, 1, 2)
        .unwrap();
    assert_eq!(s.attr.mode, libc::S_IFSOCK | 0o755);
    let r = fx.fs.mknod(ROOT_NODE, b"r", 0o644, 0, 1, 2).unwrap();
    assert_eq!(r.attr.mode, libc::S_IFREG | 0o644);
    for name in ["p", "s", "r"] {
        let host = fx.host(name);
        assert_host_plain(&host);
        assert_eq!(host.len(), 0);
        assert_eq!(fx.raw(name, "user.LXDEV"), None);
    }
    assert_eq!(fx.raw("p", "user.LXMOD"), Some(le(libc::S_IFIFO | 0o620)));
    // An open that reaches the backend opens the plain file; it never blocks like a FIFO.
    let h = fx.fs.open(p.node, libc::O_RDONLY).unwrap();
    assert_eq!(fx.read_all(h), b"");
    assert_eq!(
        errno(fx.fs.mknod(ROOT_NODE, b"d", libc::S_IFDIR | 0o755, 0, 0, 0)),
        libc::EINVAL
    );
    assert_eq!(
        errno(fx.fs.mknod(ROOT_NODE, b"x", 0o170000 | 0o644, 0, 0, 0)),
        libc::EINVAL
    );
}

#[test]
fn test_mknod_devices_show_type_and_rdev() {
    let Some(fx) = Fixture::new("test_mknod_devices_show_type_and_rdev") else {
        return;
    };
    let null = libc::makedev(1, 3) as u64;
    let c = fx
        .fs
        .mknod(ROOT_NODE, b"null", libc::S_IFCHR | 0o666, null, 0, 0)
        .unwrap();
    assert_eq!((c.attr.mode, c.attr.rdev), (libc::S_IFCHR | 0o666, null));
    // Majors and minors beyond the old 8/12-bit fields survive.
    let big = libc::makedev(259, 65_537) as u64;
    let b = fx
        .fs
        .mknod(ROOT_NODE, b"nvme", libc::S_IFBLK | 0o660, big, 0, 6)
        .unwrap();
    assert_eq!((b.attr.mode, b.attr.rdev), (libc::S_IFBLK | 0o660, big));
    let a = fx.fs.getattr(b.node).unwrap();
    assert_eq!((a.mode, a.rdev, a.gid), (libc::S_IFBLK | 0o660, big, 6));

    assert_host_plain(&fx.host("null"));
    assert_eq!(fx.host("null").rdev(), 0);
    assert_eq!(
        fx.raw("null", "user.LXDEV"),
        Some(vec![1, 0, 0, 0, 3, 0, 0, 0])
    );
    assert_eq!(
        fx.raw("nvme", "user.LXDEV"),
        Some(vec![3, 1, 0, 0, 1, 0, 1, 0])
    );
    assert_eq!(
        fx.raw("nvme", "user.LXMOD"),
        Some(le(libc::S_IFBLK | 0o660))
    );
    // chmod keeps the type and the device number.
    let set = SetAttr {
        mode: Some(0o600),
        ..SetAttr::default()
    };
    let a = fx.fs.setattr(c.node, None, &set).unwrap();
    assert_eq!((a.mode, a.rdev), (libc::S_IFCHR | 0o600, null));
}

#[test]
fn test_symlink_readlink_and_type() {
    let Some(fx) = Fixture::new("test_symlink_readlink_and_type") else {
        return;
    };
    let target = b"some/where/../target";
    let l = fx.fs.symlink(ROOT_NODE, b"l", target, 1000, 100).unwrap();
    assert_eq!(l.attr.mode, libc::S_IFLNK | 0o777);
    assert_eq!((l.attr.uid, l.attr.gid), (1000, 100));
    assert_eq!(l.attr.size, target.len() as u64);
    assert_eq!(fx.fs.readlink(l.node).unwrap(), target);
    let again = fx.root_lookup("l");
    assert_eq!(again.attr.mode & libc::S_IFMT, libc::S_IFLNK);
    assert_eq!(again.attr.size, target.len() as u64);
    // The host has a regular file holding the target.
    assert_host_plain(&fx.host("l"));
    assert_eq!(fs::read(fx.share.join("l")).unwrap(), target);
    assert_eq!(fx.raw("l", "user.LXMOD"), Some(le(libc::S_IFLNK | 0o777)));
    // A symlink is never opened, nor chmod-ed, nor truncated.
    assert_eq!(errno(fx.fs.open(l.node, libc::O_RDONLY)), libc::ELOOP);
    let chmod = SetAttr {
        mode: Some(0o600),
        ..SetAttr::default()
    };
    assert_eq!(errno(fx.fs.setattr(l.node, None, &chmod)), libc::EOPNOTSUPP);
    let trunc = SetAttr {
        size: Some(0),
        ..SetAttr::default()
    };
    assert_eq!(errno(fx.fs.setattr(l.node, None, &trunc)), libc::EINVAL);
    // chown of a symlink is metadata like any other.
    let chown = SetAttr {
        uid: Some(5),
        ..SetAttr::default()
    };
    assert_eq!(fx.fs.setattr(l.node, None, &chown).unwrap().uid, 5);
    // create over it with O_TRUNC is ELOOP and leaves the target intact.
    let flags = libc::O_RDWR | libc::O_TRUNC;
    assert_eq!(
        errno(fx.fs.create(ROOT_NODE, b"l", flags, 0o644, 0, 0)),
        libc::ELOOP
    );
    assert_eq!(
        errno(fx.fs.create(ROOT_NODE, b"l", libc::O_RDWR, 0o644, 0, 0)),
        libc::ELOOP
    );
    assert_eq!(fx.fs.readlink(l.node).unwrap(), target);
    // readlink of a non-symlink is EINVAL.
    let (f, _) = fx
        .fs
        .create(ROOT_NODE, b"f", libc::O_RDWR, 0o644, 0, 0)
        .unwrap();
    assert_eq!(errno(fx.fs.readlink(f.node)), libc::EINVAL);
}

#[test]
fn test_symlink_target_bounds() {
    let Some(fx) = Fixture::new("test_symlink_target_bounds") else {
        return;
    };
    assert_eq!(
        errno(fx.fs.symlink(ROOT_NODE, b"e", b"", 0, 0)),
        libc::ENOENT
    );
    let long = vec![b'a'; 4096];
    assert_eq!(
        errno(fx.fs.symlink(ROOT_NODE, b"e", &long, 0, 0)),
        libc::ENAMETOOLONG
    );
    assert_eq!(
        errno(fx.fs.symlink(ROOT_NODE, b"e", b"a\0b", 0, 0)),
        libc::EINVAL
    );
    let max = vec![b'a'; 4095];
    let l = fx.fs.symlink(ROOT_NODE, b"max", &max, 0, 0).unwrap();
    assert_eq!(fx.fs.readlink(l.node).unwrap(), max);
    assert_eq!(fx.listing(), vec!["max"]);
    // A host file grown past PATH_MAX behind the server's back is not returned.
    fs::write(fx.share.join("max"), vec![b'b'; 5000]).unwrap();
    assert_eq!(errno(fx.fs.readlink(l.node)), libc::EIO);
}

#[test]
fn test_hard_link_shares_metadata() {
    let Some(fx) = Fixture::new("test_hard_link_shares_metadata") else {
        return;
    };
    let (f, _) = fx
        .fs
        .create(ROOT_NODE, b"f", libc::O_RDWR, 0o640, 1000, 1000)
        .unwrap();
    let g = fx.fs.link(f.node, ROOT_NODE, b"g").unwrap();
    assert_eq!(g.node, f.node);
    assert_eq!(g.attr.nlink, 2);
    assert_eq!((g.attr.uid, g.attr.mode), (1000, libc::S_IFREG | 0o640));
    let set = SetAttr {
        uid: Some(7),
        mode: Some(0o600),
        ..SetAttr::default()
    };
    fx.fs.setattr(g.node, None, &set).unwrap();
    let via_f = fx.root_lookup("f");
    assert_eq!(
        (via_f.attr.uid, via_f.attr.mode),
        (7, libc::S_IFREG | 0o600)
    );
    assert_eq!(fx.raw("f", "user.LXUID"), Some(le(7)));
    // A linked device keeps its type and number under both names.
    let dev = libc::makedev(4, 64) as u64;
    let c = fx
        .fs
        .mknod(ROOT_NODE, b"tty", libc::S_IFCHR | 0o620, dev, 0, 5)
        .unwrap();
    let c2 = fx.fs.link(c.node, ROOT_NODE, b"tty2").unwrap();
    assert_eq!((c2.attr.mode, c2.attr.rdev), (libc::S_IFCHR | 0o620, dev));
}

#[test]
fn test_preexisting_host_symlink_shown_as_symlink() {
    let Some(fx) = Fixture::new("test_preexisting_host_symlink_shown_as_symlink") else {
        return;
    };
    symlink("target/of/host", fx.share.join("hl")).unwrap();
    let l = fx.root_lookup("hl");
    assert_eq!(l.attr.mode & libc::S_IFMT, libc::S_IFLNK);
    assert_eq!(fx.fs.readlink(l.node).unwrap(), b"target/of/host");
    assert_eq!(errno(fx.fs.open(l.node, libc::O_RDONLY)), libc::ELOOP);
    // It cannot carry metadata: a change is refused, a no-op is fine.
    let chown = SetAttr {
        uid: Some(l.attr.uid.wrapping_add(1)),
        ..SetAttr::default()
    };
    assert_eq!(errno(fx.fs.setattr(l.node, None, &chown)), libc::EOPNOTSUPP);
    let same = SetAttr {
        uid: Some(l.attr.uid),
        ..SetAttr::default()
    };
    assert!(fx.fs.setattr(l.node, None, &same).is_ok());
}

#[test]
fn test_readdir_reports_guest_types() {
    let Some(fx) = Fixture::new("test_readdir_reports_guest_types") else {
        return;
    };
    fx.fs
        .mknod(ROOT_NODE, b"fifo", libc::S_IFIFO | 0o644, 0, 0, 0)
        .unwrap();
    fx.fs
        .mknod(ROOT_NODE, b"sock", libc::S_IFSOCK | 0o644, 0, 0, 0)
        .unwrap();
    fx.fs
        .mknod(ROOT_NODE, b"chr", libc::S_IFCHR | 0o644, 0x103, 0, 0)
        .unwrap();
    fx.fs
        .mknod(ROOT_NODE, b"blk", libc::S_IFBLK | 0o644, 0x801, 0, 0)
        .unwrap();
    fx.fs.symlink(ROOT_NODE, b"lnk", b"x", 0, 0).unwrap();
    fx.fs.mkdir(ROOT_NODE, b"dir", 0o755, 0, 0).unwrap();
    fx.fs
        .create(ROOT_NODE, b"reg", libc::O_RDWR, 0o644, 0, 0)
        .unwrap();
    fx.put("plain", b"host file, no xattrs");
    symlink("x", fx.share.join("hostlnk")).unwrap();
    let root = fx
        .fs
        .open(ROOT_NODE, libc::O_RDONLY | libc::O_DIRECTORY)
        .unwrap();
    let mut seen = Vec::new();
    fx.fs
        .readdir(root, 0, &mut |e| {
            seen.push((String::from_utf8(e.name.clone()).unwrap(), e.kind));
            true
        })
        .unwrap();
    seen.sort();
    let want = [
        (".", dtype::DIR),
        ("..", dtype::DIR),
        ("blk", dtype::BLK),
        ("chr", dtype::CHR),
        ("dir", dtype::DIR),
        ("fifo", dtype::FIFO),
        ("hostlnk", dtype::LNK),
        ("lnk", dtype::LNK),
        ("plain", dtype::REG),
        ("reg", dtype::REG),
        ("sock", dtype::SOCK),
    ];
    let want: Vec<(String, u8)> = want.iter().map(|(n, k)| (n.to_string(), *k)).collect();
    assert_eq!(seen, want);
}
