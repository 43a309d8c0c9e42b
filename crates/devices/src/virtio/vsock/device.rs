//! [`Vsock`]: the virtio device (type 19, queues rx / tx / event, config = the guest's CID),
//! and the backend it shares with its [`VsockWorker`] thread: the muxer and, while the driver
//! has the device live, the queues.
//!
//! The transport calls [`Vsock`] from a vCPU thread; the worker does all queue and socket work.
//! They share the backend behind one mutex, so [`VirtioDevice::reset`] waits for the worker to
//! finish its current pass and guest memory is never touched after a reset returns.

use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use virtio_queue::{Queue, QueueOwnedT, QueueT};
use virtio_vsock::packet::VsockPacket;
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::muxer::{Muxer, TOKEN_LISTENER};
use super::packet::{Header, HEADER_SIZE};
use super::socket::HostListener;
use super::worker::{VsockWorker, TOKEN_EVQ, TOKEN_KICK, TOKEN_RXQ, TOKEN_STOP, TOKEN_TXQ};
use super::{Limits, VsockError, MAX_PKT_DATA, QUEUE_SIZE, VIRTIO_ID_VSOCK};
use crate::virtio::{ActivateError, Interrupt, VirtioDevice, VIRTIO_F_VERSION_1};

const RXQ: usize = 0;
const TXQ: usize = 1;
const EVQ: usize = 2;

/// The queues of a live device.
#[derive(Debug)]
struct Active {
    mem: GuestMemoryMmap,
    rx: Queue,
    tx: Queue,
    /// Transport events (live migration) are never sent; the queue is only held.
    _event: Queue,
    interrupt: Arc<Interrupt>,
}

impl Active {
    fn used(queue: &mut Queue, mem: &GuestMemoryMmap, head: u16, len: u32) {
        if let Err(e) = queue.add_used(mem, head, len) {
            tracing::debug!(head, error = %e, "cannot return a vsock buffer");
        }
    }

    fn notify(queue: &mut Queue, mem: &GuestMemoryMmap, interrupt: &Interrupt) {
        if queue.needs_notification(mem).unwrap_or(true) {
            if let Err(e) = interrupt.signal_used_queue() {
                tracing::debug!(error = %e, "cannot raise the vsock interrupt");
            }
        }
    }
}

/// What the device and its worker share.
#[derive(Debug)]
pub(super) struct Backend {
    pub(super) muxer: Muxer,
    active: Option<Active>,
    tx_paused: bool,
}

impl Backend {
    /// Handles what the guest queued and delivers what it is owed, until neither can progress.
    pub(super) fn process_queues(&mut self, now: Instant) {
        loop {
            self.process_tx(now);
            self.process_rx(now);
            if !self.tx_paused || self.muxer.tx_should_pause() {
                break;
            }
        }
    }

    fn process_tx(&mut self, now: Instant) {
        self.tx_paused = false;
        let Some(active) = self.active.as_mut() else {
            return;
        };
        let mut used = false;
        loop {
            if self.muxer.tx_should_pause() {
                self.tx_paused = true;
                break;
            }
            let Some(mut chain) = active.tx.pop_descriptor_chain(&active.mem) else {
                break;
            };
            let head = chain.head_index();
            match VsockPacket::from_tx_virtq_chain(&active.mem, &mut chain, MAX_PKT_DATA) {
                Ok(pkt) => self
                    .muxer
                    .send_pkt(&Header::of(&pkt), pkt.data_slice(), now),
                Err(e) => tracing::debug!(head, error = %e, "malformed vsock tx packet dropped"),
            }
            Active::used(&mut active.tx, &active.mem, head, 0);
            used = true;
        }
        if used {
            Active::notify(&mut active.tx, &active.mem, &active.interrupt);
        }
    }

    fn process_rx(&mut self, now: Instant) {
        let Some(active) = self.active.as_mut() else {
            return;
        };
        let mut used = false;
        while self.muxer.has_pending_rx() {
            let Some(mut chain) = active.rx.pop_descriptor_chain(&active.mem) else {
                break;
            };
            let head = chain.head_index();
            let mut pkt =
                match VsockPacket::from_rx_virtq_chain(&active.mem, &mut chain, MAX_PKT_DATA) {
                    Ok(pkt) => pkt,
                    Err(e) => {
                        tracing::debug!(head, error = %e, "malformed vsock rx buffer returned");
                        Active::used(&mut active.rx, &active.mem, head, 0);
                        used = true;
                        continue;
                    }
                };
            let Some(hdr) = self.muxer.recv_pkt(pkt.data_slice(), now) else {
                // Nothing after all: give the buffer back to the ring for next time.
                active.rx.go_to_previous_position();
                break;
            };
            let len = match pkt.set_header_from_raw(&hdr.to_bytes()) {
                Ok(()) => HEADER_SIZE as u32 + hdr.len,
                Err(e) => {
                    tracing::debug!(error = %e, "cannot write a vsock rx header");
                    0
                }
            };
            Active::used(&mut active.rx, &active.mem, head, len);
            used = true;
        }
        if used {
            Active::notify(&mut active.rx, &active.mem, &active.interrupt);
        }
    }

    fn reset(&mut self) {
        self.active = None;
        self.tx_paused = false;
        self.muxer.reset();
    }
}

pub(super) fn lock(backend: &Mutex<Backend>) -> MutexGuard<'_, Backend> {
    backend.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The virtio-vsock device (see the module documentation).
#[derive(Debug)]
pub struct Vsock {
    guest_cid: u64,
    queue_events: Vec<EventFd>,
    kick: EventFd,
    backend: Arc<Mutex<Backend>>,
    sizes: [u16; 3],
}

impl Vsock {
    /// A vsock device giving the guest `guest_cid`, listening for host clients on `path`
    /// (a stale socket there is replaced), with the worker that must run on its own thread.
    pub fn new(
        guest_cid: u64,
        path: &Path,
        limits: Limits,
    ) -> Result<(Self, VsockWorker), VsockError> {
        let host = HostListener::bind(path)?;
        let event = || EventFd::new(EFD_NONBLOCK).map_err(VsockError::EventLoop);
        let queue_events = vec![event()?, event()?, event()?];
        let kick = event()?;
        let stop = event()?;
        let epoll = Arc::new(Epoll::new().map_err(VsockError::EventLoop)?);
        let watch = |fd, token| {
            epoll
                .ctl(
                    ControlOperation::Add,
                    fd,
                    EpollEvent::new(EventSet::IN, token),
                )
                .map_err(VsockError::EventLoop)
        };
        watch(queue_events[RXQ].as_raw_fd(), TOKEN_RXQ)?;
        watch(queue_events[TXQ].as_raw_fd(), TOKEN_TXQ)?;
        watch(queue_events[EVQ].as_raw_fd(), TOKEN_EVQ)?;
        watch(kick.as_raw_fd(), TOKEN_KICK)?;
        watch(stop.as_raw_fd(), TOKEN_STOP)?;
        watch(host.listener.as_raw_fd(), TOKEN_LISTENER)?;
        let clone = |e: &EventFd| e.try_clone().map_err(VsockError::EventLoop);
        let worker_events = [
            clone(&queue_events[RXQ])?,
            clone(&queue_events[TXQ])?,
            clone(&queue_events[EVQ])?,
            clone(&kick)?,
        ];
        let backend = Arc::new(Mutex::new(Backend {
            muxer: Muxer::new(guest_cid, limits, host, epoll.clone()),
            active: None,
            tx_paused: false,
        }));
        let worker = VsockWorker::new(backend.clone(), epoll, worker_events, stop);
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
        1 << VIRTIO_F_VERSION_1
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &self.sizes
    }

    fn queue_events(&self) -> &[EventFd] {
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
        _acked_features: u64,
    ) -> Result<(), ActivateError> {
        let got = queues.len();
        let [rx, tx, event]: [Queue; 3] = queues
            .try_into()
            .map_err(|_| ActivateError::QueueCount { expected: 3, got })?;
        lock(&self.backend).active = Some(Active {
            mem,
            rx,
            tx,
            _event: event,
            interrupt,
        });
        // Host clients may already be waiting: let the worker deliver their requests.
        self.kick.write(1).map_err(ActivateError::Wake)
    }

    fn reset(&mut self) {
        lock(&self.backend).reset();
    }
}
