//! Notices a guest kernel panic on the serial console.
//!
//! With `panic=-1` a panicking guest reboots at once, which would look like an ordinary reset;
//! without it the guest hangs. Either way the VMM must not report success. [`PanicWatch`] sits
//! between the serial device and the console sink and raises a flag when the kernel's
//! `Kernel panic - not syncing` line passes through. It keeps O(1) state (a match position), never
//! buffers or logs guest output, and sees the output whether the console is shown or discarded.
//! It needs the kernel console on ttyS0 (`console=ttyS0`, which the default command line has).

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What the kernel prints first when it panics (`panic()` in kernel/panic.c).
const PANIC_LINE: &[u8] = b"Kernel panic - not syncing";

/// A [`Write`] adapter that forwards everything and records whether a kernel panic went by.
pub struct PanicWatch {
    inner: Box<dyn Write + Send>,
    matched: usize,
    seen: Arc<AtomicBool>,
}

impl std::fmt::Debug for PanicWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PanicWatch")
            .field("seen", &self.seen.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl PanicWatch {
    /// Wraps `inner`; the returned flag turns true once a panic line has been written.
    pub fn new(inner: Box<dyn Write + Send>) -> (Self, Arc<AtomicBool>) {
        let seen = Arc::new(AtomicBool::new(false));
        let watch = PanicWatch {
            inner,
            matched: 0,
            seen: seen.clone(),
        };
        (watch, seen)
    }

    fn scan(&mut self, buf: &[u8]) {
        for &b in buf {
            // 'K' occurs only at the start of PANIC_LINE, so restarting the match at a
            // mismatching byte (or at that byte, when it is 'K') never misses an occurrence.
            if PANIC_LINE.get(self.matched) == Some(&b) {
                self.matched += 1;
            } else {
                self.matched = usize::from(b == PANIC_LINE[0]);
            }
            if self.matched == PANIC_LINE.len() {
                self.seen.store(true, Ordering::Relaxed);
                self.matched = 0;
            }
        }
    }
}

impl Write for PanicWatch {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.scan(&buf[..n.min(buf.len())]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn watch() -> (PanicWatch, Arc<AtomicBool>, Shared) {
        let sink = Shared::default();
        let (w, seen) = PanicWatch::new(Box::new(sink.clone()));
        (w, seen, sink)
    }

    #[test]
    fn test_panic_watch_line_in_one_write_sets_flag() {
        let (mut w, seen, sink) = watch();
        let text = b"[ 1.0] Kernel panic - not syncing: Attempted to kill init!\r\n";
        w.write_all(text).unwrap();
        assert!(seen.load(Ordering::Relaxed));
        assert_eq!(&sink.0.lock().unwrap()[..], &text[..]);
    }

    #[test]
    fn test_panic_watch_byte_by_byte_sets_flag() {
        let (mut w, seen, _) = watch();
        for b in b"KKernel panic - not syncing" {
            w.write_all(&[*b]).unwrap();
        }
        assert!(seen.load(Ordering::Relaxed));
    }

    #[test]
    fn test_panic_watch_near_miss_leaves_flag_clear() {
        let (mut w, seen, _) = watch();
        w.write_all(b"Kernel panic - not syncin\nKernel: panic - not syncing\n")
            .unwrap();
        w.write_all(b"kernel panic - not syncing").unwrap();
        assert!(!seen.load(Ordering::Relaxed));
    }
}
