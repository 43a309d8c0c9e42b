//! Exit decoding: what a `WHvRunVirtualProcessor` exit reason means for the run loop.
//!
//! Some exits go to the VMM as a [`VcpuExit`] (port I/O and MMIO, completed through the
//! instruction emulator in `handle_io`/`handle_mmio`; halts; shutdowns). Others the backend
//! answers itself and runs the vCPU again: CPUID (the per-vCPU table), MSR accesses, the local
//! APIC's EOI of a level-triggered vector (it goes to the [`crate::irqchip::Ioapic`]), and the
//! interrupt window it asked for to inject a pending interrupt.

use windows_sys::Win32::System::Hypervisor::*;

use crate::VcpuExit;

/// What to do with one exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitAction {
    /// Return this to the caller of `Vcpu::run`.
    Vmm(VcpuExit),
    /// Answer the guest's CPUID from the vCPU's table, then run again.
    Cpuid,
    /// Emulate the MSR read or write, then run again.
    MsrAccess,
    /// Pass the EOI of a vector to the I/O APIC, then run again.
    ApicEoi,
    /// The guest can take an interrupt: inject the pending one, then run again.
    InterruptWindow,
    /// Nothing happened (a spurious return): run again.
    Resume,
}

/// Decodes an exit reason (`WHV_RUN_VP_EXIT_CONTEXT::ExitReason`).
#[allow(non_upper_case_globals)] // windows-sys's constant names, matched as patterns
pub fn classify(reason: WHV_RUN_VP_EXIT_REASON) -> ExitAction {
    match reason {
        WHvRunVpExitReasonX64IoPortAccess => ExitAction::Vmm(VcpuExit::Io),
        WHvRunVpExitReasonMemoryAccess => ExitAction::Vmm(VcpuExit::Mmio),
        WHvRunVpExitReasonX64Halt => ExitAction::Vmm(VcpuExit::Hlt),
        // A triple fault (or another exception the processor cannot deliver).
        WHvRunVpExitReasonUnrecoverableException => ExitAction::Vmm(VcpuExit::Shutdown),
        WHvRunVpExitReasonInvalidVpRegisterValue => ExitAction::Vmm(VcpuExit::FailEntry {
            reason: reason as u64,
        }),
        WHvRunVpExitReasonUnsupportedFeature => ExitAction::Vmm(VcpuExit::InternalError {
            suberror: reason as u32,
        }),
        WHvRunVpExitReasonCanceled => ExitAction::Vmm(VcpuExit::Intr),
        WHvRunVpExitReasonException => ExitAction::Vmm(VcpuExit::Exception),
        WHvRunVpExitReasonX64Cpuid => ExitAction::Cpuid,
        WHvRunVpExitReasonX64MsrAccess => ExitAction::MsrAccess,
        WHvRunVpExitReasonX64ApicEoi => ExitAction::ApicEoi,
        WHvRunVpExitReasonX64InterruptWindow => ExitAction::InterruptWindow,
        WHvRunVpExitReasonNone => ExitAction::Resume,
        other => ExitAction::Vmm(VcpuExit::Unknown {
            reason: other as u32,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_classify_io_mmio_halt_shutdown_go_to_the_vmm() {
        assert_eq!(
            classify(WHvRunVpExitReasonX64IoPortAccess),
            ExitAction::Vmm(VcpuExit::Io)
        );
        assert_eq!(
            classify(WHvRunVpExitReasonMemoryAccess),
            ExitAction::Vmm(VcpuExit::Mmio)
        );
        assert_eq!(
            classify(WHvRunVpExitReasonX64Halt),
            ExitAction::Vmm(VcpuExit::Hlt)
        );
        assert_eq!(
            classify(WHvRunVpExitReasonUnrecoverableException),
            ExitAction::Vmm(VcpuExit::Shutdown)
        );
        assert_eq!(
            classify(WHvRunVpExitReasonCanceled),
            ExitAction::Vmm(VcpuExit::Intr)
        );
    }

    #[test]
    fn test_classify_backend_answers_cpuid_msr_eoi_window() {
        assert_eq!(classify(WHvRunVpExitReasonX64Cpuid), ExitAction::Cpuid);
        assert_eq!(
            classify(WHvRunVpExitReasonX64MsrAccess),
            ExitAction::MsrAccess
        );
        assert_eq!(classify(WHvRunVpExitReasonX64ApicEoi), ExitAction::ApicEoi);
        assert_eq!(
            classify(WHvRunVpExitReasonX64InterruptWindow),
            ExitAction::InterruptWindow
        );
        assert_eq!(classify(WHvRunVpExitReasonNone), ExitAction::Resume);
    }

    #[test]
    fn test_classify_unknown_reason_keeps_its_number() {
        assert_eq!(
            classify(WHvRunVpExitReasonX64Rdtsc),
            ExitAction::Vmm(VcpuExit::Unknown { reason: 4099 })
        );
        assert_eq!(
            classify(0x7777),
            ExitAction::Vmm(VcpuExit::Unknown { reason: 0x7777 })
        );
    }
}
