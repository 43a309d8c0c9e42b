//! [`P9`]: the virtio-9p device and its protocol hooks for the request machinery.

use std::sync::Arc;

use lcow_base::Event;
use lcow_fs::p9::consts::msg::{RLERROR, TFLUSH};
use virtio_queue::Queue;
use vm_memory::GuestMemoryMmap;

use super::{P9Error, P9Handler, MAX_REQUEST, MAX_TAG_LEN, VIRTIO_9P_F_MOUNT_TAG, VIRTIO_ID_9P};
use crate::virtio::request::{Engine, PoolConfig, Protocol, RequestWorker, Route};
use crate::virtio::{
    ActivateError, Interrupt, VirtioDevice, VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX,
};

/// The tag of a framed 9P message (bytes 5..7).
fn tag_of(message: &[u8]) -> Option<u16> {
    Some(u16::from_le_bytes(message.get(5..7)?.try_into().ok()?))
}

/// A framed Rlerror for `tag`.
fn rlerror(tag: u16, errno: i32) -> Vec<u8> {
    let mut out = Vec::with_capacity(11);
    out.extend_from_slice(&11u32.to_le_bytes());
    out.push(RLERROR);
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&errno.unsigned_abs().to_le_bytes());
    out
}

/// The 9P side of the request machinery.
pub(super) struct P9Protocol<H> {
    handler: H,
}

impl<H> std::fmt::Debug for P9Protocol<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("P9Protocol").finish_non_exhaustive()
    }
}

impl<H: P9Handler> Protocol for P9Protocol<H> {
    const NAME: &'static str = "9p";

    fn serve(&self, request: &[u8], _capacity: usize, send: &mut dyn FnMut(Vec<u8>)) {
        self.handler.handle_and_send(request, send);
    }

    fn route(&self, _queue: usize, request: &[u8]) -> Route {
        if request.get(4) == Some(&TFLUSH) {
            let oldtag = request
                .get(7..9)
                .and_then(|b| b.try_into().ok())
                .map(|b| u64::from(u16::from_le_bytes(b)));
            Route::Urgent { cancels: oldtag }
        } else {
            Route::Normal
        }
    }

    fn key(&self, request: &[u8]) -> Option<u64> {
        tag_of(request).map(u64::from)
    }

    fn cancelled_reply(&self, request: &[u8]) -> Option<Vec<u8>> {
        tag_of(request).map(|tag| rlerror(tag, libc::EINTR))
    }

    fn overflow_reply(&self, request: &[u8]) -> Option<Vec<u8>> {
        tag_of(request).map(|tag| rlerror(tag, libc::EMSGSIZE))
    }
}

/// The virtio-9p device (see the module documentation).
#[derive(Debug)]
pub struct P9<H: P9Handler> {
    tag: String,
    config: Vec<u8>,
    engine: Engine<P9Protocol<H>>,
}

impl<H: P9Handler> P9<H> {
    /// A device exporting mount tag `tag`, serving requests with `handler` on a pool of
    /// `pool` threads, and the queue thread's worker, to run on a thread of its own.
    pub fn new(tag: &str, handler: H, pool: PoolConfig) -> Result<(Self, RequestWorker), P9Error> {
        if tag.is_empty() || tag.len() > MAX_TAG_LEN || tag.contains('\0') {
            return Err(P9Error::InvalidTag {
                tag: tag.to_owned(),
            });
        }
        let mut config = Vec::with_capacity(2 + tag.len());
        // MAX_TAG_LEN fits a u16.
        config.extend_from_slice(&(tag.len() as u16).to_le_bytes());
        config.extend_from_slice(tag.as_bytes());
        let (engine, worker) = Engine::new(P9Protocol { handler }, 1, pool, MAX_REQUEST)
            .map_err(P9Error::EventLoop)?;
        tracing::debug!(tag, "9p device created");
        Ok((
            Self {
                tag: tag.to_owned(),
                config,
                engine,
            },
            worker,
        ))
    }

    /// The mount tag.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The request handler.
    pub fn handler(&self) -> &H {
        &self.engine.protocol().handler
    }
}

impl<H: P9Handler> VirtioDevice for P9<H> {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_9P
    }

    fn features(&self) -> u64 {
        1 << VIRTIO_F_VERSION_1 | 1 << VIRTIO_RING_F_EVENT_IDX | 1 << VIRTIO_9P_F_MOUNT_TAG
    }

    fn queue_max_sizes(&self) -> &[u16] {
        self.engine.queue_max_sizes()
    }

    fn queue_events(&self) -> &[Event] {
        self.engine.queue_events()
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        crate::virtio::read_config_bytes(&self.config, offset, data, "9p");
    }

    fn write_config(&mut self, offset: u64, data: &[u8]) {
        tracing::debug!(
            offset,
            size = data.len(),
            "9p config is read-only; write ignored"
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
