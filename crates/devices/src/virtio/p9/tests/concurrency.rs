//! Requests served concurrently: a blocked Tlock stalls neither other requests nor the Tflush
//! that ends it, and a Tflush of a request still in the backlog answers it.

use lcow_fs::p9::consts::msg::{RFLUSH, RLERROR, TFLUSH, TGETATTR, TLOCK};

use super::*;
use crate::virtio::p9::P9;
use crate::virtio::request::testing::{Driver, FEATURES};
use crate::virtio::request::PoolConfig;

fn start(pool: PoolConfig) -> (Driver, Arc<Fake>, P9<Arc<Fake>>) {
    let fake = fake();
    let (mut dev, worker) = P9::new("t", fake.clone(), pool).unwrap();
    let d = Driver::start(&mut dev, worker, FEATURES);
    (d, fake, dev)
}

fn pool(workers: usize, max_workers: usize) -> PoolConfig {
    PoolConfig {
        workers,
        max_workers,
        ..PoolConfig::default()
    }
}

#[test]
fn test_p9_blocked_tlock_does_not_stall_other_requests() {
    let (mut d, fake, _dev) = start(pool(1, 2));
    d.submit(0, &[&msg(TLOCK, 1, b"")], &[32]);
    fake.wait_blocked(1);

    let other = d.roundtrip(0, &[&msg(TGETATTR, 2, b"x")], &[32]);
    fake.release();
    let lock = d.wait_used(0, 1).remove(0);

    assert_eq!(other.reply, msg(TGETATTR + 1, 2, b"x"));
    assert_eq!(lock.reply, msg(TLOCK + 1, 1, &[0]));
}

#[test]
fn test_p9_blocked_tlocks_on_every_default_worker_do_not_stall_others() {
    let (mut d, fake, _dev) = start(PoolConfig::default());
    for tag in 1..=6 {
        d.submit(0, &[&msg(TLOCK, tag, b"")], &[32]);
        fake.wait_blocked(tag);
    }

    let other = d.roundtrip(0, &[&msg(TGETATTR, 9, b"")], &[32]);
    fake.release();
    let locks = d.wait_used(0, 6);

    assert_eq!(tag_of(&other.reply), 9);
    assert!(locks.iter().all(|u| u.reply[4] == TLOCK + 1), "{locks:?}");
}

#[test]
fn test_p9_tflush_reaches_server_while_only_worker_blocked() {
    let (mut d, fake, _dev) = start(pool(1, 1));
    d.submit(0, &[&msg(TLOCK, 1, b"")], &[32]);
    fake.wait_blocked(1);

    d.submit(0, &[&msg(TFLUSH, 2, &1u16.to_le_bytes())], &[32]);
    let used = d.wait_used(0, 2);

    assert_eq!(
        rlerror_of(&used[0].reply),
        (RLERROR, 1, libc::EINTR as u32),
        "the flushed tlock is answered first"
    );
    assert_eq!(used[1].reply, msg(RFLUSH, 2, &[]));
}

#[test]
fn test_p9_tflush_of_queued_request_answers_it_eintr_before_rflush() {
    let (mut d, fake, _dev) = start(pool(1, 1));
    d.submit(0, &[&msg(TLOCK, 1, b"")], &[32]);
    fake.wait_blocked(1);
    d.submit(0, &[&msg(TGETATTR, 3, b"")], &[32]);
    d.assert_idle(0);

    d.submit(0, &[&msg(TFLUSH, 4, &3u16.to_le_bytes())], &[32]);
    let flushed = d.wait_used(0, 2);
    fake.release();
    let lock = d.wait_used(0, 1).remove(0);

    assert_eq!(
        rlerror_of(&flushed[0].reply),
        (RLERROR, 3, libc::EINTR as u32)
    );
    assert_eq!(flushed[1].reply, msg(RFLUSH, 4, &[]));
    assert_eq!(tag_of(&lock.reply), 1);
    assert!(
        !fake.seen().contains(&(TGETATTR, 3)),
        "the flushed request never reached the server"
    );
}
