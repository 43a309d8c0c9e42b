//! The host platform seam (docs/architecture.md, "Platform seam"; docs/windows.md): the few
//! operating-system objects the VMM and its devices wait on, with one API on every host, the way
//! crosvm's `base` crate serves Linux and Windows.
//!
//! - [`Event`]: a signal between threads (and to or from the hypervisor: KVM's irqfd and
//!   ioeventfd, WHP's triggers and doorbells). An eventfd on Linux, a manual-reset event object
//!   on Windows.
//! - [`Timer`]: a one-shot or periodic timer a [`WaitContext`] can watch. A timerfd on Linux, a
//!   manual-reset waitable timer on Windows.
//! - [`WaitContext`]: waits on several descriptors at once and says which are ready, by the
//!   caller's token. epoll on Linux, `WaitForMultipleObjects` on Windows.
//! - [`RawDescriptor`] / [`AsRawDescriptor`]: a file descriptor on Linux, a `HANDLE` on Windows.
//!
//! Platform code lives in `sys/linux` and `sys/windows`; the rest of the crate (and every crate
//! above it) is written once. Linux-only extras (the eventfd behind an [`Event`], for KVM) are in
//! [`linux`].

#![deny(missing_docs)]

mod descriptor;
mod event;
mod sys;
mod timer;
mod wait;

pub use descriptor::{AsRawDescriptor, RawDescriptor};
pub use event::{Event, EventWaitResult};
pub use timer::Timer;
pub use wait::{EventToken, EventType, TriggeredEvent, WaitContext};

/// What only Linux hosts have.
#[cfg(target_os = "linux")]
pub mod linux {
    pub use crate::sys::linux::EventExt;
}

/// What only Windows hosts have.
#[cfg(windows)]
pub mod windows {
    pub use crate::sys::windows::MAXIMUM_WAIT_OBJECTS;
}
