//! Tlock, Tgetlock, and Tflush of a blocked lock.

use std::sync::{mpsc, Mutex};
use std::thread;
use std::time::Duration;

use super::*;
use crate::linux;
use crate::p9::consts::{lock_flags, lock_status, lock_type};
use crate::p9::{Rflush, Tflush, Tgetlock, Tlock};

fn encode(tag: u16, msg: Tmessage) -> Vec<u8> {
    let mut out = Vec::new();
    crate::p9::encode_tmessage(tag, &msg, &mut out).unwrap();
    out
}

fn tlock(fid: u32, ty: u8, flags: u32, start: u64, length: u64, proc_id: u32) -> Tlock {
    Tlock {
        fid,
        ty,
        flags,
        start,
        length,
        proc_id,
        client_id: "guest".into(),
    }
}

fn status(reply: &Rmessage) -> u8 {
    match reply {
        Rmessage::Lock(l) => l.status,
        other => panic!("{other:?}"),
    }
}

/// A client with file `f` opened read-write as fids 1 and 2.
fn two_fids() -> Client {
    two_fids_with(Config::default())
}

/// [`two_fids`] over a backend configured by `config`.
fn two_fids_with(config: Config) -> Client {
    let mut c = Client::with_config(config);
    std::fs::write(c.path("f"), vec![0u8; 100]).unwrap();
    c.open_rw(1, &["f"]);
    c.open_rw(2, &["f"]);
    c
}

fn test_lock_conflict_between_two_fids_is_not_success(config: Config) {
    let mut c = two_fids_with(config);
    let first = c.call(tlock(1, lock_type::WRLCK, 0, 10, 20, 111));

    let second = c.call(tlock(2, lock_type::WRLCK, 0, 15, 1, 222));
    let shared = c.call(tlock(2, lock_type::RDLCK, 0, 0, 0, 222));
    let apart = c.call(tlock(2, lock_type::WRLCK, 0, 30, 5, 222));

    assert_eq!(status(&first), lock_status::SUCCESS);
    assert_eq!(status(&second), lock_status::BLOCKED);
    assert_eq!(status(&shared), lock_status::BLOCKED);
    assert_eq!(status(&apart), lock_status::SUCCESS);
}

fn test_getlock_conflict_reports_holder_range(config: Config) {
    let mut c = two_fids_with(config);
    c.ok(tlock(1, lock_type::WRLCK, 0, 10, 20, 111));

    let reply = c.ok(Tgetlock {
        fid: 2,
        ty: lock_type::RDLCK,
        start: 0,
        length: 0,
        proc_id: 222,
        client_id: "guest".into(),
    });

    match reply {
        Rmessage::Getlock(g) => {
            assert_eq!(g.ty, lock_type::WRLCK);
            assert_eq!((g.start, g.length), (10, 20));
            assert_eq!(g.proc_id, 111);
        }
        other => panic!("{other:?}"),
    }
}

fn test_getlock_no_conflict_answers_unlck(config: Config) {
    let mut c = two_fids_with(config);
    c.ok(tlock(1, lock_type::RDLCK, 0, 0, 10, 111));

    let reply = c.ok(Tgetlock {
        fid: 2,
        ty: lock_type::RDLCK,
        start: 0,
        length: 10,
        proc_id: 222,
        client_id: "guest".into(),
    });

    assert!(
        matches!(reply, Rmessage::Getlock(ref g) if g.ty == lock_type::UNLCK),
        "{reply:?}"
    );
}

fn test_lock_after_unlock_succeeds_for_other_fid(config: Config) {
    let mut c = two_fids_with(config);
    c.ok(tlock(1, lock_type::WRLCK, 0, 0, 0, 111));
    assert_eq!(
        status(&c.call(tlock(2, lock_type::WRLCK, 0, 0, 0, 222))),
        lock_status::BLOCKED
    );

    c.ok(tlock(1, lock_type::UNLCK, 0, 0, 0, 111));

    let reply = c.call(tlock(2, lock_type::WRLCK, 0, 0, 0, 222));
    assert_eq!(status(&reply), lock_status::SUCCESS);
}

fn test_lock_clunk_of_holder_releases_lock(config: Config) {
    let mut c = two_fids_with(config);
    c.ok(tlock(1, lock_type::WRLCK, 0, 0, 0, 111));

    c.clunk(1);

    let reply = c.call(tlock(2, lock_type::WRLCK, 0, 0, 0, 222));
    assert_eq!(status(&reply), lock_status::SUCCESS);
}

fn test_lock_unopened_fid_answers_ebadf(config: Config) {
    let mut c = Client::with_config(config);
    c.walk(ROOT, 1, &[]);

    assert_eq!(c.err(tlock(1, lock_type::WRLCK, 0, 0, 0, 1)), linux::EBADF);
}

fn test_lock_bad_type_answers_einval(config: Config) {
    let mut c = two_fids_with(config);

    assert_eq!(c.err(tlock(1, 9, 0, 0, 0, 1)), linux::EINVAL);
}

fn test_lock_block_flag_waits_until_released(config: Config) {
    let mut c = two_fids_with(config);
    c.ok(tlock(1, lock_type::WRLCK, 0, 0, 0, 111));
    let server = Arc::clone(&c.server);
    let (tx, rx) = mpsc::channel();

    let waiter = thread::spawn(move || {
        let reply = call_tagged(
            &server,
            500,
            tlock(2, lock_type::WRLCK, lock_flags::BLOCK, 0, 0, 222).into(),
        );
        tx.send(reply).unwrap();
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(150)).is_err(),
        "did not wait"
    );
    c.ok(tlock(1, lock_type::UNLCK, 0, 0, 0, 111));

    let reply = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    waiter.join().unwrap();
    assert_eq!(status(&reply), lock_status::SUCCESS);
    assert_eq!(
        status(&c.call(tlock(1, lock_type::WRLCK, 0, 0, 0, 111))),
        lock_status::BLOCKED
    );
}

fn test_flush_blocked_lock_answers_eintr_before_rflush(config: Config) {
    let mut c = two_fids_with(config);
    c.ok(tlock(1, lock_type::WRLCK, 0, 0, 0, 111));
    let sent: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let (server, log) = (Arc::clone(&c.server), Arc::clone(&sent));
    let waiter = thread::spawn(move || {
        let req = encode(
            600,
            tlock(2, lock_type::WRLCK, lock_flags::BLOCK, 0, 0, 222).into(),
        );
        server.handle_and_send(&req, &mut |r| log.lock().unwrap().push(r));
    });
    thread::sleep(Duration::from_millis(100));
    assert!(sent.lock().unwrap().is_empty(), "the lock did not wait");

    let flush = encode(601, Tflush { oldtag: 600 }.into());
    c.server
        .handle_and_send(&flush, &mut |r| sent.lock().unwrap().push(r));
    waiter.join().unwrap();

    let sent = sent.lock().unwrap();
    assert_eq!(sent.len(), 2);
    let (tag, reply) = decode_rmessage(&sent[0]).unwrap();
    assert_eq!((tag, errno_of(&reply)), (600, Some(linux::EINTR)));
    assert_eq!(
        decode_rmessage(&sent[1]).unwrap(),
        (601, Rmessage::Flush(Rflush))
    );
    // It took no lock: fid 1's lock is still the only one.
    let getlock = c.ok(Tgetlock {
        fid: 1,
        ty: lock_type::WRLCK,
        start: 0,
        length: 0,
        proc_id: 111,
        client_id: "guest".into(),
    });
    assert!(matches!(getlock, Rmessage::Getlock(ref g) if g.ty == lock_type::UNLCK));
}

fn test_flush_finished_tag_answers_rflush_at_once(config: Config) {
    let mut c = two_fids_with(config);
    c.ok(tlock(1, lock_type::WRLCK, 0, 0, 0, 111));

    let flushed = call_tagged(&c.server, 700, Tflush { oldtag: 1 }.into());

    assert_eq!(flushed, Rmessage::Flush(Rflush));
}

fn test_server_concurrent_requests_from_threads_all_answer(config: Config) {
    let mut c = Client::with_config(config);
    for i in 0..8 {
        std::fs::write(c.path(&format!("f{i}")), vec![i as u8; 1000]).unwrap();
    }
    let server = Arc::clone(&c.server);

    let threads: Vec<_> = (0..8u32)
        .map(|i| {
            let server = Arc::clone(&server);
            thread::spawn(move || {
                let fid = 100 + i;
                for round in 0..50u16 {
                    let tag = (i as u16) * 100 + round;
                    let walk = Client::twalk(ROOT, fid, &[&format!("f{i}")]);
                    assert!(matches!(
                        call_tagged(&server, tag, walk.into()),
                        Rmessage::Walk(_)
                    ));
                    let open = Tlopen {
                        fid,
                        flags: open_flags::RDONLY,
                    };
                    assert!(matches!(
                        call_tagged(&server, tag, open.into()),
                        Rmessage::Lopen(_)
                    ));
                    let read = crate::p9::Tread {
                        fid,
                        offset: 0,
                        count: 2000,
                    };
                    match call_tagged(&server, tag, read.into()) {
                        Rmessage::Read(r) => assert_eq!(r.data.0, vec![i as u8; 1000]),
                        other => panic!("{other:?}"),
                    }
                    let clunk = Tclunk { fid };
                    assert!(matches!(
                        call_tagged(&server, tag, clunk.into()),
                        Rmessage::Clunk(_)
                    ));
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());

    assert_eq!(c.server.fid_count(), 1);
    assert_eq!(c.server.refs.len(), 0);
    c.walk(ROOT, 1, &["f0"]);
}

fn tgetlock(fid: u32, ty: u8, start: u64, length: u64, proc_id: u32) -> Tgetlock {
    Tgetlock {
        fid,
        ty,
        start,
        length,
        proc_id,
        client_id: "guest".into(),
    }
}

fn getlock(c: &mut Client, t: Tgetlock) -> crate::p9::Rgetlock {
    match c.ok(t) {
        Rmessage::Getlock(g) => g,
        other => panic!("{other:?}"),
    }
}

fn test_lock_same_proc_through_two_fids_both_succeed(config: Config) {
    let mut c = two_fids_with(config);

    let first = c.call(tlock(1, lock_type::WRLCK, 0, 0, 50, 111));
    let second = c.call(tlock(2, lock_type::WRLCK, 0, 10, 10, 111));
    let whole = c.call(tlock(2, lock_type::RDLCK, 0, 0, 0, 111));

    assert_eq!(status(&first), lock_status::SUCCESS);
    assert_eq!(status(&second), lock_status::SUCCESS);
    assert_eq!(status(&whole), lock_status::SUCCESS);
    assert_eq!(c.server.locks.len(), 1);
}

fn test_lock_different_proc_through_two_fids_blocks(config: Config) {
    let mut c = two_fids_with(config);
    c.ok(tlock(1, lock_type::RDLCK, 0, 0, 0, 111));

    let write = c.call(tlock(2, lock_type::WRLCK, 0, 5, 1, 222));
    let read = c.call(tlock(2, lock_type::RDLCK, 0, 5, 1, 222));

    assert_eq!(status(&write), lock_status::BLOCKED);
    assert_eq!(status(&read), lock_status::SUCCESS);
}

fn test_lock_same_proc_other_client_id_blocks(config: Config) {
    let mut c = two_fids_with(config);
    c.ok(tlock(1, lock_type::WRLCK, 0, 0, 0, 111));
    let mut other = tlock(2, lock_type::WRLCK, 0, 0, 0, 111);
    other.client_id = "other-guest".into();

    assert_eq!(status(&c.call(other)), lock_status::BLOCKED);
}

fn test_lock_unlock_through_other_fid_frees_range_for_other_owner(config: Config) {
    let mut c = two_fids_with(config);
    c.open_rw(3, &["f"]);
    c.ok(tlock(1, lock_type::WRLCK, 0, 0, 0, 111));
    assert_eq!(
        status(&c.call(tlock(3, lock_type::WRLCK, 0, 0, 0, 222))),
        lock_status::BLOCKED
    );

    // What the guest sends when process 111 closes the descriptor of fid 2.
    c.ok(tlock(2, lock_type::UNLCK, 0, 0, 0, 111));

    let reply = c.call(tlock(3, lock_type::WRLCK, 0, 0, 0, 222));
    assert_eq!(status(&reply), lock_status::SUCCESS);
}

fn test_lock_unlock_by_owner_without_locks_succeeds_without_handle(config: Config) {
    let mut c = two_fids_with(config);

    let reply = c.call(tlock(1, lock_type::UNLCK, 0, 0, 0, 111));

    assert_eq!(status(&reply), lock_status::SUCCESS);
    assert_eq!(c.server.locks.len(), 0);
}

fn test_lock_clunk_of_last_owner_fid_releases_locks(config: Config) {
    let mut c = two_fids_with(config);
    c.open_rw(3, &["f"]);
    c.ok(tlock(1, lock_type::WRLCK, 0, 0, 10, 111));
    c.ok(tlock(2, lock_type::WRLCK, 0, 20, 10, 111));

    // Fid 3 was never used by owner 111, and fid 1 is not its last: the locks stay.
    c.clunk(3);
    c.clunk(1);
    c.open_rw(3, &["f"]);
    assert_eq!(
        status(&c.call(tlock(3, lock_type::WRLCK, 0, 0, 0, 222))),
        lock_status::BLOCKED
    );
    assert_eq!(
        status(&c.call(tlock(3, lock_type::WRLCK, 0, 5, 1, 222))),
        lock_status::BLOCKED
    );

    c.clunk(2);

    let reply = c.call(tlock(3, lock_type::WRLCK, 0, 0, 0, 222));
    assert_eq!(status(&reply), lock_status::SUCCESS);
    assert_eq!(c.server.locks.len(), 1);
    c.clunk(3);
    assert_eq!(c.server.locks.len(), 0);
}

fn test_lock_remove_of_owner_fid_releases_owner(config: Config) {
    let mut c = two_fids_with(config);
    c.ok(tlock(1, lock_type::WRLCK, 0, 0, 0, 111));

    c.ok(crate::p9::Tremove { fid: 1 });

    assert_eq!(c.server.locks.len(), 0);
}

fn test_lock_version_ends_every_owner(config: Config) {
    let mut c = two_fids_with(config);
    c.ok(tlock(1, lock_type::WRLCK, 0, 0, 0, 111));
    c.ok(tlock(2, lock_type::RDLCK, 0, 0, 0, 222));
    assert_eq!(c.server.locks.len(), 2);

    c.ok(Tversion {
        msize: MSIZE,
        version: "9P2000.L".into(),
    });

    assert_eq!(c.server.locks.len(), 0);
    c.attach(ROOT);
    c.open_rw(1, &["f"]);
    let reply = c.call(tlock(1, lock_type::WRLCK, 0, 0, 0, 333));
    assert_eq!(status(&reply), lock_status::SUCCESS);
}

fn test_lock_type_must_match_fid_open_mode(config: Config) {
    let mut c = Client::with_config(config);
    std::fs::write(c.path("f"), b"data").unwrap();
    c.open(1, &["f"], open_flags::RDONLY);
    c.open(2, &["f"], open_flags::WRONLY);

    assert_eq!(c.err(tlock(1, lock_type::WRLCK, 0, 0, 0, 1)), linux::EBADF);
    assert_eq!(c.err(tlock(2, lock_type::RDLCK, 0, 0, 0, 1)), linux::EBADF);
    assert_eq!(
        status(&c.call(tlock(1, lock_type::RDLCK, 0, 0, 1, 1))),
        lock_status::SUCCESS
    );
    // The owner's handle (read-write) holds both kinds, whichever fid asked.
    assert_eq!(
        status(&c.call(tlock(2, lock_type::WRLCK, 0, 2, 1, 1))),
        lock_status::SUCCESS
    );
    assert_eq!(c.server.locks.len(), 1);
}

#[test]
fn test_lock_read_only_share_owner_handle_falls_back_to_fid_access_mode() {
    let tmp = tempfile::TempDir::new().unwrap();
    std::fs::write(tmp.path().join("f"), b"data").unwrap();
    let config = Config {
        read_only: true,
        ..Config::default()
    };
    let server = Server::new(Passthrough::new(tmp.path(), config).unwrap());
    let mut tag = 0u16;
    let mut call = |msg: Tmessage| {
        tag += 1;
        call_tagged(&server, tag, msg)
    };
    call(
        Tversion {
            msize: MSIZE,
            version: "9P2000.L".into(),
        }
        .into(),
    );
    call(
        Tattach {
            fid: ROOT,
            afid: NOFID,
            uname: "root".into(),
            aname: "".into(),
            n_uname: 0,
        }
        .into(),
    );
    call(Client::twalk(ROOT, 1, &["f"]).into());
    assert!(matches!(
        call(
            Tlopen {
                fid: 1,
                flags: open_flags::RDONLY
            }
            .into()
        ),
        Rmessage::Lopen(_)
    ));

    // The backend refuses O_RDWR (EROFS); the owner handle is opened read-only instead.
    let reply = call(tlock(1, lock_type::RDLCK, 0, 0, 0, 7).into());

    assert_eq!(status(&reply), lock_status::SUCCESS);
    assert_eq!(server.locks.len(), 1);
}

fn test_getlock_reports_other_owner_proc_id(config: Config) {
    let mut c = two_fids_with(config);
    c.ok(tlock(1, lock_type::WRLCK, 0, 10, 5, 111));
    c.ok(tlock(1, lock_type::RDLCK, 0, 40, 5, 333));

    let by_other = getlock(&mut c, tgetlock(2, lock_type::RDLCK, 0, 20, 222));
    let read_holder = getlock(&mut c, tgetlock(2, lock_type::WRLCK, 30, 0, 222));

    assert_eq!(
        (
            by_other.ty,
            by_other.start,
            by_other.length,
            by_other.proc_id
        ),
        (lock_type::WRLCK, 10, 5, 111)
    );
    assert_eq!(
        (read_holder.ty, read_holder.start, read_holder.length),
        (lock_type::RDLCK, 40, 5)
    );
    assert_eq!(read_holder.proc_id, 333);
}

fn test_getlock_own_lock_through_other_fid_answers_unlck(config: Config) {
    let mut c = two_fids_with(config);
    c.ok(tlock(1, lock_type::WRLCK, 0, 0, 0, 111));

    let own = getlock(&mut c, tgetlock(2, lock_type::WRLCK, 0, 0, 111));

    assert_eq!(own.ty, lock_type::UNLCK);
    assert_eq!((own.start, own.length), (0, 0));
}

fn test_getlock_unlck_type_as_linux_sends_reports_any_lock(config: Config) {
    let mut c = two_fids_with(config);
    c.ok(tlock(1, lock_type::RDLCK, 0, 0, 0, 111));

    // v9fs_file_getlock always sends type UNLCK.
    let other = getlock(&mut c, tgetlock(2, lock_type::UNLCK, 0, 0, 222));
    let own = getlock(&mut c, tgetlock(2, lock_type::UNLCK, 0, 0, 111));

    assert_eq!((other.ty, other.proc_id), (lock_type::RDLCK, 111));
    assert_eq!(own.ty, lock_type::UNLCK);
}

fn test_lock_block_flag_same_proc_other_fid_does_not_wait(config: Config) {
    let mut c = two_fids_with(config);
    c.ok(tlock(1, lock_type::WRLCK, 0, 0, 0, 111));

    let reply = c.call(tlock(2, lock_type::WRLCK, lock_flags::BLOCK, 0, 0, 111));

    assert_eq!(status(&reply), lock_status::SUCCESS);
}

#[test]
fn test_lock_host_process_sees_guest_owner_lock() {
    let mut c = two_fids();
    c.ok(tlock(1, lock_type::WRLCK, 0, 0, 0, 111));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(c.path("f"))
        .unwrap();
    // SAFETY: all-zero is a valid flock.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = linux::F_WRLCK as libc::c_short;
    fl.l_whence = linux::SEEK_SET as libc::c_short;

    // SAFETY: a valid flock on a descriptor we own.
    let ret = unsafe {
        libc::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(&file),
            libc::F_OFD_GETLK,
            &mut fl,
        )
    };

    assert_eq!(ret, 0);
    assert_eq!(fl.l_type, linux::F_WRLCK as libc::c_short);
}

both_lock_keepings!(
    test_lock_conflict_between_two_fids_is_not_success,
    test_getlock_conflict_reports_holder_range,
    test_getlock_no_conflict_answers_unlck,
    test_lock_after_unlock_succeeds_for_other_fid,
    test_lock_clunk_of_holder_releases_lock,
    test_lock_unopened_fid_answers_ebadf,
    test_lock_bad_type_answers_einval,
    test_lock_block_flag_waits_until_released,
    test_flush_blocked_lock_answers_eintr_before_rflush,
    test_flush_finished_tag_answers_rflush_at_once,
    test_server_concurrent_requests_from_threads_all_answer,
    test_lock_same_proc_through_two_fids_both_succeed,
    test_lock_different_proc_through_two_fids_blocks,
    test_lock_same_proc_other_client_id_blocks,
    test_lock_unlock_through_other_fid_frees_range_for_other_owner,
    test_lock_unlock_by_owner_without_locks_succeeds_without_handle,
    test_lock_clunk_of_last_owner_fid_releases_locks,
    test_lock_remove_of_owner_fid_releases_owner,
    test_lock_version_ends_every_owner,
    test_lock_type_must_match_fid_open_mode,
    test_getlock_reports_other_owner_proc_id,
    test_getlock_own_lock_through_other_fid_answers_unlck,
    test_getlock_unlck_type_as_linux_sends_reports_any_lock,
    test_lock_block_flag_same_proc_other_fid_does_not_wait,
);
