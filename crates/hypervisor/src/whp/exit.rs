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

/// One port access, decoded from `WHV_X64_IO_PORT_ACCESS_CONTEXT` (its `AccessInfo` bits:
/// IsWrite 0, AccessSize 1-3, StringOp 4, RepPrefix 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoAccess {
    /// The port.
    pub port: u16,
    /// Bytes per access: 1, 2 or 4.
    pub size: usize,
    /// `out`/`outs` (else `in`/`ins`).
    pub write: bool,
    /// `ins`/`outs`: memory operands, so the instruction emulator completes it.
    pub string: bool,
}

impl IoAccess {
    /// Decodes the exit's access, or `None` if its size is not 1, 2 or 4 (a hostile or broken
    /// exit record: never trusted to size a buffer).
    pub fn decode(io: &WHV_X64_IO_PORT_ACCESS_CONTEXT) -> Option<Self> {
        // SAFETY: the access info is a plain u32 bit field.
        let bits = unsafe { io.AccessInfo.AsUINT32 };
        let size = ((bits >> 1) & 0x7) as usize;
        if !matches!(size, 1 | 2 | 4) {
            return None;
        }
        Some(Self {
            port: io.PortNumber,
            size,
            write: bits & 1 != 0,
            string: bits & (1 << 4) != 0,
        })
    }
}

/// The length of the instruction that exited (`WHV_VP_EXIT_CONTEXT`'s InstructionLength,
/// bits 0-3), to step RIP past it.
pub fn instruction_length(vp: &WHV_VP_EXIT_CONTEXT) -> u64 {
    u64::from(vp._bitfield & 0xf)
}

/// RAX after an `in` of `size` bytes that read `data`: a 4-byte read zero-extends into RAX,
/// as on hardware; 1- and 2-byte reads keep the bytes above them.
pub fn merge_in(rax: u64, data: &[u8], size: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes[..size.min(4)].copy_from_slice(&data[..size.min(4).min(data.len())]);
    let value = u64::from_le_bytes(bytes);
    match size {
        1 => (rax & !0xff) | value,
        2 => (rax & !0xffff) | value,
        _ => value,
    }
}

/// Whether an MSR exit is a write (`WHV_X64_MSR_ACCESS_INFO` bit 0).
pub fn msr_is_write(msr: &WHV_X64_MSR_ACCESS_CONTEXT) -> bool {
    // SAFETY: the access info is a plain u32 bit field.
    unsafe { msr.AccessInfo.AsUINT32 & 1 != 0 }
}

/// `WHV_EMULATOR_STATUS` bits, in order (bit 0 is success).
const EMULATOR_STATUS_BITS: [&str; 10] = [
    "EmulationSuccessful",
    "InternalEmulationFailure",
    "IoPortCallbackFailed",
    "MemoryCallbackFailed",
    "TranslateGvaPageCallbackFailed",
    "TranslateGvaPageCallbackGpaIsNotAligned",
    "GetVirtualProcessorRegistersCallbackFailed",
    "SetVirtualProcessorRegistersCallbackFailed",
    "InterruptCausedIntercept",
    "GuestCannotBeFaulted",
];

/// Whether the instruction emulator completed the instruction.
pub fn emulation_succeeded(status: u32) -> bool {
    status & 1 != 0
}

/// The names of the bits set in an emulator status, for error messages.
pub fn describe_emulator_status(status: u32) -> String {
    let names: Vec<&str> = EMULATOR_STATUS_BITS
        .iter()
        .enumerate()
        .filter(|(bit, _)| status & (1 << bit) != 0)
        .map(|(_, name)| *name)
        .collect();
    if names.is_empty() {
        format!("{status:#x}")
    } else {
        format!("{status:#x} ({})", names.join(", "))
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

    fn io_context(bits: u32, port: u16) -> WHV_X64_IO_PORT_ACCESS_CONTEXT {
        let mut io = WHV_X64_IO_PORT_ACCESS_CONTEXT::default();
        io.AccessInfo.AsUINT32 = bits;
        io.PortNumber = port;
        io
    }

    #[test]
    fn test_io_access_decodes_direction_size_and_string() {
        assert_eq!(
            IoAccess::decode(&io_context(1 | 1 << 1, 0x3f8)),
            Some(IoAccess {
                port: 0x3f8,
                size: 1,
                write: true,
                string: false
            })
        );
        assert_eq!(
            IoAccess::decode(&io_context(4 << 1 | 1 << 4 | 1 << 5, 0x60)),
            Some(IoAccess {
                port: 0x60,
                size: 4,
                write: false,
                string: true
            })
        );
    }

    #[test]
    fn test_io_access_bad_size_refused() {
        for size in [0u32, 3, 5, 7] {
            assert_eq!(
                IoAccess::decode(&io_context(size << 1, 0x80)),
                None,
                "{size}"
            );
        }
    }

    #[test]
    fn test_merge_in_keeps_upper_bytes_except_for_dwords() {
        let rax = 0x1122_3344_5566_7788;
        assert_eq!(merge_in(rax, &[0xaa], 1), 0x1122_3344_5566_77aa);
        assert_eq!(merge_in(rax, &[0xaa, 0xbb], 2), 0x1122_3344_5566_bbaa);
        assert_eq!(merge_in(rax, &[1, 2, 3, 4], 4), 0x0403_0201);
    }

    #[test]
    fn test_instruction_length_is_the_low_nibble() {
        let vp = WHV_VP_EXIT_CONTEXT {
            _bitfield: 0xa2,
            ..Default::default()
        };
        assert_eq!(instruction_length(&vp), 2);
    }

    #[test]
    fn test_emulator_status_names_its_bits() {
        assert!(emulation_succeeded(1));
        assert!(!emulation_succeeded(1 << 3));
        assert_eq!(
            describe_emulator_status(1 << 3 | 1 << 1),
            "0xa (InternalEmulationFailure, MemoryCallbackFailed)"
        );
        assert_eq!(describe_emulator_status(1 << 20), "0x100000");
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
