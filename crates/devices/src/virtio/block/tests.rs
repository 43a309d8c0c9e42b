//! The block device against a fake driver: reads, writes, flush, GET_ID, and every malformed
//! or out-of-range request answered IOERR (or UNSUPP) without touching the disk.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use lcow_disk::{Disk, DiskError};

use super::*;
use crate::virtio::request::testing::{Driver, FEATURES};
use crate::virtio::request::PoolConfig;
use crate::virtio::VirtioDevice;

/// A disk in memory that counts the calls that reach it.
#[derive(Debug)]
struct MemDisk {
    data: Mutex<Vec<u8>>,
    read_only: bool,
    calls: Mutex<u32>,
    fail: bool,
}

impl MemDisk {
    fn new(size: usize, read_only: bool) -> Arc<Self> {
        Arc::new(MemDisk {
            data: Mutex::new((0..size).map(|i| (i % 251) as u8).collect()),
            read_only,
            calls: Mutex::new(0),
            fail: false,
        })
    }

    fn calls(&self) -> u32 {
        *self.calls.lock().unwrap()
    }
}

impl Disk for MemDisk {
    fn size(&self) -> u64 {
        self.data.lock().unwrap().len() as u64
    }
    fn read_only(&self) -> bool {
        self.read_only
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> lcow_disk::Result<()> {
        *self.calls.lock().unwrap() += 1;
        if self.fail {
            return Err(DiskError::ReadOnly);
        }
        let d = self.data.lock().unwrap();
        buf.copy_from_slice(&d[offset as usize..offset as usize + buf.len()]);
        Ok(())
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> lcow_disk::Result<()> {
        *self.calls.lock().unwrap() += 1;
        let mut d = self.data.lock().unwrap();
        d[offset as usize..offset as usize + buf.len()].copy_from_slice(buf);
        Ok(())
    }
    fn flush(&self) -> lcow_disk::Result<()> {
        *self.calls.lock().unwrap() += 1;
        Ok(())
    }
}

fn header(kind: u32, sector: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER);
    h.extend_from_slice(&kind.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&sector.to_le_bytes());
    h
}

fn start(disk: Arc<MemDisk>) -> (Driver, Block) {
    let (mut dev, worker) = Block::new(disk, "lcow-test-disk", PoolConfig::default()).unwrap();
    let d = Driver::start(&mut dev, worker, FEATURES);
    (d, dev)
}

#[test]
fn test_config_and_features() {
    let disk = MemDisk::new(64 * 1024, true);
    let (dev, _worker) = Block::new(disk, "x", PoolConfig::default()).unwrap();
    let mut cap = [0u8; 8];
    dev.read_config(0, &mut cap);
    assert_eq!(u64::from_le_bytes(cap), 128, "64 KiB in sectors");
    let mut seg = [0u8; 4];
    dev.read_config(12, &mut seg);
    assert_eq!(u32::from_le_bytes(seg), SEG_MAX);
    assert_eq!(dev.device_type(), VIRTIO_ID_BLOCK);
    assert_ne!(dev.features() & 1 << VIRTIO_BLK_F_RO, 0);
    assert_ne!(dev.features() & 1 << VIRTIO_BLK_F_FLUSH, 0);
}

#[test]
fn test_read_write_flush_and_get_id() {
    let disk = MemDisk::new(64 * 1024, false);
    let (mut d, _dev) = start(disk.clone());
    // Read two sectors from sector 3.
    let used = d.roundtrip(0, &[&header(VIRTIO_BLK_T_IN, 3)], &[1024, 1]);
    assert_eq!(used.len, 1025);
    let want: Vec<u8> = (1536..2560).map(|i| (i % 251) as u8).collect();
    assert_eq!(&used.reply[..1024], &want[..]);
    assert_eq!(used.reply[1024], VIRTIO_BLK_S_OK);
    // Write one sector at sector 1, data in a descriptor of its own.
    let data = vec![0xab; 512];
    let used = d.roundtrip(0, &[&header(VIRTIO_BLK_T_OUT, 1), &data], &[1]);
    assert_eq!(used.reply, [VIRTIO_BLK_S_OK]);
    assert_eq!(&disk.data.lock().unwrap()[512..1024], &data[..]);
    let used = d.roundtrip(0, &[&header(VIRTIO_BLK_T_FLUSH, 0)], &[1]);
    assert_eq!(used.reply, [VIRTIO_BLK_S_OK]);
    let used = d.roundtrip(0, &[&header(VIRTIO_BLK_T_GET_ID, 0)], &[20, 1]);
    assert_eq!(&used.reply[..14], b"lcow-test-disk");
    assert_eq!(used.reply[20], VIRTIO_BLK_S_OK);
}

#[test]
fn test_bad_requests_never_reach_the_disk() {
    let disk = MemDisk::new(64 * 1024, false);
    let (mut d, _dev) = start(disk.clone());
    let ioerr = |u: &crate::virtio::request::testing::Used| *u.reply.last().unwrap();
    // Past the end; straddling the end; not whole sectors; a short header; sector overflow.
    for (readable, writable) in [
        (vec![header(VIRTIO_BLK_T_IN, 128)], vec![512u32, 1]),
        (vec![header(VIRTIO_BLK_T_IN, 127)], vec![1024, 1]),
        (vec![header(VIRTIO_BLK_T_IN, 0)], vec![100, 1]),
        (vec![header(VIRTIO_BLK_T_IN, 0)[..8].to_vec()], vec![1]),
        (vec![header(VIRTIO_BLK_T_IN, u64::MAX / 2)], vec![512, 1]),
        (vec![header(VIRTIO_BLK_T_OUT, 127), vec![0; 1024]], vec![1]),
        (vec![header(VIRTIO_BLK_T_OUT, 0), vec![0; 10]], vec![1]),
    ] {
        let r: Vec<&[u8]> = readable.iter().map(Vec::as_slice).collect();
        let used = d.roundtrip(0, &r, &writable);
        assert_eq!(ioerr(&used), VIRTIO_BLK_S_IOERR, "{readable:?}");
    }
    assert_eq!(disk.calls(), 0, "nothing reached the disk");
    let used = d.roundtrip(0, &[&header(99, 0)], &[1]);
    assert_eq!(used.reply, [VIRTIO_BLK_S_UNSUPP]);
    // GET_ID without room for the id.
    let used = d.roundtrip(0, &[&header(VIRTIO_BLK_T_GET_ID, 0)], &[4, 1]);
    assert_eq!(*used.reply.last().unwrap(), VIRTIO_BLK_S_IOERR);
    // A writable part over the limit is returned empty, never allocated for.
    let used = d.roundtrip(
        0,
        &[&header(VIRTIO_BLK_T_IN, 0)],
        &[(MAX_IO + 512) as u32, 1],
    );
    assert_eq!(used.len, 0);
    assert_eq!(disk.calls(), 0);
}

#[test]
fn test_read_only_disk_refuses_writes_and_host_errors_are_ioerr() {
    let disk = MemDisk::new(4096, true);
    let (mut d, _dev) = start(disk.clone());
    let used = d.roundtrip(0, &[&header(VIRTIO_BLK_T_OUT, 0), &[1u8; 512]], &[1]);
    assert_eq!(used.reply, [VIRTIO_BLK_S_IOERR]);
    assert_eq!(disk.calls(), 0);
    let failing = Arc::new(MemDisk {
        data: Mutex::new(vec![0; 4096]),
        read_only: false,
        calls: Mutex::new(0),
        fail: true,
    });
    let (mut d, _dev) = start(failing);
    let used = d.roundtrip(0, &[&header(VIRTIO_BLK_T_IN, 0)], &[512, 1]);
    assert_eq!(used.reply[512], VIRTIO_BLK_S_IOERR);
}
