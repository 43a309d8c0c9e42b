//! A loopback guest for tests of the host side (feature `test-utils`): [`LoopbackGuest`]
//! drives a [`Vsock`] device from a fake driver on its own guest memory and answers the host's
//! connections as a guest would, each guest port bridged to a host "guest service" (a unix
//! socket on Linux, a named pipe on Windows). A host client such as `lcow-ctl` then reaches a
//! fake agent through the real device, muxer and host endpoint, with no VM.
//!
//! [`Ring`] is the split virtqueue as the fake driver lays it out; the device's own tests use
//! it too.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use virtio_queue::desc::split::Descriptor as SplitDescriptor;
use virtio_queue::desc::RawDescriptor;
use virtio_queue::{Queue, QueueT};
use vm_memory::{Address, Bytes, GuestAddress, GuestMemoryError, GuestMemoryMmap};

use super::packet::*;
use super::sys::{connect_host, HostStream};
use super::{Vsock, VsockWorker, DEFAULT_GUEST_CID, HOST_CID};
use crate::virtio::{Interrupt, VirtioDevice};
use crate::IrqTrigger;

/// Descriptor flag: the chain goes on.
pub const F_NEXT: u16 = 1;
/// Descriptor flag: the device writes the buffer.
pub const F_WRITE: u16 = 2;
/// The size of every fake ring.
pub const QSIZE: u16 = 16;
/// Where rx buffers live (one per slot, 0x2000 apart).
pub const RX_BUF_BASE: u64 = 0x10_0000;
/// The data room of each rx buffer.
pub const RX_DATA: u32 = 4096;
/// Where tx headers live (0x100 apart).
pub const TX_HDR_BASE: u64 = 0x20_0000;
/// Where tx data lives ([`TX_DATA_STRIDE`] apart).
pub const TX_DATA_BASE: u64 = 0x30_0000;
/// The room for one tx packet's data.
pub const TX_DATA_STRIDE: u64 = 0x1_0000;
/// The guest memory the fake driver uses.
pub const MEMORY_SIZE: usize = 0x40_0000;

fn memory_error(e: GuestMemoryError) -> io::Error {
    io::Error::other(e)
}

/// A split virtqueue as the driver sees it. (`virtio_queue::mock::MockSplitQueue` places its
/// used ring over the upper half of its available ring, which these rings would wrap into.)
#[derive(Debug)]
pub struct Ring {
    /// The memory the ring is in.
    pub mem: GuestMemoryMmap,
    /// The descriptor table's address.
    pub desc: u64,
    /// The available ring's address.
    pub avail: u64,
    /// The used ring's address.
    pub used: u64,
}

impl Ring {
    /// A ring at `base` of `mem` (tables 0x100 apart).
    pub fn new(mem: &GuestMemoryMmap, base: u64) -> Self {
        Self {
            mem: mem.clone(),
            desc: base,
            avail: base + 0x100,
            used: base + 0x200,
        }
    }

    /// The device's view of the queue, ready to use.
    pub fn queue(&self) -> io::Result<Queue> {
        let invalid = |e| io::Error::new(io::ErrorKind::InvalidInput, format!("{e:?}"));
        let mut q = <Queue as QueueT>::new(QSIZE).map_err(invalid)?;
        q.set_ready(true);
        q.try_set_desc_table_address(GuestAddress(self.desc))
            .map_err(invalid)?;
        q.try_set_avail_ring_address(GuestAddress(self.avail))
            .map_err(invalid)?;
        q.try_set_used_ring_address(GuestAddress(self.used))
            .map_err(invalid)?;
        Ok(q)
    }

    /// Stores `descs` at `index..` of the descriptor table and makes the first available.
    pub fn offer(&self, descs: &[RawDescriptor], index: u16) -> io::Result<()> {
        for (i, d) in descs.iter().enumerate() {
            let at = self.desc + 16 * u64::from(index + i as u16);
            self.mem
                .write_obj(*d, GuestAddress(at))
                .map_err(memory_error)?;
        }
        let idx = self.avail_idx()?;
        let slot = self.avail + 4 + 2 * u64::from(idx % QSIZE);
        self.mem
            .write_obj(index, GuestAddress(slot))
            .map_err(memory_error)?;
        self.mem
            .write_obj(idx.wrapping_add(1), GuestAddress(self.avail + 2))
            .map_err(memory_error)
    }

    /// The available ring's index.
    pub fn avail_idx(&self) -> io::Result<u16> {
        self.mem
            .read_obj(GuestAddress(self.avail + 2))
            .map_err(memory_error)
    }

    /// Whether a driver that moved the available index from `old` to `new` notifies the
    /// device, as Linux's `virtqueue_kick_prepare` decides it: with `VIRTIO_RING_F_EVENT_IDX`
    /// when the device's `avail_event` lies in `old..new`, without it unless the device set
    /// `VRING_USED_F_NO_NOTIFY`.
    pub fn should_notify(&self, event_idx: bool, old: u16, new: u16) -> io::Result<bool> {
        Ok(if event_idx {
            let at = GuestAddress(self.used + 4 + 8 * u64::from(QSIZE));
            let event: u16 = self.mem.read_obj(at).map_err(memory_error)?;
            new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
        } else {
            let flags: u16 = self
                .mem
                .read_obj(GuestAddress(self.used))
                .map_err(memory_error)?;
            flags & 1 == 0
        })
    }

    /// The used ring's index.
    pub fn used_idx(&self) -> io::Result<u16> {
        self.mem
            .read_obj(GuestAddress(self.used + 2))
            .map_err(memory_error)
    }

    /// Used element `n` (modulo the size): descriptor id and length.
    pub fn used_elem(&self, n: u16) -> io::Result<(u32, u32)> {
        let at = GuestAddress(self.used + 4 + 8 * u64::from(n % QSIZE));
        Ok((
            self.mem.read_obj(at).map_err(memory_error)?,
            self.mem
                .read_obj(at.unchecked_add(4))
                .map_err(memory_error)?,
        ))
    }
}

/// Our receive buffer per connection, as the fake guest announces it.
const GUEST_BUF_ALLOC: u32 = 256 * 1024;
/// How long one pass of the loop waits for the device.
const PASS: Duration = Duration::from_millis(5);

/// One guest-side connection, bridged to its host service.
struct GuestConn {
    service: HostStream,
    /// Data from the host, not yet taken by the service.
    to_service: VecDeque<u8>,
    /// Bytes handed to the service (our `fwd_cnt`), and as last told to the host.
    fwd_cnt: u32,
    fwd_cnt_sent: u32,
    /// Bytes we sent the host, and its credit.
    tx_cnt: u32,
    peer_buf_alloc: u32,
    peer_fwd_cnt: u32,
}

/// The fake driver and guest (see the module documentation).
struct Driver {
    mem: GuestMemoryMmap,
    rxq: Ring,
    txq: Ring,
    device: Vsock,
    worker: VsockWorker,
    rx_seen: u16,
    rx_posted: u16,
    tx_sent: u16,
    services: HashMap<u32, PathBuf>,
    /// By (guest port, host port).
    conns: HashMap<(u32, u32), GuestConn>,
}

impl Driver {
    fn new(
        mut device: Vsock,
        worker: VsockWorker,
        services: HashMap<u32, PathBuf>,
    ) -> io::Result<Self> {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEMORY_SIZE)])
            .map_err(io::Error::other)?;
        let rxq = Ring::new(&mem, 0);
        let txq = Ring::new(&mem, 0x8000);
        let evq = Ring::new(&mem, 0xc000);
        let interrupt = Arc::new(Interrupt::new(IrqTrigger::new()?));
        let queues = vec![rxq.queue()?, txq.queue()?, evq.queue()?];
        device
            .activate(mem.clone(), queues, interrupt, 1 << 32)
            .map_err(|e| io::Error::other(format!("activate: {e}")))?;
        let mut driver = Self {
            mem,
            rxq,
            txq,
            device,
            worker,
            rx_seen: 0,
            rx_posted: 0,
            tx_sent: 0,
            services,
            conns: HashMap::new(),
        };
        for _ in 0..QSIZE {
            driver.post_rx()?;
        }
        Ok(driver)
    }

    fn post_rx(&mut self) -> io::Result<()> {
        let slot = self.rx_posted % QSIZE;
        let addr = RX_BUF_BASE + u64::from(slot) * 0x2000;
        let desc = SplitDescriptor::new(addr, HEADER_SIZE as u32 + RX_DATA, F_WRITE, 0);
        self.rxq.offer(&[RawDescriptor::from(desc)], slot)?;
        self.rx_posted = self.rx_posted.wrapping_add(1);
        self.device.queue_events()[0].signal()
    }

    /// The packets the device put in the rx ring since the last call.
    fn rx(&mut self) -> io::Result<Vec<(Header, Vec<u8>)>> {
        let used = self.rxq.used_idx()?;
        let mut out = Vec::new();
        while self.rx_seen != used {
            let (id, len) = self.rxq.used_elem(self.rx_seen)?;
            self.rx_seen = self.rx_seen.wrapping_add(1);
            if len as usize >= HEADER_SIZE {
                let addr = RX_BUF_BASE + u64::from(id % u32::from(QSIZE)) * 0x2000;
                let mut raw = [0u8; HEADER_SIZE];
                self.mem
                    .read_slice(&mut raw, GuestAddress(addr))
                    .map_err(memory_error)?;
                let hdr = Header::from_bytes(&raw);
                let n = (hdr.len.min(RX_DATA)) as usize;
                let mut data = vec![0u8; n];
                self.mem
                    .read_slice(&mut data, GuestAddress(addr + HEADER_SIZE as u64))
                    .map_err(memory_error)?;
                out.push((hdr, data));
            }
            self.post_rx()?;
        }
        Ok(out)
    }

    /// Sends one packet, waiting for room in the tx ring.
    fn send(&mut self, hdr: Header, data: &[u8]) -> io::Result<()> {
        while self.tx_sent.wrapping_sub(self.txq.used_idx()?) >= QSIZE / 2 {
            self.worker.run_once(Some(PASS))?;
        }
        let slot = self.tx_sent % (QSIZE / 2);
        let hdr_addr = TX_HDR_BASE + u64::from(slot) * 0x100;
        self.mem
            .write_slice(&hdr.to_bytes(), GuestAddress(hdr_addr))
            .map_err(memory_error)?;
        let base = slot * 2;
        let mut descs = vec![RawDescriptor::from(SplitDescriptor::new(
            hdr_addr,
            HEADER_SIZE as u32,
            if data.is_empty() { 0 } else { F_NEXT },
            base + 1,
        ))];
        if !data.is_empty() {
            let data_addr = TX_DATA_BASE + u64::from(slot) * TX_DATA_STRIDE;
            self.mem
                .write_slice(data, GuestAddress(data_addr))
                .map_err(memory_error)?;
            descs.push(RawDescriptor::from(SplitDescriptor::new(
                data_addr,
                data.len() as u32,
                0,
                0,
            )));
        }
        self.txq.offer(&descs, base)?;
        self.tx_sent = self.tx_sent.wrapping_add(1);
        self.device.queue_events()[1].signal()
    }

    fn header(&self, op: u16, (guest_port, host_port): (u32, u32)) -> Header {
        let fwd_cnt = self
            .conns
            .get(&(guest_port, host_port))
            .map_or(0, |c| c.fwd_cnt);
        Header {
            src_cid: DEFAULT_GUEST_CID,
            dst_cid: HOST_CID,
            src_port: guest_port,
            dst_port: host_port,
            type_: TYPE_STREAM,
            op,
            buf_alloc: GUEST_BUF_ALLOC,
            fwd_cnt,
            ..Header::default()
        }
    }

    /// Answers one packet from the host.
    fn on_packet(&mut self, hdr: Header, data: Vec<u8>) -> io::Result<()> {
        let key = (hdr.dst_port, hdr.src_port);
        if let Some(conn) = self.conns.get_mut(&key) {
            conn.peer_buf_alloc = hdr.buf_alloc;
            conn.peer_fwd_cnt = hdr.fwd_cnt;
        }
        match hdr.op {
            OP_REQUEST => {
                let service = self
                    .services
                    .get(&hdr.dst_port)
                    .map(|path| connect_host(path));
                match service {
                    Some(Ok(service)) => {
                        self.conns.insert(
                            key,
                            GuestConn {
                                service,
                                to_service: VecDeque::new(),
                                fwd_cnt: 0,
                                fwd_cnt_sent: 0,
                                tx_cnt: 0,
                                peer_buf_alloc: hdr.buf_alloc,
                                peer_fwd_cnt: hdr.fwd_cnt,
                            },
                        );
                        let response = self.header(OP_RESPONSE, key);
                        self.send(response, &[])?;
                    }
                    _ => {
                        let rst = self.header(OP_RST, key);
                        self.send(rst, &[])?;
                    }
                }
            }
            OP_RW => {
                if let Some(conn) = self.conns.get_mut(&key) {
                    conn.to_service.extend(&data);
                }
            }
            OP_CREDIT_REQUEST => {
                let update = self.header(OP_CREDIT_UPDATE, key);
                self.send(update, &[])?;
            }
            OP_SHUTDOWN if self.conns.remove(&key).is_some() => {
                let rst = self.header(OP_RST, key);
                self.send(rst, &[])?;
            }
            OP_RST => {
                self.conns.remove(&key);
            }
            _ => {}
        }
        Ok(())
    }

    /// Moves data between each connection and its service.
    fn bridge(&mut self) -> io::Result<()> {
        let keys: Vec<(u32, u32)> = self.conns.keys().copied().collect();
        for key in keys {
            let mut packets = Vec::new();
            let mut closed = false;
            if let Some(conn) = self.conns.get_mut(&key) {
                while !conn.to_service.is_empty() {
                    let (front, _) = conn.to_service.as_slices();
                    match conn.service.write(front) {
                        Ok(n) => {
                            conn.to_service.drain(..n);
                            conn.fwd_cnt = conn.fwd_cnt.wrapping_add(n as u32);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => {
                            closed = true;
                            break;
                        }
                    }
                }
                let in_flight = conn.tx_cnt.wrapping_sub(conn.peer_fwd_cnt);
                let credit = conn.peer_buf_alloc.saturating_sub(in_flight) as usize;
                let mut buf = vec![0u8; credit.min(RX_DATA as usize)];
                if !buf.is_empty() && !closed {
                    match conn.service.read(&mut buf) {
                        Ok(0) => closed = true,
                        Ok(n) => {
                            conn.tx_cnt = conn.tx_cnt.wrapping_add(n as u32);
                            buf.truncate(n);
                            packets.push((OP_RW, buf));
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(_) => closed = true,
                    }
                }
                if conn.fwd_cnt.wrapping_sub(conn.fwd_cnt_sent) >= GUEST_BUF_ALLOC / 4 {
                    conn.fwd_cnt_sent = conn.fwd_cnt;
                    packets.push((OP_CREDIT_UPDATE, Vec::new()));
                }
            }
            for (op, data) in packets {
                let mut hdr = self.header(op, key);
                hdr.len = data.len() as u32;
                self.send(hdr, &data)?;
            }
            if closed {
                let mut hdr = self.header(OP_SHUTDOWN, key);
                hdr.flags = SHUTDOWN_RCV | SHUTDOWN_SEND;
                self.send(hdr, &[])?;
                self.conns.remove(&key);
            }
        }
        Ok(())
    }

    fn run(mut self, stop: &AtomicBool) -> io::Result<()> {
        while !stop.load(Ordering::SeqCst) {
            self.worker.run_once(Some(PASS))?;
            for (hdr, data) in self.rx()? {
                self.on_packet(hdr, data)?;
            }
            self.bridge()?;
        }
        Ok(())
    }
}

/// A running loopback guest; [`LoopbackGuest::stop`] (or dropping it) ends it.
#[derive(Debug)]
pub struct LoopbackGuest {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl LoopbackGuest {
    /// Drives `device` (not yet activated) and its `worker` on a thread, as a guest whose port
    /// `P` is the host service `services[P]`; a host connection to another port is refused
    /// with an `RST`.
    pub fn start(
        device: Vsock,
        worker: VsockWorker,
        services: HashMap<u32, PathBuf>,
    ) -> io::Result<Self> {
        let driver = Driver::new(device, worker, services)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::Builder::new()
            .name("vsock-loopback".to_owned())
            .spawn(move || driver.run(&flag))?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the guest and returns how its loop ended.
    pub fn stop(mut self) -> io::Result<()> {
        self.finish()
    }

    fn finish(&mut self) -> io::Result<()> {
        self.stop.store(true, Ordering::SeqCst);
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| io::Error::other("the loopback guest panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for LoopbackGuest {
    fn drop(&mut self) {
        if let Err(e) = self.finish() {
            tracing::warn!(error = %e, "loopback guest");
        }
    }
}
