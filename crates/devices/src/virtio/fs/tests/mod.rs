//! The virtio-fs device on mock guest memory: a fake driver
//! ([`crate::virtio::request::testing`]) posts chains on the high-priority and request queues,
//! a fake FUSE server answers (SETLKW blocks until released, the forgets and INTERRUPT get no
//! reply).

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use lcow_fs::fuse::consts::opcode::{
    FUSE_BATCH_FORGET, FUSE_FORGET, FUSE_GETATTR, FUSE_INTERRUPT, FUSE_SETLKW,
};

use super::*;
use crate::virtio::request::testing::{Driver, FEATURES, F_WRITE, WAIT};
use crate::virtio::request::{PoolConfig, RequestWorker, QUEUE_SIZE};
use crate::virtio::{VirtioDevice, VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX};

/// A FUSE request: `fuse_in_header` (40 bytes) and `args`.
fn request(opcode: u32, unique: u64, args: &[u8]) -> Vec<u8> {
    let mut out = ((40 + args.len()) as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&opcode.to_le_bytes());
    out.extend_from_slice(&unique.to_le_bytes());
    out.extend_from_slice(&1u64.to_le_bytes()); // nodeid
    out.extend_from_slice(&[0u8; 16]); // uid, gid, pid, total_extlen, padding
    out.extend_from_slice(args);
    out
}

/// A reply: `fuse_out_header` and `body`.
fn reply(error: i32, unique: u64, body: &[u8]) -> Vec<u8> {
    let mut out = ((16 + body.len()) as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&error.to_le_bytes());
    out.extend_from_slice(&unique.to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// A fake FUSE server: records `(opcode, unique)`; SETLKW blocks until released; FORGET,
/// BATCH_FORGET and INTERRUPT get no reply; anything else is answered with its own arguments.
#[derive(Default)]
struct Fake {
    seen: Mutex<Vec<(u32, u64)>>,
    blocked: Mutex<(usize, bool)>,
    changed: Condvar,
}

impl Fake {
    fn seen(&self) -> Vec<(u32, u64)> {
        self.seen.lock().unwrap().clone()
    }

    fn release(&self) {
        self.blocked.lock().unwrap().1 = true;
        self.changed.notify_all();
    }

    fn wait_blocked(&self, count: usize) {
        let deadline = Instant::now() + WAIT;
        let mut b = self.blocked.lock().unwrap();
        while b.0 < count {
            assert!(Instant::now() < deadline, "setlkw never blocked");
            b = self.changed.wait_timeout(b, WAIT).unwrap().0;
        }
    }
}

impl FuseHandler for Fake {
    fn handle(&self, req: &[u8]) -> Option<Vec<u8>> {
        let opcode = u32::from_le_bytes(req[4..8].try_into().unwrap());
        let unique = u64::from_le_bytes(req[8..16].try_into().unwrap());
        self.seen.lock().unwrap().push((opcode, unique));
        match opcode {
            FUSE_FORGET | FUSE_BATCH_FORGET | FUSE_INTERRUPT => None,
            FUSE_SETLKW => {
                let mut b = self.blocked.lock().unwrap();
                b.0 += 1;
                self.changed.notify_all();
                while !b.1 {
                    b = self.changed.wait(b).unwrap();
                }
                Some(reply(0, unique, &[]))
            }
            _ => Some(reply(0, unique, &req[40..])),
        }
    }
}

fn start(pool: PoolConfig) -> (Driver, Arc<Fake>, VirtioFs<Arc<Fake>>) {
    let fake = Arc::new(Fake::default());
    let (mut dev, worker) = VirtioFs::new("myfs", 1, fake.clone(), pool).unwrap();
    let d = Driver::start(&mut dev, worker, FEATURES);
    (d, fake, dev)
}

fn device(tag: &str, queues: u32) -> Result<(VirtioFs<Arc<Fake>>, RequestWorker), FsError> {
    VirtioFs::new(
        tag,
        queues,
        Arc::new(Fake::default()),
        PoolConfig::default(),
    )
}

#[test]
fn test_fs_config_tag_nul_padded_then_queue_count() {
    let (dev, _worker) = device("myfs", 2).unwrap();
    let mut config = [0xffu8; 44];

    for (i, chunk) in config.chunks_mut(4).enumerate() {
        dev.read_config(4 * i as u64, chunk);
    }

    assert_eq!(&config[..4], b"myfs");
    assert!(config[4..36].iter().all(|&b| b == 0));
    assert_eq!(u32::from_le_bytes(config[36..40].try_into().unwrap()), 2);
    assert_eq!(&config[40..], [0; 4], "beyond the config space reads zero");
}

#[test]
fn test_fs_tag_of_36_bytes_fills_field_without_nul() {
    let tag = "t".repeat(TAG_SIZE);
    let (dev, _worker) = device(&tag, 1).unwrap();
    let mut field = [0u8; 8];

    dev.read_config(32, &mut field);

    assert_eq!(&field[..4], b"tttt");
    assert_eq!(u32::from_le_bytes(field[4..].try_into().unwrap()), 1);
}

#[test]
fn test_fs_invalid_tag_or_queue_count_rejected() {
    for tag in [String::new(), "a\0".to_owned(), "t".repeat(TAG_SIZE + 1)] {
        assert!(
            matches!(device(&tag, 1), Err(FsError::InvalidTag { .. })),
            "{tag:?}"
        );
    }
    for count in [0, MAX_REQUEST_QUEUES + 1] {
        assert!(matches!(
            device("t", count),
            Err(FsError::QueueCount { .. })
        ));
    }
}

#[test]
fn test_fs_type_features_and_queues() {
    let (dev, _worker) = device("t", 3).unwrap();

    assert_eq!(dev.device_type(), VIRTIO_ID_FS);
    assert_eq!(
        dev.features(),
        1 << VIRTIO_F_VERSION_1 | 1 << VIRTIO_RING_F_EVENT_IDX
    );
    assert_eq!(dev.queue_max_sizes(), [QUEUE_SIZE; 4], "hiprio + 3");
    assert_eq!(dev.queue_events().len(), 4);
}

#[test]
fn test_fs_request_across_descriptors_reply_scattered() {
    let (mut d, fake, _dev) = start(PoolConfig::default());
    let req = request(FUSE_GETATTR, 5, b"getattr-in-args!");

    let used = d.roundtrip(1, &[&req[..16], &req[16..40], &req[40..]], &[16, 3, 100]);

    assert_eq!(fake.seen(), [(FUSE_GETATTR, 5)]);
    assert_eq!(used.reply, reply(0, 5, b"getattr-in-args!"));
}

#[test]
fn test_fs_forget_on_hiprio_served_while_only_worker_blocked() {
    let (mut d, fake, _dev) = start(PoolConfig {
        workers: 1,
        max_workers: 1,
        ..PoolConfig::default()
    });
    d.submit(1, &[&request(FUSE_SETLKW, 1, &[0; 8])], &[16]);
    fake.wait_blocked(1);

    let forget = d.roundtrip(0, &[&request(FUSE_FORGET, 2, &7u64.to_le_bytes())], &[]);
    let batch = d.roundtrip(0, &[&request(FUSE_BATCH_FORGET, 3, &[0; 8])], &[]);
    fake.release();
    let lock = d.wait_used(1, 1).remove(0);

    assert_eq!((forget.len, batch.len), (0, 0));
    assert!(fake.seen().contains(&(FUSE_FORGET, 2)));
    assert_eq!(lock.reply, reply(0, 1, &[]));
}

#[test]
fn test_fs_blocked_setlkw_does_not_stall_other_requests() {
    let (mut d, fake, _dev) = start(PoolConfig {
        workers: 1,
        max_workers: 4,
        ..PoolConfig::default()
    });
    d.submit(1, &[&request(FUSE_SETLKW, 1, &[])], &[16]);
    d.submit(1, &[&request(FUSE_SETLKW, 2, &[])], &[16]);
    fake.wait_blocked(2);

    let other = d.roundtrip(1, &[&request(FUSE_GETATTR, 3, b"x")], &[32]);
    fake.release();
    let locks = d.wait_used(1, 2);

    assert_eq!(other.reply, reply(0, 3, b"x"));
    assert_eq!(locks.len(), 2);
}

#[test]
fn test_fs_interrupt_of_queued_request_answers_it_eintr() {
    let (mut d, fake, _dev) = start(PoolConfig {
        workers: 1,
        max_workers: 1,
        ..PoolConfig::default()
    });
    d.submit(1, &[&request(FUSE_SETLKW, 1, &[])], &[16]);
    fake.wait_blocked(1);
    d.submit(1, &[&request(FUSE_GETATTR, 2, &[])], &[16]);

    let interrupt = d.roundtrip(0, &[&request(FUSE_INTERRUPT, 3, &2u64.to_le_bytes())], &[]);
    let cancelled = d.wait_used(1, 1).remove(0);
    fake.release();
    d.wait_used(1, 1);

    assert_eq!(interrupt.len, 0);
    assert_eq!(cancelled.reply, reply(-libc::EINTR, 2, &[]));
    assert!(!fake.seen().contains(&(FUSE_GETATTR, 2)));
}

#[test]
fn test_fs_no_reply_and_oversized_reply_handled() {
    let (mut d, _fake, _dev) = start(PoolConfig::default());
    let big = request(FUSE_GETATTR, 8, &[1u8; 64]);

    let forget_on_request_queue = d.roundtrip(1, &[&request(FUSE_FORGET, 7, &[0; 8])], &[64]);
    let error = d.roundtrip(1, &[&big], &[8, 8]);
    let too_small = d.roundtrip(1, &[&big], &[15]);

    assert_eq!(forget_on_request_queue.len, 0);
    assert_eq!(error.reply, reply(-libc::EIO, 8, &[]));
    assert_eq!(too_small.len, 0);
}

#[test]
fn test_fs_hostile_chains_returned_empty_without_reaching_server() {
    let (mut d, fake, _dev) = start(PoolConfig::default());
    let out = d.alloc(64);

    d.offer_raw(1, &[(out, 64, F_WRITE)]);
    d.offer_raw(1, &[(u64::MAX - 16, 48, 0), (out, 64, F_WRITE)]);
    d.offer_raw(0, &[(crate::virtio::request::testing::MEM_SIZE, 40, 0)]);
    d.notify(1);
    d.notify(0);
    let used = [d.wait_used(1, 2), d.wait_used(0, 1)].concat();

    assert!(used.iter().all(|u| u.len == 0), "{used:?}");
    assert!(fake.seen().is_empty());
}

/// Against lcow-fs's Linux passthrough backend.
#[cfg(target_os = "linux")]
#[test]
fn test_fs_init_reaches_real_fuse_server_over_passthrough() {
    use lcow_fs::backend::passthrough::{Config, Passthrough};
    use lcow_fs::fuse::consts::opcode::FUSE_INIT;
    use lcow_fs::fuse::server::{Options, Server};

    let dir = tempfile::tempdir().unwrap();
    let server = Server::new(
        Passthrough::new(dir.path(), Config::default()).unwrap(),
        Options::default(),
    );
    let (mut dev, worker) = VirtioFs::new("root", 1, server, PoolConfig::default()).unwrap();
    let mut d = Driver::start(&mut dev, worker, FEATURES);
    let mut init_in = Vec::new();
    for word in [7u32, 38, 1 << 20, 0, 0] {
        init_in.extend_from_slice(&word.to_le_bytes());
    }
    init_in.extend_from_slice(&[0u8; 44]);
    let init = request(FUSE_INIT, 1, &init_in);

    let used = d.roundtrip(1, &[&init[..40], &init[40..]], &[16, 256]);

    let r = &used.reply;
    assert_eq!(used.len as usize, r.len());
    assert_eq!(
        u32::from_le_bytes(r[0..4].try_into().unwrap()) as usize,
        r.len()
    );
    assert_eq!(
        i32::from_le_bytes(r[4..8].try_into().unwrap()),
        0,
        "no error"
    );
    assert_eq!(u64::from_le_bytes(r[8..16].try_into().unwrap()), 1);
    assert_eq!(
        u32::from_le_bytes(r[16..20].try_into().unwrap()),
        7,
        "major"
    );
}
