//! Windows: event objects, waitable timers, `WaitForMultipleObjects`, handles.

mod event;
mod timer;
mod wait;

use std::os::windows::io::{AsRawHandle, RawHandle};
use std::time::Duration;

pub(crate) use event::PlatformEvent;
pub(crate) use timer::PlatformTimer;
pub(crate) use wait::PlatformWaitContext;
pub use wait::MAXIMUM_WAIT_OBJECTS;

use crate::AsRawDescriptor;

/// A handle.
pub type RawDescriptor = RawHandle;

impl<T: AsRawHandle> AsRawDescriptor for T {
    fn as_raw_descriptor(&self) -> RawDescriptor {
        self.as_raw_handle()
    }
}

/// `timeout` as the milliseconds a Win32 wait takes: `INFINITE` for none, rounded up (a wait
/// never ends before its deadline) and kept below `INFINITE`.
fn wait_millis(timeout: Option<Duration>) -> u32 {
    use windows_sys::Win32::System::Threading::INFINITE;
    match timeout {
        None => INFINITE,
        Some(t) => u32::try_from(t.as_nanos().div_ceil(1_000_000))
            .unwrap_or(INFINITE - 1)
            .min(INFINITE - 1),
    }
}
