//! Linux: eventfd, epoll, file descriptors.

mod event;
mod wait;

use std::os::fd::{AsRawFd, RawFd};

pub use event::EventExt;
pub(crate) use event::PlatformEvent;
pub(crate) use wait::PlatformWaitContext;

use crate::AsRawDescriptor;

/// A file descriptor.
pub type RawDescriptor = RawFd;

impl<T: AsRawFd> AsRawDescriptor for T {
    fn as_raw_descriptor(&self) -> RawDescriptor {
        self.as_raw_fd()
    }
}
