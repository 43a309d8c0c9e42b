//! [`PipeStream`]: one end of a named pipe, with the non-blocking, level-triggered shape the
//! muxer expects of a host stream.
//!
//! A named pipe does overlapped I/O, not readiness, so each stream has two threads: a reader
//! that keeps one `ReadFile` in flight while its buffer has room, and a writer that drains the
//! buffer `write` fills. Both buffers are bounded ([`BUFFER`]): a host client that never reads
//! makes `write` return `WouldBlock`, never grow memory. The muxer waits on one event per
//! stream ([`PipeStream::ready`]), kept signalled exactly while the stream can do what its
//! connection wants ([`PipeStream::set_interest`]): read (data, end of file or an error
//! waiting) or write (room in the buffer). A wake-up's meaning comes from
//! [`PipeStream::readable`] and [`PipeStream::writable`].
//!
//! Dropping the stream cancels the read at once; the writer hands what is buffered to the
//! client for at most [`DRAIN`], then the handle closes. A named pipe has no half-close:
//! [`PipeStream::shutdown`] of the write side only refuses more writes, and the client sees the
//! end when the connection closes.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::windows::io::{AsRawHandle, OwnedHandle, RawHandle};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use lcow_base::Event;
use vm_memory::bitmap::BitmapSlice;
use vm_memory::{ReadVolatile, VolatileMemoryError, VolatileSlice, WriteVolatile};
use windows_sys::Win32::Foundation::{
    GetLastError, ERROR_BROKEN_PIPE, ERROR_HANDLE_EOF, ERROR_IO_PENDING, ERROR_NO_DATA,
    ERROR_OPERATION_ABORTED, ERROR_PIPE_NOT_CONNECTED, HANDLE, WAIT_OBJECT_0, WAIT_TIMEOUT,
};
use windows_sys::Win32::Storage::FileSystem::{ReadFile, WriteFile};
use windows_sys::Win32::System::Threading::{
    WaitForMultipleObjects, WaitForSingleObject, INFINITE,
};
use windows_sys::Win32::System::IO::{CancelIoEx, GetOverlappedResult, OVERLAPPED};

/// The most bytes each direction buffers.
pub(crate) const BUFFER: usize = 64 * 1024;
/// The most bytes one `ReadFile`/`WriteFile` moves.
const IO_CHUNK: usize = 16 * 1024;
/// How long a dropped stream's writer may take to hand its buffer to the client.
pub(crate) const DRAIN: Duration = Duration::from_secs(5);

/// One overlapped operation's record and event, at a fixed address for its whole life.
struct Overlapped {
    ov: UnsafeCell<OVERLAPPED>,
    event: Event,
}

// SAFETY: each `Overlapped` is used by one thread (its stream's reader or writer) for its
// operations; the kernel writes it only while that thread waits for the operation to finish.
unsafe impl Sync for Overlapped {}
// SAFETY: as above; nothing in it is tied to the creating thread.
unsafe impl Send for Overlapped {}

impl Overlapped {
    fn new() -> io::Result<Self> {
        Ok(Self {
            ov: UnsafeCell::new(OVERLAPPED::default()),
            event: Event::new()?,
        })
    }
}

#[derive(Default)]
struct State {
    /// Bytes read from the pipe, not yet taken by `read`.
    rbuf: VecDeque<u8>,
    /// The client closed its end (or the pipe broke).
    eof: bool,
    /// A read failed otherwise: the error's OS code.
    rerror: Option<i32>,
    /// Bytes `write` took, not yet written to the pipe.
    wbuf: VecDeque<u8>,
    /// A write failed: the error's OS code.
    werror: Option<i32>,
    /// `shutdown(Write)` was called: no more writes.
    write_shut: bool,
    /// The connection wants to read / write.
    want_read: bool,
    want_write: bool,
    /// The stream was dropped at this time.
    closed_at: Option<Instant>,
}

impl State {
    fn readable(&self) -> bool {
        !self.rbuf.is_empty() || self.eof || self.rerror.is_some()
    }

    fn writable(&self) -> bool {
        self.wbuf.len() < BUFFER || self.werror.is_some()
    }

    fn ready(&self) -> bool {
        (self.want_read && self.readable()) || (self.want_write && self.writable())
    }
}

struct Inner {
    pipe: OwnedHandle,
    state: Mutex<State>,
    /// Wakes the reader (room in its buffer) and the writer (data, or the end).
    changed: Condvar,
    /// What the muxer waits on (see the module documentation).
    ready: Event,
    /// Signalled when the stream is dropped: the reader's read is cancelled.
    cancel: Event,
    read_ov: Overlapped,
    write_ov: Overlapped,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn raw(&self) -> HANDLE {
        self.pipe.as_raw_handle()
    }

    /// Brings the ready event in line with `state`.
    fn update(&self, state: &State) {
        let result = if state.ready() {
            self.ready.signal()
        } else {
            self.ready.reset().map(|_| ())
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "vsock pipe: cannot update its ready event");
        }
    }
}

/// When an operation's wait gives up and cancels it.
#[derive(Clone, Copy)]
enum Cancel {
    /// As soon as the stream is dropped.
    OnDrop,
    /// Once the stream has been dropped for [`DRAIN`].
    AfterDrain,
}

/// Whether an OS error code means the client's end is gone.
fn is_disconnect(code: u32) -> bool {
    matches!(
        code,
        ERROR_BROKEN_PIPE | ERROR_PIPE_NOT_CONNECTED | ERROR_NO_DATA | ERROR_HANDLE_EOF
    )
}

/// Starts one overlapped operation with `start` and waits for it, cancelling it as `cancel`
/// says. Returns the bytes moved, or the OS error code.
fn run_overlapped(
    inner: &Inner,
    ov: &Overlapped,
    cancel: Cancel,
    start: impl FnOnce(*mut OVERLAPPED) -> i32,
) -> Result<u32, u32> {
    let p = ov.ov.get();
    // SAFETY: `p` is this thread's own record (see `Overlapped`), not in use by any operation.
    unsafe {
        *p = OVERLAPPED::default();
        (*p).hEvent = ov.event.as_raw_handle();
    }
    if start(p) == 0 {
        // SAFETY: reads the calling thread's last error.
        let code = unsafe { GetLastError() };
        if code != ERROR_IO_PENDING {
            return Err(code);
        }
        wait_or_cancel(inner, ov, p, cancel);
    }
    let mut moved = 0u32;
    // SAFETY: `p` is the record of the operation just started; waiting (TRUE) returns only once
    // the kernel is done with it (completed or cancelled).
    if unsafe { GetOverlappedResult(inner.raw(), p, &mut moved, 1) } == 0 {
        // SAFETY: as above.
        return Err(unsafe { GetLastError() });
    }
    Ok(moved)
}

/// Waits for the operation of `p` to finish, or cancels it once `cancel` says so.
fn wait_or_cancel(inner: &Inner, ov: &Overlapped, p: *mut OVERLAPPED, cancel: Cancel) {
    let handles = [ov.event.as_raw_handle(), inner.cancel.as_raw_handle()];
    // SAFETY: both handles are events owned by `inner`/`ov`, open for the call.
    let woke = unsafe { WaitForMultipleObjects(2, handles.as_ptr(), 0, INFINITE) };
    if woke == WAIT_OBJECT_0 {
        return;
    }
    let give_up = match cancel {
        Cancel::OnDrop => true,
        Cancel::AfterDrain => {
            let closed_at = inner.lock().closed_at.unwrap_or_else(Instant::now);
            let left = DRAIN.saturating_sub(closed_at.elapsed());
            let millis = u32::try_from(left.as_millis()).unwrap_or(u32::MAX);
            // SAFETY: as above.
            let waited = unsafe { WaitForSingleObject(ov.event.as_raw_handle(), millis) };
            waited == WAIT_TIMEOUT
        }
    };
    if give_up {
        // SAFETY: cancels only the operation of `p`, which is ours; the caller then waits for
        // it to end before the record is reused.
        unsafe { CancelIoEx(inner.raw(), p) };
    }
}

/// The reader thread: one read in flight while the buffer has room.
fn reader(inner: &Inner) {
    let mut chunk = vec![0u8; IO_CHUNK];
    loop {
        let room = {
            let mut state = inner.lock();
            while state.rbuf.len() >= BUFFER && state.closed_at.is_none() {
                state = inner
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if state.closed_at.is_some() {
                return;
            }
            (BUFFER - state.rbuf.len()).min(IO_CHUNK)
        };
        let buf = &mut chunk[..room];
        let result = run_overlapped(inner, &inner.read_ov, Cancel::OnDrop, |p| {
            // SAFETY: `buf` stays alive and unused until the operation ends (the helper waits);
            // `p` is a fresh record with its event.
            unsafe {
                ReadFile(
                    inner.raw(),
                    buf.as_mut_ptr(),
                    room as u32,
                    std::ptr::null_mut(),
                    p,
                )
            }
        });
        let mut state = inner.lock();
        let done = match result {
            Ok(0) => {
                state.eof = true;
                true
            }
            Ok(n) => {
                state.rbuf.extend(&buf[..n as usize]);
                false
            }
            Err(ERROR_OPERATION_ABORTED) => true,
            Err(code) if is_disconnect(code) => {
                state.eof = true;
                true
            }
            Err(code) => {
                state.rerror = Some(code as i32);
                true
            }
        };
        inner.update(&state);
        if done {
            return;
        }
    }
}

/// The writer thread: writes what `write` buffered, until dropped and drained (or broken).
fn writer(inner: &Inner) {
    loop {
        let chunk: Vec<u8> = {
            let mut state = inner.lock();
            while state.wbuf.is_empty() && state.closed_at.is_none() && state.werror.is_none() {
                state = inner
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            let drained = state.closed_at.is_some_and(|t| t.elapsed() >= DRAIN);
            if state.wbuf.is_empty() || state.werror.is_some() || drained {
                return;
            }
            let n = state.wbuf.len().min(IO_CHUNK);
            state.wbuf.iter().take(n).copied().collect()
        };
        let result = run_overlapped(inner, &inner.write_ov, Cancel::AfterDrain, |p| {
            // SAFETY: `chunk` stays alive until the operation ends (the helper waits).
            unsafe {
                WriteFile(
                    inner.raw(),
                    chunk.as_ptr(),
                    chunk.len() as u32,
                    std::ptr::null_mut(),
                    p,
                )
            }
        });
        let mut state = inner.lock();
        match result {
            Ok(n) => {
                let n = (n as usize).min(state.wbuf.len());
                state.wbuf.drain(..n);
            }
            Err(code) => state.werror = Some(code as i32),
        }
        inner.update(&state);
    }
}

/// One end of a connected named pipe (see the module documentation).
pub(crate) struct PipeStream {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PipeStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipeStream")
            .field("pipe", &self.inner.raw())
            .finish()
    }
}

impl PipeStream {
    /// Serves `pipe`, a connected pipe handle opened for overlapped I/O.
    pub(crate) fn new(pipe: OwnedHandle) -> io::Result<Self> {
        let inner = Arc::new(Inner {
            pipe,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            ready: Event::new()?,
            cancel: Event::new()?,
            read_ov: Overlapped::new()?,
            write_ov: Overlapped::new()?,
        });
        let spawn = |name: &str, run: fn(&Inner)| {
            let inner = inner.clone();
            thread::Builder::new()
                .name(name.to_owned())
                .spawn(move || run(&inner))
        };
        spawn("vsock-pipe-read", reader)?;
        if let Err(e) = spawn("vsock-pipe-write", writer) {
            // The reader must not outlive a stream that never existed.
            let stream = Self { inner };
            drop(stream);
            return Err(e);
        }
        Ok(Self { inner })
    }

    /// The event the muxer waits on.
    pub(crate) fn ready(&self) -> &Event {
        &self.inner.ready
    }

    /// What the connection wants: the ready event follows it.
    pub(crate) fn set_interest(&self, read: bool, write: bool) {
        let mut state = self.inner.lock();
        state.want_read = read;
        state.want_write = write;
        self.inner.update(&state);
    }

    /// Whether a read would not block (data, end of file or an error).
    pub(crate) fn readable(&self) -> bool {
        self.inner.lock().readable()
    }

    /// Whether a write would not block.
    pub(crate) fn writable(&self) -> bool {
        self.inner.lock().writable()
    }

    /// Whether the client's end is gone (read end of file, or a write failed).
    pub(crate) fn hung_up(&self) -> bool {
        let state = self.inner.lock();
        state.eof || state.werror.is_some()
    }

    /// Refuses further writes (`Shutdown::Write` or `Both`); see the module documentation.
    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            self.inner.lock().write_shut = true;
        }
        Ok(())
    }

    fn read_bytes(&self, out: &mut [u8]) -> io::Result<usize> {
        let mut state = self.inner.lock();
        if !state.rbuf.is_empty() {
            let n = out.len().min(state.rbuf.len());
            for (dst, src) in out.iter_mut().zip(state.rbuf.drain(..n)) {
                *dst = src;
            }
            self.inner.update(&state);
            self.inner.changed.notify_all();
            return Ok(n);
        }
        if let Some(code) = state.rerror {
            return Err(io::Error::from_raw_os_error(code));
        }
        if state.eof || out.is_empty() {
            return Ok(0);
        }
        Err(io::ErrorKind::WouldBlock.into())
    }

    fn write_bytes(&self, data: &[u8]) -> io::Result<usize> {
        let mut state = self.inner.lock();
        if let Some(code) = state.werror {
            return Err(io::Error::from_raw_os_error(code));
        }
        if state.write_shut {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let room = BUFFER - state.wbuf.len().min(BUFFER);
        if room == 0 && !data.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = data.len().min(room);
        state.wbuf.extend(&data[..n]);
        self.inner.update(&state);
        self.inner.changed.notify_all();
        Ok(n)
    }
}

impl Drop for PipeStream {
    fn drop(&mut self) {
        {
            let mut state = self.inner.lock();
            state.closed_at = Some(Instant::now());
            state.want_read = false;
            state.want_write = false;
            self.inner.update(&state);
        }
        self.inner.changed.notify_all();
        if let Err(e) = self.inner.cancel.signal() {
            tracing::debug!(error = %e, "vsock pipe: cannot stop its reader");
        }
        // The threads end on their own (the reader at once, the writer once drained); the
        // handle closes with the last of them.
    }
}

impl AsRawHandle for PipeStream {
    /// The ready event (what a wait context watches), not the pipe.
    fn as_raw_handle(&self) -> RawHandle {
        self.inner.ready.as_raw_handle()
    }
}

impl Read for PipeStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_bytes(buf)
    }
}

impl Write for PipeStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_bytes(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ReadVolatile for PipeStream {
    fn read_volatile<B: BitmapSlice>(
        &mut self,
        buf: &mut VolatileSlice<B>,
    ) -> Result<usize, VolatileMemoryError> {
        let mut bounce = vec![0u8; buf.len().min(BUFFER)];
        let n = self
            .read_bytes(&mut bounce)
            .map_err(VolatileMemoryError::IOError)?;
        buf.copy_from(&bounce[..n]);
        Ok(n)
    }
}

impl WriteVolatile for PipeStream {
    fn write_volatile<B: BitmapSlice>(
        &mut self,
        buf: &VolatileSlice<B>,
    ) -> Result<usize, VolatileMemoryError> {
        let mut bounce = vec![0u8; buf.len().min(BUFFER)];
        let n = buf.copy_to(&mut bounce[..]);
        self.write_bytes(&bounce[..n])
            .map_err(VolatileMemoryError::IOError)
    }
}
