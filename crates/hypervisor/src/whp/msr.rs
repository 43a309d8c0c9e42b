//! MSRs on WHP: the MSRs a VMM saves and restores, as the WHP registers that hold them
//! ([`MSR_REGISTERS`]), and the answers to the MSR exits the backend takes itself
//! ([`exit_read`], [`exit_write`]): the Hyper-V frequency and VP-index MSRs the CPUID offers
//! (`super::cpuid`), and every other MSR WHP leaves to the VMM reads as 0 and ignores writes,
//! as KVM does with `ignore_msrs`.

use windows_sys::Win32::System::Hypervisor::*;

/// HV_X64_MSR_GUEST_OS_ID.
pub const HV_GUEST_OS_ID: u32 = 0x4000_0000;
/// HV_X64_MSR_HYPERCALL.
pub const HV_HYPERCALL: u32 = 0x4000_0001;
/// HV_X64_MSR_VP_INDEX.
pub const HV_VP_INDEX: u32 = 0x4000_0002;
/// HV_X64_MSR_TSC_FREQUENCY (Hz).
pub const HV_TSC_FREQUENCY: u32 = 0x4000_0022;
/// HV_X64_MSR_APIC_FREQUENCY (Hz).
pub const HV_APIC_FREQUENCY: u32 = 0x4000_0023;

/// Each MSR a VMM may save and restore, and the WHP register that holds it.
pub const MSR_REGISTERS: [(u32, WHV_REGISTER_NAME); 14] = [
    (0x10, WHvX64RegisterTsc),
    (0x1b, WHvX64RegisterApicBase),
    (0x174, WHvX64RegisterSysenterCs),
    (0x175, WHvX64RegisterSysenterEsp),
    (0x176, WHvX64RegisterSysenterEip),
    (0x277, WHvX64RegisterPat),
    (0x2ff, WHvX64RegisterMsrMtrrDefType),
    (0xc000_0080, WHvX64RegisterEfer),
    (0xc000_0081, WHvX64RegisterStar),
    (0xc000_0082, WHvX64RegisterLstar),
    (0xc000_0083, WHvX64RegisterCstar),
    (0xc000_0084, WHvX64RegisterSfmask),
    (0xc000_0102, WHvX64RegisterKernelGsBase),
    (0xc000_0103, WHvX64RegisterTscAux),
];

/// The WHP register of MSR `index`, if it has one.
pub fn register_of(index: u32) -> Option<WHV_REGISTER_NAME> {
    MSR_REGISTERS
        .iter()
        .find(|(msr, _)| *msr == index)
        .map(|(_, name)| *name)
}

/// The frequencies the guest reads from the Hyper-V frequency MSRs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Frequencies {
    /// The TSC's, in Hz (`WHvCapabilityCodeProcessorClockFrequency`).
    pub tsc_hz: u64,
    /// The local APIC timer's, in Hz (`WHvCapabilityCodeInterruptClockFrequency`).
    pub apic_hz: u64,
}

/// The value of an MSR read that exited on vCPU `vp`.
pub fn exit_read(index: u32, vp: u32, frequencies: &Frequencies) -> u64 {
    match index {
        HV_TSC_FREQUENCY => frequencies.tsc_hz,
        HV_APIC_FREQUENCY => frequencies.apic_hz,
        HV_VP_INDEX => u64::from(vp),
        other => {
            tracing::debug!(msr = other, vp, "unhandled msr read: 0");
            0
        }
    }
}

/// Handles an MSR write that exited: every such write is dropped (the guest OS id and the
/// hypercall MSR included, as no hypercall page is offered).
pub fn exit_write(index: u32, vp: u32, value: u64) {
    tracing::debug!(msr = index, vp, value, "unhandled msr write: ignored");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_msr_registers_cover_the_vmm_boot_msrs_but_misc_enable() {
        // crates/vmm's boot MSRs: IA32_MISC_ENABLE has no WHP register, so the VMM skips it.
        for msr in [
            0x174,
            0x175,
            0x176,
            0xc000_0081,
            0xc000_0082,
            0xc000_0083,
            0xc000_0084,
            0xc000_0102,
            0x10,
            0x2ff,
        ] {
            assert!(register_of(msr).is_some(), "{msr:#x}");
        }
        assert_eq!(register_of(0x1a0), None);
    }

    #[test]
    fn test_msr_registers_unique() {
        for (i, (msr, name)) in MSR_REGISTERS.iter().enumerate() {
            for (other_msr, other_name) in &MSR_REGISTERS[i + 1..] {
                assert_ne!(msr, other_msr);
                assert_ne!(name, other_name);
            }
        }
    }

    #[test]
    fn test_exit_read_answers_frequencies_and_vp_index() {
        let f = Frequencies {
            tsc_hz: 2_500_000_000,
            apic_hz: 200_000_000,
        };
        assert_eq!(exit_read(HV_TSC_FREQUENCY, 0, &f), 2_500_000_000);
        assert_eq!(exit_read(HV_APIC_FREQUENCY, 0, &f), 200_000_000);
        assert_eq!(exit_read(HV_VP_INDEX, 3, &f), 3);
        assert_eq!(exit_read(HV_GUEST_OS_ID, 0, &f), 0);
        assert_eq!(exit_read(0x1234, 0, &f), 0);
        exit_write(HV_HYPERCALL, 0, 1);
    }
}
