//! The virtio-vsock packet header (virtio 1.2 §5.10.6) and its constants. Descriptor chains are
//! parsed by `virtio-vsock`'s `VsockPacket`, which bounds-checks them against guest memory; this
//! module reads and writes the header as a plain value.

use virtio_vsock::packet::{VsockPacket, PKT_HEADER_SIZE};
use vm_memory::bitmap::BitmapSlice;

/// The size of the header in bytes.
pub const HEADER_SIZE: usize = PKT_HEADER_SIZE;

/// The only socket type we support: a stream.
pub const TYPE_STREAM: u16 = 1;

/// Connect.
pub const OP_REQUEST: u16 = 1;
/// Connect accepted.
pub const OP_RESPONSE: u16 = 2;
/// Connection reset (or refused).
pub const OP_RST: u16 = 3;
/// No more sending and/or receiving; see [`SHUTDOWN_RCV`] and [`SHUTDOWN_SEND`].
pub const OP_SHUTDOWN: u16 = 4;
/// Data.
pub const OP_RW: u16 = 5;
/// The sender's `buf_alloc` / `fwd_cnt` changed.
pub const OP_CREDIT_UPDATE: u16 = 6;
/// Asks for a credit update.
pub const OP_CREDIT_REQUEST: u16 = 7;

/// `SHUTDOWN` flag: the sender will receive nothing more.
pub const SHUTDOWN_RCV: u32 = 1;
/// `SHUTDOWN` flag: the sender will send nothing more.
pub const SHUTDOWN_SEND: u32 = 2;

/// A packet header, field by field (little endian on the wire).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Header {
    /// Source context id.
    pub src_cid: u64,
    /// Destination context id.
    pub dst_cid: u64,
    /// Source port.
    pub src_port: u32,
    /// Destination port.
    pub dst_port: u32,
    /// Payload length.
    pub len: u32,
    /// Socket type ([`TYPE_STREAM`]).
    pub type_: u16,
    /// Operation (`OP_*`).
    pub op: u16,
    /// Operation flags (`SHUTDOWN_*`).
    pub flags: u32,
    /// The sender's receive buffer size.
    pub buf_alloc: u32,
    /// Bytes the sender has consumed from its receive buffer, ever (wrapping).
    pub fwd_cnt: u32,
}

impl Header {
    /// The header as the 44 bytes on the wire.
    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        b[0..8].copy_from_slice(&self.src_cid.to_le_bytes());
        b[8..16].copy_from_slice(&self.dst_cid.to_le_bytes());
        b[16..20].copy_from_slice(&self.src_port.to_le_bytes());
        b[20..24].copy_from_slice(&self.dst_port.to_le_bytes());
        b[24..28].copy_from_slice(&self.len.to_le_bytes());
        b[28..30].copy_from_slice(&self.type_.to_le_bytes());
        b[30..32].copy_from_slice(&self.op.to_le_bytes());
        b[32..36].copy_from_slice(&self.flags.to_le_bytes());
        b[36..40].copy_from_slice(&self.buf_alloc.to_le_bytes());
        b[40..44].copy_from_slice(&self.fwd_cnt.to_le_bytes());
        b
    }

    /// The header of 44 wire bytes.
    pub fn from_bytes(b: &[u8; HEADER_SIZE]) -> Self {
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| u64::from(u32_at(i)) | (u64::from(u32_at(i + 4)) << 32);
        Self {
            src_cid: u64_at(0),
            dst_cid: u64_at(8),
            src_port: u32_at(16),
            dst_port: u32_at(20),
            len: u32_at(24),
            type_: u16_at(28),
            op: u16_at(30),
            flags: u32_at(32),
            buf_alloc: u32_at(36),
            fwd_cnt: u32_at(40),
        }
    }

    /// The header of a packet parsed from a descriptor chain.
    pub fn of<B: BitmapSlice>(pkt: &VsockPacket<'_, B>) -> Self {
        Self {
            src_cid: pkt.src_cid(),
            dst_cid: pkt.dst_cid(),
            src_port: pkt.src_port(),
            dst_port: pkt.dst_port(),
            len: pkt.len(),
            type_: pkt.type_(),
            op: pkt.op(),
            flags: pkt.flags(),
            buf_alloc: pkt.buf_alloc(),
            fwd_cnt: pkt.fwd_cnt(),
        }
    }
}

/// The name of an operation, for logs.
pub fn op_name(op: u16) -> &'static str {
    match op {
        OP_REQUEST => "request",
        OP_RESPONSE => "response",
        OP_RST => "rst",
        OP_SHUTDOWN => "shutdown",
        OP_RW => "rw",
        OP_CREDIT_UPDATE => "credit_update",
        OP_CREDIT_REQUEST => "credit_request",
        _ => "invalid",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use virtio_queue::desc::split::Descriptor;
    use virtio_queue::desc::RawDescriptor;
    use virtio_queue::mock::MockSplitQueue;
    use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

    use super::*;
    use crate::virtio::vsock::MAX_PKT_DATA;

    const WRITE: u16 = 2;

    fn chain(descs: &[(u64, u32, u16)]) -> Vec<RawDescriptor> {
        descs
            .iter()
            .map(|&(addr, len, flags)| RawDescriptor::from(Descriptor::new(addr, len, flags, 0)))
            .collect()
    }

    #[test]
    fn test_tx_chain_header_parsed_and_malformed_chains_rejected() {
        let mem: GuestMemoryMmap =
            GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap();
        let q = MockSplitQueue::new(&mem, 16);
        let h = Header {
            src_cid: 3,
            dst_cid: 2,
            src_port: 9,
            dst_port: 1024,
            len: 3,
            type_: TYPE_STREAM,
            op: OP_RW,
            ..Header::default()
        };
        mem.write_slice(&h.to_bytes(), GuestAddress(0x1_0000))
            .unwrap();
        mem.write_slice(b"abc", GuestAddress(0x2_0000)).unwrap();
        let parse = |descs: &[(u64, u32, u16)]| {
            let mut c = q.build_desc_chain(&chain(descs)).unwrap();
            VsockPacket::from_tx_virtq_chain(&mem, &mut c, MAX_PKT_DATA).map(|p| {
                let mut data = vec![0u8; p.data_slice().map_or(0, |d| d.len())];
                if let Some(d) = p.data_slice() {
                    d.copy_to(&mut data[..]);
                }
                (Header::of(&p), data)
            })
        };

        let good = parse(&[(0x1_0000, 44, 0), (0x2_0000, 3, 0)]).unwrap();
        let short_header = parse(&[(0x1_0000, 43, 0)]);
        let data_too_short = parse(&[(0x1_0000, 44, 0), (0x2_0000, 2, 0)]);
        let no_data_descriptor = parse(&[(0x1_0000, 44, 0)]);
        let write_only_header = parse(&[(0x1_0000, 44, WRITE), (0x2_0000, 3, 0)]);
        let outside_memory = parse(&[(0xff_fff0, 44, 0)]);

        assert_eq!(good, (h, b"abc".to_vec()));
        assert!(short_header.is_err());
        assert!(data_too_short.is_err());
        assert!(no_data_descriptor.is_err());
        assert!(write_only_header.is_err());
        assert!(outside_memory.is_err());
    }

    #[test]
    fn test_header_bytes_round_trip_little_endian() {
        let h = Header {
            src_cid: 2,
            dst_cid: 0x0102_0304_0506_0708,
            src_port: 1 << 30,
            dst_port: 1024,
            len: 5,
            type_: TYPE_STREAM,
            op: OP_RW,
            flags: SHUTDOWN_SEND,
            buf_alloc: 0x40000,
            fwd_cnt: 7,
        };

        let bytes = h.to_bytes();

        assert_eq!(&bytes[8..16], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(&bytes[30..32], &[5, 0]);
        assert_eq!(Header::from_bytes(&bytes), h);
    }
}
