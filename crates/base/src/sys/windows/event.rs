//! [`crate::Event`] on Windows: a manual-reset event object, so it stays set (as an eventfd does)
//! until a waiter clears it, and `WaitForMultipleObjects` sees it without clearing it.

use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle, RawHandle};
use std::ptr;
use std::time::Duration;

use windows_sys::Win32::Foundation::{WAIT_OBJECT_0, WAIT_TIMEOUT};
use windows_sys::Win32::System::Threading::{
    CreateEventW, ResetEvent, SetEvent, WaitForSingleObject,
};

use super::wait_millis;
use crate::{Event, EventWaitResult};

#[derive(Debug)]
pub(crate) struct PlatformEvent(OwnedHandle);

impl PlatformEvent {
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: no security attributes and no name are valid arguments; the call only creates
        // an object.
        let handle = unsafe { CreateEventW(ptr::null(), 1, 0, ptr::null()) };
        if handle.is_null() {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `handle` is a new event handle that nothing else owns.
        Ok(PlatformEvent(unsafe {
            OwnedHandle::from_raw_handle(handle)
        }))
    }

    fn raw(&self) -> RawHandle {
        self.0.as_raw_handle()
    }

    pub(crate) fn signal(&self) -> io::Result<()> {
        // SAFETY: `raw()` is an event handle owned by `self`, open for the call.
        if unsafe { SetEvent(self.raw()) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn clear(&self) -> io::Result<()> {
        // SAFETY: as in `signal`.
        if unsafe { ResetEvent(self.raw()) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn wait_raw(&self, millis: u32) -> io::Result<EventWaitResult> {
        // SAFETY: as in `signal`; waiting on an event does not change it (manual reset).
        match unsafe { WaitForSingleObject(self.raw(), millis) } {
            WAIT_OBJECT_0 => Ok(EventWaitResult::Signaled),
            WAIT_TIMEOUT => Ok(EventWaitResult::TimedOut),
            _ => Err(io::Error::last_os_error()),
        }
    }

    pub(crate) fn reset(&self) -> io::Result<bool> {
        let set = self.wait_raw(0)? == EventWaitResult::Signaled;
        if set {
            self.clear()?;
        }
        Ok(set)
    }

    pub(crate) fn wait(&self, timeout: Option<Duration>) -> io::Result<EventWaitResult> {
        let result = self.wait_raw(wait_millis(timeout))?;
        if result == EventWaitResult::Signaled {
            self.clear()?;
        }
        Ok(result)
    }

    pub(crate) fn try_clone(&self) -> io::Result<Self> {
        self.0.try_clone().map(PlatformEvent)
    }
}

impl AsRawHandle for Event {
    fn as_raw_handle(&self) -> RawHandle {
        self.0.raw()
    }
}
