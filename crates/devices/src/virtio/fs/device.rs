//! [`VirtioFs`]: the virtio-fs device and its protocol hooks for the request machinery.

use std::sync::Arc;

use lcow_base::Event;
use lcow_fs::fuse::consts::opcode::FUSE_INTERRUPT;
use virtio_queue::Queue;
use vm_memory::GuestMemoryMmap;

use super::{FsError, FuseHandler, MAX_REQUEST, MAX_REQUEST_QUEUES, TAG_SIZE, VIRTIO_ID_FS};
use crate::virtio::request::{Engine, PoolConfig, Protocol, RequestWorker, Route};
use crate::virtio::{
    ActivateError, Interrupt, VirtioDevice, VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX,
};

/// The high-priority queue.
const HIPRIO_QUEUE: usize = 0;
/// The size of `fuse_in_header`.
const IN_HEADER_SIZE: usize = 40;
/// The size of `fuse_out_header`.
const OUT_HEADER_SIZE: u32 = 16;

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// A request's `unique` (bytes 8..16 of `fuse_in_header`).
fn unique_of(request: &[u8]) -> Option<u64> {
    u64_at(request, 8)
}

/// A reply of `fuse_out_header` alone with `-errno`.
fn error_reply(unique: u64, errno: i32) -> Vec<u8> {
    let mut out = Vec::with_capacity(OUT_HEADER_SIZE as usize);
    out.extend_from_slice(&OUT_HEADER_SIZE.to_le_bytes());
    out.extend_from_slice(&(-errno).to_le_bytes());
    out.extend_from_slice(&unique.to_le_bytes());
    out
}

/// The FUSE side of the request machinery.
pub(super) struct FuseProtocol<H> {
    handler: H,
}

impl<H> std::fmt::Debug for FuseProtocol<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FuseProtocol").finish_non_exhaustive()
    }
}

impl<H: FuseHandler> Protocol for FuseProtocol<H> {
    const NAME: &'static str = "virtio-fs";

    fn serve(&self, request: &[u8], _capacity: usize, send: &mut dyn FnMut(Vec<u8>)) {
        if let Some(reply) = self.handler.handle(request) {
            send(reply);
        }
    }

    fn route(&self, queue: usize, request: &[u8]) -> Route {
        if u32_at(request, 4) == Some(FUSE_INTERRUPT) {
            return Route::Urgent {
                cancels: u64_at(request, IN_HEADER_SIZE),
            };
        }
        if queue == HIPRIO_QUEUE {
            Route::Urgent { cancels: None }
        } else {
            Route::Normal
        }
    }

    fn key(&self, request: &[u8]) -> Option<u64> {
        unique_of(request)
    }

    fn cancelled_reply(&self, request: &[u8]) -> Option<Vec<u8>> {
        unique_of(request).map(|unique| error_reply(unique, libc::EINTR))
    }

    fn overflow_reply(&self, request: &[u8]) -> Option<Vec<u8>> {
        unique_of(request).map(|unique| error_reply(unique, libc::EIO))
    }
}

/// The virtio-fs device (see the module documentation).
#[derive(Debug)]
pub struct VirtioFs<H: FuseHandler> {
    tag: String,
    config: Vec<u8>,
    engine: Engine<FuseProtocol<H>>,
}

impl<H: FuseHandler> VirtioFs<H> {
    /// A device exporting tag `tag` with `request_queues` request queues (1 to
    /// [`MAX_REQUEST_QUEUES`]) besides the high-priority one, serving requests with `handler`
    /// on a pool of `pool` threads, and the queue thread's worker, to run on a thread of its
    /// own.
    pub fn new(
        tag: &str,
        request_queues: u32,
        handler: H,
        pool: PoolConfig,
    ) -> Result<(Self, RequestWorker), FsError> {
        if tag.is_empty() || tag.len() > TAG_SIZE || tag.contains('\0') {
            return Err(FsError::InvalidTag {
                tag: tag.to_owned(),
            });
        }
        if !(1..=MAX_REQUEST_QUEUES).contains(&request_queues) {
            return Err(FsError::QueueCount {
                count: request_queues,
            });
        }
        let mut config = vec![0u8; TAG_SIZE];
        config[..tag.len()].copy_from_slice(tag.as_bytes());
        config.extend_from_slice(&request_queues.to_le_bytes());
        let queues = 1 + request_queues as usize;
        let (engine, worker) = Engine::new(FuseProtocol { handler }, queues, pool, MAX_REQUEST)
            .map_err(FsError::EventLoop)?;
        tracing::debug!(tag, request_queues, "virtio-fs device created");
        Ok((
            Self {
                tag: tag.to_owned(),
                config,
                engine,
            },
            worker,
        ))
    }

    /// The tag.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The request handler.
    pub fn handler(&self) -> &H {
        &self.engine.protocol().handler
    }
}

impl<H: FuseHandler> VirtioDevice for VirtioFs<H> {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_FS
    }

    fn features(&self) -> u64 {
        1 << VIRTIO_F_VERSION_1 | 1 << VIRTIO_RING_F_EVENT_IDX
    }

    fn queue_max_sizes(&self) -> &[u16] {
        self.engine.queue_max_sizes()
    }

    fn queue_events(&self) -> &[Event] {
        self.engine.queue_events()
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        crate::virtio::read_config_bytes(&self.config, offset, data, "virtio-fs");
    }

    fn write_config(&mut self, offset: u64, data: &[u8]) {
        tracing::debug!(
            offset,
            size = data.len(),
            "virtio-fs config is read-only; write ignored"
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
