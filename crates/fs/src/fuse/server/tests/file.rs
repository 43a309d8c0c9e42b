//! OPEN, CREATE, READ, WRITE, FLUSH, RELEASE, FSYNC, FALLOCATE, LSEEK, COPY_FILE_RANGE.

use std::os::unix::fs::MetadataExt;

use super::*;
use crate::linux;

fn fsync(fx: &Fixture, node: u64, fh: u64, flags: u32) -> Result<Vec<u8>, i32> {
    fx.call(
        node,
        Operation::Fsync(FsyncIn {
            fh,
            fsync_flags: flags,
            ..FsyncIn::default()
        }),
    )
}

fn lseek(fx: &Fixture, node: u64, fh: u64, offset: u64, whence: i32) -> Result<u64, i32> {
    fx.call(
        node,
        Operation::Lseek(LseekIn {
            fh,
            offset,
            whence: whence as u32,
            ..LseekIn::default()
        }),
    )
    .map(|b| LseekOut::from_bytes(&b).unwrap().offset)
}

fn copy(
    fx: &Fixture,
    node: u64,
    fh_in: u64,
    fh_out: u64,
    len: u64,
    flags: u64,
) -> Result<u32, i32> {
    fx.call(
        node,
        Operation::CopyFileRange(CopyFileRangeIn {
            fh_in,
            off_in: 0,
            nodeid_out: node,
            fh_out,
            off_out: 0,
            len,
            flags,
        }),
    )
    .map(|b| WriteOut::from_bytes(&b).unwrap().size)
}

#[test]
fn test_open_write_read_release_round_trip() {
    let fx = Fixture::new();
    let (node, fh) = fx.file_rw("f", b"");

    let written = fx.write(node, fh, 3, b"hello");
    let whole = fx.read(node, fh, 0, 100);
    let part = fx.read(node, fh, 4, 2);
    let past_end = fx.read(node, fh, 1000, 10);
    let released = fx.release(node, fh);
    let after = fx.read(node, fh, 0, 1);

    assert_eq!(written, Ok(5));
    assert_eq!(whole.unwrap(), b"\0\0\0hello");
    assert_eq!(part.unwrap(), b"el");
    assert_eq!(past_end.unwrap(), b"");
    assert_eq!(released, Ok(()));
    assert_eq!(after, Err(linux::EBADF));
}

#[test]
fn test_open_o_trunc_truncates_at_open() {
    let fx = Fixture::new();
    fx.put("f", b"old contents");
    let node = fx.lookup(ROOT, "f").nodeid;

    let fh = fx.open(node, linux::O_WRONLY | linux::O_TRUNC);

    assert_eq!(std::fs::metadata(fx.path("f")).unwrap().len(), 0);
    fx.release(node, fh).unwrap();
}

#[test]
fn test_open_drops_creat_excl_and_honours_append() {
    let fx = Fixture::new();
    fx.put("f", b"abc");
    let node = fx.lookup(ROOT, "f").nodeid;

    let fh = fx.open(
        node,
        linux::O_WRONLY | linux::O_CREAT | linux::O_EXCL | linux::O_APPEND,
    );
    let n = fx.write(node, fh, 0, b"def");

    assert_eq!(n, Ok(3));
    assert_eq!(std::fs::read(fx.path("f")).unwrap(), b"abcdef");
}

#[test]
fn test_open_unknown_node_estale_directory_for_write_eisdir() {
    let fx = Fixture::new();
    let open = |flags: i32| {
        Operation::Open(OpenIn {
            flags: flags as u32,
            open_flags: 0,
        })
    };

    assert_eq!(fx.err(777, open(linux::O_RDONLY)), linux::ESTALE);
    assert_eq!(fx.err(ROOT, open(linux::O_RDWR)), linux::EISDIR);
}

#[test]
fn test_write_to_read_only_handle_is_ebadf() {
    let fx = Fixture::new();
    fx.put("f", b"abc");
    let node = fx.lookup(ROOT, "f").nodeid;
    let fh = fx.open(node, linux::O_RDONLY);

    assert_eq!(fx.write(node, fh, 0, b"x"), Err(linux::EBADF));
    assert_eq!(std::fs::read(fx.path("f")).unwrap(), b"abc");
}

#[test]
fn test_unknown_fh_is_ebadf_for_every_handle_op() {
    let fx = Fixture::new();
    let (node, fh) = fx.file_rw("f", b"abc");
    let bad = fh + 12345;

    assert_eq!(fx.read(node, bad, 0, 1), Err(linux::EBADF));
    assert_eq!(fx.write(node, bad, 0, b"x"), Err(linux::EBADF));
    assert_eq!(fsync(&fx, node, bad, 0), Err(linux::EBADF));
    assert_eq!(
        lseek(&fx, node, bad, 0, linux::SEEK_DATA),
        Err(linux::EBADF)
    );
    assert_eq!(copy(&fx, node, bad, fh, 1, 0), Err(linux::EBADF));
    assert_eq!(copy(&fx, node, fh, bad, 1, 0), Err(linux::EBADF));
    assert_eq!(fx.release(node, bad), Err(linux::EBADF));
    assert_eq!(
        fx.err(
            node,
            Operation::Flush(FlushIn {
                fh: bad,
                ..FlushIn::default()
            })
        ),
        linux::EBADF
    );
}

#[test]
fn test_release_twice_is_ebadf() {
    let fx = Fixture::new();
    let (node, fh) = fx.file_rw("f", b"");

    assert_eq!(fx.release(node, fh), Ok(()));
    assert_eq!(fx.release(node, fh), Err(linux::EBADF));
}

#[test]
fn test_create_new_file_mode_umask_and_handle() {
    let fx = Fixture::new();

    let out = fx.create(
        ROOT,
        "new",
        linux::O_RDWR | linux::O_CREAT,
        linux::S_IFREG | 0o666,
    );
    let n = fx.write(out.entry.nodeid, out.open.fh, 0, b"data");

    let meta = std::fs::metadata(fx.path("new")).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o644);
    assert_eq!((meta.uid(), meta.gid()), (fx.uid, fx.gid));
    assert_eq!(out.entry.attr.mode, linux::S_IFREG | 0o644);
    assert_eq!(n, Ok(4));
    assert_eq!(std::fs::read(fx.path("new")).unwrap(), b"data");
    assert_eq!(fx.lookup(ROOT, "new").nodeid, out.entry.nodeid);
}

#[test]
fn test_create_exclusive_existing_eexist_plain_existing_opens() {
    let fx = Fixture::new();
    fx.put("f", b"keep");
    let create = |flags: i32| Operation::Create {
        arg: CreateIn {
            flags: flags as u32,
            mode: linux::S_IFREG | 0o600,
            umask: 0,
            open_flags: 0,
        },
        name: b"f",
    };

    let excl = fx.err(ROOT, create(linux::O_RDWR | linux::O_CREAT | linux::O_EXCL));
    let plain: CreateOut = fx.ok(ROOT, create(linux::O_RDWR | linux::O_CREAT));

    assert_eq!(excl, linux::EEXIST);
    assert_eq!(
        fx.read(plain.entry.nodeid, plain.open.fh, 0, 10).unwrap(),
        b"keep"
    );
}

#[test]
fn test_create_dotdot_name_is_einval() {
    let fx = Fixture::new();

    let errno = fx.err(
        ROOT,
        Operation::Create {
            arg: CreateIn {
                flags: linux::O_RDWR as u32,
                mode: 0o600,
                ..CreateIn::default()
            },
            name: b"..",
        },
    );

    assert_eq!(errno, linux::EINVAL);
}

#[test]
fn test_flush_and_fsync_succeed_on_open_handle() {
    let fx = Fixture::new();
    let (node, fh) = fx.file_rw("f", b"abc");

    let flushed = fx.call(
        node,
        Operation::Flush(FlushIn {
            fh,
            lock_owner: 1,
            ..FlushIn::default()
        }),
    );

    assert_eq!(flushed, Ok(Vec::new()));
    assert_eq!(fsync(&fx, node, fh, 0), Ok(Vec::new()));
    assert_eq!(
        fsync(
            &fx,
            node,
            fh,
            crate::fuse::consts::flags::FUSE_FSYNC_FDATASYNC
        ),
        Ok(Vec::new())
    );
}

#[test]
fn test_fallocate_extends_file_bad_mode_fails() {
    let fx = Fixture::new();
    let (node, fh) = fx.file_rw("f", b"");
    let falloc = |mode, length| {
        Operation::Fallocate(FallocateIn {
            fh,
            offset: 0,
            length,
            mode,
            ..FallocateIn::default()
        })
    };

    fx.ok_body(node, falloc(0, 8192));
    let bad = fx.err(node, falloc(0x8000_0000, 1));

    assert_eq!(std::fs::metadata(fx.path("f")).unwrap().len(), 8192);
    assert_eq!(bad, linux::EOPNOTSUPP);
}

#[test]
fn test_lseek_data_and_hole_answered_cur_and_unknown_whence_einval() {
    let fx = Fixture::new();
    let (node, fh) = fx.file_rw("f", &[7u8; 100]);

    let data = lseek(&fx, node, fh, 0, linux::SEEK_DATA);
    let hole = lseek(&fx, node, fh, 0, linux::SEEK_HOLE);
    let end = lseek(&fx, node, fh, 0, linux::SEEK_END);
    let past = lseek(&fx, node, fh, 1000, linux::SEEK_DATA);

    assert_eq!(data, Ok(0));
    assert_eq!(hole, Ok(100));
    assert_eq!(end, Ok(100));
    assert_eq!(past, Err(linux::ENXIO));
    assert_eq!(lseek(&fx, node, fh, 0, linux::SEEK_CUR), Err(linux::EINVAL));
    assert_eq!(lseek(&fx, node, fh, 0, 99), Err(linux::EINVAL));
}

#[test]
fn test_copy_file_range_copies_flags_einval() {
    let fx = Fixture::new();
    let (src_node, src) = fx.file_rw("src", b"copied bytes");
    let (_, dst) = fx.file_rw("dst", b"");

    let n = copy(&fx, src_node, src, dst, 6, 0);
    let flagged = copy(&fx, src_node, src, dst, 6, 1);
    let huge = copy(&fx, src_node, src, dst, u64::MAX, 0);

    assert_eq!(n, Ok(6));
    assert_eq!(flagged, Err(linux::EINVAL));
    assert_eq!(huge, Ok(12));
    assert_eq!(std::fs::read(fx.path("dst")).unwrap(), b"copied bytes");
}
