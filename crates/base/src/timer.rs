//! [`Timer`]: a one-shot or periodic timer that a [`crate::WaitContext`] can watch.

use std::io;
use std::time::Duration;

use crate::sys::platform::PlatformTimer;

/// A timer: once armed ([`Timer::arm`]) it expires after its delay, then every interval if it
/// has one. An expiry leaves the timer set (a [`crate::WaitContext`] reports it readable) until
/// [`Timer::wait`] or [`Timer::mark_waited`] consumes it; expiries nobody consumed in between
/// count as one.
///
/// Linux: a timerfd on the monotonic clock. Windows: a manual-reset waitable timer, re-armed
/// for each period when its expiry is consumed (so a period is measured from the consumer's
/// `mark_waited`, not the previous expiry; a late consumer delays the next expiry).
#[derive(Debug)]
pub struct Timer(pub(crate) PlatformTimer);

impl Timer {
    /// A new, disarmed timer.
    pub fn new() -> io::Result<Timer> {
        PlatformTimer::new().map(Timer)
    }

    /// Arms the timer: it expires after `delay` (a zero delay expires at once), then every
    /// `interval` if given. Re-arming replaces the previous setting and clears an expiry not
    /// consumed yet.
    pub fn arm(&mut self, delay: Duration, interval: Option<Duration>) -> io::Result<()> {
        if interval.is_some_and(|i| i.is_zero()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a periodic timer needs a non-zero interval",
            ));
        }
        self.0.arm(delay, interval)
    }

    /// Disarms the timer and clears an expiry not consumed yet.
    pub fn clear(&mut self) -> io::Result<()> {
        self.0.clear()
    }

    /// Blocks until the timer expires (at once if it has already), then consumes the expiry.
    /// A disarmed timer blocks forever.
    pub fn wait(&mut self) -> io::Result<()> {
        self.0.wait()
    }

    /// Consumes an expiry without blocking; returns whether there was one.
    pub fn mark_waited(&mut self) -> io::Result<bool> {
        self.0.mark_waited()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::WaitContext;

    #[test]
    fn test_timer_one_shot_expires_after_its_delay_once() {
        let mut timer = Timer::new().unwrap();
        let start = Instant::now();
        timer.arm(Duration::from_millis(30), None).unwrap();
        assert!(!timer.mark_waited().unwrap(), "not yet");
        timer.wait().unwrap();
        assert!(
            start.elapsed() >= Duration::from_millis(30),
            "{:?}",
            start.elapsed()
        );
        assert!(!timer.mark_waited().unwrap(), "one expiry, consumed");
    }

    #[test]
    fn test_timer_periodic_expires_again() {
        let mut timer = Timer::new().unwrap();
        let start = Instant::now();
        timer
            .arm(Duration::from_millis(10), Some(Duration::from_millis(10)))
            .unwrap();
        for _ in 0..3 {
            timer.wait().unwrap();
        }
        assert!(
            start.elapsed() >= Duration::from_millis(30),
            "{:?}",
            start.elapsed()
        );
        timer.clear().unwrap();
        std::thread::sleep(Duration::from_millis(30));
        assert!(!timer.mark_waited().unwrap(), "cleared: no more expiries");
    }

    #[test]
    fn test_timer_zero_interval_refused() {
        let mut timer = Timer::new().unwrap();
        let err = timer
            .arm(Duration::from_millis(1), Some(Duration::ZERO))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn test_timer_rearm_clears_a_pending_expiry() {
        let mut timer = Timer::new().unwrap();
        timer.arm(Duration::ZERO, None).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        timer.arm(Duration::from_secs(60), None).unwrap();
        assert!(!timer.mark_waited().unwrap());
    }

    #[test]
    fn test_timer_in_wait_context_is_readable_on_expiry() {
        let mut timer = Timer::new().unwrap();
        let ctx = WaitContext::<u32>::new().unwrap();
        ctx.add(&timer, 7).unwrap();
        assert!(ctx
            .wait_timeout(Duration::from_millis(20), 4)
            .unwrap()
            .is_empty());
        timer.arm(Duration::from_millis(10), None).unwrap();
        let ready = ctx.wait_timeout(Duration::from_secs(5), 4).unwrap();
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].token, 7);
        // Level-triggered: still reported until consumed.
        assert_eq!(ctx.wait_timeout(Duration::ZERO, 4).unwrap().len(), 1);
        assert!(timer.mark_waited().unwrap());
        assert!(ctx
            .wait_timeout(Duration::from_millis(20), 4)
            .unwrap()
            .is_empty());
    }
}
