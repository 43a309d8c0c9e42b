//! The host side of hybrid vsock on Windows: named pipes (docs/windows.md, "Hybrid vsock on
//! Windows"). Each guest port a host may connect to is its own pipe, `<PATH>-<port>`; opening
//! it is the connect (no `CONNECT` line, no `OK` reply), so ttrpc's `Client::connect(pipe)`
//! works as is. The listener keeps one instance of each pipe waiting in an overlapped
//! `ConnectNamedPipe`, whose event the device's wait context watches. Guest-initiated
//! connections open the pipe `<PATH>_<port>` that a host service made.
//!
//! The pipes take local clients only (`PIPE_REJECT_REMOTE_CLIENTS`), and their DACL lets in
//! only SYSTEM, the administrators and the VMM's own user. The first instance of each pipe is
//! made with `FILE_FLAG_FIRST_PIPE_INSTANCE`, so a name another process already serves is an
//! error, never a pipe shared with it.

mod pipe;

use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::path::{Path, PathBuf};
use std::ptr;

use lcow_base::{Event, EventType, TriggeredEvent, WaitContext};
use windows_sys::Win32::Foundation::{
    GetLastError, LocalFree, ERROR_ACCESS_DENIED, ERROR_IO_INCOMPLETE, ERROR_IO_PENDING,
    ERROR_PIPE_BUSY, ERROR_PIPE_CONNECTED, GENERIC_READ, GENERIC_WRITE, INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::Security::Authorization::{
    ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::{PSECURITY_DESCRIPTOR, SECURITY_ATTRIBUTES};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_FLAG_FIRST_PIPE_INSTANCE, FILE_FLAG_OVERLAPPED, OPEN_EXISTING,
    PIPE_ACCESS_DUPLEX,
};
use windows_sys::Win32::System::Pipes::{
    ConnectNamedPipe, CreateNamedPipeW, PIPE_READMODE_BYTE, PIPE_REJECT_REMOTE_CLIENTS,
    PIPE_TYPE_BYTE, PIPE_UNLIMITED_INSTANCES, PIPE_WAIT,
};
use windows_sys::Win32::System::IO::{CancelIoEx, GetOverlappedResult, OVERLAPPED};

pub(crate) use pipe::PipeStream;

use crate::virtio::vsock::muxer::TOKEN_LISTENER;
use crate::virtio::vsock::VsockError;

/// The host's end of one connection.
pub(crate) type HostStream = PipeStream;

/// Host clients open a pipe per guest port: no `CONNECT` line, no `OK` reply.
pub(crate) const HANDSHAKE: bool = false;

/// The most guest ports one endpoint serves (each pipe's event is one wait slot of 64).
pub const MAX_HOST_PORTS: usize = 8;

/// The pipes' DACL: SYSTEM, the built-in administrators and the owner (the VMM's user), full
/// access; nobody else. Protected, so nothing is inherited.
const PIPE_SDDL: &str = "D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;OW)";

/// A host client the listener accepted.
#[derive(Debug)]
pub(crate) struct Accepted {
    pub(crate) stream: HostStream,
    /// The guest port: the pipe says it.
    pub(crate) port: Option<u32>,
}

/// The pipe of guest `port` behind the endpoint `base`: `<base>-<port>` (what
/// `lcow_protocol`'s Windows client opens).
pub fn port_pipe(base: &Path, port: u32) -> PathBuf {
    let mut name = base.as_os_str().to_owned();
    name.push(format!("-{port}"));
    PathBuf::from(name)
}

fn wide(path: &Path) -> Vec<u16> {
    path.as_os_str().encode_wide().chain([0]).collect()
}

/// A security descriptor made from [`PIPE_SDDL`], freed when dropped.
struct PipeSecurity(PSECURITY_DESCRIPTOR);

impl PipeSecurity {
    fn new() -> io::Result<Self> {
        let sddl: Vec<u16> = PIPE_SDDL.encode_utf16().chain([0]).collect();
        let mut sd: PSECURITY_DESCRIPTOR = ptr::null_mut();
        // SAFETY: `sddl` is NUL-terminated UTF-16 that outlives the call; `sd` receives a
        // descriptor allocated by the system, freed in `drop`.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                sddl.as_ptr(),
                SDDL_REVISION_1,
                &mut sd,
                ptr::null_mut(),
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self(sd))
    }

    fn attributes(&self) -> SECURITY_ATTRIBUTES {
        SECURITY_ATTRIBUTES {
            nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
            lpSecurityDescriptor: self.0,
            bInheritHandle: 0,
        }
    }
}

impl Drop for PipeSecurity {
    fn drop(&mut self) {
        // SAFETY: a descriptor the system allocated for us with LocalAlloc, freed once.
        unsafe { LocalFree(self.0) };
    }
}

/// One instance of a port's pipe, waiting for its client in an overlapped `ConnectNamedPipe`.
struct Instance {
    /// The pipe; taken out once a client connected.
    pipe: Option<OwnedHandle>,
    /// The connect's record; boxed so its address is fixed while the kernel holds it. Its
    /// event is the port's (see [`Port`]).
    ov: Box<OVERLAPPED>,
}

/// A served guest port: its waiting instance and the event the wait context watches, which
/// every instance of the port signals in turn.
struct Port {
    port: u32,
    /// Signalled when a client connected to the waiting instance.
    event: Event,
    instance: Instance,
}

// SAFETY: the record is touched by the kernel only while the connect is pending and by the
// device thread that owns the listener; nothing in it is tied to a thread.
unsafe impl Send for Instance {}

impl Instance {
    /// Makes an instance of `name` (the first one with `FILE_FLAG_FIRST_PIPE_INSTANCE`) and
    /// starts waiting for its client, to signal `event` when it comes.
    fn listen(
        name: &Path,
        first: bool,
        security: &PipeSecurity,
        event: &Event,
    ) -> io::Result<Self> {
        let wide = wide(name);
        let attributes = security.attributes();
        let mut mode = PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED;
        if first {
            mode |= FILE_FLAG_FIRST_PIPE_INSTANCE;
        }
        // SAFETY: `wide` and `attributes` (and the descriptor it points to) outlive the call;
        // the other arguments are plain values.
        let handle = unsafe {
            CreateNamedPipeW(
                wide.as_ptr(),
                mode,
                PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
                PIPE_UNLIMITED_INSTANCES,
                pipe::BUFFER as u32,
                pipe::BUFFER as u32,
                0,
                &attributes,
            )
        };
        if handle == INVALID_HANDLE_VALUE {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new pipe handle that nothing else owns.
        let pipe = unsafe { OwnedHandle::from_raw_handle(handle) };
        // Cleared here: what signalled it was the previous instance's client.
        event.reset()?;
        let mut ov = Box::new(OVERLAPPED {
            hEvent: event.as_raw_handle(),
            ..Default::default()
        });
        // SAFETY: `ov` is boxed and kept with the instance until the connect ends (see Drop).
        let started = unsafe { ConnectNamedPipe(pipe.as_raw_handle(), &mut *ov) };
        let pipe = Some(pipe);
        if started == 0 {
            // SAFETY: reads the calling thread's last error.
            match unsafe { GetLastError() } {
                ERROR_IO_PENDING => {}
                // A client came between CreateNamedPipeW and ConnectNamedPipe.
                ERROR_PIPE_CONNECTED => event.signal()?,
                code => return Err(io::Error::from_raw_os_error(code as i32)),
            }
        }
        Ok(Self { pipe, ov })
    }

    /// Whether the connect finished with a client (`WouldBlock` while it waits).
    fn connected(&self) -> io::Result<()> {
        let Some(pipe) = &self.pipe else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        let mut moved = 0u32;
        // SAFETY: `ov` is this instance's connect record; no wait (FALSE).
        if unsafe { GetOverlappedResult(pipe.as_raw_handle(), &*self.ov, &mut moved, 0) } != 0 {
            return Ok(());
        }
        // SAFETY: reads the calling thread's last error.
        match unsafe { GetLastError() } {
            ERROR_IO_INCOMPLETE => Err(io::ErrorKind::WouldBlock.into()),
            // Set by `listen` when the client was there first.
            ERROR_PIPE_CONNECTED => Ok(()),
            code => Err(io::Error::from_raw_os_error(code as i32)),
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // A pipe taken out had its connect finished: nothing is pending on the record.
        let Some(pipe) = &self.pipe else {
            return;
        };
        let handle = pipe.as_raw_handle();
        let mut moved = 0u32;
        // SAFETY: cancels this instance's own connect, if still pending, and waits (TRUE) until
        // the kernel is done with the record before it is freed.
        unsafe {
            CancelIoEx(handle, &*self.ov);
            GetOverlappedResult(handle, &*self.ov, &mut moved, 1);
        }
    }
}

/// The pipes of the endpoint `base`, one waiting instance per served port.
pub(crate) struct HostListener {
    base: PathBuf,
    ports: Vec<Port>,
    security: PipeSecurity,
}

impl std::fmt::Debug for HostListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ports: Vec<u32> = self.ports.iter().map(|p| p.port).collect();
        f.debug_struct("HostListener")
            .field("base", &self.base)
            .field("ports", &ports)
            .finish()
    }
}

// SAFETY: the security descriptor is a system allocation used only by the owning thread.
unsafe impl Send for HostListener {}

impl HostListener {
    /// Serves guest `ports` as the pipes `<base>-<port>`. A pipe another process already
    /// serves is [`VsockError::SocketInUse`].
    pub(crate) fn bind(base: &Path, ports: &[u32]) -> Result<Self, VsockError> {
        let bind_error = |path: PathBuf, source| VsockError::Bind { path, source };
        if ports.is_empty() || ports.len() > MAX_HOST_PORTS {
            return Err(bind_error(
                base.to_owned(),
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("1 to {MAX_HOST_PORTS} guest ports, not {}", ports.len()),
                ),
            ));
        }
        let security = PipeSecurity::new().map_err(|source| bind_error(base.to_owned(), source))?;
        let mut served = Vec::with_capacity(ports.len());
        for &port in ports {
            let name = port_pipe(base, port);
            let event = Event::new().map_err(|source| bind_error(name.clone(), source))?;
            match Instance::listen(&name, true, &security, &event) {
                Ok(instance) => served.push(Port {
                    port,
                    event,
                    instance,
                }),
                Err(e) if e.raw_os_error() == Some(ERROR_ACCESS_DENIED as i32) => {
                    return Err(VsockError::SocketInUse { path: name })
                }
                Err(source) => return Err(bind_error(name, source)),
            }
        }
        tracing::debug!(base = %base.display(), ?ports, "vsock pipes listening");
        Ok(Self {
            base: base.to_owned(),
            ports: served,
            security,
        })
    }

    /// The endpoint's base name.
    pub(crate) fn path(&self) -> &Path {
        &self.base
    }

    /// Registers every port's pipe in `wait` (tokens from [`TOKEN_LISTENER`] on).
    pub(crate) fn register(&self, wait: &WaitContext<u64>) -> io::Result<()> {
        for (index, port) in self.ports.iter().enumerate() {
            wait.add(&port.event, TOKEN_LISTENER + index as u64)?;
        }
        Ok(())
    }

    /// Whether `token` is one of the pipes'.
    pub(crate) fn is_token(&self, token: u64) -> bool {
        (TOKEN_LISTENER..TOKEN_LISTENER + self.ports.len() as u64).contains(&token)
    }

    /// Stops (`false`) or resumes (`true`) waking for host clients.
    pub(crate) fn set_watched(&self, wait: &WaitContext<u64>, on: bool) -> io::Result<()> {
        for (index, port) in self.ports.iter().enumerate() {
            let token = TOKEN_LISTENER + index as u64;
            if on {
                wait.add(&port.event, token)?;
            } else {
                wait.delete(&port.event)?;
            }
        }
        Ok(())
    }

    /// The client of the pipe of `token`, if one connected (`WouldBlock` otherwise); the next
    /// instance of that pipe then waits in its place.
    pub(crate) fn accept(&mut self, token: u64) -> io::Result<Accepted> {
        let index = token
            .checked_sub(TOKEN_LISTENER)
            .map(|i| i as usize)
            .filter(|i| *i < self.ports.len())
            .ok_or(io::ErrorKind::WouldBlock)?;
        let served = &mut self.ports[index];
        let port = served.port;
        let name = port_pipe(&self.base, port);
        match served.instance.connected() {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(e),
            Err(e) => {
                // This instance is broken: a fresh one waits in its place, and the muxer goes on
                // to the next client.
                tracing::debug!(port, error = %e, "vsock pipe connect failed");
                served.instance = Instance::listen(&name, false, &self.security, &served.event)?;
                return Err(io::ErrorKind::ConnectionAborted.into());
            }
        }
        let next = Instance::listen(&name, false, &self.security, &served.event)?;
        let mut old = std::mem::replace(&mut served.instance, next);
        let pipe = old.pipe.take().ok_or(io::ErrorKind::NotConnected)?;
        Ok(Accepted {
            stream: PipeStream::new(pipe)?,
            port: Some(port),
        })
    }
}

/// Opens the pipe of a host service for a guest-initiated connection, without waiting: a busy
/// or missing pipe is an error (the guest gets an `RST`).
pub(crate) fn connect_host(path: &Path) -> io::Result<HostStream> {
    let wide = wide(path);
    // SAFETY: `wide` is NUL-terminated and outlives the call; no security attributes or
    // template.
    let handle = unsafe {
        CreateFileW(
            wide.as_ptr(),
            GENERIC_READ | GENERIC_WRITE,
            0,
            ptr::null(),
            OPEN_EXISTING,
            FILE_FLAG_OVERLAPPED,
            ptr::null_mut(),
        )
    };
    if handle == INVALID_HANDLE_VALUE {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(ERROR_PIPE_BUSY as i32) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        return Err(e);
    }
    // SAFETY: a new handle that nothing else owns.
    PipeStream::new(unsafe { OwnedHandle::from_raw_handle(handle) })
}

/// Keeps `stream`'s registration in `wait` in step with `want` (it was `had`). A Windows wait
/// sees one event per stream, which the stream keeps signalled while it can do what `want`
/// names.
pub(crate) fn watch(
    wait: &WaitContext<u64>,
    stream: &HostStream,
    had: Option<EventType>,
    want: Option<EventType>,
    token: u64,
) -> io::Result<()> {
    let (read, write) = match want {
        Some(EventType::Read) => (true, false),
        Some(EventType::Write) => (false, true),
        Some(EventType::ReadWrite) => (true, true),
        Some(EventType::None) | None => (false, false),
    };
    stream.set_interest(read, write);
    match (had.is_some(), want.is_some()) {
        (false, true) => wait.add(stream.ready(), token),
        (true, false) => wait.delete(stream.ready()),
        _ => Ok(()),
    }
}

/// What a wake-up of `stream` means: the wait only says its event was signalled.
pub(crate) fn readiness(stream: &HostStream, event: &TriggeredEvent<u64>) -> TriggeredEvent<u64> {
    TriggeredEvent {
        token: event.token,
        is_readable: stream.readable(),
        is_writable: stream.writable(),
        is_hungup: stream.hung_up(),
        is_error: false,
    }
}

impl crate::virtio::vsock::Vsock {
    /// A vsock device giving the guest `guest_cid`, serving guest `ports` to host clients as
    /// the named pipes `<base>-<port>` (at most [`MAX_HOST_PORTS`]), with the worker that must
    /// run on its own thread. Guest connections to host port `P` open `<base>_<P>`.
    pub fn new_pipes(
        guest_cid: u64,
        base: &Path,
        ports: &[u32],
        limits: crate::virtio::vsock::Limits,
    ) -> Result<(Self, crate::virtio::vsock::VsockWorker), VsockError> {
        Self::with_listener(guest_cid, HostListener::bind(base, ports)?, limits)
    }
}
