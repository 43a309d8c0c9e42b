//! The [`Vcpu`] trait: run a virtual CPU, complete its I/O exits, read and write its state.

use std::fmt;
use std::sync::Arc;

#[cfg(target_arch = "x86_64")]
use crate::x86_64::{CpuId, Fpu, LapicState, MsrEntry, Regs, Sregs};
use crate::Result;

/// Why [`Vcpu::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VcpuExit {
    /// The guest executed a port I/O instruction: call [`Vcpu::handle_io`] before the next
    /// `run()`.
    Io,
    /// The guest accessed guest physical memory that no slot backs (or wrote to a read-only
    /// slot): call [`Vcpu::handle_mmio`] before the next `run()`.
    Mmio,
    /// The guest executed `hlt` and no in-kernel interrupt controller handles it.
    Hlt,
    /// The guest shut down (on x86, a triple fault).
    Shutdown,
    /// The guest asked for a system event through the hypervisor (PSCI on arm, reset/shutdown
    /// hypercalls).
    SystemEvent(SystemEvent),
    /// `run()` was interrupted before the guest reached an exit: a [`VcpuKick`] fired (or a
    /// signal arrived). It can be spurious; re-check your own stop flag and call `run()` again.
    Intr,
    /// The hypervisor failed to enter the guest (for example an invalid register state).
    FailEntry {
        /// The hardware's reason code.
        reason: u64,
    },
    /// The hypervisor hit an internal error, most often an instruction it could not emulate.
    InternalError {
        /// The backend's sub-error code (KVM: 1 is an emulation failure).
        suberror: u32,
    },
    /// A guest exception the hypervisor reflected to the VMM.
    Exception,
    /// A debug exit (breakpoint or single step).
    Debug,
    /// The guest can take an injected interrupt now.
    IrqWindowOpen,
    /// An exit reason this crate does not model; the number is the backend's.
    Unknown {
        /// The backend's exit reason.
        reason: u32,
    },
}

/// A system event reported by [`VcpuExit::SystemEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemEvent {
    /// The guest powered off.
    Shutdown,
    /// The guest asked for a reset.
    Reset,
    /// The guest crashed.
    Crash,
    /// Another event; the number is the backend's.
    Other(u32),
}

/// A vCPU's multiprocessing state: what the guest's INIT/SIPI protocol and `hlt` left it in, as
/// the in-kernel local APIC tracks it. Read it with [`Vcpu::get_mp_state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MpState {
    /// Running, or ready to run.
    Runnable,
    /// An application processor waiting for INIT (never started by the guest).
    Uninitialized,
    /// An application processor that got INIT and waits for a startup IPI.
    InitReceived,
    /// Halted (`hlt`) inside the hypervisor, waiting for an interrupt.
    Halted,
    /// An application processor that got a startup IPI and is about to run.
    SipiReceived,
    /// Another state; the number is the backend's.
    Other(u32),
}

/// The direction and data of one I/O access, handed to the [`Vcpu::handle_io`] /
/// [`Vcpu::handle_mmio`] callback.
#[derive(Debug)]
pub enum IoOperation<'a> {
    /// The guest reads: the callback fills the whole slice (its length is the access size).
    Read(&'a mut [u8]),
    /// The guest writes these bytes (the slice length is the access size).
    Write(&'a [u8]),
}

/// One guest I/O access: a port number (port I/O) or a guest physical address (MMIO).
#[derive(Debug)]
pub struct IoParams<'a> {
    /// The port (port I/O) or the guest physical address (MMIO).
    pub address: u64,
    /// What the guest does there.
    pub operation: IoOperation<'a>,
}

/// A handle that makes a vCPU's `run()` return from another thread.
///
/// Contract: after [`VcpuKick::kick`] returns, the vCPU's current `run()` — or, if it is not
/// inside `run()`, its next one — returns [`VcpuExit::Intr`] promptly, without running more than
/// a bounded slice of guest code. Kicks are not counted: several kicks before the vCPU notices
/// them give one `Intr`. A kick never loses: there is no window in which it is ignored. The
/// usual shutdown is "set a stop flag, then kick"; the vCPU thread checks the flag on `Intr`.
pub trait VcpuKick: Send + Sync + fmt::Debug {
    /// Requests that the vCPU leave (or not enter) guest mode. Safe to call from any thread, at
    /// any time, any number of times, also after the vCPU is gone (then it does nothing).
    fn kick(&self);
}

/// A virtual CPU. It is created by [`crate::Vm::create_vcpu`] and run on one thread at a time.
pub trait Vcpu: Send {
    /// The vCPU id given at creation.
    fn id(&self) -> u32;

    /// Runs the guest until it needs the VMM, and says why it stopped. After
    /// [`VcpuExit::Io`] or [`VcpuExit::Mmio`], call [`Vcpu::handle_io`] / [`Vcpu::handle_mmio`]
    /// before calling `run()` again, or the access is completed with undefined data.
    fn run(&mut self) -> Result<VcpuExit>;

    /// Completes a pending [`VcpuExit::Io`]: calls `handle` with the access (once per element of
    /// a string instruction; `address` is the port) and, for reads, hands the bytes it wrote to
    /// the guest. On some backends the callback runs inside an instruction emulator and may be
    /// called more than once per exit.
    fn handle_io(&mut self, handle: &mut dyn FnMut(IoParams<'_>)) -> Result<()>;

    /// Completes a pending [`VcpuExit::Mmio`] the same way as [`Vcpu::handle_io`]; `address` is
    /// the guest physical address.
    fn handle_mmio(&mut self, handle: &mut dyn FnMut(IoParams<'_>)) -> Result<()>;

    /// Returns a handle other threads use to make `run()` return (see [`VcpuKick`]).
    fn kicker(&self) -> Arc<dyn VcpuKick>;

    /// Reads the multiprocessing state (needs [`crate::Vm::create_irq_chip`] on KVM; without an
    /// in-kernel irqchip every vCPU reads as [`MpState::Runnable`]). Call it between runs, for
    /// example after a kick made `run()` return [`VcpuExit::Intr`]: a vCPU halted in the
    /// hypervisor stays [`MpState::Halted`] across such a return.
    fn get_mp_state(&self) -> Result<MpState>;

    /// Whether the vCPU is halted with interrupts disabled (`cli; hlt`, RFLAGS.IF clear): only an
    /// NMI, INIT or SMI can wake it. Linux leaves every CPU like that after `poweroff -f` or
    /// `halt -f` when it has no ACPI to turn the machine off.
    #[cfg(target_arch = "x86_64")]
    fn is_halted_with_interrupts_disabled(&self) -> Result<bool> {
        /// RFLAGS.IF.
        const RFLAGS_IF: u64 = 1 << 9;
        if self.get_mp_state()? != MpState::Halted {
            return Ok(false);
        }
        Ok(self.get_regs()?.rflags & RFLAGS_IF == 0)
    }

    /// Reads the general purpose registers.
    #[cfg(target_arch = "x86_64")]
    fn get_regs(&self) -> Result<Regs>;

    /// Writes the general purpose registers.
    #[cfg(target_arch = "x86_64")]
    fn set_regs(&mut self, regs: &Regs) -> Result<()>;

    /// Reads the segment, descriptor table and control registers.
    #[cfg(target_arch = "x86_64")]
    fn get_sregs(&self) -> Result<Sregs>;

    /// Writes the segment, descriptor table and control registers.
    #[cfg(target_arch = "x86_64")]
    fn set_sregs(&mut self, sregs: &Sregs) -> Result<()>;

    /// Reads the x87/SSE state.
    #[cfg(target_arch = "x86_64")]
    fn get_fpu(&self) -> Result<Fpu>;

    /// Writes the x87/SSE state.
    #[cfg(target_arch = "x86_64")]
    fn set_fpu(&mut self, fpu: &Fpu) -> Result<()>;

    /// Reads the MSRs `indices`, in order. Fails if the vCPU does not know one of them.
    #[cfg(target_arch = "x86_64")]
    fn get_msrs(&self, indices: &[u32]) -> Result<Vec<MsrEntry>>;

    /// Writes `msrs` in order. If the vCPU refuses one, the ones before it stay applied and the
    /// call fails with [`crate::Error::MsrNotAccepted`]; [`crate::x86_64::set_supported_msrs`]
    /// skips such MSRs instead.
    #[cfg(target_arch = "x86_64")]
    fn set_msrs(&mut self, msrs: &[MsrEntry]) -> Result<()>;

    /// Sets what the guest's `cpuid` instruction returns.
    #[cfg(target_arch = "x86_64")]
    fn set_cpuid(&mut self, cpuid: &CpuId) -> Result<()>;

    /// Reads the local APIC registers (needs [`crate::Vm::create_irq_chip`]).
    #[cfg(target_arch = "x86_64")]
    fn get_lapic(&self) -> Result<LapicState>;

    /// Writes the local APIC registers (needs [`crate::Vm::create_irq_chip`]).
    #[cfg(target_arch = "x86_64")]
    fn set_lapic(&mut self, lapic: &LapicState) -> Result<()>;
}
