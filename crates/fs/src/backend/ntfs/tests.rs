//! The NTFS backend over the fake NT volume: metadata in WSL's EAs, special files as WSL's
//! reparse points, escaping, POSIX namespace semantics, listings, xattrs, locks.

#![allow(clippy::unwrap_used)]

use super::fake::FakeNt;
use super::*;
use crate::backend::{
    dtype, LockType, TimeSet, Timespec, RENAME_EXCHANGE, RENAME_NOREPLACE, ROOT_NODE, XATTR_CREATE,
    XATTR_REPLACE,
};
use crate::linux::*;
use crate::wsl::ea::Ea;
use crate::wsl::meta::{EA_DEV, EA_GID, EA_MODE, EA_UID};
use crate::wsl::reparse;

struct Fx {
    nt: FakeNt,
    fs: Ntfs<FakeNt>,
}

fn fx_with(config: Config) -> Fx {
    let nt = FakeNt::new();
    let root = nt.root();
    let fs = Ntfs::new(nt.clone(), root, config).unwrap();
    Fx { nt, fs }
}

fn fx() -> Fx {
    fx_with(Config::default())
}

fn errno<T: std::fmt::Debug>(r: Result<T>) -> i32 {
    r.unwrap_err().errno()
}

impl Fx {
    fn file(&self, name: &str, data: &[u8]) -> Entry {
        let (e, h) = self
            .fs
            .create(ROOT_NODE, name.as_bytes(), O_RDWR, 0o640, 1000, 100)
            .unwrap();
        assert_eq!(self.fs.write(h, 0, data).unwrap(), data.len());
        self.fs.release(h).unwrap();
        e
    }

    fn read_all(&self, node: NodeId) -> Vec<u8> {
        let h = self.fs.open(node, O_RDONLY).unwrap();
        let mut buf = vec![0u8; 1 << 16];
        let n = self.fs.read(h, 0, &mut buf).unwrap();
        self.fs.release(h).unwrap();
        buf.truncate(n);
        buf
    }

    fn names(&self, node: NodeId) -> Vec<String> {
        let h = self.fs.open(node, O_RDONLY | O_DIRECTORY).unwrap();
        let mut out = Vec::new();
        self.fs
            .readdir(h, 0, &mut |e| {
                out.push(String::from_utf8(e.name.clone()).unwrap());
                true
            })
            .unwrap();
        self.fs.release(h).unwrap();
        out.retain(|n| n != "." && n != "..");
        out.sort();
        out
    }
}

#[test]
fn test_create_writes_wsl_metadata_eas_with_the_file() {
    let fx = fx();
    let e = fx.file("f", b"hello");
    assert_eq!(e.attr.mode, S_IFREG | 0o640);
    assert_eq!((e.attr.uid, e.attr.gid), (1000, 100));
    let eas = fx.nt.stored_eas("f").unwrap();
    assert_eq!(
        eas,
        [
            Ea::new(EA_UID, &1000u32.to_le_bytes()),
            Ea::new(EA_GID, &100u32.to_le_bytes()),
            Ea::new(EA_MODE, &(S_IFREG | 0o640).to_le_bytes()),
        ]
    );
    let attr = fx.fs.getattr(e.node).unwrap();
    assert_eq!(attr.size, 5);
    assert_eq!(attr.nlink, 1);
    assert_eq!(fx.read_all(e.node), b"hello");
}

#[test]
fn test_files_windows_made_show_the_config_owner_and_default_modes() {
    let fx = fx_with(Config {
        uid: 7,
        gid: 8,
        ..Config::default()
    });
    // A file and a directory made without EAs (as a Windows program makes them).
    let root = fx.nt.root();
    let request = |want| nt::OpenRequest {
        access: u32::MAX,
        disposition: nt::Disposition::Create,
        want,
        attributes: 0,
        eas: &[],
    };
    let name: Vec<u16> = "win".encode_utf16().collect();
    fx.nt
        .open(&root, &name, &request(Want::NonDirectory))
        .unwrap();
    let dir: Vec<u16> = "windir".encode_utf16().collect();
    fx.nt.open(&root, &dir, &request(Want::Directory)).unwrap();
    let f = fx.fs.lookup(ROOT_NODE, b"win").unwrap();
    assert_eq!(f.attr.mode, S_IFREG | 0o644);
    assert_eq!((f.attr.uid, f.attr.gid), (7, 8));
    let d = fx.fs.lookup(ROOT_NODE, b"windir").unwrap();
    assert_eq!(d.attr.mode, S_IFDIR | 0o755);
    assert_eq!(d.attr.nlink, 1);
}

#[test]
fn test_names_are_escaped_so_a_colon_never_opens_a_stream() {
    let fx = fx();
    for name in [
        "a:b",
        "what?",
        "x|y",
        "back\\slash",
        "star*",
        "q\"uote",
        "<>",
        "tab\there",
    ] {
        let e = fx.file(name, name.as_bytes());
        assert_eq!(
            fx.fs.lookup(ROOT_NODE, name.as_bytes()).unwrap().node,
            e.node
        );
        assert_eq!(fx.read_all(e.node), name.as_bytes());
    }
    // NTFS holds the escaped form; the guest lists the original.
    assert!(fx.nt.root_names().contains(&"a\u{f03a}b".to_string()));
    assert!(fx.names(ROOT_NODE).contains(&"a:b".to_string()));
}

#[test]
fn test_bad_names_are_refused() {
    let fx = fx();
    let create = |name: &[u8]| fx.fs.create(ROOT_NODE, name, O_RDWR, 0o600, 0, 0);
    assert_eq!(errno(create(b"\xff\xfe")), EINVAL);
    assert_eq!(errno(create(b"CON")), EINVAL);
    assert_eq!(errno(create(b"nul.txt")), EINVAL);
    assert_eq!(errno(create(b"..")), EINVAL);
    assert_eq!(errno(create(b"a/b")), EINVAL);
    assert_eq!(errno(create(&[b'a'; 256])), ENAMETOOLONG);
    assert_eq!(errno(fx.fs.lookup(ROOT_NODE, b"..")), EINVAL);
    assert_eq!(errno(fx.fs.lookup(ROOT_NODE, b"absent")), ENOENT);
    // A lookup of a name that is a device name is only a lookup.
    assert_eq!(errno(fx.fs.lookup(ROOT_NODE, b"con")), ENOENT);
}

#[test]
fn test_symlink_is_a_wsl_lx_symlink_reparse_point() {
    let fx = fx();
    let e = fx
        .fs
        .symlink(ROOT_NODE, b"l", b"../target dir/x", 1, 2)
        .unwrap();
    assert_eq!(e.attr.mode, S_IFLNK | 0o777);
    assert_eq!(e.attr.size, 15);
    assert_eq!(fx.fs.readlink(e.node).unwrap(), b"../target dir/x");
    assert_eq!(
        fx.nt.stored_reparse("l").unwrap(),
        reparse::lx_symlink(b"../target dir/x").unwrap()
    );
    let eas = fx.nt.stored_eas("l").unwrap();
    assert!(eas.contains(&Ea::new(EA_MODE, &(S_IFLNK | 0o777).to_le_bytes())));
    assert_eq!(errno(fx.fs.open(e.node, O_RDONLY)), ELOOP);
    assert_eq!(errno(fx.fs.symlink(ROOT_NODE, b"l2", b"", 0, 0)), ENOENT);
    assert_eq!(
        errno(fx.fs.symlink(ROOT_NODE, b"l3", &[b'a'; 4096], 0, 0)),
        ENAMETOOLONG
    );
    assert_eq!(errno(fx.fs.readlink(fx.file("plain", b"").node)), EINVAL);
}

#[test]
fn test_mknod_makes_wsl_special_files() {
    let fx = fx();
    let fifo = fx
        .fs
        .mknod(ROOT_NODE, b"p", S_IFIFO | 0o600, 0, 0, 0)
        .unwrap();
    assert_eq!(fifo.attr.mode, S_IFIFO | 0o600);
    assert_eq!(
        fx.nt.stored_reparse("p").unwrap(),
        reparse::special(S_IFIFO).unwrap()
    );
    let rdev = crate::wsl::meta::makedev(1, 3);
    let chr = fx
        .fs
        .mknod(ROOT_NODE, b"null", S_IFCHR | 0o666, rdev, 0, 0)
        .unwrap();
    assert_eq!(chr.attr.mode, S_IFCHR | 0o666);
    assert_eq!(chr.attr.rdev, rdev);
    let eas = fx.nt.stored_eas("null").unwrap();
    assert!(eas.contains(&Ea::new(EA_DEV, &crate::wsl::meta::encode_dev(1, 3))));
    let sock = fx
        .fs
        .mknod(ROOT_NODE, b"s", S_IFSOCK | 0o755, 0, 0, 0)
        .unwrap();
    assert_eq!(sock.attr.mode & S_IFMT, S_IFSOCK);
    let reg = fx.fs.mknod(ROOT_NODE, b"r", 0o600, 0, 0, 0).unwrap();
    assert_eq!(reg.attr.mode, S_IFREG | 0o600);
    assert_eq!(errno(fx.fs.open(fifo.node, O_RDONLY)), ENXIO);
    assert_eq!(
        errno(fx.fs.mknod(ROOT_NODE, b"d", S_IFDIR | 0o755, 0, 0, 0)),
        EINVAL
    );
    // Listing types come from the reparse tags.
    let h = fx.fs.open(ROOT_NODE, O_RDONLY).unwrap();
    let mut kinds = std::collections::HashMap::new();
    fx.fs
        .readdir(h, 0, &mut |e| {
            kinds.insert(e.name.clone(), e.kind);
            true
        })
        .unwrap();
    assert_eq!(kinds[&b"p".to_vec()], dtype::FIFO);
    assert_eq!(kinds[&b"null".to_vec()], dtype::CHR);
    assert_eq!(kinds[&b"s".to_vec()], dtype::SOCK);
    assert_eq!(kinds[&b"r".to_vec()], dtype::REG);
}

#[test]
fn test_unlink_is_posix_an_open_file_stays_readable() {
    let fx = fx();
    let e = fx.file("f", b"data");
    let h = fx.fs.open(e.node, O_RDONLY).unwrap();
    fx.fs.unlink(ROOT_NODE, b"f").unwrap();
    assert_eq!(errno(fx.fs.lookup(ROOT_NODE, b"f")), ENOENT);
    let mut buf = [0u8; 8];
    assert_eq!(fx.fs.read(h, 0, &mut buf).unwrap(), 4);
    // The name is free again at once.
    fx.file("f", b"new");
    fx.fs.release(h).unwrap();
    fx.fs.forget(e.node, 1);
    assert_eq!(errno(fx.fs.unlink(ROOT_NODE, b"absent")), ENOENT);
}

#[test]
fn test_unlink_and_rmdir_check_the_type_and_emptiness() {
    let fx = fx();
    let d = fx.fs.mkdir(ROOT_NODE, b"d", 0o755, 0, 0).unwrap();
    fx.file("f", b"");
    assert_eq!(errno(fx.fs.unlink(ROOT_NODE, b"d")), EISDIR);
    assert_eq!(errno(fx.fs.rmdir(ROOT_NODE, b"f")), ENOTDIR);
    let (_, h) = fx.fs.create(d.node, b"inner", O_RDWR, 0o600, 0, 0).unwrap();
    fx.fs.release(h).unwrap();
    assert_eq!(errno(fx.fs.rmdir(ROOT_NODE, b"d")), ENOTEMPTY);
    fx.fs.unlink(d.node, b"inner").unwrap();
    fx.fs.rmdir(ROOT_NODE, b"d").unwrap();
    // A symlink is removed by unlink, whatever it points at.
    fx.fs.symlink(ROOT_NODE, b"l", b"/", 0, 0).unwrap();
    assert_eq!(errno(fx.fs.rmdir(ROOT_NODE, b"l")), ENOTDIR);
    fx.fs.unlink(ROOT_NODE, b"l").unwrap();
}

#[test]
fn test_hard_links_count_and_share_metadata() {
    let fx = fx();
    let e = fx.file("a", b"x");
    let d = fx.fs.mkdir(ROOT_NODE, b"d", 0o755, 0, 0).unwrap();
    let l = fx.fs.link(e.node, d.node, b"b").unwrap();
    assert_eq!(l.node, e.node, "one file, one node");
    assert_eq!(l.attr.nlink, 2);
    fx.fs
        .setattr(
            e.node,
            None,
            &SetAttr {
                mode: Some(0o600),
                ..SetAttr::default()
            },
        )
        .unwrap();
    assert_eq!(
        fx.fs.lookup(d.node, b"b").unwrap().attr.mode,
        S_IFREG | 0o600
    );
    fx.fs.unlink(ROOT_NODE, b"a").unwrap();
    assert_eq!(fx.fs.getattr(e.node).unwrap().nlink, 1);
    assert_eq!(errno(fx.fs.link(d.node, ROOT_NODE, b"dlink")), EPERM);
    assert_eq!(errno(fx.fs.link(e.node, d.node, b"b")), EEXIST);
}

#[test]
fn test_rename_posix_cases() {
    let fx = fx();
    fx.file("a", b"A");
    fx.file("b", b"B");
    // Replace a file.
    fx.fs.rename(ROOT_NODE, b"a", ROOT_NODE, b"b", 0).unwrap();
    assert_eq!(
        fx.read_all(fx.fs.lookup(ROOT_NODE, b"b").unwrap().node),
        b"A"
    );
    assert_eq!(errno(fx.fs.lookup(ROOT_NODE, b"a")), ENOENT);
    // NOREPLACE and EXCHANGE.
    fx.file("c", b"C");
    assert_eq!(
        errno(
            fx.fs
                .rename(ROOT_NODE, b"c", ROOT_NODE, b"b", RENAME_NOREPLACE)
        ),
        EEXIST
    );
    assert_eq!(
        errno(
            fx.fs
                .rename(ROOT_NODE, b"c", ROOT_NODE, b"b", RENAME_EXCHANGE)
        ),
        EINVAL
    );
    fx.fs
        .rename(ROOT_NODE, b"c", ROOT_NODE, b"c2", RENAME_NOREPLACE)
        .unwrap();
    // Directories: over an empty one it goes; over a non-empty one ENOTEMPTY; types checked.
    let d1 = fx.fs.mkdir(ROOT_NODE, b"d1", 0o755, 0, 0).unwrap();
    fx.fs.mkdir(ROOT_NODE, b"d2", 0o755, 0, 0).unwrap();
    fx.fs.rename(ROOT_NODE, b"d1", ROOT_NODE, b"d2", 0).unwrap();
    assert_eq!(fx.fs.lookup(ROOT_NODE, b"d2").unwrap().node, d1.node);
    let d3 = fx.fs.mkdir(ROOT_NODE, b"d3", 0o755, 0, 0).unwrap();
    fx.fs.mkdir(d3.node, b"inner", 0o755, 0, 0).unwrap();
    assert_eq!(
        errno(fx.fs.rename(ROOT_NODE, b"d2", ROOT_NODE, b"d3", 0)),
        ENOTEMPTY
    );
    assert_eq!(
        errno(fx.fs.rename(ROOT_NODE, b"b", ROOT_NODE, b"d3", 0)),
        EISDIR
    );
    assert_eq!(
        errno(fx.fs.rename(ROOT_NODE, b"d3", ROOT_NODE, b"b", 0)),
        ENOTDIR
    );
    // Into its own subdirectory.
    assert_eq!(
        errno(fx.fs.rename(ROOT_NODE, b"d3", d3.node, b"x", 0)),
        EINVAL
    );
    // Two names of one file: nothing happens.
    let b = fx.fs.lookup(ROOT_NODE, b"b").unwrap();
    fx.fs.link(b.node, ROOT_NODE, b"b2").unwrap();
    fx.fs.rename(ROOT_NODE, b"b", ROOT_NODE, b"b2", 0).unwrap();
    assert!(fx.fs.lookup(ROOT_NODE, b"b").is_ok());
    assert_eq!(fx.fs.getattr(b.node).unwrap().nlink, 2);
}

#[test]
fn test_guest_directories_are_case_sensitive_the_root_is_not() {
    let fx = fx();
    let d = fx.fs.mkdir(ROOT_NODE, b"d", 0o755, 0, 0).unwrap();
    let (a, h) = fx.fs.create(d.node, b"a", O_RDWR, 0o600, 0, 0).unwrap();
    fx.fs.release(h).unwrap();
    let (big_a, h) = fx
        .fs
        .create(d.node, b"A", O_RDWR | O_EXCL, 0o600, 0, 0)
        .unwrap();
    fx.fs.release(h).unwrap();
    assert_ne!(a.node, big_a.node);
    assert_eq!(fx.names(d.node), ["A", "a"]);
    // The share root (made by Windows) is case-insensitive: another case finds the file.
    let f = fx.file("Mixed", b"");
    assert_eq!(fx.fs.lookup(ROOT_NODE, b"mIXED").unwrap().node, f.node);
    let r = fx
        .fs
        .create(ROOT_NODE, b"MIXED", O_RDWR | O_EXCL, 0o600, 0, 0);
    assert_eq!(errno(r), EEXIST);
    // A change of case renames in place.
    fx.fs
        .rename(ROOT_NODE, b"Mixed", ROOT_NODE, b"mixed", 0)
        .unwrap();
    assert!(fx.names(ROOT_NODE).contains(&"mixed".to_string()));
}

#[test]
fn test_readdir_offsets_are_stable_while_entries_change() {
    let fx = fx();
    for i in 0..10 {
        fx.file(&format!("f{i}"), b"");
    }
    let h = fx.fs.open(ROOT_NODE, O_RDONLY).unwrap();
    let mut first = Vec::new();
    fx.fs
        .readdir(h, 0, &mut |e| {
            first.push(e.clone());
            first.len() < 5
        })
        .unwrap();
    assert_eq!(first.len(), 5);
    // Entries removed meanwhile do not shift the offsets of the rest.
    fx.fs.unlink(ROOT_NODE, b"f7").unwrap();
    let mut rest = Vec::new();
    fx.fs
        .readdir(h, first[3].offset, &mut |e| {
            rest.push(e.clone());
            true
        })
        .unwrap();
    let mut names: Vec<_> = first[..4]
        .iter()
        .chain(&rest)
        .map(|e| e.name.clone())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 12, "every entry once, with . and ..");
    // From 0 again: a fresh listing.
    let mut again = 0;
    fx.fs
        .readdir(h, 0, &mut |_| {
            again += 1;
            true
        })
        .unwrap();
    assert_eq!(again, 11);
    fx.fs.release(h).unwrap();
}

#[test]
fn test_setattr_chmod_chown_truncate_and_times() {
    let fx = fx();
    let e = fx.file("f", b"0123456789");
    let attr = fx
        .fs
        .setattr(
            e.node,
            None,
            &SetAttr {
                mode: Some(0o4751),
                uid: Some(5),
                gid: Some(6),
                size: Some(3),
                atime: TimeSet::At(Timespec {
                    sec: 1000,
                    nsec: 500,
                }),
                mtime: TimeSet::At(Timespec { sec: 2000, nsec: 0 }),
            },
        )
        .unwrap();
    assert_eq!(attr.mode, S_IFREG | 0o4751);
    assert_eq!((attr.uid, attr.gid, attr.size), (5, 6, 3));
    assert_eq!(
        attr.atime,
        Timespec {
            sec: 1000,
            nsec: 500
        }
    );
    assert_eq!(attr.mtime, Timespec { sec: 2000, nsec: 0 });
    let d = fx.fs.mkdir(ROOT_NODE, b"d", 0o755, 0, 0).unwrap();
    let trunc_dir = SetAttr {
        size: Some(0),
        ..SetAttr::default()
    };
    assert_eq!(errno(fx.fs.setattr(d.node, None, &trunc_dir)), EISDIR);
    let l = fx.fs.symlink(ROOT_NODE, b"l", b"x", 0, 0).unwrap();
    let chmod = SetAttr {
        mode: Some(0o600),
        ..SetAttr::default()
    };
    assert_eq!(errno(fx.fs.setattr(l.node, None, &chmod)), EOPNOTSUPP);
}

#[test]
fn test_open_flags_append_trunc_excl_and_access() {
    let fx = fx();
    let e = fx.file("f", b"abc");
    let h = fx.fs.open(e.node, O_WRONLY | O_APPEND).unwrap();
    fx.fs.write(h, 0, b"def").unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(errno(fx.fs.read(h, 0, &mut buf)), EBADF, "write-only");
    fx.fs.release(h).unwrap();
    assert_eq!(fx.read_all(e.node), b"abcdef");
    let h = fx.fs.open(e.node, O_RDONLY).unwrap();
    assert_eq!(errno(fx.fs.write(h, 0, b"x")), EBADF, "read-only");
    fx.fs.release(h).unwrap();
    let h = fx.fs.open(e.node, O_RDWR | O_TRUNC).unwrap();
    fx.fs.release(h).unwrap();
    assert_eq!(fx.fs.getattr(e.node).unwrap().size, 0);
    let r = fx.fs.create(ROOT_NODE, b"f", O_RDWR | O_EXCL, 0o600, 0, 0);
    assert_eq!(errno(r), EEXIST);
    assert_eq!(errno(fx.fs.open(ROOT_NODE, O_RDWR)), EISDIR);
    assert_eq!(errno(fx.fs.open(e.node, O_ACCMODE)), EINVAL);
}

#[test]
fn test_xattrs_are_lx_eas_and_list_in_lower_case() {
    let fx = fx();
    let e = fx.file("f", b"");
    fx.fs.setxattr(e.node, b"user.test", b"foo", 0).unwrap();
    fx.fs.setxattr(e.node, b"user.empty", b"", 0).unwrap();
    assert_eq!(fx.fs.getxattr(e.node, b"user.test").unwrap(), b"foo");
    assert_eq!(fx.fs.getxattr(e.node, b"user.empty").unwrap(), b"");
    // Stored as WSL does: "LX." + name, "lxea" + value (NTFS upper-cases the name).
    let eas = fx.nt.stored_eas("f").unwrap();
    assert!(eas.contains(&Ea::new(b"LX.USER.TEST", b"lxeafoo")));
    let listed = fx.fs.listxattr(e.node).unwrap();
    let mut names: Vec<&[u8]> = listed
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [&b"user.empty"[..], b"user.test"],
        "metadata EAs never listed"
    );
    assert_eq!(
        errno(fx.fs.setxattr(e.node, b"user.test", b"x", XATTR_CREATE)),
        EEXIST
    );
    assert_eq!(
        errno(fx.fs.setxattr(e.node, b"user.none", b"x", XATTR_REPLACE)),
        ENODATA
    );
    fx.fs.removexattr(e.node, b"user.test").unwrap();
    assert_eq!(errno(fx.fs.getxattr(e.node, b"user.test")), ENODATA);
    assert_eq!(errno(fx.fs.removexattr(e.node, b"user.test")), ENODATA);
    assert_eq!(
        errno(fx.fs.getxattr(e.node, b"system.posix_acl_access")),
        EOPNOTSUPP
    );
    assert_eq!(errno(fx.fs.setxattr(e.node, &[b'a'; 253], b"", 0)), ERANGE);
    // The metadata is unchanged by all of it.
    assert_eq!(fx.fs.getattr(e.node).unwrap().mode, S_IFREG | 0o640);
}

#[test]
fn test_locks_are_the_servers_per_handle() {
    let fx = fx();
    let e = fx.file("f", b"");
    let a = fx.fs.open(e.node, O_RDWR).unwrap();
    let b = fx.fs.open(e.node, O_RDWR).unwrap();
    let lock = |kind, start, len, pid| Lock {
        kind,
        start,
        len,
        pid,
    };
    fx.fs
        .setlk(a, &lock(LockType::Write, 0, 10, 1), false)
        .unwrap();
    assert_eq!(
        errno(fx.fs.setlk(b, &lock(LockType::Read, 5, 1, 2), false)),
        EAGAIN
    );
    assert_eq!(
        fx.fs.getlk(b, &lock(LockType::Read, 0, 0, 2)).unwrap(),
        lock(LockType::Write, 0, 10, 1)
    );
    fx.fs.flock(a, FlockOp::Exclusive, false).unwrap();
    assert_eq!(errno(fx.fs.flock(b, FlockOp::Shared, false)), EAGAIN);
    fx.fs.release(a).unwrap();
    fx.fs
        .setlk(b, &lock(LockType::Write, 0, 0, 2), false)
        .unwrap();
    fx.fs.flock(b, FlockOp::Exclusive, false).unwrap();
}

#[test]
fn test_read_only_share_refuses_every_change() {
    let fx = fx();
    let e = fx.file("f", b"x");
    let ro = Ntfs::new(
        fx.nt.clone(),
        fx.nt.root(),
        Config {
            read_only: true,
            ..Config::default()
        },
    )
    .unwrap();
    let f = ro.lookup(ROOT_NODE, b"f").unwrap();
    assert_eq!(f.attr.ino, e.attr.ino);
    assert_eq!(errno(ro.open(f.node, O_RDWR)), EROFS);
    assert_eq!(errno(ro.open(f.node, O_RDONLY | O_TRUNC)), EROFS);
    assert_eq!(
        errno(ro.create(ROOT_NODE, b"g", O_RDWR, 0o600, 0, 0)),
        EROFS
    );
    assert_eq!(errno(ro.mkdir(ROOT_NODE, b"d", 0o755, 0, 0)), EROFS);
    assert_eq!(errno(ro.unlink(ROOT_NODE, b"f")), EROFS);
    assert_eq!(errno(ro.rename(ROOT_NODE, b"f", ROOT_NODE, b"g", 0)), EROFS);
    assert_eq!(errno(ro.setxattr(f.node, b"user.x", b"", 0)), EROFS);
    let chmod = SetAttr {
        mode: Some(0o600),
        ..SetAttr::default()
    };
    assert_eq!(errno(ro.setattr(f.node, None, &chmod)), EROFS);
    let h = ro.open(f.node, O_RDONLY).unwrap();
    let mut buf = [0u8; 2];
    assert_eq!(ro.read(h, 0, &mut buf).unwrap(), 1);
}

#[test]
fn test_statfs_lseek_fallocate_fsync() {
    let fx = fx();
    let s = fx.fs.statfs(ROOT_NODE).unwrap();
    assert_eq!(s.bsize, 4096);
    assert_eq!(s.fsid, super::fake::SERIAL);
    let e = fx.file("f", b"0123456789");
    let h = fx.fs.open(e.node, O_RDWR).unwrap();
    assert_eq!(fx.fs.lseek(h, 3, 3).unwrap(), 3, "SEEK_DATA");
    assert_eq!(fx.fs.lseek(h, 3, 4).unwrap(), 10, "SEEK_HOLE");
    assert_eq!(errno(fx.fs.lseek(h, 10, 3)), ENXIO);
    fx.fs.fallocate(h, 0, 8, 100).unwrap();
    assert_eq!(fx.fs.getattr(e.node).unwrap().size, 108);
    assert_eq!(errno(fx.fs.fallocate(h, 1, 0, 1)), EOPNOTSUPP);
    fx.fs.fsync(h, false).unwrap();
    fx.fs.release(h).unwrap();
    let r = fx.fs.open(e.node, O_RDONLY).unwrap();
    fx.fs.fsync(r, true).unwrap();
}

#[test]
fn test_deleted_files_go_from_the_volume_when_the_last_handle_closes() {
    let fx = fx();
    let before = fx.nt.objects();
    let e = fx.file("f", b"x");
    let h = fx.fs.open(e.node, O_RDONLY).unwrap();
    fx.fs.unlink(ROOT_NODE, b"f").unwrap();
    assert_eq!(fx.nt.objects(), before + 1, "kept while open");
    fx.fs.release(h).unwrap();
    assert_eq!(fx.fs.nodes.len(), 2, "the root and the unlinked file");
    fx.fs.forget(e.node, 1);
    assert_eq!(fx.fs.nodes.len(), 1);
    assert_eq!(fx.nt.objects(), before, "gone with its last handle");
}
