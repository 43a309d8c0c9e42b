//! The [`Backend`] the vsock device shares with its worker thread: the muxer and, while the
//! driver has the device live, the queues. Its own module, so the device (`device.rs`) and the
//! worker (`worker.rs`) both use it without importing each other.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use virtio_queue::{Queue, QueueOwnedT, QueueT};
use virtio_vsock::packet::VsockPacket;
use vm_memory::GuestMemoryMmap;

use super::muxer::Muxer;
use super::packet::{Header, HEADER_SIZE};
use super::MAX_PKT_DATA;
use crate::virtio::Interrupt;

/// The queue indices.
pub(super) const RXQ: usize = 0;
/// The tx queue.
pub(super) const TXQ: usize = 1;
/// The event queue.
pub(super) const EVQ: usize = 2;

/// The queues of a live device.
#[derive(Debug)]
pub(super) struct Active {
    pub(super) mem: GuestMemoryMmap,
    pub(super) rx: Queue,
    pub(super) tx: Queue,
    /// Transport events (live migration) are never sent; the queue is only held.
    pub(super) _event: Queue,
    pub(super) interrupt: Arc<Interrupt>,
}

impl Active {
    fn used(queue: &mut Queue, mem: &GuestMemoryMmap, head: u16, len: u32) {
        if let Err(e) = queue.add_used(mem, head, len) {
            tracing::debug!(head, error = %e, "cannot return a vsock buffer");
        }
    }

    /// Asks the guest to notify again when it adds buffers; whether it added some meanwhile.
    fn unmute(queue: &mut Queue, mem: &GuestMemoryMmap, name: &'static str) -> bool {
        queue.enable_notification(mem).unwrap_or_else(|e| {
            tracing::debug!(queue = name, error = %e, "cannot unmute a vsock queue");
            false
        })
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
    /// A backend around `muxer`, with no live queues yet.
    pub(super) fn new(muxer: Muxer) -> Self {
        Self {
            muxer,
            active: None,
            tx_paused: false,
        }
    }

    /// The driver made the device live with these queues.
    pub(super) fn activate(&mut self, active: Active) {
        self.active = Some(active);
    }

    /// Handles what the guest queued and delivers what it is owed, until neither can progress.
    pub(super) fn process_queues(&mut self, now: Instant) {
        loop {
            self.process_tx(now);
            self.process_rx(now);
            if !self.tx_paused || self.muxer.tx_should_pause() {
                break;
            }
        }
        if tracing::enabled!(tracing::Level::TRACE) {
            self.trace_queues();
        }
    }

    /// The rings' positions after a pass, for diagnosing a stream that stopped moving: what the
    /// guest offered (`*_avail`) against what we took (`*_next`), on both queues.
    fn trace_queues(&self) {
        let Some(active) = self.active.as_ref() else {
            return;
        };
        let avail = |q: &Queue| {
            q.avail_idx(&active.mem, Ordering::Acquire)
                .map_or(-1, |i| i32::from(i.0))
        };
        tracing::trace!(
            tx_avail = avail(&active.tx),
            tx_next = active.tx.next_avail(),
            rx_avail = avail(&active.rx),
            rx_next = active.rx.next_avail(),
            tx_paused = self.tx_paused,
            pending_rx = self.muxer.has_pending_rx(),
            interrupt_status = active.interrupt.status(),
            "vsock queues"
        );
    }

    /// Takes the guest's packets until the ring is empty (or the `RST`s owed make us pause).
    /// The guest is asked not to notify while we drain the ring, and to notify again once it is
    /// empty: without that, every small write in the guest costs a VM exit (a terminal
    /// streaming line by line sends hundreds of thousands of 17-byte packets).
    fn process_tx(&mut self, now: Instant) {
        self.tx_paused = false;
        let Some(active) = self.active.as_mut() else {
            return;
        };
        let mut used = false;
        'ring: loop {
            if let Err(e) = active.tx.disable_notification(&active.mem) {
                tracing::debug!(error = %e, "cannot mute the vsock tx queue");
            }
            loop {
                if self.muxer.tx_should_pause() {
                    // Resumed by a later pass (the guest's rx buffers take the RSTs); no
                    // notification is needed meanwhile.
                    self.tx_paused = true;
                    break 'ring;
                }
                let Some(mut chain) = active.tx.pop_descriptor_chain(&active.mem) else {
                    break;
                };
                let head = chain.head_index();
                match VsockPacket::from_tx_virtq_chain(&active.mem, &mut chain, MAX_PKT_DATA) {
                    Ok(pkt) => self
                        .muxer
                        .send_pkt(&Header::of(&pkt), pkt.data_slice(), now),
                    Err(e) => {
                        tracing::debug!(head, error = %e, "malformed vsock tx packet dropped")
                    }
                }
                Active::used(&mut active.tx, &active.mem, head, 0);
                used = true;
            }
            if !Active::unmute(&mut active.tx, &active.mem, "tx") {
                break;
            }
        }
        if used {
            Active::notify(&mut active.tx, &active.mem, &active.interrupt);
        }
    }

    /// Delivers what the guest is owed while it has rx buffers for it. The guest is asked to
    /// notify when it adds buffers, so a delivery that ran out of them resumes then.
    fn process_rx(&mut self, now: Instant) {
        let Some(active) = self.active.as_mut() else {
            return;
        };
        let mut used = false;
        loop {
            let mut out_of_buffers = false;
            while self.muxer.has_pending_rx() {
                let Some(mut chain) = active.rx.pop_descriptor_chain(&active.mem) else {
                    out_of_buffers = true;
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
            // Buffers the guest added while we found none are taken now, not at its next
            // notification (which it may already have decided not to send).
            let more = Active::unmute(&mut active.rx, &active.mem, "rx");
            if !(more && out_of_buffers && self.muxer.has_pending_rx()) {
                break;
            }
        }
        if used {
            Active::notify(&mut active.rx, &active.mem, &active.interrupt);
        }
    }

    /// The next available index of the tx and rx queues (the unix-socket tests).
    #[cfg(all(test, target_os = "linux"))]
    pub(super) fn ring_positions(&self) -> Option<(u16, u16)> {
        self.active
            .as_ref()
            .map(|a| (a.tx.next_avail(), a.rx.next_avail()))
    }

    pub(super) fn reset(&mut self) {
        self.active = None;
        self.tx_paused = false;
        self.muxer.reset();
    }
}

pub(super) fn lock(backend: &Mutex<Backend>) -> MutexGuard<'_, Backend> {
    backend.lock().unwrap_or_else(PoisonError::into_inner)
}
