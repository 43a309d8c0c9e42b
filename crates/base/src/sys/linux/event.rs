//! [`crate::Event`] on Linux: a non-blocking eventfd; blocking waits poll it first.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use crate::{Event, EventWaitResult};

#[derive(Debug)]
pub(crate) struct PlatformEvent(EventFd);

impl PlatformEvent {
    pub(crate) fn new() -> io::Result<Self> {
        EventFd::new(EFD_NONBLOCK).map(PlatformEvent)
    }

    pub(crate) fn signal(&self) -> io::Result<()> {
        self.0.write(1)
    }

    pub(crate) fn reset(&self) -> io::Result<bool> {
        match self.0.read() {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Waits for the eventfd to be readable, then clears it; another reader may clear it first,
    /// and then the wait goes on (until `timeout` passes).
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> io::Result<EventWaitResult> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let wait_ms = super::wait_millis(deadline);
            let mut pfd = libc::pollfd {
                fd: self.0.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: `pfd` is one valid pollfd that lives across the call.
            let n = unsafe { libc::poll(&mut pfd, 1, wait_ms) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if n > 0 && self.reset()? {
                return Ok(EventWaitResult::Signaled);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(EventWaitResult::TimedOut);
            }
        }
    }

    pub(crate) fn try_clone(&self) -> io::Result<Self> {
        self.0.try_clone().map(PlatformEvent)
    }
}

/// The eventfd behind an [`Event`], for the Linux-only APIs that take one (KVM's irqfd and
/// ioeventfd through `kvm-ioctls`).
pub trait EventExt {
    /// The event's eventfd (non-blocking).
    fn eventfd(&self) -> &EventFd;
}

impl EventExt for Event {
    fn eventfd(&self) -> &EventFd {
        &self.0 .0
    }
}

impl AsRawFd for Event {
    fn as_raw_fd(&self) -> RawFd {
        self.0 .0.as_raw_fd()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn test_event_eventfd_is_the_event() {
        let event = Event::new().unwrap();
        event.eventfd().write(1).unwrap();
        assert!(event.reset().unwrap());
        assert_eq!(event.as_raw_fd(), event.eventfd().as_raw_fd());
    }
}
