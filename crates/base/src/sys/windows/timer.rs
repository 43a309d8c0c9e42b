//! [`crate::Timer`] on Windows: a manual-reset waitable timer, so a wait context sees an expiry
//! without consuming it. A manual-reset timer stays signalled until it is set again, so a
//! periodic timer is re-armed for its next period when the expiry is consumed.

use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle, RawHandle};
use std::ptr;
use std::time::Duration;

use windows_sys::Win32::Foundation::{WAIT_OBJECT_0, WAIT_TIMEOUT};
use windows_sys::Win32::System::Threading::{
    CancelWaitableTimer, CreateWaitableTimerExW, SetWaitableTimer, WaitForSingleObject,
    CREATE_WAITABLE_TIMER_MANUAL_RESET, INFINITE, TIMER_ALL_ACCESS,
};

use crate::Timer;

#[derive(Debug)]
pub(crate) struct PlatformTimer {
    handle: OwnedHandle,
    interval: Option<Duration>,
}

/// A relative due time in 100 ns units (negative means relative), at least one unit.
fn due(d: Duration) -> i64 {
    let units = (d.as_nanos() / 100).clamp(1, i64::MAX as u128) as i64;
    -units
}

impl PlatformTimer {
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: no attributes and no name are valid arguments; the result is checked.
        let handle = unsafe {
            CreateWaitableTimerExW(
                ptr::null(),
                ptr::null(),
                CREATE_WAITABLE_TIMER_MANUAL_RESET,
                TIMER_ALL_ACCESS,
            )
        };
        if handle.is_null() {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            // SAFETY: a new handle nothing else owns.
            handle: unsafe { OwnedHandle::from_raw_handle(handle) },
            interval: None,
        })
    }

    fn raw(&self) -> RawHandle {
        self.handle.as_raw_handle()
    }

    /// Sets the timer to expire once after `d` (which also clears a pending expiry).
    fn set_once(&self, d: Duration) -> io::Result<()> {
        let when = due(d);
        // SAFETY: `when` outlives the call; no completion routine.
        if unsafe { SetWaitableTimer(self.raw(), &when, 0, None, ptr::null(), 0) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    pub(crate) fn arm(&mut self, delay: Duration, interval: Option<Duration>) -> io::Result<()> {
        self.interval = interval;
        self.set_once(delay)
    }

    pub(crate) fn clear(&mut self) -> io::Result<()> {
        self.interval = None;
        // Setting the timer clears its signalled state; cancelling then stops it.
        self.set_once(Duration::from_secs(3600))?;
        // SAFETY: the timer handle is ours and open.
        if unsafe { CancelWaitableTimer(self.raw()) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn consume(&mut self) -> io::Result<()> {
        match self.interval {
            Some(period) => self.set_once(period),
            None => self.clear(),
        }
    }

    pub(crate) fn mark_waited(&mut self) -> io::Result<bool> {
        // SAFETY: the timer handle is ours and open; a zero timeout only polls.
        match unsafe { WaitForSingleObject(self.raw(), 0) } {
            WAIT_OBJECT_0 => self.consume().map(|()| true),
            WAIT_TIMEOUT => Ok(false),
            _ => Err(io::Error::last_os_error()),
        }
    }

    pub(crate) fn wait(&mut self) -> io::Result<()> {
        // SAFETY: as in `mark_waited`.
        match unsafe { WaitForSingleObject(self.raw(), INFINITE) } {
            WAIT_OBJECT_0 => self.consume(),
            _ => Err(io::Error::last_os_error()),
        }
    }
}

impl AsRawHandle for Timer {
    fn as_raw_handle(&self) -> RawHandle {
        self.0.handle.as_raw_handle()
    }
}
