//! The event queue behind GetEvent: process exits and OOM kills, oldest first.
//!
//! Bounded: when the host stops reading, the oldest events are dropped (and counted) rather
//! than letting memory grow. Nothing essential is lost that way: a process's exit status is
//! also kept in the process table for WaitProcess.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

use lcow_protocol::agent::Event;

/// How many events the queue holds before it drops the oldest.
pub const EVENT_QUEUE_LEN: usize = 1024;

/// How often a blocked pop wakes to ask whether its caller is still there.
const CANCEL_POLL: Duration = Duration::from_millis(250);

/// A bounded FIFO of events with a blocking pop.
#[derive(Debug)]
pub struct EventQueue {
    inner: Mutex<Inner>,
    ready: Condvar,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Inner {
    events: VecDeque<Event>,
    dropped: u64,
}

impl Default for EventQueue {
    fn default() -> Self {
        Self::with_capacity(EVENT_QUEUE_LEN)
    }
}

impl EventQueue {
    /// A queue of at most `capacity` events (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            ready: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    /// Queues `event`, dropping the oldest one when the queue is full.
    pub fn push(&self, event: Event) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.events.len() >= self.capacity {
            inner.events.pop_front();
            inner.dropped += 1;
            tracing::warn!(
                dropped = inner.dropped,
                "event queue full: dropped the oldest event (is the host calling GetEvent?)"
            );
        }
        inner.events.push_back(event);
        drop(inner);
        self.ready.notify_one();
    }

    /// Takes the oldest event, blocking until there is one. Returns `None` as soon as
    /// `cancelled()` says the caller is gone (checked a few times a second), so an abandoned
    /// call does not swallow an event meant for the next caller.
    pub fn pop(&self, cancelled: &dyn Fn() -> bool) -> Option<Event> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if cancelled() {
                return None;
            }
            if let Some(event) = inner.events.pop_front() {
                return Some(event);
            }
            inner = self
                .ready
                .wait_timeout(inner, CANCEL_POLL)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// How many events are queued.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .events
            .len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    use lcow_protocol::agent::{Event, OomKilled};

    use super::*;

    fn oom(id: &str) -> Event {
        let mut e = Event::new();
        e.set_oom(OomKilled {
            container_id: id.to_owned(),
            ..Default::default()
        });
        e
    }

    fn id_of(e: &Event) -> String {
        e.oom().container_id.clone()
    }

    #[test]
    fn test_event_queue_pop_blocks_until_push() {
        // Arrange
        let q = Arc::new(EventQueue::default());
        let q2 = Arc::clone(&q);
        let start = Instant::now();
        let pusher = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            q2.push(oom("late"));
        });
        // Act
        let got = q.pop(&|| false).unwrap();
        // Assert
        assert_eq!(id_of(&got), "late");
        assert!(start.elapsed() >= Duration::from_millis(90));
        pusher.join().unwrap();
    }

    #[test]
    fn test_event_queue_is_fifo() {
        let q = EventQueue::default();
        q.push(oom("a"));
        q.push(oom("b"));
        assert_eq!(id_of(&q.pop(&|| false).unwrap()), "a");
        assert_eq!(id_of(&q.pop(&|| false).unwrap()), "b");
    }

    #[test]
    fn test_event_queue_full_drops_oldest() {
        let q = EventQueue::with_capacity(3);
        for id in ["a", "b", "c", "d"] {
            q.push(oom(id));
        }
        assert_eq!(q.len(), 3);
        let ids: Vec<_> = (0..3).map(|_| id_of(&q.pop(&|| false).unwrap())).collect();
        assert_eq!(ids, ["b", "c", "d"]);
    }

    #[test]
    fn test_event_queue_pop_cancelled_returns_none_and_keeps_events() {
        let q = EventQueue::default();
        let gone = Arc::new(AtomicBool::new(false));
        let gone2 = Arc::clone(&gone);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            gone2.store(true, Ordering::SeqCst);
        });
        assert!(q.pop(&|| gone.load(Ordering::SeqCst)).is_none());
        t.join().unwrap();
        q.push(oom("kept"));
        assert_eq!(id_of(&q.pop(&|| false).unwrap()), "kept");
    }
}
