//! A fake driver for the request–reply devices' tests: split rings laid out in mock guest
//! memory, chains built from byte slices, the queue thread run on a thread of its own, and
//! waits for used entries with a deadline.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lcow_base::Event;
use virtio_queue::desc::split::Descriptor;
use virtio_queue::desc::RawDescriptor;
use virtio_queue::{Queue, QueueT};
use vm_memory::{Address, Bytes, GuestAddress, GuestMemoryMmap};

use super::{RequestStopper, RequestWorker};
use crate::virtio::{Interrupt, VirtioDevice, VIRTIO_F_VERSION_1};
use crate::IrqTrigger;

/// Descriptor flag: another descriptor follows.
pub(crate) const F_NEXT: u16 = 1;
/// Descriptor flag: device-writable.
pub(crate) const F_WRITE: u16 = 2;
/// The size of every queue.
pub(crate) const QSIZE: u16 = 16;
/// Guest memory size.
pub(crate) const MEM_SIZE: u64 = 0x80_0000;
/// Where buffers are allocated from.
const BUF_BASE: u64 = 0x10_0000;
/// How long a test waits for the device.
pub(crate) const WAIT: Duration = Duration::from_secs(5);

/// The features a driver accepts by default.
pub(crate) const FEATURES: u64 = 1 << VIRTIO_F_VERSION_1;

/// One split virtqueue as the driver sees it.
pub(crate) struct Ring {
    pub(crate) desc: u64,
    pub(crate) avail: u64,
    pub(crate) used: u64,
    next_desc: u16,
    seen: u16,
}

impl Ring {
    fn new(base: u64) -> Self {
        Self {
            desc: base,
            avail: base + 0x100,
            used: base + 0x200,
            next_desc: 0,
            seen: 0,
        }
    }

    fn queue(&self) -> Queue {
        let mut q = <Queue as QueueT>::new(QSIZE).unwrap();
        q.set_ready(true);
        q.try_set_desc_table_address(GuestAddress(self.desc))
            .unwrap();
        q.try_set_avail_ring_address(GuestAddress(self.avail))
            .unwrap();
        q.try_set_used_ring_address(GuestAddress(self.used))
            .unwrap();
        q
    }
}

/// A used chain: its head, the length written, and what its writable buffers hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Used {
    pub(crate) head: u16,
    pub(crate) len: u32,
    pub(crate) reply: Vec<u8>,
}

/// The fake driver around a live device whose queue thread runs.
pub(crate) struct Driver {
    pub(crate) mem: GuestMemoryMmap,
    pub(crate) rings: Vec<Ring>,
    pub(crate) interrupt: Arc<Interrupt>,
    events: Vec<Event>,
    next_buf: u64,
    /// Writable buffers of each (queue, head) in flight.
    replies: HashMap<(usize, u16), Vec<(u64, u32)>>,
    stopper: RequestStopper,
    thread: Option<JoinHandle<()>>,
}

impl Driver {
    /// Activates `device` with one ring per queue and `features` accepted, and runs `worker`.
    pub(crate) fn start(
        device: &mut dyn VirtioDevice,
        worker: RequestWorker,
        features: u64,
    ) -> Self {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM_SIZE as usize)]).unwrap();
        let count = device.queue_max_sizes().len();
        let rings: Vec<Ring> = (0..count).map(|i| Ring::new(0x1000 * i as u64)).collect();
        let interrupt = Arc::new(Interrupt::new(IrqTrigger::new().unwrap()));
        device
            .activate(
                mem.clone(),
                rings.iter().map(Ring::queue).collect(),
                interrupt.clone(),
                features,
            )
            .unwrap();
        let events = device
            .queue_events()
            .iter()
            .map(|e| e.try_clone().unwrap())
            .collect();
        let stopper = worker.stopper().unwrap();
        let thread = std::thread::spawn(move || worker.run());
        Self {
            mem,
            rings,
            interrupt,
            events,
            next_buf: BUF_BASE,
            replies: HashMap::new(),
            stopper,
            thread: Some(thread),
        }
    }

    /// A fresh buffer of `len` bytes in guest memory (never reused).
    pub(crate) fn alloc(&mut self, len: usize) -> u64 {
        let at = self.next_buf;
        self.next_buf = (at + len as u64 + 63) & !63;
        assert!(self.next_buf <= MEM_SIZE, "test guest memory exhausted");
        at
    }

    /// Offers a chain of raw `(addr, len, flags)` descriptors on `queue` without notifying;
    /// `F_NEXT` and the next indices are filled in. Returns the head.
    pub(crate) fn offer_raw(&mut self, queue: usize, descs: &[(u64, u32, u16)]) -> u16 {
        let ring = &mut self.rings[queue];
        let head = ring.next_desc;
        for (i, &(addr, len, flags)) in descs.iter().enumerate() {
            let index = (head + i as u16) % QSIZE;
            let next = (index + 1) % QSIZE;
            let flags = if i + 1 < descs.len() {
                flags | F_NEXT
            } else {
                flags
            };
            let d = RawDescriptor::from(Descriptor::new(addr, len, flags, next));
            self.mem
                .write_obj(d, GuestAddress(ring.desc + 16 * u64::from(index)))
                .unwrap();
        }
        ring.next_desc = (head + descs.len() as u16) % QSIZE;
        self.publish(queue, head);
        let writable = descs
            .iter()
            .filter(|d| d.2 & F_WRITE != 0)
            .map(|d| (d.0, d.1))
            .collect();
        self.replies.insert((queue, head), writable);
        head
    }

    /// Puts `head` in the available ring of `queue`.
    pub(crate) fn publish(&mut self, queue: usize, head: u16) {
        let ring = &self.rings[queue];
        let idx: u16 = self.mem.read_obj(GuestAddress(ring.avail + 2)).unwrap();
        let slot = ring.avail + 4 + 2 * u64::from(idx % QSIZE);
        self.mem.write_obj(head, GuestAddress(slot)).unwrap();
        self.mem
            .write_obj(idx.wrapping_add(1), GuestAddress(ring.avail + 2))
            .unwrap();
    }

    /// Notifies the device about `queue`.
    pub(crate) fn notify(&self, queue: usize) {
        self.events[queue].signal().unwrap();
    }

    /// Offers a chain whose readable part holds `readable` (one descriptor per slice) and
    /// whose writable part has one buffer per `writable` size, and notifies.
    pub(crate) fn submit(&mut self, queue: usize, readable: &[&[u8]], writable: &[u32]) -> u16 {
        let mut descs = Vec::new();
        for part in readable {
            let at = self.alloc(part.len());
            self.mem.write_slice(part, GuestAddress(at)).unwrap();
            descs.push((at, part.len() as u32, 0));
        }
        for &len in writable {
            let at = self.alloc(len as usize);
            self.mem
                .write_slice(&vec![0xee; len as usize], GuestAddress(at))
                .unwrap();
            descs.push((at, len, F_WRITE));
        }
        let head = self.offer_raw(queue, &descs);
        self.notify(queue);
        head
    }

    /// Used entries of `queue` not yet seen, without waiting.
    pub(crate) fn poll_used(&mut self, queue: usize) -> Vec<Used> {
        let ring = &self.rings[queue];
        let used_idx: u16 = self.mem.read_obj(GuestAddress(ring.used + 2)).unwrap();
        let mut out = Vec::new();
        let mut seen = ring.seen;
        while seen != used_idx {
            let at = GuestAddress(ring.used + 4 + 8 * u64::from(seen % QSIZE));
            let id: u32 = self.mem.read_obj(at).unwrap();
            let len: u32 = self.mem.read_obj(at.unchecked_add(4)).unwrap();
            seen = seen.wrapping_add(1);
            let head = id as u16;
            let mut reply = Vec::new();
            let mut left = len as usize;
            for &(addr, size) in self.replies.get(&(queue, head)).into_iter().flatten() {
                let take = left.min(size as usize);
                let mut buf = vec![0u8; take];
                self.mem.read_slice(&mut buf, GuestAddress(addr)).unwrap();
                reply.extend_from_slice(&buf);
                left -= take;
            }
            out.push(Used { head, len, reply });
        }
        self.rings[queue].seen = seen;
        out
    }

    /// Waits until `n` more chains of `queue` are used and returns them in used-ring order.
    pub(crate) fn wait_used(&mut self, queue: usize, n: usize) -> Vec<Used> {
        let deadline = Instant::now() + WAIT;
        let mut out = Vec::new();
        while out.len() < n {
            out.extend(self.poll_used(queue));
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {n} used chains on queue {queue}; got {out:?}"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        out
    }

    /// Sends one request and waits for its reply.
    pub(crate) fn roundtrip(&mut self, queue: usize, readable: &[&[u8]], writable: &[u32]) -> Used {
        let head = self.submit(queue, readable, writable);
        let used = self.wait_used(queue, 1).remove(0);
        assert_eq!(used.head, head);
        used
    }

    /// Asserts that nothing more gets used on `queue` for a short while.
    pub(crate) fn assert_idle(&mut self, queue: usize) {
        std::thread::sleep(Duration::from_millis(50));
        let used = self.poll_used(queue);
        assert!(used.is_empty(), "unexpected used chains: {used:?}");
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.stopper.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
