//! [`RequestWorker`]: the queue thread of a request–reply device. One [`WaitContext`] watches the
//! queue notification events, a kick (the device was activated) and a stop event; each
//! notified queue is drained into the worker pool.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use lcow_base::{Event, WaitContext};

const TOKEN_STOP: u64 = 0;
const TOKEN_KICK: u64 = 1;
/// What [`RequestWorker`] needs of the engine's shared state, whatever its protocol.
pub(super) trait Dispatch: Send + Sync + std::fmt::Debug {
    /// The device's name.
    fn name(&self) -> &'static str;
    /// Pops, parses and dispatches every available chain of `queue`.
    fn process_queue(&self, queue: usize);
    /// Starts the pool's permanent threads.
    fn start_pool(self: Arc<Self>) -> io::Result<()>;
    /// Tells every pool thread to end.
    fn stop(&self);
}

/// Token of queue 0's event; queue `i` has `TOKEN_QUEUE + i`.
const TOKEN_QUEUE: u64 = 2;

/// A request–reply device's queue thread (see [`super`]). [`RequestWorker::run`] it on a
/// thread of its own and end it with a [`RequestStopper`].
#[derive(Debug)]
pub struct RequestWorker {
    shared: Arc<dyn Dispatch>,
    wait: WaitContext<u64>,
    /// The queue events, then the kick.
    events: Vec<Event>,
    stop: Event,
}

/// Ends a [`RequestWorker`] from another thread.
#[derive(Debug)]
pub struct RequestStopper {
    stop: Event,
}

impl RequestStopper {
    /// Asks the worker to stop; it returns from [`RequestWorker::run`] at its next wake-up,
    /// which this causes.
    pub fn stop(&self) -> io::Result<()> {
        self.stop.signal()
    }
}

impl RequestWorker {
    pub(super) fn new(
        shared: Arc<dyn Dispatch>,
        queue_events: &[Event],
        kick: &Event,
    ) -> io::Result<Self> {
        let wait = WaitContext::new()?;
        let stop = Event::new()?;
        let mut events = queue_events
            .iter()
            .map(Event::try_clone)
            .collect::<io::Result<Vec<_>>>()?;
        events.push(kick.try_clone()?);
        wait.add(&stop, TOKEN_STOP)?;
        wait.add(kick, TOKEN_KICK)?;
        for (i, event) in queue_events.iter().enumerate() {
            wait.add(event, TOKEN_QUEUE + i as u64)?;
        }
        Ok(Self {
            shared,
            wait,
            events,
            stop,
        })
    }

    /// A handle that stops this worker.
    pub fn stopper(&self) -> io::Result<RequestStopper> {
        Ok(RequestStopper {
            stop: self.stop.try_clone()?,
        })
    }

    /// Starts the worker pool, then serves the queues until stopped. Failing to start the pool
    /// or a wait failure ends it (logged): the device then stops serving, the VM goes on.
    pub fn run(self) {
        let name = self.shared.name();
        if let Err(e) = Arc::clone(&self.shared).start_pool() {
            tracing::error!(device = name, error = %e, "cannot start the worker pool; device is down");
            self.shared.stop();
            return;
        }
        tracing::debug!(device = name, "queue thread started");
        loop {
            match self.run_once(None) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    tracing::error!(device = name, error = %e, "queue event loop failed; device is down");
                    break;
                }
            }
        }
        self.shared.stop();
        tracing::debug!(device = name, "queue thread stopped");
    }

    /// One pass: waits at most `timeout` (`None`: until an event) and drains every notified
    /// queue into the pool. Returns `false` once stopped.
    pub fn run_once(&self, timeout: Option<Duration>) -> io::Result<bool> {
        let ready = match timeout {
            None => self.wait.wait(16)?,
            Some(t) => self.wait.wait_timeout(t, 16)?,
        };
        let queues = self.events.len() - 1;
        for event in &ready {
            match event.token {
                TOKEN_STOP => return Ok(false),
                TOKEN_KICK => {
                    if let Some(kick) = self.events.last() {
                        kick.reset()?;
                    }
                    for queue in 0..queues {
                        self.shared.process_queue(queue);
                    }
                }
                token => {
                    let queue = (token - TOKEN_QUEUE) as usize;
                    if let Some(event) = self.events.get(queue) {
                        // Cleared first: a notification during the drain is not lost.
                        event.reset()?;
                        self.shared.process_queue(queue);
                    }
                }
            }
        }
        Ok(true)
    }
}
