//! [`crate::WaitContext`] on Windows: `WaitForMultipleObjects` over the registered handles.
//!
//! A handle is ready when it is signalled; finding the others after the first, each is asked
//! with a zero-timeout wait. Both waits consume the signal of an auto-reset event, a mutex or a
//! semaphore, so a context holds objects whose signal a wait leaves alone: manual-reset events
//! ([`crate::Event`]), processes, threads.

use std::io;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use windows_sys::Win32::Foundation::{HANDLE, WAIT_FAILED, WAIT_OBJECT_0, WAIT_TIMEOUT};
use windows_sys::Win32::System::Threading::{WaitForMultipleObjects, WaitForSingleObject};

use super::wait_millis;
use crate::wait::Ready;
use crate::{EventType, RawDescriptor};

/// The most handles one `WaitForMultipleObjects` call (and so one [`crate::WaitContext`]) takes.
pub const MAXIMUM_WAIT_OBJECTS: usize = 64;

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The handle's value: raw pointers are not `Send`, and the handle is only passed back to
    /// the system.
    handle: usize,
    readable: bool,
    token: u64,
}

#[derive(Debug)]
pub(crate) struct PlatformWaitContext {
    entries: Mutex<Vec<Entry>>,
}

fn check_events(events: EventType) -> io::Result<bool> {
    if events.writable() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "Windows objects have no write readiness: wait for a signalled event instead",
        ));
    }
    Ok(events.readable())
}

fn not_found() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        "the handle is not in this wait context",
    )
}

impl PlatformWaitContext {
    pub(crate) fn new() -> io::Result<Self> {
        Ok(PlatformWaitContext {
            entries: Mutex::new(Vec::new()),
        })
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn add(&self, h: RawDescriptor, events: EventType, token: u64) -> io::Result<()> {
        let readable = check_events(events)?;
        let mut entries = self.entries();
        let handle = h as usize;
        if entries.iter().any(|e| e.handle == handle) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the handle is already in this wait context",
            ));
        }
        if entries.len() >= MAXIMUM_WAIT_OBJECTS {
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                "a wait context holds at most 64 handles (MAXIMUM_WAIT_OBJECTS)",
            ));
        }
        entries.push(Entry {
            handle,
            readable,
            token,
        });
        Ok(())
    }

    pub(crate) fn modify(&self, h: RawDescriptor, events: EventType, token: u64) -> io::Result<()> {
        let readable = check_events(events)?;
        let mut entries = self.entries();
        let entry = entries
            .iter_mut()
            .find(|e| e.handle == h as usize)
            .ok_or_else(not_found)?;
        entry.readable = readable;
        entry.token = token;
        Ok(())
    }

    pub(crate) fn delete(&self, h: RawDescriptor) -> io::Result<()> {
        let mut entries = self.entries();
        let at = entries
            .iter()
            .position(|e| e.handle == h as usize)
            .ok_or_else(not_found)?;
        entries.remove(at);
        Ok(())
    }

    pub(crate) fn wait(&self, timeout: Option<Duration>, max: usize) -> io::Result<Vec<Ready>> {
        let watched: Vec<Entry> = self
            .entries()
            .iter()
            .filter(|e| e.readable)
            .copied()
            .collect();
        if watched.is_empty() {
            let Some(timeout) = timeout else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "waiting without a timeout on a wait context that watches nothing",
                ));
            };
            std::thread::sleep(timeout);
            return Ok(Vec::new());
        }
        let handles: Vec<HANDLE> = watched.iter().map(|e| e.handle as HANDLE).collect();
        // `watched` holds at most MAXIMUM_WAIT_OBJECTS (64) entries.
        let count = handles.len() as u32;
        // SAFETY: `handles` holds `count` handles, each open while registered (the caller
        // deletes a handle before closing it); the call only reads the array.
        let first =
            unsafe { WaitForMultipleObjects(count, handles.as_ptr(), 0, wait_millis(timeout)) };
        if first == WAIT_TIMEOUT {
            return Ok(Vec::new());
        }
        if first == WAIT_FAILED {
            return Err(io::Error::last_os_error());
        }
        let first = first.wrapping_sub(WAIT_OBJECT_0) as usize;
        if first >= watched.len() {
            // WAIT_ABANDONED_0 + i: a mutex, which a wait context does not hold.
            return Err(io::Error::other(format!(
                "WaitForMultipleObjects returned {first:#x}"
            )));
        }
        let mut ready = vec![readable(watched[first].token)];
        for (entry, &handle) in watched.iter().zip(&handles).skip(first + 1) {
            if ready.len() >= max {
                break;
            }
            // SAFETY: as above, for one handle with a zero timeout.
            if unsafe { WaitForSingleObject(handle, 0) } == WAIT_OBJECT_0 {
                ready.push(readable(entry.token));
            }
        }
        Ok(ready)
    }
}

fn readable(token: u64) -> Ready {
    Ready {
        token,
        is_readable: true,
        is_writable: false,
        is_hungup: false,
        is_error: false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::{Event, EventType, WaitContext};

    #[test]
    fn test_wait_context_write_interest_unsupported() {
        let ctx = WaitContext::<u32>::new().unwrap();
        let event = Event::new().unwrap();
        let err = ctx.add_for(&event, EventType::Write, 1).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
        ctx.add(&event, 1).unwrap();
        assert!(ctx.modify(&event, EventType::ReadWrite, 1).is_err());
    }

    #[test]
    fn test_wait_context_more_than_64_handles_refused() {
        let ctx = WaitContext::<u32>::new().unwrap();
        let events: Vec<Event> = (0..=super::MAXIMUM_WAIT_OBJECTS)
            .map(|_| Event::new().unwrap())
            .collect();
        for (i, e) in events.iter().take(super::MAXIMUM_WAIT_OBJECTS).enumerate() {
            ctx.add(e, i as u32).unwrap();
        }
        assert!(ctx.add(&events[super::MAXIMUM_WAIT_OBJECTS], 99).is_err());
        events[63].signal().unwrap();
        let ready = ctx.wait(8).unwrap();
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].token, 63);
    }

    #[test]
    fn test_wait_context_empty_without_timeout_is_an_error() {
        let ctx = WaitContext::<u32>::new().unwrap();
        assert!(ctx.wait(8).is_err());
    }
}
