//! Locks: OFD byte-range locks per handle, getlk holders, flock. A lock is real on the host.

use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::time::Duration;

use super::{errno, Fixture};
use crate::backend::passthrough::Config;
use crate::backend::server_locks::LockKeeping;
use crate::backend::{Backend, FlockOp, Lock, LockType};

fn lock(kind: LockType, start: u64, len: u64, pid: u32) -> Lock {
    Lock {
        kind,
        start,
        len,
        pid,
    }
}

fn test_setlk_two_handles_conflict_eagain(config: Config) {
    let fx = Fixture::with(config);
    fx.put("f", b"");
    let a = fx.open("f", libc::O_RDWR);
    let b = fx.open("f", libc::O_RDWR);
    fx.fs
        .setlk(a, &lock(LockType::Write, 0, 10, 100), false)
        .unwrap();
    let r = fx.fs.setlk(b, &lock(LockType::Write, 5, 10, 200), false);
    assert_eq!(errno(r), libc::EAGAIN);
    let r = fx.fs.setlk(b, &lock(LockType::Read, 9, 1, 200), false);
    assert_eq!(errno(r), libc::EAGAIN);
    // Outside the held range there is no conflict.
    fx.fs
        .setlk(b, &lock(LockType::Write, 10, 10, 200), false)
        .unwrap();
}

fn test_getlk_conflict_reports_holder_pid_and_range(config: Config) {
    let fx = Fixture::with(config);
    fx.put("f", b"");
    let a = fx.open("f", libc::O_RDWR);
    let b = fx.open("f", libc::O_RDWR);
    fx.fs
        .setlk(a, &lock(LockType::Write, 100, 50, 4242), false)
        .unwrap();
    let got = fx.fs.getlk(b, &lock(LockType::Read, 0, 0, 7)).unwrap();
    assert_eq!(got, lock(LockType::Write, 100, 50, 4242));
}

fn test_getlk_no_conflict_reports_unlock(config: Config) {
    let fx = Fixture::with(config);
    fx.put("f", b"");
    let a = fx.open("f", libc::O_RDWR);
    let b = fx.open("f", libc::O_RDWR);
    fx.fs
        .setlk(a, &lock(LockType::Read, 0, 0, 1), false)
        .unwrap();
    let got = fx.fs.getlk(b, &lock(LockType::Read, 0, 0, 2)).unwrap();
    assert_eq!(got.kind, LockType::Unlock);
    // A handle never conflicts with itself.
    let got = fx.fs.getlk(a, &lock(LockType::Write, 0, 0, 1)).unwrap();
    assert_eq!(got.kind, LockType::Unlock);
}

fn test_setlk_shared_locks_coexist_exclusive_refused(config: Config) {
    let fx = Fixture::with(config);
    fx.put("f", b"");
    let a = fx.open("f", libc::O_RDONLY);
    let b = fx.open("f", libc::O_RDONLY);
    let c = fx.open("f", libc::O_RDWR);
    fx.fs
        .setlk(a, &lock(LockType::Read, 0, 0, 1), false)
        .unwrap();
    fx.fs
        .setlk(b, &lock(LockType::Read, 0, 0, 2), false)
        .unwrap();
    let r = fx.fs.setlk(c, &lock(LockType::Write, 0, 1, 3), false);
    assert_eq!(errno(r), libc::EAGAIN);
}

fn test_setlk_unlock_then_other_handle_locks(config: Config) {
    let fx = Fixture::with(config);
    fx.put("f", b"");
    let a = fx.open("f", libc::O_RDWR);
    let b = fx.open("f", libc::O_RDWR);
    fx.fs
        .setlk(a, &lock(LockType::Write, 0, 0, 1), false)
        .unwrap();
    fx.fs
        .setlk(a, &lock(LockType::Unlock, 0, 0, 1), false)
        .unwrap();
    fx.fs
        .setlk(b, &lock(LockType::Write, 0, 0, 2), false)
        .unwrap();
}

fn test_release_handle_drops_its_locks(config: Config) {
    let fx = Fixture::with(config);
    fx.put("f", b"");
    let a = fx.open("f", libc::O_RDWR);
    let b = fx.open("f", libc::O_RDWR);
    fx.fs
        .setlk(a, &lock(LockType::Write, 0, 0, 1), false)
        .unwrap();
    fx.fs.release(a).unwrap();
    fx.fs
        .setlk(b, &lock(LockType::Write, 0, 0, 2), false)
        .unwrap();
}

fn test_setlk_write_lock_on_read_only_handle_ebadf(config: Config) {
    let fx = Fixture::with(config);
    fx.put("f", b"");
    let a = fx.open("f", libc::O_RDONLY);
    let r = fx.fs.setlk(a, &lock(LockType::Write, 0, 0, 1), false);
    assert_eq!(errno(r), libc::EBADF);
}

fn test_setlk_range_beyond_off_t_einval(config: Config) {
    let fx = Fixture::with(config);
    fx.put("f", b"");
    let a = fx.open("f", libc::O_RDWR);
    let r = fx
        .fs
        .setlk(a, &lock(LockType::Write, u64::MAX, 1, 1), false);
    assert_eq!(errno(r), libc::EINVAL);
    let r = fx
        .fs
        .setlk(a, &lock(LockType::Write, i64::MAX as u64, 2, 1), false);
    assert_eq!(errno(r), libc::EINVAL);
    let r = fx.fs.getlk(a, &lock(LockType::Unlock, 0, 0, 1));
    assert_eq!(errno(r), libc::EINVAL);
}

/// A host process's own open of the share's `name`, and a write lock request on the whole
/// file for it to try.
fn host_write_lock(fx: &Fixture, name: &str) -> (std::fs::File, libc::flock) {
    let host = std::fs::File::options()
        .read(true)
        .write(true)
        .open(fx.share.join(name))
        .unwrap();
    // SAFETY: `flock` is plain data; all-zero is valid.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    (host, fl)
}

#[test]
fn test_setlk_lock_is_real_on_host() {
    let fx = Fixture::new();
    fx.put("f", b"");
    let a = fx.open("f", libc::O_RDWR);
    fx.fs
        .setlk(a, &lock(LockType::Write, 0, 0, 1), false)
        .unwrap();
    // A host process opening the file independently sees the lock.
    let (host, mut fl) = host_write_lock(&fx, "f");
    // SAFETY: `fl` is a valid, writable flock; the descriptor is open.
    let ret = unsafe { libc::fcntl(host.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) };
    assert_eq!(ret, 0);
    assert_eq!(fl.l_type, libc::F_WRLCK as libc::c_short);
    // SAFETY: as above; a classic POSIX lock attempt must fail too.
    let ret = unsafe { libc::fcntl(host.as_raw_fd(), libc::F_SETLK, &fl) };
    assert_eq!(ret, -1);
}

fn test_setlk_wait_blocks_until_holder_releases(config: Config) {
    let fx = Fixture::with(config);
    fx.put("f", b"");
    let a = fx.open("f", libc::O_RDWR);
    let b = fx.open("f", libc::O_RDWR);
    fx.fs
        .setlk(a, &lock(LockType::Write, 0, 0, 1), false)
        .unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| {
            let r = fx.fs.setlk(b, &lock(LockType::Write, 0, 0, 2), true);
            tx.send(r.is_ok()).unwrap();
        });
        assert!(
            rx.recv_timeout(Duration::from_millis(200)).is_err(),
            "granted while held"
        );
        fx.fs
            .setlk(a, &lock(LockType::Unlock, 0, 0, 1), false)
            .unwrap();
        assert!(rx.recv_timeout(Duration::from_secs(10)).unwrap());
    });
    let got = fx.fs.getlk(a, &lock(LockType::Read, 0, 0, 1)).unwrap();
    assert_eq!(got.pid, 2, "the waiter now holds it");
}

fn test_flock_exclusive_conflict_ewouldblock(config: Config) {
    let fx = Fixture::with(config);
    fx.put("f", b"");
    let a = fx.open("f", libc::O_RDONLY);
    let b = fx.open("f", libc::O_RDONLY);
    fx.fs.flock(a, FlockOp::Exclusive, false).unwrap();
    assert_eq!(
        errno(fx.fs.flock(b, FlockOp::Shared, false)),
        libc::EWOULDBLOCK
    );
    fx.fs.flock(a, FlockOp::Unlock, false).unwrap();
    fx.fs.flock(b, FlockOp::Shared, false).unwrap();
    fx.fs.flock(a, FlockOp::Shared, false).unwrap();
}

#[test]
fn test_server_locks_are_not_the_hosts() {
    let fx = Fixture::with(Config {
        locks: LockKeeping::Server,
        ..Config::default()
    });
    fx.put("f", b"");
    let a = fx.open("f", libc::O_RDWR);
    let b = fx.open("f", libc::O_RDONLY);
    fx.fs
        .setlk(a, &lock(LockType::Write, 0, 0, 1), false)
        .unwrap();
    assert_eq!(
        errno(fx.fs.setlk(b, &lock(LockType::Read, 0, 1, 2), false)),
        libc::EAGAIN
    );
    // The host holds nothing: a host process may take the whole file.
    let (host, fl) = host_write_lock(&fx, "f");
    // SAFETY: `fl` is a valid flock; the descriptor is open.
    let ret = unsafe { libc::fcntl(host.as_raw_fd(), libc::F_OFD_SETLK, &fl) };
    assert_eq!(ret, 0, "{}", std::io::Error::last_os_error());
    // A write lock through the read-only handle is EBADF, as fcntl answers.
    assert_eq!(
        errno(fx.fs.setlk(b, &lock(LockType::Write, 10, 1, 2), false)),
        libc::EBADF
    );
    // Releasing the holder's handle ends its locks.
    fx.fs.release(a).unwrap();
    fx.fs
        .setlk(b, &lock(LockType::Read, 0, 0, 2), false)
        .unwrap();
}

both_lock_keepings!(
    test_setlk_two_handles_conflict_eagain,
    test_getlk_conflict_reports_holder_pid_and_range,
    test_getlk_no_conflict_reports_unlock,
    test_setlk_shared_locks_coexist_exclusive_refused,
    test_setlk_unlock_then_other_handle_locks,
    test_release_handle_drops_its_locks,
    test_setlk_write_lock_on_read_only_handle_ebadf,
    test_setlk_range_beyond_off_t_einval,
    test_setlk_wait_blocks_until_holder_releases,
    test_flock_exclusive_conflict_ewouldblock,
);
