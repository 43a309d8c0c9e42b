//! [`Event`]: a signal one thread (or the hypervisor) raises and another waits for.

use std::io;
use std::time::Duration;

use crate::sys::platform::PlatformEvent;

/// A level-triggered signal: [`Event::signal`] sets it, and it stays set, however many times it
/// was signalled, until a waiter clears it ([`Event::wait`], [`Event::wait_timeout`],
/// [`Event::reset`]). A [`crate::WaitContext`] reports a set event as readable without clearing
/// it.
///
/// The usual consumer clears the event first and then does the work it stands for, so a signal
/// that arrives meanwhile is not lost.
///
/// Linux: an eventfd (so it can be a KVM irqfd or ioeventfd, [`crate::linux::EventExt`]).
/// Windows: a manual-reset event object (a WHP trigger or doorbell can signal it).
#[derive(Debug)]
pub struct Event(pub(crate) PlatformEvent);

/// What [`Event::wait_timeout`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventWaitResult {
    /// The event was set; it is clear now.
    Signaled,
    /// The timeout passed with the event clear.
    TimedOut,
}

impl Event {
    /// A new, clear event.
    pub fn new() -> io::Result<Event> {
        PlatformEvent::new().map(Event)
    }

    /// Sets the event, waking its waiters.
    pub fn signal(&self) -> io::Result<()> {
        self.0.signal()
    }

    /// Blocks until the event is set, then clears it.
    pub fn wait(&self) -> io::Result<()> {
        loop {
            if self.0.wait(None)? == EventWaitResult::Signaled {
                return Ok(());
            }
        }
    }

    /// Blocks until the event is set (then clears it) or `timeout` passes.
    pub fn wait_timeout(&self, timeout: Duration) -> io::Result<EventWaitResult> {
        self.0.wait(Some(timeout))
    }

    /// Clears the event without blocking; returns whether it was set.
    pub fn reset(&self) -> io::Result<bool> {
        self.0.reset()
    }

    /// A second handle to the same event: a signal through either is seen through both.
    pub fn try_clone(&self) -> io::Result<Event> {
        self.0.try_clone().map(Event)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::thread;
    use std::time::Instant;

    use super::*;

    #[test]
    fn test_event_new_is_clear() {
        let event = Event::new().unwrap();
        assert!(!event.reset().unwrap());
        assert_eq!(
            event.wait_timeout(Duration::from_millis(10)).unwrap(),
            EventWaitResult::TimedOut
        );
    }

    #[test]
    fn test_event_signals_coalesce_until_cleared() {
        let event = Event::new().unwrap();
        event.signal().unwrap();
        event.signal().unwrap();
        assert!(event.reset().unwrap());
        assert!(!event.reset().unwrap());
    }

    #[test]
    fn test_event_wait_timeout_signaled_clears() {
        let event = Event::new().unwrap();
        event.signal().unwrap();
        assert_eq!(
            event.wait_timeout(Duration::from_secs(5)).unwrap(),
            EventWaitResult::Signaled
        );
        assert!(!event.reset().unwrap());
    }

    #[test]
    fn test_event_wait_timeout_waits_about_the_timeout() {
        let event = Event::new().unwrap();
        let start = Instant::now();
        let result = event.wait_timeout(Duration::from_millis(50)).unwrap();
        assert_eq!(result, EventWaitResult::TimedOut);
        assert!(
            start.elapsed() >= Duration::from_millis(45),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn test_event_clone_shares_the_signal() {
        let event = Event::new().unwrap();
        let clone = event.try_clone().unwrap();
        clone.signal().unwrap();
        assert!(event.reset().unwrap());
        assert!(!clone.reset().unwrap());
    }

    #[test]
    fn test_event_signal_from_another_thread_wakes_wait() {
        let event = Event::new().unwrap();
        let signaller = event.try_clone().unwrap();
        let thread = thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            signaller.signal().unwrap();
        });
        event.wait().unwrap();
        thread.join().unwrap();
        assert!(!event.reset().unwrap());
    }
}
