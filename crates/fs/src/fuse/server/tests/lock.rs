//! GETLK, SETLK, SETLKW (POSIX per-owner semantics, FLUSH and RELEASE ending an owner's locks,
//! INTERRUPT of a waiting lock) and flock.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use super::*;
use crate::fuse::consts::flags::{FUSE_LK_FLOCK, FUSE_RELEASE_FLOCK_UNLOCK};
use crate::fuse::consts::opcode::FUSE_INTERRUPT;
use crate::linux;

pub(super) const RD: u32 = linux::F_RDLCK as u32;
pub(super) const WR: u32 = linux::F_WRLCK as u32;
pub(super) const UN: u32 = linux::F_UNLCK as u32;
pub(super) const EOF: u64 = i64::MAX as u64;

pub(super) fn lk(fh: u64, owner: u64, typ: u32, start: u64, end: u64, pid: u32) -> LkIn {
    LkIn {
        fh,
        owner,
        lk: FileLock {
            start,
            end,
            typ,
            pid,
        },
        ..LkIn::default()
    }
}

pub(super) fn flock(fh: u64, typ: u32) -> LkIn {
    LkIn {
        lk_flags: FUSE_LK_FLOCK,
        ..lk(fh, fh, typ, 0, EOF, 0)
    }
}

pub(super) fn setlk<B: Backend>(fx: &Fixture<B>, node: u64, arg: LkIn) -> Result<Vec<u8>, i32> {
    fx.call(node, Operation::Setlk(arg))
}

pub(super) fn getlk<B: Backend>(fx: &Fixture<B>, node: u64, arg: LkIn) -> Result<FileLock, i32> {
    fx.call(node, Operation::Getlk(arg))
        .map(|b| LkOut::from_bytes(&b).unwrap().lk)
}

/// File `f` (100 bytes) opened read-write twice: (node, fh1, fh2).
pub(super) fn two_handles<B: Backend>(fx: &Fixture<B>) -> (u64, u64, u64) {
    let (node, fh1) = fx.file_rw("f", &[0u8; 100]);
    (node, fh1, fx.open(node, linux::O_RDWR))
}

/// Sends SETLKW `arg` with `unique` from another thread; the reply arrives on the channel.
pub(super) fn setlkw_in_thread<B: Backend + 'static>(
    fx: &Fixture<B>,
    node: u64,
    unique: u64,
    arg: LkIn,
) -> mpsc::Receiver<Result<Vec<u8>, i32>> {
    let header = InHeader {
        unique,
        ..fx.header(node)
    };
    let req = Request {
        header,
        op: Operation::Setlkw(arg),
        extensions: &[],
    };
    let bytes = encode_request(&req).unwrap();
    let server = Arc::clone(&fx.server);
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let reply = server.handle(&bytes).unwrap();
        tx.send(outcome(&reply, unique)).unwrap();
    });
    rx
}

/// INTERRUPT of request `unique`, which must get no reply.
pub(super) fn interrupt<B: Backend>(fx: &Fixture<B>, unique: u64) {
    let header = InHeader {
        unique: unique | 1,
        ..fx.header(0)
    };
    let reply = fx.send(header, Operation::Interrupt(InterruptIn { unique }));
    assert!(reply.is_none());
}

fn test_setlk_two_owners_conflict(config: Config) {
    let fx = Fixture::with_config(config);
    let (node, fh1, fh2) = two_handles(&fx);

    let first = setlk(&fx, node, lk(fh1, 0xa, WR, 10, 29, 111));
    let overlap = setlk(&fx, node, lk(fh2, 0xb, WR, 15, 15, 222));
    let shared = setlk(&fx, node, lk(fh2, 0xb, RD, 0, EOF, 222));
    let apart = setlk(&fx, node, lk(fh2, 0xb, WR, 30, 34, 222));
    // Owner b on the same handle as a: still another owner.
    let same_fh = setlk(&fx, node, lk(fh1, 0xb, WR, 20, 20, 222));

    assert_eq!(first, Ok(Vec::new()));
    assert_eq!(overlap, Err(linux::EAGAIN));
    assert_eq!(shared, Err(linux::EAGAIN));
    assert_eq!(apart, Ok(Vec::new()));
    assert_eq!(same_fh, Err(linux::EAGAIN));
}

fn test_setlk_same_owner_two_handles_no_conflict(config: Config) {
    let fx = Fixture::with_config(config);
    let (node, fh1, fh2) = two_handles(&fx);

    let first = setlk(&fx, node, lk(fh1, 0xa, WR, 0, 49, 111));
    let second = setlk(&fx, node, lk(fh2, 0xa, WR, 25, 74, 111));
    let test = getlk(&fx, node, lk(fh2, 0xa, WR, 0, EOF, 111)).unwrap();

    assert_eq!(first, Ok(Vec::new()));
    assert_eq!(second, Ok(Vec::new()));
    assert_eq!(test.typ, UN);
}

fn test_getlk_reports_conflicting_lock_and_holder_pid(config: Config) {
    let fx = Fixture::with_config(config);
    let (node, fh1, fh2) = two_handles(&fx);
    setlk(&fx, node, lk(fh1, 0xa, WR, 10, 19, 111)).unwrap();

    let conflict = getlk(&fx, node, lk(fh2, 0xb, RD, 0, EOF, 222)).unwrap();
    let clear = getlk(&fx, node, lk(fh2, 0xb, WR, 20, EOF, 222)).unwrap();

    assert_eq!(
        conflict,
        FileLock {
            start: 10,
            end: 19,
            typ: WR,
            pid: 111
        }
    );
    assert_eq!(clear.typ, UN);
}

fn test_getlk_to_eof_lock_reported_with_offset_max(config: Config) {
    let fx = Fixture::with_config(config);
    let (node, fh1, fh2) = two_handles(&fx);
    setlk(&fx, node, lk(fh1, 0xa, RD, 50, EOF, 111)).unwrap();

    let conflict = getlk(&fx, node, lk(fh2, 0xb, WR, 0, EOF, 222)).unwrap();

    assert_eq!((conflict.start, conflict.end, conflict.typ), (50, EOF, RD));
}

fn test_unlock_lets_other_owner_lock(config: Config) {
    let fx = Fixture::with_config(config);
    let (node, fh1, fh2) = two_handles(&fx);
    setlk(&fx, node, lk(fh1, 0xa, WR, 0, EOF, 111)).unwrap();

    setlk(&fx, node, lk(fh1, 0xa, UN, 0, EOF, 0)).unwrap();
    let after = setlk(&fx, node, lk(fh2, 0xb, WR, 0, EOF, 222));
    // Unlocking what an owner never locked succeeds and changes nothing.
    let stray = setlk(&fx, node, lk(fh1, 0xc, UN, 0, EOF, 0));

    assert_eq!(after, Ok(Vec::new()));
    assert_eq!(stray, Ok(Vec::new()));
}

fn test_flush_drops_that_owners_locks_only(config: Config) {
    let fx = Fixture::with_config(config);
    let (node, fh1, fh2) = two_handles(&fx);
    setlk(&fx, node, lk(fh1, 0xa, WR, 0, 9, 111)).unwrap();
    setlk(&fx, node, lk(fh1, 0xc, WR, 50, 59, 333)).unwrap();
    let flush = |owner| {
        Operation::Flush(FlushIn {
            fh: fh2,
            lock_owner: owner,
            ..FlushIn::default()
        })
    };

    // Owner a closes some descriptor of the file (another handle than the one it locked on).
    fx.ok_body(node, flush(0xa));
    let freed = setlk(&fx, node, lk(fh2, 0xb, WR, 0, 9, 222));
    let kept = setlk(&fx, node, lk(fh2, 0xb, WR, 50, 50, 222));

    assert_eq!(freed, Ok(Vec::new()));
    assert_eq!(kept, Err(linux::EAGAIN));
}

fn test_release_of_last_locking_handle_drops_owner_locks(config: Config) {
    let fx = Fixture::with_config(config);
    let (node, fh1, fh2) = two_handles(&fx);
    // An OFD-style owner (the open file itself): no FLUSH names it.
    setlk(&fx, node, lk(fh1, 0xf1, WR, 0, EOF, 111)).unwrap();

    let before = setlk(&fx, node, lk(fh2, 0xb, WR, 0, 0, 222));
    fx.release(node, fh1).unwrap();
    let after = setlk(&fx, node, lk(fh2, 0xb, WR, 0, 0, 222));

    assert_eq!(before, Err(linux::EAGAIN));
    assert_eq!(after, Ok(Vec::new()));
}

fn test_release_with_flock_unlock_drops_named_owner(config: Config) {
    let fx = Fixture::with_config(config);
    let (node, fh1, fh2) = two_handles(&fx);
    let fh3 = fx.open(node, linux::O_RDWR);
    // Owner a locked through fh1 and fh3; releasing fh3 with its owner named ends a.
    setlk(&fx, node, lk(fh1, 0xa, WR, 0, 9, 111)).unwrap();
    setlk(&fx, node, lk(fh3, 0xa, WR, 10, 19, 111)).unwrap();

    fx.ok_body(
        node,
        Operation::Release(ReleaseIn {
            fh: fh3,
            release_flags: FUSE_RELEASE_FLOCK_UNLOCK,
            lock_owner: 0xa,
            ..ReleaseIn::default()
        }),
    );
    let after = setlk(&fx, node, lk(fh2, 0xb, WR, 0, 19, 222));

    assert_eq!(after, Ok(Vec::new()));
}

fn test_lock_type_needs_matching_access_mode(config: Config) {
    let fx = Fixture::with_config(config);
    fx.put("f", b"x");
    let node = fx.lookup(ROOT, "f").nodeid;
    let ro = fx.open(node, linux::O_RDONLY);
    let wo = fx.open(node, linux::O_WRONLY);

    assert_eq!(setlk(&fx, node, lk(ro, 1, WR, 0, 0, 1)), Err(linux::EBADF));
    assert_eq!(setlk(&fx, node, lk(wo, 2, RD, 0, 0, 2)), Err(linux::EBADF));
    assert_eq!(setlk(&fx, node, lk(ro, 3, RD, 0, 0, 3)), Ok(Vec::new()));
    assert_eq!(setlk(&fx, node, lk(wo, 4, WR, 1, 1, 4)), Ok(Vec::new()));
}

fn test_bad_lock_requests_rejected(config: Config) {
    let fx = Fixture::with_config(config);
    let (node, fh1, _) = two_handles(&fx);

    assert_eq!(setlk(&fx, node, lk(fh1, 1, 7, 0, 0, 1)), Err(linux::EINVAL));
    assert_eq!(
        setlk(&fx, node, lk(fh1, 1, WR, 10, 9, 1)),
        Err(linux::EINVAL)
    );
    assert_eq!(
        setlk(&fx, node, lk(fh1, 1, WR, EOF + 1, u64::MAX, 1)),
        Err(linux::EINVAL)
    );
    assert_eq!(
        setlk(&fx, node, lk(fh1 + 50, 1, WR, 0, 0, 1)),
        Err(linux::EBADF)
    );
    assert_eq!(
        getlk(&fx, node, lk(fh1, 1, UN, 0, 0, 1)),
        Err(linux::EINVAL)
    );
    assert_eq!(getlk(&fx, node, flock(fh1, WR)), Err(linux::EINVAL));
}

fn test_setlkw_waits_until_holder_unlocks(config: Config) {
    let fx = Fixture::with_config(config);
    let (node, fh1, fh2) = two_handles(&fx);
    setlk(&fx, node, lk(fh1, 0xa, WR, 0, EOF, 111)).unwrap();

    let rx = setlkw_in_thread(&fx, node, 1000, lk(fh2, 0xb, WR, 0, EOF, 222));
    let early = rx.recv_timeout(Duration::from_millis(100));
    setlk(&fx, node, lk(fh1, 0xa, UN, 0, EOF, 0)).unwrap();
    let granted = rx.recv_timeout(Duration::from_secs(5)).unwrap();

    assert!(
        early.is_err(),
        "answered while the lock was held: {early:?}"
    );
    assert_eq!(granted, Ok(Vec::new()));
    assert_eq!(
        setlk(&fx, node, lk(fh1, 0xa, RD, 0, 0, 111)),
        Err(linux::EAGAIN)
    );
}

fn test_setlkw_interrupted_answers_eintr_holding_no_lock(config: Config) {
    let fx = Fixture::with_config(config);
    let (node, fh1, fh2) = two_handles(&fx);
    setlk(&fx, node, lk(fh1, 0xa, WR, 0, EOF, 111)).unwrap();

    let rx = setlkw_in_thread(&fx, node, 2000, lk(fh2, 0xb, WR, 0, EOF, 222));
    thread::sleep(Duration::from_millis(100));
    interrupt(&fx, 2000);
    let answer = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    setlk(&fx, node, lk(fh1, 0xa, UN, 0, EOF, 0)).unwrap();
    let free = getlk(&fx, node, lk(fh1, 0xc, WR, 0, EOF, 333)).unwrap();

    assert_eq!(answer, Err(linux::EINTR));
    assert_eq!(free.typ, UN);
}

fn test_interrupt_arriving_before_its_setlkw_still_cancels_it(config: Config) {
    let fx = Fixture::with_config(config);
    let (node, fh1, fh2) = two_handles(&fx);
    setlk(&fx, node, lk(fh1, 0xa, WR, 0, EOF, 111)).unwrap();

    interrupt(&fx, 3000);
    let rx = setlkw_in_thread(&fx, node, 3000, lk(fh2, 0xb, WR, 0, EOF, 222));
    let answer = rx.recv_timeout(Duration::from_secs(5)).unwrap();

    assert_eq!(answer, Err(linux::EINTR));
}

fn test_interrupt_of_unknown_request_has_no_reply(config: Config) {
    let fx = Fixture::with_config(config);
    let mut raw = Vec::new();
    InHeader {
        len: 48,
        opcode: FUSE_INTERRUPT,
        unique: 4001,
        ..InHeader::default()
    }
    .encode(&mut raw);
    4000u64.encode(&mut raw);

    assert!(fx.server.handle(&raw).is_none());
}

fn test_flock_conflicts_between_two_handles(config: Config) {
    let fx = Fixture::with_config(config);
    let (node, fh1, fh2) = two_handles(&fx);

    let ex = setlk(&fx, node, flock(fh1, WR));
    let other_ex = setlk(&fx, node, flock(fh2, WR));
    let other_sh = setlk(&fx, node, flock(fh2, RD));
    setlk(&fx, node, flock(fh1, RD)).unwrap();
    let both_shared = setlk(&fx, node, flock(fh2, RD));
    let upgrade = setlk(&fx, node, flock(fh2, WR));

    assert_eq!(ex, Ok(Vec::new()));
    assert_eq!(other_ex, Err(linux::EAGAIN));
    assert_eq!(other_sh, Err(linux::EAGAIN));
    assert_eq!(both_shared, Ok(Vec::new()));
    assert_eq!(upgrade, Err(linux::EAGAIN));
}

fn test_flock_independent_of_posix_locks_and_ends_with_release(config: Config) {
    let fx = Fixture::with_config(config);
    let (node, fh1, fh2) = two_handles(&fx);
    setlk(&fx, node, lk(fh1, 0xa, WR, 0, EOF, 111)).unwrap();

    let flocked = setlk(&fx, node, flock(fh2, WR));
    fx.release(node, fh2).unwrap();
    let fh3 = fx.open(node, linux::O_RDWR);
    let after_release = setlk(&fx, node, flock(fh3, WR));

    assert_eq!(flocked, Ok(Vec::new()));
    assert_eq!(after_release, Ok(Vec::new()));
}

fn test_flock_setlkw_waits_and_can_be_interrupted(config: Config) {
    let fx = Fixture::with_config(config);
    let (node, fh1, fh2) = two_handles(&fx);
    setlk(&fx, node, flock(fh1, WR)).unwrap();

    let rx = setlkw_in_thread(&fx, node, 5000, flock(fh2, RD));
    thread::sleep(Duration::from_millis(60));
    interrupt(&fx, 5000);
    let interrupted = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let rx = setlkw_in_thread(&fx, node, 5002, flock(fh2, RD));
    thread::sleep(Duration::from_millis(60));
    setlk(&fx, node, flock(fh1, UN)).unwrap();
    let granted = rx.recv_timeout(Duration::from_secs(5)).unwrap();

    assert_eq!(interrupted, Err(linux::EINTR));
    assert_eq!(granted, Ok(Vec::new()));
    assert_eq!(setlk(&fx, node, flock(fh1, WR)), Err(linux::EAGAIN));
}

fn test_destroy_ends_every_lock(config: Config) {
    let fx = Fixture::with_config(config);
    let (node, fh1, _) = two_handles(&fx);
    setlk(&fx, node, lk(fh1, 0xa, WR, 0, EOF, 111)).unwrap();
    setlk(&fx, node, flock(fh1, WR)).unwrap();

    fx.ok_body(0, Operation::Destroy);
    fx.ok_body(0, Operation::Init(init_in(37, KERNEL_FLAGS)));
    let fh = fx.open(node, linux::O_RDWR);

    assert_eq!(
        setlk(&fx, node, lk(fh, 0xb, WR, 0, EOF, 222)),
        Ok(Vec::new())
    );
    assert_eq!(setlk(&fx, node, flock(fh, WR)), Ok(Vec::new()));
}

both_lock_keepings!(
    test_setlk_two_owners_conflict,
    test_setlk_same_owner_two_handles_no_conflict,
    test_getlk_reports_conflicting_lock_and_holder_pid,
    test_getlk_to_eof_lock_reported_with_offset_max,
    test_unlock_lets_other_owner_lock,
    test_flush_drops_that_owners_locks_only,
    test_release_of_last_locking_handle_drops_owner_locks,
    test_release_with_flock_unlock_drops_named_owner,
    test_lock_type_needs_matching_access_mode,
    test_bad_lock_requests_rejected,
    test_setlkw_waits_until_holder_unlocks,
    test_setlkw_interrupted_answers_eintr_holding_no_lock,
    test_interrupt_arriving_before_its_setlkw_still_cancels_it,
    test_interrupt_of_unknown_request_has_no_reply,
    test_flock_conflicts_between_two_handles,
    test_flock_independent_of_posix_locks_and_ends_with_release,
    test_flock_setlkw_waits_and_can_be_interrupted,
    test_destroy_ends_every_lock,
);
