//! [`RequestWorker`]: the queue thread of a request–reply device. One epoll instance watches the
//! queue notification eventfds, a kick (the device was activated) and a stop eventfd; each
//! notified queue is drained into the worker pool.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

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

/// Token of queue 0's eventfd; queue `i` has `TOKEN_QUEUE + i`.
const TOKEN_QUEUE: u64 = 2;

/// A request–reply device's queue thread (see [`super`]). [`RequestWorker::run`] it on a
/// thread of its own and end it with a [`RequestStopper`].
#[derive(Debug)]
pub struct RequestWorker {
    shared: Arc<dyn Dispatch>,
    epoll: Epoll,
    /// The queue eventfds, then the kick.
    events: Vec<EventFd>,
    stop: EventFd,
}

/// Ends a [`RequestWorker`] from another thread.
#[derive(Debug)]
pub struct RequestStopper {
    stop: EventFd,
}

impl RequestStopper {
    /// Asks the worker to stop; it returns from [`RequestWorker::run`] at its next wake-up,
    /// which this causes.
    pub fn stop(&self) -> io::Result<()> {
        self.stop.write(1)
    }
}

impl RequestWorker {
    pub(super) fn new(
        shared: Arc<dyn Dispatch>,
        queue_events: &[EventFd],
        kick: &EventFd,
    ) -> io::Result<Self> {
        let epoll = Epoll::new()?;
        let stop = EventFd::new(EFD_NONBLOCK)?;
        let mut events = queue_events
            .iter()
            .map(EventFd::try_clone)
            .collect::<io::Result<Vec<_>>>()?;
        events.push(kick.try_clone()?);
        let watch = |fd: &EventFd, token| {
            epoll.ctl(
                ControlOperation::Add,
                fd.as_raw_fd(),
                EpollEvent::new(EventSet::IN, token),
            )
        };
        watch(&stop, TOKEN_STOP)?;
        watch(kick, TOKEN_KICK)?;
        for (i, event) in queue_events.iter().enumerate() {
            watch(event, TOKEN_QUEUE + i as u64)?;
        }
        Ok(Self {
            shared,
            epoll,
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
    /// or an epoll failure ends it (logged): the device then stops serving, the VM goes on.
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
        let wait_ms = timeout.map_or(-1, |d| i32::try_from(d.as_millis()).unwrap_or(i32::MAX));
        let mut ready = [EpollEvent::default(); 16];
        let count = match self.epoll.wait(wait_ms, &mut ready) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(e),
        };
        let queues = self.events.len() - 1;
        for event in &ready[..count] {
            match event.data() {
                TOKEN_STOP => return Ok(false),
                TOKEN_KICK => {
                    if let Some(kick) = self.events.last() {
                        let _ = kick.read();
                    }
                    for queue in 0..queues {
                        self.shared.process_queue(queue);
                    }
                }
                token => {
                    let queue = (token - TOKEN_QUEUE) as usize;
                    if let Some(event) = self.events.get(queue) {
                        // A counter; the queue is drained whatever its value.
                        let _ = event.read();
                        self.shared.process_queue(queue);
                    }
                }
            }
        }
        Ok(true)
    }
}
