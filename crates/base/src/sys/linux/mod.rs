//! Linux: eventfd, timerfd, epoll, file descriptors.

mod event;
mod timer;
mod wait;

use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

pub use event::EventExt;
pub(crate) use event::PlatformEvent;
pub(crate) use timer::PlatformTimer;
pub(crate) use wait::PlatformWaitContext;

use crate::AsRawDescriptor;

/// A file descriptor.
pub type RawDescriptor = RawFd;

impl<T: AsRawFd> AsRawDescriptor for T {
    fn as_raw_descriptor(&self) -> RawDescriptor {
        self.as_raw_fd()
    }
}

/// The milliseconds a poll or epoll wait takes until `deadline` (-1: none), rounded up so a
/// wait never ends before its deadline, and computed afresh after each interrupted wait.
fn wait_millis(deadline: Option<Instant>) -> i32 {
    match deadline {
        None => -1,
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            i32::try_from(left.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX)
        }
    }
}
