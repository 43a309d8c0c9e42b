//! GETATTR, SETATTR, STATFS, ACCESS.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use super::*;
use crate::fuse::consts::fattr::*;
use crate::fuse::consts::flags::FUSE_GETATTR_FH;
use crate::linux;

fn setattr(fx: &Fixture, node: u64, arg: SetattrIn) -> Result<Attr, i32> {
    fx.call(node, Operation::Setattr(arg))
        .map(|b| AttrOut::from_bytes(&b).unwrap().attr)
}

fn access_as(fx: &Fixture, node: u64, uid: u32, gid: u32, mask: u32) -> Result<Vec<u8>, i32> {
    let header = InHeader {
        uid,
        gid,
        ..fx.header(node)
    };
    fx.call_as(
        header,
        Operation::Access(AccessIn {
            mask,
            ..AccessIn::default()
        }),
    )
}

#[test]
fn test_getattr_root_and_file_match_host() {
    let fx = Fixture::new();
    fx.put("f", b"12345");
    let f = fx.lookup(ROOT, "f").nodeid;
    let meta = std::fs::metadata(fx.path("f")).unwrap();

    let root = fx.getattr(ROOT).unwrap();
    let file = fx.getattr(f).unwrap();

    assert_eq!(root.mode & linux::S_IFMT, linux::S_IFDIR);
    assert_eq!(file.ino, meta.ino());
    assert_eq!(file.size, 5);
    assert_eq!(file.mode, meta.mode());
    assert_eq!(u64::from(file.nlink), meta.nlink());
    assert_eq!(file.mtime as i64, meta.mtime());
    assert_eq!(i64::from(file.mtimensec), meta.mtime_nsec());
}

#[test]
fn test_getattr_unknown_node_is_estale() {
    let fx = Fixture::new();

    assert_eq!(fx.getattr(424242), Err(linux::ESTALE));
}

#[test]
fn test_getattr_with_fh_valid_ok_unknown_ebadf() {
    let fx = Fixture::new();
    let (node, fh) = fx.file_rw("f", b"abc");
    let with = |fh| {
        Operation::Getattr(GetattrIn {
            getattr_flags: FUSE_GETATTR_FH,
            fh,
            ..GetattrIn::default()
        })
    };

    let good: AttrOut = fx.ok(node, with(fh));
    let bad = fx.err(node, with(fh + 1000));

    assert_eq!(good.attr.size, 3);
    assert_eq!(bad, linux::EBADF);
}

#[test]
fn test_setattr_mode_owner_and_times_applied() {
    let fx = Fixture::new();
    fx.put("f", b"");
    let f = fx.lookup(ROOT, "f").nodeid;

    let attr = setattr(
        &fx,
        f,
        SetattrIn {
            valid: FATTR_MODE | FATTR_UID | FATTR_GID | FATTR_ATIME | FATTR_MTIME | FATTR_CTIME,
            mode: linux::S_IFREG | 0o640,
            uid: fx.uid,
            gid: fx.gid,
            atime: 1_000_000,
            atimensec: 5,
            mtime: 2_000_000,
            mtimensec: 7,
            ..SetattrIn::default()
        },
    )
    .unwrap();

    let meta = std::fs::metadata(fx.path("f")).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o640);
    assert_eq!(attr.mode, linux::S_IFREG | 0o640);
    assert_eq!((meta.atime(), meta.atime_nsec()), (1_000_000, 5));
    assert_eq!((meta.mtime(), meta.mtime_nsec()), (2_000_000, 7));
    assert_eq!((attr.mtime, attr.mtimensec), (2_000_000, 7));
}

#[test]
fn test_setattr_times_now_uses_current_time() {
    let fx = Fixture::new();
    fx.put("f", b"");
    let f = fx.lookup(ROOT, "f").nodeid;
    setattr(
        &fx,
        f,
        SetattrIn {
            valid: FATTR_MTIME,
            mtime: 1000,
            ..SetattrIn::default()
        },
    )
    .unwrap();

    let attr = setattr(
        &fx,
        f,
        SetattrIn {
            valid: FATTR_MTIME | FATTR_MTIME_NOW | FATTR_ATIME | FATTR_ATIME_NOW,
            ..SetattrIn::default()
        },
    )
    .unwrap();

    assert!(attr.mtime > 1_600_000_000, "{}", attr.mtime);
    assert!(attr.atime > 1_600_000_000, "{}", attr.atime);
}

#[test]
fn test_setattr_size_truncates_with_and_without_fh() {
    let fx = Fixture::new();
    let (node, fh) = fx.file_rw("f", b"0123456789");

    let by_node = setattr(
        &fx,
        node,
        SetattrIn {
            valid: FATTR_SIZE,
            size: 4,
            ..SetattrIn::default()
        },
    )
    .unwrap();
    let by_fh = setattr(
        &fx,
        node,
        SetattrIn {
            valid: FATTR_SIZE | FATTR_FH,
            fh,
            size: 2,
            ..SetattrIn::default()
        },
    )
    .unwrap();

    assert_eq!(by_node.size, 4);
    assert_eq!(by_fh.size, 2);
    assert_eq!(std::fs::read(fx.path("f")).unwrap(), b"01");
}

#[test]
fn test_setattr_unknown_fh_ebadf_bad_nsec_einval_dir_size_eisdir() {
    let fx = Fixture::new();
    let (node, fh) = fx.file_rw("f", b"");
    std::fs::create_dir(fx.path("d")).unwrap();
    let d = fx.lookup(ROOT, "d").nodeid;

    let bad_fh = setattr(
        &fx,
        node,
        SetattrIn {
            valid: FATTR_SIZE | FATTR_FH,
            fh: fh + 99,
            ..SetattrIn::default()
        },
    );
    let bad_nsec = setattr(
        &fx,
        node,
        SetattrIn {
            valid: FATTR_MTIME,
            mtimensec: 1_000_000_000,
            ..SetattrIn::default()
        },
    );
    let dir_size = setattr(
        &fx,
        d,
        SetattrIn {
            valid: FATTR_SIZE,
            ..SetattrIn::default()
        },
    );

    assert_eq!(bad_fh, Err(linux::EBADF));
    assert_eq!(bad_nsec, Err(linux::EINVAL));
    assert_eq!(dir_size, Err(linux::EISDIR));
}

#[test]
fn test_statfs_reports_host_file_system() {
    let fx = Fixture::new();

    let st: Kstatfs = fx.ok(ROOT, Operation::Statfs);

    assert!(st.bsize > 0);
    assert!(st.blocks > 0);
    assert_eq!(st.namelen, 255);
    assert_eq!(fx.err(31337, Operation::Statfs), linux::ESTALE);
}

#[test]
fn test_access_root_reads_writes_anything_executes_only_with_x_bit() {
    let fx = Fixture::new();
    fx.put("f", b"");
    std::fs::set_permissions(fx.path("f"), std::fs::Permissions::from_mode(0o000)).unwrap();
    fx.put("x", b"");
    std::fs::set_permissions(fx.path("x"), std::fs::Permissions::from_mode(0o100)).unwrap();
    let f = fx.lookup(ROOT, "f").nodeid;
    let x = fx.lookup(ROOT, "x").nodeid;

    assert!(access_as(&fx, f, 0, 0, 6).is_ok());
    assert_eq!(access_as(&fx, f, 0, 0, 1), Err(linux::EACCES));
    assert!(access_as(&fx, x, 0, 0, 7).is_ok());
    assert!(access_as(&fx, ROOT, 0, 0, 1).is_ok());
}

#[test]
fn test_access_user_classes_owner_group_other() {
    let fx = Fixture::new();
    fx.put("f", b"");
    std::fs::set_permissions(fx.path("f"), std::fs::Permissions::from_mode(0o641)).unwrap();
    let meta = std::fs::metadata(fx.path("f")).unwrap();
    let (owner, group) = (meta.uid(), meta.gid());
    let f = fx.lookup(ROOT, "f").nodeid;
    // A user that is neither owner nor in the group, unless the test runs as it.
    let (stranger, other_group) = (owner.wrapping_add(1000), group.wrapping_add(1000));

    // Owner: rw-.
    assert!(access_as(&fx, f, owner, other_group, 6).is_ok());
    // Group: r--.
    assert!(access_as(&fx, f, stranger, group, 4).is_ok());
    assert_eq!(access_as(&fx, f, stranger, group, 2), Err(linux::EACCES));
    // Other: --x.
    assert_eq!(
        access_as(&fx, f, stranger, other_group, 4),
        Err(linux::EACCES)
    );
    // F_OK: exists.
    assert!(access_as(&fx, f, stranger, other_group, 0).is_ok());
    assert!(access_as(&fx, f, stranger, other_group, 1).is_ok());
}

#[test]
fn test_access_unknown_bits_einval_missing_node_estale() {
    let fx = Fixture::new();

    assert_eq!(access_as(&fx, ROOT, 0, 0, 8), Err(linux::EINVAL));
    assert_eq!(access_as(&fx, 5555, 0, 0, 0), Err(linux::ESTALE));
}
