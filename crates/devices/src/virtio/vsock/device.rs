//! [`Vsock`]: the virtio device (type 19, queues rx / tx / event, config = the guest's CID).
//!
//! The transport calls [`Vsock`] from a vCPU thread; the [`VsockWorker`] does all queue and
//! socket work. They share the [`Backend`] behind one mutex, so [`VirtioDevice::reset`] waits
//! for the worker to finish its current pass and guest memory is never touched after a reset
//! returns.

use std::sync::{Arc, Mutex};

use lcow_base::{AsRawDescriptor, Event, WaitContext};
use virtio_queue::{Queue, QueueT};
use vm_memory::GuestMemoryMmap;

use super::backend::{lock, Active, Backend, EVQ, RXQ, TXQ};
use super::muxer::Muxer;
use super::sys::HostListener;
use super::worker::{VsockWorker, TOKEN_EVQ, TOKEN_KICK, TOKEN_RXQ, TOKEN_STOP, TOKEN_TXQ};
use super::{Limits, VsockError, QUEUE_SIZE, VIRTIO_ID_VSOCK};
use crate::virtio::{
    ActivateError, Interrupt, VirtioDevice, VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX,
};

/// The virtio-vsock device (see the module documentation).
#[derive(Debug)]
pub struct Vsock {
    guest_cid: u64,
    queue_events: Vec<Event>,
    kick: Event,
    backend: Arc<Mutex<Backend>>,
    sizes: [u16; 3],
}

impl Vsock {
    /// A vsock device giving the guest `guest_cid` whose host side is `host`, with the worker
    /// that must run on its own thread (`Vsock::new` on Linux, `Vsock::new_pipes` on Windows).
    pub(crate) fn with_listener(
        guest_cid: u64,
        host: HostListener,
        limits: Limits,
    ) -> Result<(Self, VsockWorker), VsockError> {
        let path = host.path().to_owned();
        let event = || Event::new().map_err(VsockError::EventLoop);
        let queue_events = vec![event()?, event()?, event()?];
        let kick = event()?;
        let stop = event()?;
        let wait = Arc::new(WaitContext::new().map_err(VsockError::EventLoop)?);
        let watch = |descriptor: &dyn AsRawDescriptor, token| {
            wait.add(descriptor, token).map_err(VsockError::EventLoop)
        };
        watch(&queue_events[RXQ], TOKEN_RXQ)?;
        watch(&queue_events[TXQ], TOKEN_TXQ)?;
        watch(&queue_events[EVQ], TOKEN_EVQ)?;
        watch(&kick, TOKEN_KICK)?;
        watch(&stop, TOKEN_STOP)?;
        host.register(&wait).map_err(VsockError::EventLoop)?;
        let clone = |e: &Event| e.try_clone().map_err(VsockError::EventLoop);
        let worker_events = [
            clone(&queue_events[RXQ])?,
            clone(&queue_events[TXQ])?,
            clone(&queue_events[EVQ])?,
            clone(&kick)?,
        ];
        let backend = Arc::new(Mutex::new(Backend::new(Muxer::new(
            guest_cid,
            limits,
            host,
            wait.clone(),
        ))));
        let worker = VsockWorker::new(backend.clone(), wait, worker_events, stop);
        tracing::debug!(guest_cid, path = %path.display(), "vsock device created");
        Ok((
            Self {
                guest_cid,
                queue_events,
                kick,
                backend,
                sizes: [QUEUE_SIZE; 3],
            },
            worker,
        ))
    }

    /// The guest's context id.
    pub fn guest_cid(&self) -> u64 {
        self.guest_cid
    }

    #[cfg(test)]
    pub(super) fn backend(&self) -> &Mutex<Backend> {
        &self.backend
    }
}

impl VirtioDevice for Vsock {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_VSOCK
    }

    fn features(&self) -> u64 {
        1 << VIRTIO_F_VERSION_1 | 1 << VIRTIO_RING_F_EVENT_IDX
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &self.sizes
    }

    fn queue_events(&self) -> &[Event] {
        &self.queue_events
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        let config = self.guest_cid.to_le_bytes();
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match start
            .checked_add(data.len())
            .and_then(|end| config.get(start..end))
        {
            Some(bytes) => data.copy_from_slice(bytes),
            None => {
                tracing::debug!(offset, size = data.len(), "vsock config read out of range");
                data.fill(0);
            }
        }
    }

    fn write_config(&mut self, offset: u64, data: &[u8]) {
        tracing::debug!(
            offset,
            size = data.len(),
            "vsock config is read-only; write ignored"
        );
    }

    fn activate(
        &mut self,
        mem: GuestMemoryMmap,
        queues: Vec<Queue>,
        interrupt: Arc<Interrupt>,
        acked_features: u64,
    ) -> Result<(), ActivateError> {
        let got = queues.len();
        let event_idx = acked_features & (1 << VIRTIO_RING_F_EVENT_IDX) != 0;
        let [mut rx, mut tx, event]: [Queue; 3] = queues
            .try_into()
            .map_err(|_| ActivateError::QueueCount { expected: 3, got })?;
        rx.set_event_idx(event_idx);
        tx.set_event_idx(event_idx);
        lock(&self.backend).activate(Active {
            mem,
            rx,
            tx,
            _event: event,
            interrupt,
        });
        // Host clients may already be waiting: let the worker deliver their requests.
        self.kick.signal().map_err(ActivateError::Wake)
    }

    fn reset(&mut self) {
        lock(&self.backend).reset();
    }
}
