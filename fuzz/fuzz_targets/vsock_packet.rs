//! Fuzzes the virtio-vsock device's tx path: arbitrary bytes become descriptor chains (any
//! address, length, flags, next index, indirect tables included) and packet bytes in mock guest
//! memory, posted to a live device that has a host client waiting on `CONNECT 1024` and a host
//! listener on `PATH_1024`, and processed by the device's own event loop. Whatever the device
//! answers lands in rx buffers. Nothing may panic, hang or grow without bound.
//!
//! Input: a sequence of packets, each
//! `ctrl: u8, payload_len: u16 LE, descs: [addr u32, len u32, flags u16, next u16; n], payload`,
//! where `ctrl & 3` is `n - 1`, `ctrl & 4` fills in valid CIDs and type in the header bytes (so
//! the connection state machine is reached), and `ctrl & 8` takes addresses raw instead of as
//! offsets into the data region.

#![no_main]

use std::io::Write;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use lcow_devices::virtio::vsock::{socket_path_for_port, Limits, Vsock, VsockWorker};
use lcow_devices::virtio::{Interrupt, VirtioDevice};
use lcow_devices::IrqTrigger;
use libfuzzer_sys::fuzz_target;
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const QSIZE: u16 = 16;
const MEM_SIZE: usize = 0x40_0000;
const DATA_BASE: u64 = 0x1_0000;
const DATA_SIZE: u64 = 0x2_0000;
const RX_BASE: u64 = 0x8_0000;
const RX_BUFS: u16 = 8;
const RX_LEN: u32 = 44 + 4096;
const MAX_PACKETS: usize = 16;

/// A split ring as the driver sees it: descriptors, then avail, then used.
struct Ring {
    desc: u64,
    avail: u64,
    used: u64,
}

impl Ring {
    fn new(base: u64) -> Self {
        Self {
            desc: base,
            avail: base + 0x100,
            used: base + 0x200,
        }
    }

    fn queue(&self) -> Option<Queue> {
        let mut q = <Queue as QueueT>::new(QSIZE).ok()?;
        q.set_ready(true);
        q.try_set_desc_table_address(GuestAddress(self.desc)).ok()?;
        q.try_set_avail_ring_address(GuestAddress(self.avail))
            .ok()?;
        q.try_set_used_ring_address(GuestAddress(self.used)).ok()?;
        Some(q)
    }

    fn write_desc(&self, mem: &GuestMemoryMmap, index: u16, desc: (u64, u32, u16, u16)) {
        let at = self.desc + 16 * u64::from(index % QSIZE);
        let mut raw = [0u8; 16];
        raw[0..8].copy_from_slice(&desc.0.to_le_bytes());
        raw[8..12].copy_from_slice(&desc.1.to_le_bytes());
        raw[12..14].copy_from_slice(&desc.2.to_le_bytes());
        raw[14..16].copy_from_slice(&desc.3.to_le_bytes());
        let _ = mem.write_slice(&raw, GuestAddress(at));
    }

    fn avail_idx(&self, mem: &GuestMemoryMmap) -> u16 {
        mem.read_obj(GuestAddress(self.avail + 2)).unwrap_or(0)
    }

    fn used_idx(&self, mem: &GuestMemoryMmap) -> u16 {
        mem.read_obj(GuestAddress(self.used + 2)).unwrap_or(0)
    }

    fn offer(&self, mem: &GuestMemoryMmap, head: u16) {
        let idx = self.avail_idx(mem);
        let slot = self.avail + 4 + 2 * u64::from(idx % QSIZE);
        let _ = mem.write_obj(head, GuestAddress(slot));
        let _ = mem.write_obj(idx.wrapping_add(1), GuestAddress(self.avail + 2));
    }
}

fn socket_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        // SAFETY: setting a signal disposition to "ignore" has no memory-safety requirements;
        // libFuzzer's C main leaves SIGPIPE fatal, a Rust binary ignores it.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
        let dir = std::env::temp_dir().join(format!("lcow-fuzz-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        dir.join("v.sock")
    })
}

struct Setup {
    mem: GuestMemoryMmap,
    rx: Ring,
    tx: Ring,
    device: Vsock,
    worker: VsockWorker,
    _service: UnixListener,
    _client: UnixStream,
}

fn setup() -> Option<Setup> {
    let path = socket_path();
    let limits = Limits {
        buf_alloc: 8192,
        max_connections: 8,
        ..Limits::default()
    };
    let (mut device, worker) = Vsock::new(3, path, limits).ok()?;
    let service_path = socket_path_for_port(path, 1024);
    let _ = std::fs::remove_file(&service_path);
    let service = UnixListener::bind(&service_path).ok()?;
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM_SIZE)]).ok()?;
    let rx = Ring::new(0);
    let tx = Ring::new(0x1000);
    let ev = Ring::new(0x2000);
    let interrupt = Arc::new(Interrupt::new(IrqTrigger::new().ok()?));
    device
        .activate(
            mem.clone(),
            vec![rx.queue()?, tx.queue()?, ev.queue()?],
            interrupt,
            1 << 32,
        )
        .ok()?;
    let mut client = UnixStream::connect(path).ok()?;
    client.write_all(b"CONNECT 1024\nhello").ok()?;
    Some(Setup {
        mem,
        rx,
        tx,
        device,
        worker,
        _service: service,
        _client: client,
    })
}

fn pump(s: &Setup) {
    for _ in 0..2 {
        let _ = s.worker.run_once(Some(Duration::ZERO));
    }
}

/// Keeps `RX_BUFS` rx buffers posted.
fn refill_rx(s: &Setup) {
    while s.rx.avail_idx(&s.mem).wrapping_sub(s.rx.used_idx(&s.mem)) < RX_BUFS {
        let n = s.rx.avail_idx(&s.mem);
        let slot = n % QSIZE;
        let addr = RX_BASE + u64::from(slot) * 0x2000;
        s.rx.write_desc(&s.mem, slot, (addr, RX_LEN, 2, 0));
        s.rx.offer(&s.mem, slot);
    }
    let _ = s.device.queue_events()[0].write(1);
}

fn take<'a>(data: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if data.len() < n {
        return None;
    }
    let (head, rest) = data.split_at(n);
    *data = rest;
    Some(head)
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

fuzz_target!(|input: &[u8]| {
    let Some(s) = setup() else {
        return;
    };
    refill_rx(&s);
    pump(&s);
    let mut data = input;
    for packet in 0..MAX_PACKETS {
        let Some(head) = take(&mut data, 3) else {
            break;
        };
        let ctrl = head[0];
        let payload_len = usize::from(u16_at(head, 1));
        let count = usize::from(ctrl & 3) + 1;
        let Some(descs) = take(&mut data, 12 * count) else {
            break;
        };
        let available = data.len();
        let payload = take(&mut data, payload_len.min(available)).unwrap_or_default();
        let _ = s.mem.write_slice(payload, GuestAddress(DATA_BASE));
        let base = (packet as u16 % 4) * 4;
        let mut first_addr = None;
        for i in 0..count {
            let d = &descs[12 * i..12 * (i + 1)];
            let raw = u32_at(d, 0);
            let addr = if ctrl & 8 != 0 {
                u64::from(raw)
            } else {
                DATA_BASE + u64::from(raw) % DATA_SIZE
            };
            first_addr.get_or_insert(addr);
            s.tx.write_desc(
                &s.mem,
                base + i as u16,
                (addr, u32_at(d, 4), u16_at(d, 8), u16_at(d, 10)),
            );
        }
        if ctrl & 4 != 0 {
            if let Some(addr) = first_addr {
                // src_cid 3, dst_cid 2, type stream.
                let _ = s.mem.write_obj(3u64, GuestAddress(addr));
                let _ = s.mem.write_obj(2u64, GuestAddress(addr.wrapping_add(8)));
                let _ = s.mem.write_obj(1u16, GuestAddress(addr.wrapping_add(28)));
            }
        }
        s.tx.offer(&s.mem, base);
        let _ = s.device.queue_events()[1].write(1);
        pump(&s);
        refill_rx(&s);
        pump(&s);
    }
});
