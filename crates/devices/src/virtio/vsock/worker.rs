//! [`VsockWorker`]: the vsock device's event loop, run on its own thread (`vsock`).
//!
//! One [`WaitContext`] watches the three queue notification events, a kick event (the device
//! was activated), the listening socket, every host stream and the stop event. Each
//! pass waits (no longer than the muxer's next deadline), handles the events with the backend
//! locked, ends what timed out, then processes the queues: guest packets first, then the packets
//! owed to the guest, as long as there are rx buffers for them.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lcow_base::{Event, WaitContext};

use super::backend::{lock, Backend};

/// Token of the stop event.
pub(super) const TOKEN_STOP: u64 = 0;
/// Token of the rx queue's notification event.
pub(super) const TOKEN_RXQ: u64 = 1;
/// Token of the tx queue's notification event.
pub(super) const TOKEN_TXQ: u64 = 2;
/// Token of the event queue's notification event.
pub(super) const TOKEN_EVQ: u64 = 3;
/// Token of the activation kick.
pub(super) const TOKEN_KICK: u64 = 4;

/// Events handled per wait.
const EVENT_BATCH: usize = 64;

/// The device's event loop (see the module documentation). [`VsockWorker::run`] it on a thread
/// and end it with a [`VsockStopper`].
#[derive(Debug)]
pub struct VsockWorker {
    backend: Arc<Mutex<Backend>>,
    wait: Arc<WaitContext<u64>>,
    /// rx, tx and event queue notifications, then the kick.
    events: [Event; 4],
    stop: Event,
}

/// Ends a [`VsockWorker`]'s loop from another thread.
#[derive(Debug)]
pub struct VsockStopper {
    stop: Event,
}

impl VsockStopper {
    /// Asks the worker to stop; it returns from [`VsockWorker::run`] at its next wake-up, which
    /// this causes.
    pub fn stop(&self) -> io::Result<()> {
        self.stop.signal()
    }
}

impl VsockWorker {
    pub(super) fn new(
        backend: Arc<Mutex<Backend>>,
        wait: Arc<WaitContext<u64>>,
        events: [Event; 4],
        stop: Event,
    ) -> Self {
        Self {
            backend,
            wait,
            events,
            stop,
        }
    }

    /// A handle that stops this worker.
    pub fn stopper(&self) -> io::Result<VsockStopper> {
        Ok(VsockStopper {
            stop: self.stop.try_clone()?,
        })
    }

    /// Runs the loop until stopped. A wait failure ends it too (logged): the device then
    /// stops serving, the VM goes on.
    pub fn run(self) {
        tracing::debug!("vsock worker started");
        loop {
            match self.run_once(None) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    tracing::error!(error = %e, "vsock event loop failed; vsock is down");
                    break;
                }
            }
        }
        tracing::debug!("vsock worker stopped");
    }

    /// One pass of the loop, waiting at most `timeout` (`None`: until an event or the next
    /// deadline). Returns `false` once stopped.
    pub fn run_once(&self, timeout: Option<Duration>) -> io::Result<bool> {
        let deadline = lock(&self.backend).muxer.next_deadline();
        let now = Instant::now();
        let until_deadline = deadline.map(|d| d.saturating_duration_since(now));
        let wait = match (timeout, until_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // The wait rounds up, so a deadline is never polled for just before it passes.
        let events = match wait {
            None => self.wait.wait(EVENT_BATCH)?,
            Some(d) => self.wait.wait_timeout(d, EVENT_BATCH)?,
        };
        let now = Instant::now();
        let mut backend = lock(&self.backend);
        for event in &events {
            match event.token {
                TOKEN_STOP => return Ok(false),
                token @ TOKEN_RXQ..=TOKEN_KICK => {
                    // Cleared; the queues are processed below whatever woke us.
                    let index = (token - TOKEN_RXQ) as usize;
                    if let Some(e) = self.events.get(index) {
                        e.reset()?;
                    }
                }
                token if backend.muxer.is_listener_token(token) => backend.muxer.accept(token, now),
                token => backend.muxer.host_event(token, event, now),
            }
        }
        backend.muxer.sweep(now);
        backend.process_queues(now);
        Ok(true)
    }
}
