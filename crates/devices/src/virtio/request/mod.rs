//! The machinery shared by the request–reply devices, virtio-9p ([`super::p9`]), virtio-fs
//! ([`super::fs`]) and virtio-blk ([`super::block`]): each descriptor chain carries one request in its device-readable part and
//! gets its reply in its device-writable part.
//!
//! # Threads
//!
//! One queue thread ([`RequestWorker`], run by the VMM on a thread of its own) waits on the
//! queues' notification eventfds, pops every available chain, checks its descriptors against
//! guest memory (the `chain` module) and hands it to a pool of workers; it never runs a request
//! itself, so a request that blocks (a 9P Tlock or FUSE SETLKW waiting for a conflicting lock)
//! never holds up the queue. The pool ([`PoolConfig`]):
//!
//! - `workers` threads (4 by default) serve ordinary requests in arrival order. While every
//!   worker is busy and requests wait, the pool grows, one thread per waiting request, up to
//!   `max_workers` (16); a thread beyond `workers` that idles for `idle_timeout` ends. So up to
//!   `max_workers - 1` requests may block at once without stalling the rest; beyond that, new
//!   requests wait until one is answered (a lock granted, or flushed).
//! - One urgent thread serves what must never wait behind blocked requests: 9P Tflush, and on
//!   virtio-fs the high-priority queue (FORGET, BATCH_FORGET) and INTERRUPT. An urgent request
//!   that cancels another (Tflush's `oldtag`, INTERRUPT's `unique`) first takes that request
//!   out of the pool's backlog if it has not started, answering it as cancelled (9P Rlerror
//!   `EINTR`, FUSE `-EINTR`), so the cancelled request's reply always precedes the cancel's.
//!
//! Only a request's first [`HEAD_BYTES`] bytes are copied when its chain is popped (to route
//! it: Tflush, INTERRUPT); the pool thread that serves it copies the whole request out just
//! before handing it to the handler. So requests waiting for a thread cost the host their
//! descriptor lists (at most [`MAX_DESCRIPTORS`] entries each), not their bytes, however many
//! large requests a guest posts from the same buffer; requests being served hold at most one
//! copy each (a bounded number: one per pool thread).
//!
//! # Completions
//!
//! A worker writes the reply into the chain's writable buffers, puts the chain in the used ring
//! (under the queue's mutex) and raises the interrupt, honouring `VIRTIO_RING_F_EVENT_IDX` when
//! the driver accepted it (the queue thread re-enables notifications with the avail event and
//! looks again before it sleeps, so no notification is lost). Every chain is returned: a chain
//! that does not parse ([`ChainError`]: no descriptor, no request, a readable descriptor after a
//! writable one, a buffer outside guest memory, a request over the device's limit) is logged at
//! `debug` and returned with 0 bytes written, as is a request the handler does not answer. A
//! reply larger than the writable space is replaced by the protocol's error reply when that
//! fits, else the chain is returned with 0 bytes.
//!
//! # Reset
//!
//! A device reset drops the queues and the backlog under a write lock that every completion
//! takes for reading, so once [`super::VirtioDevice::reset`] returns no worker touches guest
//! memory. Requests still running then (a blocked lock) are answered into nothing when they
//! end: their replies are dropped. Stopping the worker ends the queue thread; pool threads
//! end after their current request (a thread blocked in a request is not waited for).

mod chain;
mod engine;
mod worker;

use std::time::Duration;

pub use chain::ChainError;
pub(crate) use chain::{gather, scatter, RequestChain};
pub use chain::{HEAD_BYTES, MAX_DESCRIPTORS};
pub(crate) use engine::Engine;
pub use worker::{RequestStopper, RequestWorker};

/// The size of each queue of a request–reply device.
pub const QUEUE_SIZE: u16 = 256;

/// The sizes of a device's worker pool (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Worker threads always running (at least 1).
    pub workers: usize,
    /// The most worker threads while requests block (at least `workers`).
    pub max_workers: usize,
    /// How long a thread beyond `workers` idles before it ends.
    pub idle_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            workers: 4,
            max_workers: 16,
            idle_timeout: Duration::from_secs(10),
        }
    }
}

impl PoolConfig {
    /// The same pool with the counts made consistent (`1 <= workers <= max_workers`).
    pub(crate) fn normalized(self) -> Self {
        let workers = self.workers.max(1);
        Self {
            workers,
            max_workers: self.max_workers.max(workers),
            idle_timeout: self.idle_timeout,
        }
    }
}

/// Which pool thread serves a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// An ordinary request: the workers, in arrival order.
    Normal,
    /// The urgent thread; `cancels` names the key of a request it cancels.
    Urgent {
        /// The [`Protocol::key`] of the cancelled request.
        cancels: Option<u64>,
    },
}

/// What a request–reply device's protocol tells the machinery.
pub(crate) trait Protocol: Send + Sync + 'static {
    /// The device's name in logs and thread names.
    const NAME: &'static str;

    /// Serves one request whose chain can take a reply of `capacity` bytes, handing its reply
    /// to `send` (at most once; not at all when the request gets no reply).
    fn serve(&self, request: &[u8], capacity: usize, send: &mut dyn FnMut(Vec<u8>));

    /// Which thread serves a request that arrived on `queue`.
    fn route(&self, queue: usize, request: &[u8]) -> Route;

    /// The key a cancel names the request by (9P tag, FUSE unique).
    fn key(&self, request: &[u8]) -> Option<u64>;

    /// The reply to a request cancelled before it ran (`None`: no reply).
    fn cancelled_reply(&self, request: &[u8]) -> Option<Vec<u8>>;

    /// The reply sent instead of one too large for the chain (`None`: return it empty).
    fn overflow_reply(&self, request: &[u8]) -> Option<Vec<u8>>;
}

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
