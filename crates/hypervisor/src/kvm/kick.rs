//! Pulling a vCPU thread out of `KVM_RUN` from another thread.
//!
//! A kick sets a sticky `requested` flag, then sends the kick signal to the thread inside
//! [`KvmVcpu::run`](super::KvmVcpu). The signal handler sets `kvm_run.immediate_exit` of the vCPU
//! that thread is running (found through a thread-local pointer), so `KVM_RUN` returns `EINTR`
//! whether the signal lands before the ioctl enters the guest or while the guest runs. A kick
//! that lands outside `run()` leaves `requested` set, and the next `run()` returns at once.

use std::cell::Cell;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use kvm_bindings::kvm_run;
use libc::{c_int, c_void, siginfo_t};
use vmm_sys_util::errno;
use vmm_sys_util::signal::{register_signal_handler, SIGRTMIN};

use crate::VcpuKick;

/// The kick signal is `SIGRTMIN() + KICK_SIGNAL_OFFSET`.
pub const KICK_SIGNAL_OFFSET: c_int = 0;

fn kick_signal() -> c_int {
    SIGRTMIN() + KICK_SIGNAL_OFFSET
}

thread_local! {
    /// The `kvm_run` of the vCPU this thread is running, null outside `run()`.
    static RUNNING: Cell<*mut kvm_run> = const { Cell::new(ptr::null_mut()) };
}

extern "C" fn handle_kick_signal(_: c_int, _: *mut siginfo_t, _: *mut c_void) {
    // `try_with` never panics, and the const-initialized cell has no destructor to race with.
    let _ = RUNNING.try_with(|running| {
        let run = running.get();
        if !run.is_null() {
            // SAFETY: `run` is set only while this thread is inside `KvmVcpu::run`, which keeps
            // the vCPU (and so its `kvm_run` mapping) alive; a volatile byte store cannot tear.
            unsafe { ptr::addr_of_mut!((*run).immediate_exit).write_volatile(1) };
        }
    });
}

pub(super) fn install_signal_handler() -> errno::Result<()> {
    register_signal_handler(kick_signal(), handle_kick_signal)
}

/// The state a vCPU shares with its kickers.
#[derive(Debug, Default)]
pub(super) struct KickState {
    requested: AtomicBool,
    /// The thread inside `run()`, if any. Held while signalling, so the thread cannot leave
    /// `run()` (and exit) in between.
    thread: Mutex<Option<libc::pthread_t>>,
}

impl KickState {
    /// Marks this thread as running the vCPU whose `kvm_run` is `run`; the guard undoes it.
    pub(super) fn enter(&self, run: *mut kvm_run) -> RunningGuard<'_> {
        RUNNING.with(|r| r.set(run));
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        *self.thread.lock().unwrap_or_else(PoisonError::into_inner) = Some(me);
        RunningGuard { state: self }
    }

    /// Consumes a pending kick.
    pub(super) fn take_request(&self) -> bool {
        self.requested.swap(false, Ordering::SeqCst)
    }
}

/// Undoes [`KickState::enter`] on drop.
pub(super) struct RunningGuard<'a> {
    state: &'a KickState,
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        *self
            .state
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        RUNNING.with(|r| r.set(ptr::null_mut()));
    }
}

impl VcpuKick for KickState {
    fn kick(&self) {
        self.requested.store(true, Ordering::SeqCst);
        let thread = self.thread.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(thread) = *thread {
            // SAFETY: `thread` is inside `run()` and cannot leave it while we hold the lock, so
            // it is a live thread; the kick signal has a handler (installed by
            // `KvmHypervisor::new`, which every vCPU comes from).
            let ret = unsafe { libc::pthread_kill(thread, kick_signal()) };
            if ret != 0 {
                tracing::warn!(errno = ret, "failed to signal the vcpu thread");
            }
        }
    }
}
