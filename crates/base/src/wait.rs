//! [`WaitContext`]: wait for any of several descriptors, told apart by the caller's tokens.

use std::io;
use std::marker::PhantomData;
use std::time::Duration;

use crate::sys::platform::PlatformWaitContext;
use crate::AsRawDescriptor;

/// What the caller names a descriptor by in a [`WaitContext`]; it comes back in each
/// [`TriggeredEvent`].
pub trait EventToken: Copy {
    /// The token as the 64 bits the operating system carries.
    fn as_raw_token(&self) -> u64;
    /// The token back from those bits (they came from [`EventToken::as_raw_token`]).
    fn from_raw_token(raw: u64) -> Self;
}

impl EventToken for u64 {
    fn as_raw_token(&self) -> u64 {
        *self
    }
    fn from_raw_token(raw: u64) -> Self {
        raw
    }
}

impl EventToken for u32 {
    fn as_raw_token(&self) -> u64 {
        u64::from(*self)
    }
    fn from_raw_token(raw: u64) -> Self {
        // Only our own `as_raw_token` values come back, and they fit.
        raw as u32
    }
}

/// What a descriptor is watched for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Registered, but reported only for errors and hang-ups (Linux) or never (Windows).
    None,
    /// Readable: data to read, a connection to accept, an [`crate::Event`] set; on Windows, an
    /// object signalled.
    Read,
    /// Writable (Linux only: Windows objects have no write readiness, and asking for it fails
    /// with [`io::ErrorKind::Unsupported`]).
    Write,
    /// Readable or writable (Linux only, as [`EventType::Write`]).
    ReadWrite,
}

impl EventType {
    pub(crate) fn readable(self) -> bool {
        matches!(self, EventType::Read | EventType::ReadWrite)
    }

    pub(crate) fn writable(self) -> bool {
        matches!(self, EventType::Write | EventType::ReadWrite)
    }
}

/// One ready descriptor, as [`WaitContext::wait`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TriggeredEvent<T> {
    /// The token it was registered with.
    pub token: T,
    /// It is readable (or signalled).
    pub is_readable: bool,
    /// It is writable.
    pub is_writable: bool,
    /// The peer hung up (Linux: `EPOLLHUP`/`EPOLLRDHUP`).
    pub is_hungup: bool,
    /// An error is pending on it (Linux: `EPOLLERR`).
    pub is_error: bool,
}

/// A ready descriptor as the platform reports it, before its token is typed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ready {
    pub(crate) token: u64,
    pub(crate) is_readable: bool,
    pub(crate) is_writable: bool,
    pub(crate) is_hungup: bool,
    pub(crate) is_error: bool,
}

/// A set of descriptors to wait on, level-triggered: a descriptor that stays ready is reported by
/// every wait until the caller consumes what made it ready (reads the data, clears the event).
///
/// Every method takes `&self`, so a context can be shared with the code that registers new
/// descriptors. Remove a descriptor ([`WaitContext::delete`]) before closing it.
///
/// Linux: epoll. Windows: `WaitForMultipleObjects`, at most
/// [`crate::windows::MAXIMUM_WAIT_OBJECTS`] (64) descriptors per context; a change made while
/// another thread waits takes effect at its next wait.
#[derive(Debug)]
pub struct WaitContext<T: EventToken> {
    inner: PlatformWaitContext,
    tokens: PhantomData<T>,
}

impl<T: EventToken> WaitContext<T> {
    /// An empty context.
    pub fn new() -> io::Result<WaitContext<T>> {
        Ok(WaitContext {
            inner: PlatformWaitContext::new()?,
            tokens: PhantomData,
        })
    }

    /// Watches `descriptor` for readability, reported as `token`.
    pub fn add(&self, descriptor: &dyn AsRawDescriptor, token: T) -> io::Result<()> {
        self.add_for(descriptor, EventType::Read, token)
    }

    /// Watches `descriptor` for `events`, reported as `token`. Adding a descriptor twice fails.
    pub fn add_for(
        &self,
        descriptor: &dyn AsRawDescriptor,
        events: EventType,
        token: T,
    ) -> io::Result<()> {
        self.inner
            .add(descriptor.as_raw_descriptor(), events, token.as_raw_token())
    }

    /// Changes what a watched `descriptor` is watched for and its token.
    pub fn modify(
        &self,
        descriptor: &dyn AsRawDescriptor,
        events: EventType,
        token: T,
    ) -> io::Result<()> {
        self.inner
            .modify(descriptor.as_raw_descriptor(), events, token.as_raw_token())
    }

    /// Stops watching `descriptor`.
    pub fn delete(&self, descriptor: &dyn AsRawDescriptor) -> io::Result<()> {
        self.inner.delete(descriptor.as_raw_descriptor())
    }

    /// Blocks until at least one watched descriptor is ready; returns the ready ones (at most
    /// `max` of them, and at most 64 on any host; the rest are reported by the next wait).
    pub fn wait(&self, max: usize) -> io::Result<Vec<TriggeredEvent<T>>> {
        self.wait_inner(None, max)
    }

    /// As [`WaitContext::wait`], but returns an empty list once `timeout` passes.
    pub fn wait_timeout(
        &self,
        timeout: Duration,
        max: usize,
    ) -> io::Result<Vec<TriggeredEvent<T>>> {
        self.wait_inner(Some(timeout), max)
    }

    fn wait_inner(
        &self,
        timeout: Option<Duration>,
        max: usize,
    ) -> io::Result<Vec<TriggeredEvent<T>>> {
        let ready = self.inner.wait(timeout, max.max(1))?;
        Ok(ready
            .into_iter()
            .map(|e| TriggeredEvent {
                token: T::from_raw_token(e.token),
                is_readable: e.is_readable,
                is_writable: e.is_writable,
                is_hungup: e.is_hungup,
                is_error: e.is_error,
            })
            .collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Event;

    const SHORT: Duration = Duration::from_millis(20);

    fn tokens(events: &[TriggeredEvent<u32>]) -> Vec<u32> {
        let mut t: Vec<u32> = events.iter().map(|e| e.token).collect();
        t.sort_unstable();
        t
    }

    #[test]
    fn test_wait_context_nothing_set_times_out_empty() {
        let ctx = WaitContext::<u32>::new().unwrap();
        let event = Event::new().unwrap();
        ctx.add(&event, 1).unwrap();
        assert!(ctx.wait_timeout(SHORT, 8).unwrap().is_empty());
    }

    #[test]
    fn test_wait_context_reports_every_set_event_by_token() {
        let ctx = WaitContext::<u32>::new().unwrap();
        let events: Vec<Event> = (0..5).map(|_| Event::new().unwrap()).collect();
        for (i, e) in events.iter().enumerate() {
            ctx.add(e, 10 + i as u32).unwrap();
        }
        events[1].signal().unwrap();
        events[4].signal().unwrap();
        let ready = ctx.wait(8).unwrap();
        assert_eq!(tokens(&ready), vec![11, 14]);
        assert!(ready.iter().all(|e| e.is_readable && !e.is_writable));
    }

    #[test]
    fn test_wait_context_level_triggered_until_cleared() {
        let ctx = WaitContext::<u32>::new().unwrap();
        let event = Event::new().unwrap();
        ctx.add(&event, 7).unwrap();
        event.signal().unwrap();
        assert_eq!(tokens(&ctx.wait(8).unwrap()), vec![7]);
        assert_eq!(
            tokens(&ctx.wait(8).unwrap()),
            vec![7],
            "still set: reported again"
        );
        assert!(event.reset().unwrap());
        assert!(ctx.wait_timeout(SHORT, 8).unwrap().is_empty());
    }

    #[test]
    fn test_wait_context_max_limits_one_wait() {
        let ctx = WaitContext::<u32>::new().unwrap();
        let events: Vec<Event> = (0..3).map(|_| Event::new().unwrap()).collect();
        for (i, e) in events.iter().enumerate() {
            ctx.add(e, i as u32).unwrap();
            e.signal().unwrap();
        }
        assert_eq!(ctx.wait(2).unwrap().len(), 2);
    }

    #[test]
    fn test_wait_context_delete_stops_reports() {
        let ctx = WaitContext::<u32>::new().unwrap();
        let a = Event::new().unwrap();
        let b = Event::new().unwrap();
        ctx.add(&a, 1).unwrap();
        ctx.add(&b, 2).unwrap();
        a.signal().unwrap();
        b.signal().unwrap();
        ctx.delete(&a).unwrap();
        assert_eq!(tokens(&ctx.wait(8).unwrap()), vec![2]);
    }

    #[test]
    fn test_wait_context_modify_none_then_read_and_new_token() {
        let ctx = WaitContext::<u32>::new().unwrap();
        let event = Event::new().unwrap();
        ctx.add(&event, 1).unwrap();
        event.signal().unwrap();
        ctx.modify(&event, EventType::None, 1).unwrap();
        assert!(ctx.wait_timeout(SHORT, 8).unwrap().is_empty());
        ctx.modify(&event, EventType::Read, 9).unwrap();
        assert_eq!(tokens(&ctx.wait(8).unwrap()), vec![9]);
    }

    #[test]
    fn test_wait_context_add_twice_fails() {
        let ctx = WaitContext::<u32>::new().unwrap();
        let event = Event::new().unwrap();
        ctx.add(&event, 1).unwrap();
        assert!(ctx.add(&event, 2).is_err());
    }

    #[test]
    fn test_wait_context_delete_unknown_fails() {
        let ctx = WaitContext::<u32>::new().unwrap();
        let event = Event::new().unwrap();
        assert!(ctx.delete(&event).is_err());
        assert!(ctx.modify(&event, EventType::Read, 1).is_err());
    }
}
