//! [`crate::WaitContext`] on Linux: level-triggered epoll.

use std::io;
use std::time::{Duration, Instant};

use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};

use crate::wait::Ready;
use crate::{EventType, RawDescriptor};

/// The most ready descriptors one wait reports.
const MAX_EVENTS: usize = 64;

#[derive(Debug)]
pub(crate) struct PlatformWaitContext(Epoll);

fn event_set(events: EventType) -> EventSet {
    let mut set = EventSet::empty();
    if events.readable() {
        set |= EventSet::IN;
    }
    if events.writable() {
        set |= EventSet::OUT;
    }
    set
}

impl PlatformWaitContext {
    pub(crate) fn new() -> io::Result<Self> {
        Epoll::new().map(PlatformWaitContext)
    }

    fn ctl(
        &self,
        op: ControlOperation,
        fd: RawDescriptor,
        events: EventType,
        token: u64,
    ) -> io::Result<()> {
        self.0
            .ctl(op, fd, EpollEvent::new(event_set(events), token))
    }

    pub(crate) fn add(&self, fd: RawDescriptor, events: EventType, token: u64) -> io::Result<()> {
        self.ctl(ControlOperation::Add, fd, events, token)
    }

    pub(crate) fn modify(
        &self,
        fd: RawDescriptor,
        events: EventType,
        token: u64,
    ) -> io::Result<()> {
        self.ctl(ControlOperation::Modify, fd, events, token)
    }

    pub(crate) fn delete(&self, fd: RawDescriptor) -> io::Result<()> {
        self.ctl(ControlOperation::Delete, fd, EventType::None, 0)
    }

    pub(crate) fn wait(&self, timeout: Option<Duration>, max: usize) -> io::Result<Vec<Ready>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        // On the stack: the device loops wait once per notification. More ready descriptors
        // than fit are reported by the next wait (level-triggered).
        let mut buffer = [EpollEvent::default(); MAX_EVENTS];
        let events = &mut buffer[..max.min(MAX_EVENTS)];
        let n = loop {
            match self.0.wait(super::wait_millis(deadline), events) {
                Ok(n) => break n,
                // A signal (a vCPU kick, a debugger) is not a reason to fail the wait.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        Ok(events[..n]
            .iter()
            .map(|e| {
                let set = e.event_set();
                Ready {
                    token: e.data(),
                    is_readable: set.contains(EventSet::IN),
                    is_writable: set.contains(EventSet::OUT),
                    is_hungup: set.intersects(EventSet::HANG_UP | EventSet::READ_HANG_UP),
                    is_error: set.contains(EventSet::ERROR),
                }
            })
            .collect())
    }
}
