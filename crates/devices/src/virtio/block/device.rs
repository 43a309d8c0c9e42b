//! [`Block`]: the virtio-blk device and its protocol for the request machinery.

use std::sync::Arc;

use lcow_base::Event;
use lcow_disk::Disk;
use virtio_queue::Queue;
use vm_memory::GuestMemoryMmap;

use super::*;
use crate::virtio::request::{Engine, PoolConfig, Protocol, RequestWorker, Route};
use crate::virtio::{
    ActivateError, Interrupt, VirtioDevice, VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX,
};

/// The block side of the request machinery.
pub(super) struct BlockProtocol {
    pub(super) disk: Arc<dyn Disk>,
    pub(super) id: [u8; ID_LEN],
}

impl std::fmt::Debug for BlockProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockProtocol")
            .field("disk", &self.disk)
            .finish_non_exhaustive()
    }
}

fn status(s: u8) -> Vec<u8> {
    vec![s]
}

impl BlockProtocol {
    /// The byte offset and length of `len` bytes at `sector`, if whole sectors inside the disk
    /// and not over [`MAX_IO`].
    fn range(&self, sector: u64, len: usize) -> Option<u64> {
        if len % SECTOR as usize != 0 || len > MAX_IO {
            return None;
        }
        let offset = sector.checked_mul(SECTOR)?;
        (offset.checked_add(len as u64)? <= self.disk.size()).then_some(offset)
    }

    /// The reply (data then status) to one request whose chain can take `capacity` bytes.
    fn reply(&self, request: &[u8], capacity: usize) -> Option<Vec<u8>> {
        // Without room for the status byte there is nothing to answer into.
        let data_room = capacity.checked_sub(1)?;
        let Some(header) = request.get(..HEADER) else {
            return Some(status(VIRTIO_BLK_S_IOERR));
        };
        let kind = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let mut s = [0u8; 8];
        s.copy_from_slice(&header[8..16]);
        let sector = u64::from_le_bytes(s);
        let data = &request[HEADER..];
        Some(match kind {
            VIRTIO_BLK_T_IN => {
                let Some(offset) = self.range(sector, data_room) else {
                    tracing::debug!(sector, len = data_room, "block read out of range");
                    return Some(status(VIRTIO_BLK_S_IOERR));
                };
                let mut out = vec![0u8; data_room + 1];
                match self.disk.read_at(&mut out[..data_room], offset) {
                    Ok(()) => {
                        out[data_room] = VIRTIO_BLK_S_OK;
                        out
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, sector, "block read failed");
                        status(VIRTIO_BLK_S_IOERR)
                    }
                }
            }
            VIRTIO_BLK_T_OUT => {
                if self.disk.read_only() {
                    return Some(status(VIRTIO_BLK_S_IOERR));
                }
                let Some(offset) = self.range(sector, data.len()) else {
                    tracing::debug!(sector, len = data.len(), "block write out of range");
                    return Some(status(VIRTIO_BLK_S_IOERR));
                };
                match self.disk.write_at(data, offset) {
                    Ok(()) => status(VIRTIO_BLK_S_OK),
                    Err(e) => {
                        tracing::warn!(error = %e, sector, "block write failed");
                        status(VIRTIO_BLK_S_IOERR)
                    }
                }
            }
            VIRTIO_BLK_T_FLUSH => match self.disk.flush() {
                Ok(()) => status(VIRTIO_BLK_S_OK),
                Err(e) => {
                    tracing::warn!(error = %e, "block flush failed");
                    status(VIRTIO_BLK_S_IOERR)
                }
            },
            VIRTIO_BLK_T_GET_ID => {
                if data_room < ID_LEN {
                    return Some(status(VIRTIO_BLK_S_IOERR));
                }
                // The id, padded with zeros to the data part, then the status.
                let mut out = vec![0u8; data_room + 1];
                out[..ID_LEN].copy_from_slice(&self.id);
                out[data_room] = VIRTIO_BLK_S_OK;
                out
            }
            other => {
                tracing::debug!(kind = other, "block request type not served");
                status(VIRTIO_BLK_S_UNSUPP)
            }
        })
    }
}

impl Protocol for BlockProtocol {
    const NAME: &'static str = "block";

    fn serve(&self, request: &[u8], capacity: usize, send: &mut dyn FnMut(Vec<u8>)) {
        if capacity > MAX_IO + 1 {
            // No driver that heeds size_max and seg_max builds this: return it empty rather
            // than allocate for it.
            tracing::debug!(capacity, "block chain's writable part over the limit");
            return;
        }
        if let Some(reply) = self.reply(request, capacity) {
            if reply.len() < capacity {
                // A failed read answers its status in the last byte of the chain, where the
                // driver looks; the data part stays as it was.
                let mut full = vec![0u8; capacity];
                full[capacity - 1] = reply[reply.len() - 1];
                send(full);
            } else {
                send(reply);
            }
        }
    }

    fn route(&self, _queue: usize, _request: &[u8]) -> Route {
        Route::Normal
    }

    fn key(&self, _request: &[u8]) -> Option<u64> {
        None
    }

    fn cancelled_reply(&self, _request: &[u8]) -> Option<Vec<u8>> {
        None
    }

    fn overflow_reply(&self, _request: &[u8]) -> Option<Vec<u8>> {
        None
    }
}

/// The virtio-blk device (see the module documentation).
#[derive(Debug)]
pub struct Block {
    config: Vec<u8>,
    read_only: bool,
    engine: Engine<BlockProtocol>,
}

impl Block {
    /// A device serving `disk` (whose [`Disk::read_only`] decides whether the guest may write),
    /// with serial `serial` (its first 20 bytes), on a pool of `pool` threads; and the queue
    /// thread's worker, to run on a thread of its own.
    pub fn new(
        disk: Arc<dyn Disk>,
        serial: &str,
        pool: PoolConfig,
    ) -> Result<(Self, RequestWorker), BlockError> {
        let mut config = Vec::with_capacity(16);
        config.extend_from_slice(&(disk.size() / SECTOR).to_le_bytes());
        config.extend_from_slice(&SIZE_MAX.to_le_bytes());
        config.extend_from_slice(&SEG_MAX.to_le_bytes());
        let mut id = [0u8; ID_LEN];
        let n = serial.len().min(ID_LEN);
        id[..n].copy_from_slice(&serial.as_bytes()[..n]);
        let read_only = disk.read_only();
        if disk.size() % SECTOR != 0 {
            tracing::warn!(
                size = disk.size(),
                "disk size is not a whole number of sectors: the last part is not served"
            );
        }
        let (engine, worker) = Engine::new(BlockProtocol { disk, id }, 1, pool, HEADER + MAX_IO)
            .map_err(BlockError::EventLoop)?;
        tracing::debug!(serial, read_only, "block device created");
        Ok((
            Self {
                config,
                read_only,
                engine,
            },
            worker,
        ))
    }
}

impl VirtioDevice for Block {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_BLOCK
    }

    fn features(&self) -> u64 {
        let mut f = 1 << VIRTIO_F_VERSION_1
            | 1 << VIRTIO_RING_F_EVENT_IDX
            | 1 << VIRTIO_BLK_F_SIZE_MAX
            | 1 << VIRTIO_BLK_F_SEG_MAX
            | 1 << VIRTIO_BLK_F_FLUSH;
        if self.read_only {
            f |= 1 << VIRTIO_BLK_F_RO;
        }
        f
    }

    fn queue_max_sizes(&self) -> &[u16] {
        self.engine.queue_max_sizes()
    }

    fn queue_events(&self) -> &[Event] {
        self.engine.queue_events()
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        crate::virtio::read_config_bytes(&self.config, offset, data, "block");
    }

    fn write_config(&mut self, offset: u64, data: &[u8]) {
        tracing::debug!(
            offset,
            size = data.len(),
            "block config is read-only; write ignored"
        );
    }

    fn activate(
        &mut self,
        mem: GuestMemoryMmap,
        queues: Vec<Queue>,
        interrupt: Arc<Interrupt>,
        acked_features: u64,
    ) -> Result<(), ActivateError> {
        self.engine.activate(mem, queues, interrupt, acked_features)
    }

    fn reset(&mut self) {
        self.engine.reset();
    }
}
