//! [`RawDescriptor`]: what the operating system names an open object by.

pub use crate::sys::platform::RawDescriptor;

/// An object with an operating-system descriptor that a [`crate::WaitContext`] can wait on.
///
/// Implemented for every `AsRawFd` type on Linux and every `AsRawHandle` type on Windows, and
/// for [`crate::Event`].
pub trait AsRawDescriptor {
    /// The descriptor, borrowed: it stays owned (and closed) by `self`.
    fn as_raw_descriptor(&self) -> RawDescriptor;
}
