//! [`crate::Timer`] on Linux: a non-blocking timerfd on `CLOCK_MONOTONIC`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::Timer;

#[derive(Debug)]
pub(crate) struct PlatformTimer(OwnedFd);

fn timespec(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: d.subsec_nanos() as libc::c_long,
    }
}

impl PlatformTimer {
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: a plain system call; the result is checked.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_CLOEXEC | libc::TFD_NONBLOCK,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor nothing else owns.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn set(&self, value: Duration, interval: Duration) -> io::Result<()> {
        let spec = libc::itimerspec {
            it_interval: timespec(interval),
            it_value: timespec(value),
        };
        // SAFETY: `spec` is valid for the call; no old value is asked for.
        let rc =
            unsafe { libc::timerfd_settime(self.0.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    pub(crate) fn arm(&mut self, delay: Duration, interval: Option<Duration>) -> io::Result<()> {
        // A zero value disarms a timerfd: the shortest delay stands for "now".
        let value = delay.max(Duration::from_nanos(1));
        self.set(value, interval.unwrap_or(Duration::ZERO))
    }

    pub(crate) fn clear(&mut self) -> io::Result<()> {
        // Disarming also drops an expiry not read yet.
        self.set(Duration::ZERO, Duration::ZERO)
    }

    pub(crate) fn mark_waited(&mut self) -> io::Result<bool> {
        let mut count = 0u64;
        // SAFETY: reads 8 bytes into `count`, which outlives the call.
        let n = unsafe {
            libc::read(
                self.0.as_raw_fd(),
                (&mut count as *mut u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock => Ok(false),
                _ => Err(e),
            };
        }
        Ok(count > 0)
    }

    pub(crate) fn wait(&mut self) -> io::Result<()> {
        loop {
            let mut pfd = libc::pollfd {
                fd: self.0.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: `pfd` is one valid pollfd that lives across the call.
            let n = unsafe { libc::poll(&mut pfd, 1, -1) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if self.mark_waited()? {
                return Ok(());
            }
        }
    }
}

impl AsRawFd for Timer {
    fn as_raw_fd(&self) -> RawFd {
        self.0 .0.as_raw_fd()
    }
}
