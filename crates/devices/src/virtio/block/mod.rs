//! virtio-blk (device type 2, virtio 1.2 §5.2): a disk image ([`lcow_disk::Disk`]: raw, VHD or
//! VHDX) as `/dev/vdX` in the guest, read-only or read-write.
//!
//! - Configuration space: `capacity` (u64, in 512-byte sectors), `size_max` (u32) and
//!   `seg_max` (u32); read-only.
//! - Features: `VIRTIO_BLK_F_SIZE_MAX`, `VIRTIO_BLK_F_SEG_MAX`, `VIRTIO_BLK_F_FLUSH`,
//!   `VIRTIO_BLK_F_RO` for a read-only disk, `VIRTIO_F_VERSION_1`, `VIRTIO_RING_F_EVENT_IDX`.
//! - One request queue. A chain is a 16-byte header (`type` u32, reserved u32, `sector` u64)
//!   and, for a write, its data, in device-readable descriptors; then, device-writable, a
//!   read's data and one status byte (`OK` 0, `IOERR` 1, `UNSUPP` 2).
//!
//! Requests run on the pool of [`super::request`] (so slow host I/O never holds up the queue),
//! each checked before it touches the image: a header that is short, a data length that is not
//! a whole number of sectors, a request past the end of the disk or over [`MAX_IO`] bytes, or a
//! write to a read-only disk is answered `IOERR` without any host I/O; an unknown type is
//! `UNSUPP`; `GET_ID` answers the device's serial (20 bytes). A chain without room for its
//! status byte gets nothing written. A host error reading or writing the image is `IOERR`,
//! logged with the cause.

mod device;

#[cfg(test)]
mod tests;

pub use device::Block;

/// The virtio device type of a block device.
pub const VIRTIO_ID_BLOCK: u32 = 2;
/// Feature: `size_max` is the largest segment.
pub const VIRTIO_BLK_F_SIZE_MAX: u32 = 1;
/// Feature: `seg_max` is the most segments of a request.
pub const VIRTIO_BLK_F_SEG_MAX: u32 = 2;
/// Feature: the disk is read-only.
pub const VIRTIO_BLK_F_RO: u32 = 5;
/// Feature: the device takes flush requests.
pub const VIRTIO_BLK_F_FLUSH: u32 = 9;

/// A read.
pub const VIRTIO_BLK_T_IN: u32 = 0;
/// A write.
pub const VIRTIO_BLK_T_OUT: u32 = 1;
/// A flush.
pub const VIRTIO_BLK_T_FLUSH: u32 = 4;
/// The device's serial.
pub const VIRTIO_BLK_T_GET_ID: u32 = 8;

/// Done.
pub const VIRTIO_BLK_S_OK: u8 = 0;
/// Failed.
pub const VIRTIO_BLK_S_IOERR: u8 = 1;
/// Not a request type the device serves.
pub const VIRTIO_BLK_S_UNSUPP: u8 = 2;

/// The sector unit of the protocol.
pub const SECTOR: u64 = 512;
/// The request header's size.
pub const HEADER: usize = 16;
/// The largest segment the device advertises (guest pages are 4 KiB; merged ones up to this).
pub const SIZE_MAX: u32 = 16 << 10;
/// The most segments of a request the device advertises: the queue's size less the header's
/// and the status's descriptors, as QEMU offers, so the guest builds requests of about 1 MiB.
pub const SEG_MAX: u32 = 254;
/// The most data one request moves (`SIZE_MAX * SEG_MAX`, just under 4 MiB); beyond it,
/// `IOERR`. A Linux guest never builds more, whatever its `max_sectors_kb`.
pub const MAX_IO: usize = (SIZE_MAX * SEG_MAX) as usize;
/// The length of a `GET_ID` answer.
pub const ID_LEN: usize = 20;

/// Errors of creating a block device.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// Creating the queue thread's events failed.
    #[error("failed to set up the block device's queue thread")]
    EventLoop(#[source] std::io::Error),
}
