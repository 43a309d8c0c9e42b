//! [`Engine`]: the queues of a live request–reply device, its backlog and its worker pool (see
//! the module documentation of [`super`]).

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, Weak};
use std::thread;

use lcow_base::Event;
use virtio_queue::{Queue, QueueT};
use vm_memory::GuestMemoryMmap;

use super::worker::{Dispatch, RequestWorker};
use super::{gather, scatter, PoolConfig, Protocol, RequestChain, Route};
use crate::virtio::{ActivateError, Interrupt, VIRTIO_RING_F_EVENT_IDX};

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

/// The queues of a live device.
#[derive(Debug)]
struct Live {
    mem: GuestMemoryMmap,
    queues: Vec<Mutex<Queue>>,
    interrupt: Arc<Interrupt>,
    /// Which activation these queues belong to; replies of older ones are dropped.
    generation: u64,
}

impl Live {
    /// Returns chain `head` of `queue` with `len` bytes written and interrupts if the driver
    /// wants it.
    fn used(&self, name: &'static str, queue: usize, head: u16, len: u32) {
        let Some(q) = self.queues.get(queue) else {
            return;
        };
        let mut q = lock(q);
        if let Err(e) = q.add_used(&self.mem, head, len) {
            tracing::debug!(device = name, queue, head, error = %e, "cannot return a chain");
            return;
        }
        if q.needs_notification(&self.mem).unwrap_or(true) {
            if let Err(e) = self.interrupt.signal_used_queue() {
                tracing::debug!(device = name, error = %e, "cannot raise the interrupt");
            }
        }
    }
}

/// A request waiting for, or being served by, a pool thread.
#[derive(Debug)]
struct Job {
    generation: u64,
    queue: usize,
    head: u16,
    key: Option<u64>,
    chain: RequestChain,
}

/// The backlog and the pool's bookkeeping.
#[derive(Debug, Default)]
struct Jobs {
    normal: VecDeque<Job>,
    urgent: VecDeque<(Job, Option<u64>)>,
    /// Workers (not the urgent thread) running.
    workers: usize,
    /// Workers waiting for a request.
    idle: usize,
    stopped: bool,
}

/// What the queue thread and the pool threads share.
#[derive(Debug)]
pub(super) struct Shared<P> {
    /// This very value, for the threads it starts.
    me: Weak<Shared<P>>,
    proto: P,
    pool: PoolConfig,
    max_request: usize,
    live: RwLock<Option<Live>>,
    jobs: Mutex<Jobs>,
    work: Condvar,
    urgent_work: Condvar,
}

impl<P: Protocol> Shared<P> {
    fn dispatch(&self, generation: u64, queue: usize, head: u16, chain: RequestChain) {
        let job = Job {
            generation,
            queue,
            head,
            key: self.proto.key(&chain.head),
            chain,
        };
        let route = self.proto.route(queue, &job.chain.head);
        let mut jobs = lock(&self.jobs);
        match route {
            Route::Urgent { cancels } => {
                jobs.urgent.push_back((job, cancels));
                self.urgent_work.notify_one();
            }
            Route::Normal => {
                jobs.normal.push_back(job);
                let grow = jobs.normal.len() > jobs.idle && jobs.workers < self.pool.max_workers;
                if grow {
                    jobs.workers += 1;
                }
                self.work.notify_one();
                drop(jobs);
                if grow {
                    tracing::debug!(device = P::NAME, "every worker busy; one more started");
                    if let Err(e) = self.spawn_worker() {
                        tracing::warn!(device = P::NAME, error = %e, "cannot start a worker");
                        lock(&self.jobs).workers -= 1;
                    }
                }
            }
        }
    }

    fn spawn_worker(&self) -> io::Result<()> {
        let shared = self
            .me
            .upgrade()
            .ok_or_else(|| io::Error::other("the device is gone"))?;
        thread::Builder::new()
            .name(format!("{}-worker", P::NAME))
            .spawn(move || shared.worker_loop())
            .map(drop)
    }

    fn worker_loop(&self) {
        let mut jobs = lock(&self.jobs);
        loop {
            if jobs.stopped {
                jobs.workers -= 1;
                return;
            }
            if let Some(job) = jobs.normal.pop_front() {
                drop(jobs);
                self.serve(&job);
                jobs = lock(&self.jobs);
                continue;
            }
            jobs.idle += 1;
            let (guard, timeout) = self
                .work
                .wait_timeout(jobs, self.pool.idle_timeout)
                .unwrap_or_else(PoisonError::into_inner);
            jobs = guard;
            jobs.idle -= 1;
            if timeout.timed_out() && jobs.normal.is_empty() && jobs.workers > self.pool.workers {
                jobs.workers -= 1;
                tracing::debug!(device = P::NAME, "idle extra worker ended");
                return;
            }
        }
    }

    fn urgent_loop(&self) {
        let mut jobs = lock(&self.jobs);
        loop {
            if jobs.stopped {
                return;
            }
            let Some((job, cancels)) = jobs.urgent.pop_front() else {
                jobs = self
                    .urgent_work
                    .wait(jobs)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            };
            let cancelled: VecDeque<Job> = match cancels {
                Some(key) => {
                    let (gone, kept): (VecDeque<Job>, VecDeque<Job>) =
                        std::mem::take(&mut jobs.normal)
                            .into_iter()
                            .partition(|j| j.key == Some(key) && j.generation == job.generation);
                    jobs.normal = kept;
                    gone
                }
                None => VecDeque::new(),
            };
            drop(jobs);
            for old in cancelled {
                tracing::debug!(device = P::NAME, key = old.key, "queued request cancelled");
                self.complete(&old, self.proto.cancelled_reply(&old.chain.head));
            }
            self.serve(&job);
            jobs = lock(&self.jobs);
        }
    }

    /// Copies the request out of guest memory, runs it through the protocol and completes its
    /// chain.
    fn serve(&self, job: &Job) {
        let request = {
            let live = read(&self.live);
            let Some(live) = live.as_ref().filter(|l| l.generation == job.generation) else {
                return; // reset since: nothing to answer into
            };
            match job.chain.read_request(&live.mem) {
                Some(request) => request,
                None => {
                    tracing::debug!(device = P::NAME, head = job.head, "cannot read a request");
                    live.used(P::NAME, job.queue, job.head, 0);
                    return;
                }
            }
        };
        let mut replied = false;
        self.proto
            .serve(&request, job.chain.capacity, &mut |reply| {
                if replied {
                    tracing::debug!(device = P::NAME, "second reply to one request dropped");
                    return;
                }
                replied = true;
                self.complete(job, Some(reply));
            });
        if !replied {
            self.complete(job, None);
        }
    }

    /// Writes `reply` into the job's chain and returns the chain to the driver.
    fn complete(&self, job: &Job, reply: Option<Vec<u8>>) {
        let live = read(&self.live);
        let Some(live) = live.as_ref().filter(|l| l.generation == job.generation) else {
            tracing::debug!(
                device = P::NAME,
                "reply to a request from before a reset dropped"
            );
            return;
        };
        let written = match reply {
            None => 0,
            Some(reply) => self.write_reply(live, job, &reply),
        };
        live.used(P::NAME, job.queue, job.head, written);
    }

    fn write_reply(&self, live: &Live, job: &Job, reply: &[u8]) -> u32 {
        let space = &job.chain.reply_space;
        if reply.len() <= job.chain.capacity {
            return scatter(&live.mem, space, reply).unwrap_or_else(|| {
                tracing::debug!(device = P::NAME, head = job.head, "cannot write a reply");
                0
            });
        }
        tracing::debug!(
            device = P::NAME,
            head = job.head,
            reply = reply.len(),
            capacity = job.chain.capacity,
            "reply larger than the chain's writable space"
        );
        match self.proto.overflow_reply(&job.chain.head) {
            Some(error) if error.len() <= job.chain.capacity => {
                scatter(&live.mem, space, &error).unwrap_or(0)
            }
            _ => 0,
        }
    }
}

impl<P: Protocol + std::fmt::Debug> Dispatch for Shared<P> {
    fn name(&self) -> &'static str {
        P::NAME
    }

    fn process_queue(&self, queue: usize) {
        let live = read(&self.live);
        let Some(live) = live.as_ref() else {
            return;
        };
        let Some(q) = live.queues.get(queue) else {
            return;
        };
        loop {
            if let Err(e) = lock(q).disable_notification(&live.mem) {
                tracing::debug!(device = P::NAME, queue, error = %e, "cannot mute the queue");
            }
            loop {
                let popped = {
                    let mut q = lock(q);
                    q.pop_descriptor_chain(&live.mem).map(|chain| {
                        let head = chain.head_index();
                        (head, gather(&live.mem, chain, self.max_request))
                    })
                };
                let Some((head, parsed)) = popped else {
                    break;
                };
                match parsed {
                    Ok(chain) => self.dispatch(live.generation, queue, head, chain),
                    Err(e) => {
                        tracing::debug!(device = P::NAME, queue, head, error = %e, "bad chain returned empty");
                        live.used(P::NAME, queue, head, 0);
                    }
                }
            }
            let more = lock(q).enable_notification(&live.mem).unwrap_or_else(|e| {
                tracing::debug!(device = P::NAME, queue, error = %e, "cannot unmute the queue");
                false
            });
            if !more {
                break;
            }
        }
    }

    fn start_pool(self: Arc<Self>) -> io::Result<()> {
        let urgent = Arc::clone(&self);
        thread::Builder::new()
            .name(format!("{}-urgent", P::NAME))
            .spawn(move || urgent.urgent_loop())?;
        for _ in 0..self.pool.workers {
            lock(&self.jobs).workers += 1;
            if let Err(e) = self.spawn_worker() {
                lock(&self.jobs).workers -= 1;
                return Err(e);
            }
        }
        Ok(())
    }

    fn stop(&self) {
        lock(&self.jobs).stopped = true;
        self.work.notify_all();
        self.urgent_work.notify_all();
    }
}

/// The device side of the machinery: the queue events, activation and reset.
#[derive(Debug)]
pub(crate) struct Engine<P> {
    shared: Arc<Shared<P>>,
    queue_events: Vec<Event>,
    kick: Event,
    sizes: Vec<u16>,
    generation: AtomicU64,
}

impl<P: Protocol + std::fmt::Debug> Engine<P> {
    /// An engine for `queues` queues serving `proto`, accepting requests of up to `max_request`
    /// bytes, and the queue thread's worker.
    pub(crate) fn new(
        proto: P,
        queues: usize,
        pool: PoolConfig,
        max_request: usize,
    ) -> io::Result<(Self, RequestWorker)> {
        let queue_events = (0..queues)
            .map(|_| Event::new())
            .collect::<io::Result<Vec<_>>>()?;
        let kick = Event::new()?;
        let shared = Arc::new_cyclic(|me| Shared {
            me: me.clone(),
            proto,
            pool: pool.normalized(),
            max_request,
            live: RwLock::new(None),
            jobs: Mutex::new(Jobs::default()),
            work: Condvar::new(),
            urgent_work: Condvar::new(),
        });
        let worker = RequestWorker::new(shared.clone(), &queue_events, &kick)?;
        Ok((
            Self {
                shared,
                queue_events,
                kick,
                sizes: vec![super::QUEUE_SIZE; queues],
                generation: AtomicU64::new(0),
            },
            worker,
        ))
    }

    /// The protocol.
    pub(crate) fn protocol(&self) -> &P {
        &self.shared.proto
    }

    /// The queue sizes.
    pub(crate) fn queue_max_sizes(&self) -> &[u16] {
        &self.sizes
    }

    /// The queue notification events.
    pub(crate) fn queue_events(&self) -> &[Event] {
        &self.queue_events
    }

    /// Starts serving `queues` (see [`crate::virtio::VirtioDevice::activate`]).
    pub(crate) fn activate(
        &self,
        mem: GuestMemoryMmap,
        queues: Vec<Queue>,
        interrupt: Arc<Interrupt>,
        acked_features: u64,
    ) -> Result<(), ActivateError> {
        if queues.len() != self.sizes.len() {
            return Err(ActivateError::QueueCount {
                expected: self.sizes.len(),
                got: queues.len(),
            });
        }
        let event_idx = acked_features & (1 << VIRTIO_RING_F_EVENT_IDX) != 0;
        let queues = queues
            .into_iter()
            .map(|mut q| {
                q.set_event_idx(event_idx);
                Mutex::new(q)
            })
            .collect();
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        *self
            .shared
            .live
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Live {
            mem,
            queues,
            interrupt,
            generation,
        });
        // The driver may have queued requests before DRIVER_OK.
        self.kick.signal().map_err(ActivateError::Wake)
    }

    /// Stops using the queues; afterwards no thread touches guest memory.
    pub(crate) fn reset(&self) {
        *self
            .shared
            .live
            .write()
            .unwrap_or_else(PoisonError::into_inner) = None;
        let mut jobs = lock(&self.shared.jobs);
        jobs.normal.clear();
        jobs.urgent.clear();
    }
}
