//! Configuration space, feature negotiation, chains across descriptors and hostile chains.

use std::sync::Arc;

use lcow_fs::p9::consts::msg::{RLERROR, TGETATTR, TLOCK, TVERSION};
use vm_memory::{Bytes, GuestAddress};

use super::*;
use crate::bus::BusDevice;
use crate::virtio::mmio::{reg, MmioTransport};
use crate::virtio::p9::{P9Error, P9, VIRTIO_9P_F_MOUNT_TAG, VIRTIO_ID_9P};
use crate::virtio::request::testing::{Driver, FEATURES, F_WRITE, MEM_SIZE, QSIZE};
use crate::virtio::request::{PoolConfig, QUEUE_SIZE};
use crate::virtio::{status, VirtioDevice, VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX};
use crate::IrqTrigger;

fn device() -> (
    P9<Arc<Fake>>,
    crate::virtio::request::RequestWorker,
    Arc<Fake>,
) {
    let fake = fake();
    let (dev, worker) = P9::new("share0", fake.clone(), PoolConfig::default()).unwrap();
    (dev, worker, fake)
}

#[test]
fn test_p9_config_space_tag_length_then_bytes() {
    let (dev, _worker, _) = device();
    let mut len = [0u8; 2];
    let mut tag = [0u8; 6];
    let mut beyond = [0xffu8; 4];

    dev.read_config(0, &mut len);
    dev.read_config(2, &mut tag);
    dev.read_config(6, &mut beyond);

    assert_eq!(u16::from_le_bytes(len), 6);
    assert_eq!(&tag, b"share0");
    assert_eq!(beyond, [b'e', b'0', 0, 0]);
    assert_eq!(dev.device_type(), VIRTIO_ID_9P);
    assert_eq!(dev.queue_max_sizes(), [QUEUE_SIZE]);
    assert_eq!(dev.tag(), "share0");
}

#[test]
fn test_p9_invalid_tags_rejected() {
    for tag in [String::new(), "a\0b".to_owned(), "x".repeat(256)] {
        let got = P9::new(&tag, fake(), PoolConfig::default());

        assert!(matches!(got, Err(P9Error::InvalidTag { .. })), "{tag:?}");
    }
    assert!(P9::new(&"x".repeat(255), fake(), PoolConfig::default()).is_ok());
}

#[test]
fn test_p9_features_negotiated_through_transport() {
    let (dev, _worker, _) = device();
    let mem = vm_memory::GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap();
    let mut t = MmioTransport::new(mem, Box::new(dev), IrqTrigger::new().unwrap()).unwrap();
    let read = |t: &mut MmioTransport, off| {
        let mut b = [0u8; 4];
        t.read(off, &mut b);
        u32::from_le_bytes(b)
    };
    let write = |t: &mut MmioTransport, off, v: u32| t.write(off, &v.to_le_bytes());

    write(&mut t, reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);
    write(&mut t, reg::DEVICE_FEATURES_SEL, 0);
    let low = read(&mut t, reg::DEVICE_FEATURES);
    write(&mut t, reg::DEVICE_FEATURES_SEL, 1);
    let high = read(&mut t, reg::DEVICE_FEATURES);
    write(&mut t, reg::DRIVER_FEATURES_SEL, 0);
    write(&mut t, reg::DRIVER_FEATURES, low);
    write(&mut t, reg::DRIVER_FEATURES_SEL, 1);
    write(&mut t, reg::DRIVER_FEATURES, high);
    write(
        &mut t,
        reg::STATUS,
        status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK,
    );

    assert_eq!(read(&mut t, reg::DEVICE_ID), VIRTIO_ID_9P);
    assert_eq!(
        low,
        1 << VIRTIO_9P_F_MOUNT_TAG | 1 << VIRTIO_RING_F_EVENT_IDX,
        "mount tag and event idx"
    );
    assert_eq!(high, 1 << (VIRTIO_F_VERSION_1 - 32));
    assert_ne!(read(&mut t, reg::STATUS) & status::FEATURES_OK, 0);
    write(&mut t, reg::QUEUE_SEL, 0);
    assert_eq!(read(&mut t, reg::QUEUE_NUM_MAX), u32::from(QUEUE_SIZE));
    write(&mut t, reg::QUEUE_SEL, 1);
    assert_eq!(read(&mut t, reg::QUEUE_NUM_MAX), 0, "one queue only");
}

#[test]
fn test_p9_request_across_descriptors_reply_scattered() {
    let (mut dev, worker, fake) = device();
    let mut d = Driver::start(&mut dev, worker, FEATURES);
    let request = msg(TGETATTR, 7, b"0123456789abcdef");

    let used = d.roundtrip(
        0,
        &[&request[..3], &request[3..9], &request[9..]],
        &[5, 4, 64],
    );

    assert_eq!(fake.seen(), [(TGETATTR, 7)]);
    assert_eq!(used.len as usize, request.len());
    assert_eq!(used.reply, msg(TGETATTR + 1, 7, b"0123456789abcdef"));
}

#[test]
fn test_p9_hostile_chains_returned_empty_without_reaching_server() {
    let (mut dev, worker, fake) = device();
    let mut d = Driver::start(&mut dev, worker, FEATURES);
    let request = msg(TGETATTR, 1, b"body");
    let good = d.alloc(request.len());
    d.mem.write_slice(&request, GuestAddress(good)).unwrap();
    let out = d.alloc(64);
    let len = request.len() as u32;

    for descs in [
        vec![(MEM_SIZE - 4, len, 0), (out, 64, F_WRITE)],
        vec![(u64::MAX - 4, len, 0), (out, 64, F_WRITE)],
        vec![(good, len, 0), (MEM_SIZE - 8, 64, F_WRITE)],
        vec![(out, 64, F_WRITE)],
        vec![(good, 4, 0), (out, 8, F_WRITE), (good + 4, len - 4, 0)],
        vec![(good, u32::MAX, 0)],
    ] {
        d.offer_raw(0, &descs);
    }
    d.notify(0);
    let used = d.wait_used(0, 6);

    assert!(used.iter().all(|u| u.len == 0), "{used:?}");
    assert!(fake.seen().is_empty(), "{:?}", fake.seen());
    let after = d.roundtrip(0, &[&request], &[64]);
    assert_eq!(after.reply, msg(TGETATTR + 1, 1, b"body"));
}

#[test]
fn test_p9_head_index_out_of_range_skipped_device_survives() {
    let (mut dev, worker, fake) = device();
    let mut d = Driver::start(&mut dev, worker, FEATURES);

    d.publish(0, QSIZE + 3);
    d.notify(0);
    d.assert_idle(0);
    let used = d.roundtrip(0, &[&msg(TVERSION, 0xffff, b"v")], &[32]);

    assert_eq!(used.reply, msg(TVERSION + 1, 0xffff, b"v"));
    assert_eq!(fake.seen(), [(TVERSION, 0xffff)]);
}

#[test]
fn test_p9_reply_larger_than_writable_space_answers_rlerror_emsgsize() {
    let (mut dev, worker, _) = device();
    let mut d = Driver::start(&mut dev, worker, FEATURES);
    let request = msg(TGETATTR, 9, &[7u8; 32]);

    let fits_error = d.roundtrip(0, &[&request], &[6, 5]);
    let too_small = d.roundtrip(0, &[&request], &[10]);
    let none = d.roundtrip(0, &[&request], &[]);

    assert_eq!(fits_error.len, 11);
    assert_eq!(
        rlerror_of(&fits_error.reply),
        (RLERROR, 9, libc::EMSGSIZE as u32)
    );
    assert_eq!(too_small.len, 0);
    assert_eq!(none.len, 0);
}

#[test]
fn test_p9_event_idx_suppresses_interrupts_and_sets_avail_event() {
    let (mut dev, worker, _) = device();
    let mut d = Driver::start(&mut dev, worker, FEATURES | 1 << VIRTIO_RING_F_EVENT_IDX);
    let used_event = GuestAddress(d.rings[0].avail + 4 + 2 * u64::from(QSIZE));
    let avail_event = GuestAddress(d.rings[0].used + 4 + 8 * u64::from(QSIZE));
    d.mem.write_obj(0u16, used_event).unwrap();
    let irq = d.interrupt.irq().event().try_clone().unwrap();
    let req = msg(TGETATTR, 1, b"");

    d.roundtrip(0, &[&req], &[16]);
    let first = irq.reset().unwrap();
    d.roundtrip(0, &[&req], &[16]);
    let suppressed = irq.reset().unwrap();
    d.mem.write_obj(2u16, used_event).unwrap();
    d.roundtrip(0, &[&req], &[16]);
    let third = irq.reset().unwrap();

    assert!(first, "used_event 0: the first completion interrupts");
    assert!(!suppressed, "used_event 0: the second does not");
    assert!(third, "used_event 2: the third interrupts");
    let deadline = std::time::Instant::now() + crate::virtio::request::testing::WAIT;
    while d.mem.read_obj::<u16>(avail_event).unwrap() != 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the device never asked to be notified of the next chain"
        );
        std::thread::yield_now();
    }
}

#[test]
fn test_p9_reset_drops_reply_of_request_still_running() {
    let (mut dev, worker, fake) = device();
    let mut d = Driver::start(&mut dev, worker, FEATURES);
    d.submit(0, &[&msg(TLOCK, 1, b"")], &[32]);
    fake.wait_blocked(1);

    dev.reset();
    fake.release();

    d.assert_idle(0);
    let used_idx: u16 = d.mem.read_obj(GuestAddress(d.rings[0].used + 2)).unwrap();
    assert_eq!(used_idx, 0);
}
