//! What the mapped backend delegates to the passthrough one still works through it: I/O,
//! namespace changes, locks, statfs, lseek, fallocate, copy_file_range.

use super::{errno, Fixture};
use crate::backend::{Backend, FlockOp, Lock, LockType, ROOT_NODE};

#[test]
fn test_io_namespace_and_locks_delegate() {
    let Some(fx) = Fixture::new("test_io_namespace_and_locks_delegate") else {
        return;
    };
    let (f, h) = fx
        .fs
        .create(ROOT_NODE, b"f", libc::O_RDWR, 0o644, 3, 3)
        .unwrap();
    assert_eq!(fx.fs.write(h, 0, b"0123456789").unwrap(), 10);
    fx.fs.fsync(h, false).unwrap();
    fx.fs.fallocate(h, 0, 0, 4096).unwrap();
    assert_eq!(fx.fs.lseek(h, 0, libc::SEEK_END).unwrap(), 4096);
    let (_, g) = fx
        .fs
        .create(ROOT_NODE, b"g", libc::O_RDWR, 0o644, 3, 3)
        .unwrap();
    assert_eq!(fx.fs.copy_file_range(h, 2, g, 0, 3, 0).unwrap(), 3);
    assert_eq!(fx.read_all(g), b"234");
    assert!(fx.fs.statfs(f.node).unwrap().blocks > 0);

    // Locks are real host locks between handles.
    let h2 = fx.fs.open(f.node, libc::O_RDWR).unwrap();
    let w = Lock {
        kind: LockType::Write,
        start: 0,
        len: 0,
        pid: 42,
    };
    fx.fs.setlk(h, &w, false).unwrap();
    assert_eq!(errno(fx.fs.setlk(h2, &w, false)), libc::EAGAIN);
    let held = fx.fs.getlk(h2, &w).unwrap();
    assert_eq!((held.kind, held.pid), (LockType::Write, 42));
    fx.fs.flock(h, FlockOp::Exclusive, false).unwrap();
    assert_eq!(
        errno(fx.fs.flock(h2, FlockOp::Exclusive, false)),
        libc::EWOULDBLOCK
    );
    fx.fs.release(h).unwrap();
    fx.fs.setlk(h2, &w, false).unwrap();

    // Rename keeps the metadata; unlink and rmdir remove.
    fx.fs.rename(ROOT_NODE, b"f", ROOT_NODE, b"f2", 0).unwrap();
    let moved = fx.root_lookup("f2");
    assert_eq!(
        (moved.attr.uid, moved.attr.mode),
        (3, libc::S_IFREG | 0o644)
    );
    fx.fs.unlink(ROOT_NODE, b"f2").unwrap();
    fx.fs.mkdir(ROOT_NODE, b"d", 0o755, 0, 0).unwrap();
    fx.fs.rmdir(ROOT_NODE, b"d").unwrap();
    assert_eq!(fx.listing(), vec!["g"]);
}
