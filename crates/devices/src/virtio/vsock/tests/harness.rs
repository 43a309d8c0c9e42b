//! The fake driver and host clients the vsock tests share.

#![allow(clippy::unwrap_used)]
// Some helpers serve only the unix-socket tests.
#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use virtio_queue::desc::split::Descriptor as SplitDescriptor;
use virtio_queue::desc::RawDescriptor;

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::virtio::vsock::packet::*;
use crate::virtio::vsock::*;
use crate::virtio::{Interrupt, VirtioDevice, VIRTIO_RING_F_EVENT_IDX};
use crate::IrqTrigger;

pub(super) use crate::virtio::vsock::loopback::{
    Ring, F_NEXT, F_WRITE, QSIZE, RX_BUF_BASE, RX_DATA, TX_DATA_BASE, TX_DATA_STRIDE, TX_HDR_BASE,
};

pub(super) const RX_BUFS: u16 = 8;
pub(super) const GUEST_PORT: u32 = 1024;
pub(super) const GUEST_CID: u64 = DEFAULT_GUEST_CID;

/// A fake guest driver and the device under test.
pub(super) struct Harness {
    /// The directory of the unix socket (Linux).
    pub(super) _dir: Option<tempfile::TempDir>,
    pub(super) path: PathBuf,
    pub(super) mem: GuestMemoryMmap,
    pub(super) rxq: Ring,
    pub(super) txq: Ring,
    pub(super) device: Vsock,
    pub(super) worker: VsockWorker,
    pub(super) interrupt: Arc<Interrupt>,
    pub(super) rx_seen: u16,
    pub(super) rx_posted: u16,
    /// Buffers the device gave back without a packet.
    pub(super) rx_empty: usize,
    pub(super) tx_sent: u16,
    /// `VIRTIO_RING_F_EVENT_IDX` was negotiated.
    pub(super) event_idx: bool,
    /// Notifications the driver sent (rx and tx), as it decided them ([`Ring::should_notify`]).
    pub(super) kicks: usize,
}

/// A packet the device put in an rx buffer.
#[derive(Debug)]
pub(super) struct Rx {
    pub(super) hdr: Header,
    pub(super) data: Vec<u8>,
}

impl Harness {
    pub(super) fn new(limits: Limits) -> Self {
        Self::bare(limits).with_rx_buffers()
    }

    /// [`Harness::new`] with `VIRTIO_RING_F_EVENT_IDX` negotiated.
    pub(super) fn new_event_idx(limits: Limits) -> Self {
        Self::with_features(limits, 1 << 32 | 1 << VIRTIO_RING_F_EVENT_IDX).with_rx_buffers()
    }

    /// The harness with [`RX_BUFS`] rx buffers posted.
    fn with_rx_buffers(mut self) -> Self {
        for _ in 0..RX_BUFS {
            self.post_rx();
        }
        self
    }

    /// A live device with no rx buffer posted.
    pub(super) fn bare(limits: Limits) -> Self {
        Self::with_features(limits, 1 << 32)
    }

    /// A live device with no rx buffer posted, the driver having acked `features`.
    pub(super) fn with_features(limits: Limits, features: u64) -> Self {
        let (dir, path, mut device, worker) = open_device(limits);
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x40_0000)]).unwrap();
        let rxq = Ring::new(&mem, 0);
        let txq = Ring::new(&mem, 0x8000);
        let evq = Ring::new(&mem, 0xc000);
        let interrupt = Arc::new(Interrupt::new(IrqTrigger::new().unwrap()));
        let queues = vec![
            rxq.queue().unwrap(),
            txq.queue().unwrap(),
            evq.queue().unwrap(),
        ];
        device
            .activate(mem.clone(), queues, interrupt.clone(), features)
            .unwrap();
        Self {
            _dir: dir,
            path,
            mem,
            rxq,
            txq,
            device,
            worker,
            interrupt,
            rx_seen: 0,
            rx_posted: 0,
            rx_empty: 0,
            tx_sent: 0,
            event_idx: features & (1 << VIRTIO_RING_F_EVENT_IDX) != 0,
            kicks: 0,
        }
    }

    pub(super) fn limits() -> Limits {
        Limits {
            buf_alloc: 64 * 1024,
            ..Limits::default()
        }
    }

    /// Offers one rx buffer (header and data in one write-only descriptor).
    pub(super) fn post_rx(&mut self) {
        let slot = self.rx_posted % QSIZE;
        let addr = RX_BUF_BASE + u64::from(slot) * 0x2000;
        let desc = SplitDescriptor::new(addr, HEADER_SIZE as u32 + RX_DATA, F_WRITE, 0);
        self.rxq.offer(&[RawDescriptor::from(desc)], slot).unwrap();
        self.rx_posted = self.rx_posted.wrapping_add(1);
    }

    /// Runs the worker's loop without waiting until it has nothing more to do.
    pub(super) fn pump(&mut self) {
        for _ in 0..6 {
            assert!(self.worker.run_once(Some(Duration::ZERO)).unwrap());
        }
    }

    /// Puts a packet in the tx queue (header descriptor, then a data descriptor if any), and
    /// notifies the device if it asked for it, then lets it work.
    pub(super) fn send_raw(&mut self, descs: &[(u64, u32, u16)]) {
        let base = (self.tx_sent % (QSIZE / 4)) * 4;
        let raw: Vec<RawDescriptor> = descs
            .iter()
            .enumerate()
            .map(|(i, &(addr, len, flags))| {
                let last = i + 1 == descs.len();
                let flags = if last { flags } else { flags | F_NEXT };
                RawDescriptor::from(SplitDescriptor::new(addr, len, flags, base + i as u16 + 1))
            })
            .collect();
        let old = self.txq.avail_idx().unwrap();
        self.txq.offer(&raw, base).unwrap();
        self.tx_sent = self.tx_sent.wrapping_add(1);
        // Like a real driver: no notification, no reason for the device to look (a device
        // that forgot to ask for one leaves the packet in the ring, and the test sees it).
        if self
            .txq
            .should_notify(self.event_idx, old, self.txq.avail_idx().unwrap())
            .unwrap()
        {
            self.kicks += 1;
            self.device.queue_events()[1].signal().unwrap();
            self.pump();
        }
    }

    pub(super) fn send(&mut self, hdr: Header, data: &[u8]) {
        let slot = u64::from(self.tx_sent % (QSIZE / 4));
        let hdr_addr = TX_HDR_BASE + slot * 0x100;
        self.mem
            .write_slice(&hdr.to_bytes(), GuestAddress(hdr_addr))
            .unwrap();
        if data.is_empty() {
            self.send_raw(&[(hdr_addr, HEADER_SIZE as u32, 0)]);
        } else {
            let data_addr = TX_DATA_BASE + slot * TX_DATA_STRIDE;
            self.mem.write_slice(data, GuestAddress(data_addr)).unwrap();
            self.send_raw(&[
                (hdr_addr, HEADER_SIZE as u32, 0),
                (data_addr, data.len() as u32, 0),
            ]);
        }
    }

    /// The packets the device delivered since the last call; their buffers are posted again.
    pub(super) fn rx(&mut self) -> Vec<Rx> {
        let used_idx = self.rxq.used_idx().unwrap();
        let old = self.rxq.avail_idx().unwrap();
        let mut out = Vec::new();
        while self.rx_seen != used_idx {
            let (id, len) = self.rxq.used_elem(self.rx_seen).unwrap();
            self.rx_seen = self.rx_seen.wrapping_add(1);
            self.post_rx();
            if len == 0 {
                self.rx_empty += 1;
                continue;
            }
            let addr = RX_BUF_BASE + u64::from(id) * 0x2000;
            let mut raw = [0u8; HEADER_SIZE];
            self.mem.read_slice(&mut raw, GuestAddress(addr)).unwrap();
            let hdr = Header::from_bytes(&raw);
            assert_eq!(len, HEADER_SIZE as u32 + hdr.len, "used length");
            let mut data = vec![0u8; hdr.len as usize];
            self.mem
                .read_slice(&mut data, GuestAddress(addr + HEADER_SIZE as u64))
                .unwrap();
            out.push(Rx { hdr, data });
        }
        let new = self.rxq.avail_idx().unwrap();
        if new != old && self.rxq.should_notify(self.event_idx, old, new).unwrap() {
            self.kicks += 1;
            self.device.queue_events()[0].signal().unwrap();
        }
        out
    }

    pub(super) fn tx_used(&self) -> u16 {
        self.txq.used_idx().unwrap()
    }

    pub(super) fn connections(&self) -> usize {
        device_backend(&self.device).muxer.connection_count()
    }
}

/// A packet from the guest on connection (`local_port`, `peer_port`).
pub(super) fn pkt(op: u16, local_port: u32, peer_port: u32) -> Header {
    Header {
        src_cid: GUEST_CID,
        dst_cid: HOST_CID,
        src_port: peer_port,
        dst_port: local_port,
        type_: TYPE_STREAM,
        op,
        buf_alloc: 256 * 1024,
        ..Header::default()
    }
}

pub(super) fn device_backend(
    dev: &Vsock,
) -> std::sync::MutexGuard<'_, crate::virtio::vsock::backend::Backend> {
    crate::virtio::vsock::backend::lock(dev.backend())
}

impl Header {
    pub(super) fn with_len(mut self, len: u32) -> Self {
        self.len = len;
        self
    }
}

/// The device under test on a unix socket in a new temporary directory.
#[cfg(target_os = "linux")]
fn open_device(limits: Limits) -> (Option<tempfile::TempDir>, PathBuf, Vsock, VsockWorker) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vsock.sock");
    let (device, worker) = Vsock::new(GUEST_CID, &path, limits).unwrap();
    (Some(dir), path, device, worker)
}

/// The device under test on pipes of a name unique to this process and harness, serving
/// [`GUEST_PORT`] and [`SECOND_PORT`].
#[cfg(windows)]
fn open_device(limits: Limits) -> (Option<tempfile::TempDir>, PathBuf, Vsock, VsockWorker) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let base = PathBuf::from(format!(
        r"\\.\pipe\lcow-vsock-test-{}-{n}",
        std::process::id()
    ));
    let (device, worker) =
        Vsock::new_pipes(GUEST_CID, &base, &[GUEST_PORT, SECOND_PORT], limits).unwrap();
    (None, base, device, worker)
}

/// A second guest port the Windows endpoint serves.
#[cfg(windows)]
pub(super) const SECOND_PORT: u32 = 1025;

#[cfg(target_os = "linux")]
pub(super) use unix::*;

/// Host clients on the unix socket.
#[cfg(target_os = "linux")]
mod unix {
    use std::io::{self, Read, Write};
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    use super::*;

    impl Harness {
        /// A host client that sent `CONNECT port` and whose REQUEST reached the guest.
        pub(crate) fn host_connect(&mut self, port: u32) -> (UnixStream, Header) {
            let mut host = UnixStream::connect(&self.path).unwrap();
            host.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            writeln!(host, "CONNECT {port}").unwrap();
            self.pump();
            let rx = self.rx();
            assert_eq!(rx.len(), 1, "{rx:?}");
            let req = rx[0].hdr;
            assert_eq!(req.op, OP_REQUEST);
            (host, req)
        }

        /// A host client connected to the guest, `OK` line read.
        pub(crate) fn established(&mut self, port: u32) -> (UnixStream, u32) {
            let (mut host, req) = self.host_connect(port);
            self.send(pkt(OP_RESPONSE, req.src_port, port), &[]);
            let line = read_line(&mut host);
            assert_eq!(line, format!("OK {}\n", req.src_port));
            (host, req.src_port)
        }
    }

    pub(crate) fn read_line(stream: &mut UnixStream) -> String {
        let mut line = Vec::new();
        let mut byte = [0u8];
        while stream.read(&mut byte).unwrap() == 1 {
            line.push(byte[0]);
            if byte[0] == b'\n' {
                break;
            }
        }
        String::from_utf8(line).unwrap()
    }

    /// What is left to read on a host stream, if the device closed it (`None`: still open).
    pub(crate) fn drain(stream: &mut UnixStream) -> Option<Vec<u8>> {
        stream.set_nonblocking(false).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => return Some(out),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Some(out),
                Err(_) => return None,
            }
        }
    }

    /// Whether the device closed the host stream.
    pub(crate) fn closed(stream: &mut UnixStream) -> bool {
        drain(stream).is_some()
    }
}
