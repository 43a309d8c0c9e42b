//! Tlock, Tgetlock, and Tflush of a blocked lock.

use std::sync::{mpsc, Mutex};
use std::thread;
use std::time::Duration;

use super::*;
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
    let mut c = Client::new();
    std::fs::write(c.path("f"), vec![0u8; 100]).unwrap();
    c.open_rw(1, &["f"]);
    c.open_rw(2, &["f"]);
    c
}

#[test]
fn test_lock_conflict_between_two_fids_is_not_success() {
    let mut c = two_fids();
    let first = c.call(tlock(1, lock_type::WRLCK, 0, 10, 20, 111));

    let second = c.call(tlock(2, lock_type::WRLCK, 0, 15, 1, 222));
    let shared = c.call(tlock(2, lock_type::RDLCK, 0, 0, 0, 222));
    let apart = c.call(tlock(2, lock_type::WRLCK, 0, 30, 5, 222));

    assert_eq!(status(&first), lock_status::SUCCESS);
    assert_eq!(status(&second), lock_status::BLOCKED);
    assert_eq!(status(&shared), lock_status::BLOCKED);
    assert_eq!(status(&apart), lock_status::SUCCESS);
}

#[test]
fn test_getlock_conflict_reports_holder_range() {
    let mut c = two_fids();
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

#[test]
fn test_getlock_no_conflict_answers_unlck() {
    let mut c = two_fids();
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

#[test]
fn test_lock_after_unlock_succeeds_for_other_fid() {
    let mut c = two_fids();
    c.ok(tlock(1, lock_type::WRLCK, 0, 0, 0, 111));
    assert_eq!(
        status(&c.call(tlock(2, lock_type::WRLCK, 0, 0, 0, 222))),
        lock_status::BLOCKED
    );

    c.ok(tlock(1, lock_type::UNLCK, 0, 0, 0, 111));

    let reply = c.call(tlock(2, lock_type::WRLCK, 0, 0, 0, 222));
    assert_eq!(status(&reply), lock_status::SUCCESS);
}

#[test]
fn test_lock_clunk_of_holder_releases_lock() {
    let mut c = two_fids();
    c.ok(tlock(1, lock_type::WRLCK, 0, 0, 0, 111));

    c.clunk(1);

    let reply = c.call(tlock(2, lock_type::WRLCK, 0, 0, 0, 222));
    assert_eq!(status(&reply), lock_status::SUCCESS);
}

#[test]
fn test_lock_unopened_fid_answers_ebadf() {
    let mut c = Client::new();
    c.walk(ROOT, 1, &[]);

    assert_eq!(c.err(tlock(1, lock_type::WRLCK, 0, 0, 0, 1)), libc::EBADF);
}

#[test]
fn test_lock_bad_type_answers_einval() {
    let mut c = two_fids();

    assert_eq!(c.err(tlock(1, 9, 0, 0, 0, 1)), libc::EINVAL);
}

#[test]
fn test_lock_block_flag_waits_until_released() {
    let mut c = two_fids();
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

#[test]
fn test_flush_blocked_lock_answers_eintr_before_rflush() {
    let mut c = two_fids();
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
    assert_eq!((tag, errno_of(&reply)), (600, Some(libc::EINTR)));
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

#[test]
fn test_flush_finished_tag_answers_rflush_at_once() {
    let mut c = two_fids();
    c.ok(tlock(1, lock_type::WRLCK, 0, 0, 0, 111));

    let flushed = call_tagged(&c.server, 700, Tflush { oldtag: 1 }.into());

    assert_eq!(flushed, Rmessage::Flush(Rflush));
}

#[test]
fn test_server_concurrent_requests_from_threads_all_answer() {
    let mut c = Client::new();
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
