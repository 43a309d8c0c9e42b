//! Tests of the virtio-mmio transport against a recording fake device.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use lcow_base::Event;
use virtio_queue::mock::MockSplitQueue;
use vm_memory::{GuestAddress, GuestMemoryMmap};

use super::*;
use crate::virtio::{ActivateError, INTERRUPT_USED_RING};

const FEATURE_X: u64 = 1 << 3;

#[derive(Debug, Default)]
struct Record {
    activations: Vec<(usize, u64)>,
    resets: usize,
    config_writes: Vec<(u64, Vec<u8>)>,
}

struct FakeDevice {
    sizes: Vec<u16>,
    events: Vec<Event>,
    record: Arc<Mutex<Record>>,
}

impl FakeDevice {
    fn new(queues: usize) -> (Self, Arc<Mutex<Record>>) {
        let record = Arc::new(Mutex::new(Record::default()));
        let dev = Self {
            sizes: vec![16; queues],
            events: (0..queues).map(|_| Event::new().unwrap()).collect(),
            record: record.clone(),
        };
        (dev, record)
    }
}

impl VirtioDevice for FakeDevice {
    fn device_type(&self) -> u32 {
        19
    }
    fn features(&self) -> u64 {
        (1 << VIRTIO_F_VERSION_1) | FEATURE_X
    }
    fn queue_max_sizes(&self) -> &[u16] {
        &self.sizes
    }
    fn queue_events(&self) -> &[Event] {
        &self.events
    }
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        let config = 0x0102_0304_0506_0708u64.to_le_bytes();
        for (i, b) in data.iter_mut().enumerate() {
            *b = config.get(offset as usize + i).copied().unwrap_or(0);
        }
    }
    fn write_config(&mut self, offset: u64, data: &[u8]) {
        self.record
            .lock()
            .unwrap()
            .config_writes
            .push((offset, data.to_vec()));
    }
    fn activate(
        &mut self,
        _mem: GuestMemoryMmap,
        queues: Vec<Queue>,
        _interrupt: Arc<Interrupt>,
        acked_features: u64,
    ) -> Result<(), ActivateError> {
        self.record
            .lock()
            .unwrap()
            .activations
            .push((queues.len(), acked_features));
        Ok(())
    }
    fn reset(&mut self) {
        self.record.lock().unwrap().resets += 1;
    }
}

fn memory() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap()
}

fn transport(queues: usize) -> (MmioTransport, Arc<Mutex<Record>>, GuestMemoryMmap) {
    let mem = memory();
    let (dev, record) = FakeDevice::new(queues);
    let t = MmioTransport::new(mem.clone(), Box::new(dev), IrqTrigger::new().unwrap()).unwrap();
    (t, record, mem)
}

fn read32(t: &mut MmioTransport, offset: u64) -> u32 {
    let mut data = [0u8; 4];
    t.read(offset, &mut data);
    u32::from_le_bytes(data)
}

fn write32(t: &mut MmioTransport, offset: u64, value: u32) {
    t.write(offset, &value.to_le_bytes());
}

/// Runs the driver's handshake up to FEATURES_OK accepting `features`.
fn negotiate(t: &mut MmioTransport, features: u64) -> u32 {
    write32(t, reg::STATUS, 0);
    write32(t, reg::STATUS, status::ACKNOWLEDGE);
    write32(t, reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);
    write32(t, reg::DRIVER_FEATURES_SEL, 0);
    write32(t, reg::DRIVER_FEATURES, features as u32);
    write32(t, reg::DRIVER_FEATURES_SEL, 1);
    write32(t, reg::DRIVER_FEATURES, (features >> 32) as u32);
    write32(
        t,
        reg::STATUS,
        status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK,
    );
    read32(t, reg::STATUS)
}

/// Programs queue `index` with a mock queue's rings.
fn setup_queue(t: &mut MmioTransport, index: u32, q: &MockSplitQueue<GuestMemoryMmap>) {
    write32(t, reg::QUEUE_SEL, index);
    write32(t, reg::QUEUE_NUM, 16);
    let desc = q.desc_table_addr().0;
    let avail = q.avail_addr().0;
    let used = q.used_addr().0;
    write32(t, reg::QUEUE_DESC_LOW, desc as u32);
    write32(t, reg::QUEUE_DESC_HIGH, (desc >> 32) as u32);
    write32(t, reg::QUEUE_DRIVER_LOW, avail as u32);
    write32(t, reg::QUEUE_DRIVER_HIGH, (avail >> 32) as u32);
    write32(t, reg::QUEUE_DEVICE_LOW, used as u32);
    write32(t, reg::QUEUE_DEVICE_HIGH, (used >> 32) as u32);
    write32(t, reg::QUEUE_READY, 1);
}

const ALL_UP: u32 = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK;

#[test]
fn test_mmio_identity_registers_magic_version_device_id() {
    let (mut t, _, _) = transport(2);

    assert_eq!(read32(&mut t, reg::MAGIC_VALUE), 0x7472_6976);
    assert_eq!(read32(&mut t, reg::VERSION), 2);
    assert_eq!(read32(&mut t, reg::DEVICE_ID), 19);
    assert_eq!(read32(&mut t, reg::VENDOR_ID), VENDOR_ID);
    write32(&mut t, reg::DEVICE_FEATURES_SEL, 0);
    assert_eq!(read32(&mut t, reg::DEVICE_FEATURES), FEATURE_X as u32);
    write32(&mut t, reg::DEVICE_FEATURES_SEL, 1);
    assert_eq!(read32(&mut t, reg::DEVICE_FEATURES), 1);
    write32(&mut t, reg::DEVICE_FEATURES_SEL, 7);
    assert_eq!(read32(&mut t, reg::DEVICE_FEATURES), 0);
}

#[test]
fn test_mmio_handshake_driver_ok_activates_with_queues() {
    let (mut t, record, mem) = transport(2);
    let q0 = MockSplitQueue::create(&mem, GuestAddress(0x1000), 16);
    let q1 = MockSplitQueue::create(&mem, GuestAddress(0x2000), 16);

    let st = negotiate(&mut t, (1 << VIRTIO_F_VERSION_1) | FEATURE_X);
    write32(&mut t, reg::QUEUE_SEL, 1);
    let max = read32(&mut t, reg::QUEUE_NUM_MAX);
    setup_queue(&mut t, 0, &q0);
    setup_queue(&mut t, 1, &q1);
    let ready = read32(&mut t, reg::QUEUE_READY);
    write32(&mut t, reg::STATUS, ALL_UP);

    assert_eq!(st & status::FEATURES_OK, status::FEATURES_OK);
    assert_eq!(max, 16);
    assert_eq!(ready, 1);
    assert_eq!(read32(&mut t, reg::STATUS), ALL_UP);
    assert!(t.is_activated());
    assert_eq!(
        record.lock().unwrap().activations,
        [(2, (1 << VIRTIO_F_VERSION_1) | FEATURE_X)]
    );
}

#[test]
fn test_mmio_features_without_version_1_refused() {
    let (mut t, _, _) = transport(1);

    let st = negotiate(&mut t, FEATURE_X);

    assert_eq!(st & status::FEATURES_OK, 0, "FEATURES_OK must not stick");
}

#[test]
fn test_mmio_features_not_offered_refused() {
    let (mut t, _, _) = transport(1);

    let st = negotiate(&mut t, (1 << VIRTIO_F_VERSION_1) | (1 << 5));

    assert_eq!(st & status::FEATURES_OK, 0);
}

#[test]
fn test_mmio_driver_ok_with_queue_not_ready_needs_reset() {
    let (mut t, record, mem) = transport(2);
    let q0 = MockSplitQueue::create(&mem, GuestAddress(0x1000), 16);
    negotiate(&mut t, 1 << VIRTIO_F_VERSION_1);
    setup_queue(&mut t, 0, &q0);

    write32(&mut t, reg::STATUS, ALL_UP);

    assert!(!t.is_activated());
    assert_ne!(read32(&mut t, reg::STATUS) & status::DEVICE_NEEDS_RESET, 0);
    assert!(record.lock().unwrap().activations.is_empty());
}

#[test]
fn test_mmio_driver_ok_with_ring_outside_memory_needs_reset() {
    let (mut t, _, mem) = transport(1);
    let q0 = MockSplitQueue::create(&mem, GuestAddress(0x1000), 16);
    negotiate(&mut t, 1 << VIRTIO_F_VERSION_1);
    setup_queue(&mut t, 0, &q0);
    write32(&mut t, reg::QUEUE_DEVICE_HIGH, 0x10);

    write32(&mut t, reg::STATUS, ALL_UP);

    assert!(!t.is_activated());
    assert_ne!(read32(&mut t, reg::STATUS) & status::DEVICE_NEEDS_RESET, 0);
}

#[test]
fn test_mmio_status_zero_resets_device_and_queues() {
    let (mut t, record, mem) = transport(1);
    let q0 = MockSplitQueue::create(&mem, GuestAddress(0x1000), 16);
    negotiate(&mut t, 1 << VIRTIO_F_VERSION_1);
    setup_queue(&mut t, 0, &q0);
    write32(&mut t, reg::STATUS, ALL_UP);
    t.interrupt().signal_used_queue().unwrap();

    write32(&mut t, reg::STATUS, 0);

    assert_eq!(read32(&mut t, reg::STATUS), 0);
    assert!(!t.is_activated());
    assert_eq!(record.lock().unwrap().resets, 1);
    write32(&mut t, reg::QUEUE_SEL, 0);
    assert_eq!(read32(&mut t, reg::QUEUE_READY), 0);
    assert_eq!(read32(&mut t, reg::INTERRUPT_STATUS), 0);
    // A second handshake works again.
    negotiate(&mut t, 1 << VIRTIO_F_VERSION_1);
    setup_queue(&mut t, 0, &q0);
    write32(&mut t, reg::STATUS, ALL_UP);
    assert!(t.is_activated());
    assert_eq!(record.lock().unwrap().activations.len(), 2);
}

#[test]
fn test_mmio_status_out_of_order_ignored() {
    let (mut t, _, _) = transport(1);

    write32(&mut t, reg::STATUS, status::DRIVER);
    let driver_without_ack = read32(&mut t, reg::STATUS);
    write32(&mut t, reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);
    write32(&mut t, reg::STATUS, ALL_UP);
    let driver_ok_without_features = read32(&mut t, reg::STATUS);
    write32(&mut t, reg::STATUS, status::ACKNOWLEDGE);
    let clearing_bits = read32(&mut t, reg::STATUS);

    assert_eq!(driver_without_ack, 0);
    assert_eq!(
        driver_ok_without_features,
        status::ACKNOWLEDGE | status::DRIVER
    );
    assert_eq!(clearing_bits, status::ACKNOWLEDGE | status::DRIVER);
    assert!(!t.is_activated());
}

#[test]
fn test_mmio_queue_registers_before_features_ok_ignored() {
    let (mut t, _, _) = transport(1);
    write32(&mut t, reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);

    write32(&mut t, reg::QUEUE_SEL, 0);
    write32(&mut t, reg::QUEUE_READY, 1);

    assert_eq!(read32(&mut t, reg::QUEUE_READY), 0);
}

#[test]
fn test_mmio_queue_notify_signals_queue_event() {
    let (mut t, _, _) = transport(2);

    write32(&mut t, reg::QUEUE_NOTIFY, 1);
    write32(&mut t, reg::QUEUE_NOTIFY, 9);

    assert!(
        !t.device().queue_events()[0].reset().unwrap(),
        "not signalled"
    );
    assert!(t.device().queue_events()[1].reset().unwrap(), "signalled");
}

#[test]
fn test_mmio_interrupt_ack_clears_status_bits() {
    let (mut t, _, _) = transport(1);
    t.interrupt().signal_used_queue().unwrap();
    t.interrupt().signal_config_change().unwrap();

    write32(&mut t, reg::INTERRUPT_ACK, INTERRUPT_USED_RING);

    assert_eq!(read32(&mut t, reg::INTERRUPT_STATUS), 2);
}

#[test]
fn test_mmio_config_space_sizes_reach_device() {
    let (mut t, record, _) = transport(1);
    let mut byte = [0u8; 1];
    let mut word = [0u8; 4];
    let mut quad = [0u8; 8];

    t.read(0x100, &mut byte);
    t.read(0x104, &mut word);
    t.read(0x100, &mut quad);
    t.write(0x101, &[0xaa, 0xbb]);
    t.write(0x100, &[1, 2, 3]);

    assert_eq!(byte, [8]);
    assert_eq!(word, [4, 3, 2, 1]);
    assert_eq!(u64::from_le_bytes(quad), 0x0102_0304_0506_0708);
    assert_eq!(
        record.lock().unwrap().config_writes,
        [(1, vec![0xaa, 0xbb])]
    );
}

#[test]
fn test_mmio_bad_sizes_and_offsets_ignored_without_panic() {
    let (mut t, _, _) = transport(1);
    let mut two = [0x55u8; 2];
    let mut eight = [0x55u8; 8];
    let mut three = [0x55u8; 3];

    t.read(reg::MAGIC_VALUE, &mut two);
    t.read(reg::MAGIC_VALUE, &mut eight);
    t.read(0x2, &mut [0u8; 4]);
    t.read(0x101, &mut three);
    t.write(reg::STATUS, &[1]);
    t.write(reg::STATUS + 1, &1u32.to_le_bytes());
    t.write(reg::STATUS, &[1; 8]);
    t.write(0xff0, &[1; 3]);
    for offset in (0..0x100).step_by(4) {
        write32(&mut t, offset, u32::MAX);
        read32(&mut t, offset);
    }

    assert_eq!(two, [0, 0]);
    assert_eq!(eight, [0; 8]);
    assert_eq!(three, [0; 3]);
}

#[test]
fn test_mmio_device_without_version_1_rejected() {
    struct Legacy(Vec<u16>);
    impl VirtioDevice for Legacy {
        fn device_type(&self) -> u32 {
            1
        }
        fn features(&self) -> u64 {
            0
        }
        fn queue_max_sizes(&self) -> &[u16] {
            &self.0
        }
        fn queue_events(&self) -> &[Event] {
            &[]
        }
        fn read_config(&self, _: u64, _: &mut [u8]) {}
        fn write_config(&mut self, _: u64, _: &[u8]) {}
        fn activate(
            &mut self,
            _: GuestMemoryMmap,
            _: Vec<Queue>,
            _: Arc<Interrupt>,
            _: u64,
        ) -> Result<(), ActivateError> {
            Ok(())
        }
        fn reset(&mut self) {}
    }

    let result = MmioTransport::new(
        memory(),
        Box::new(Legacy(vec![])),
        IrqTrigger::new().unwrap(),
    );

    assert!(matches!(result, Err(MmioError::NotModern)));
}
