//! x86_64 vCPU state as plain structs, independent of any backend, and helpers over it.

use tracing::debug;

use crate::{Error, Result, Vcpu};

/// `IA32_ARCH_CAPABILITIES`: listed by KVM-PVM yet refused for any non-zero value, and it aborts
/// QEMU on such hosts (docs/architecture.md). Never set it without [`set_supported_msrs`].
pub const MSR_IA32_ARCH_CAPABILITIES: u32 = 0x10a;

/// The general purpose registers, instruction pointer and flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(missing_docs)] // the register names are the documentation
pub struct Regs {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rsp: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rip: u64,
    pub rflags: u64,
}

/// A segment register with its hidden descriptor part.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Segment {
    /// Base address.
    pub base: u64,
    /// Limit in bytes (already scaled by the granularity bit).
    pub limit: u32,
    /// The visible selector.
    pub selector: u16,
    /// The descriptor type field (4 bits; for example 0xb: execute/read code, accessed).
    pub type_: u8,
    /// Present.
    pub present: bool,
    /// Descriptor privilege level (0–3).
    pub dpl: u8,
    /// Default operation size (D/B): 32-bit when set.
    pub db: bool,
    /// Code or data descriptor (S) rather than a system descriptor.
    pub s: bool,
    /// 64-bit code segment (L).
    pub l: bool,
    /// Granularity: limit in 4 KiB units.
    pub g: bool,
    /// Available for system software.
    pub avl: bool,
    /// The segment is unusable (a null selector was loaded).
    pub unusable: bool,
}

/// A descriptor table register (GDTR or IDTR).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DescriptorTable {
    /// Linear base address.
    pub base: u64,
    /// Limit (size in bytes minus one).
    pub limit: u16,
}

/// Segment, descriptor table and control registers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(missing_docs)] // the register names are the documentation
pub struct Sregs {
    pub cs: Segment,
    pub ds: Segment,
    pub es: Segment,
    pub fs: Segment,
    pub gs: Segment,
    pub ss: Segment,
    pub tr: Segment,
    pub ldt: Segment,
    pub gdt: DescriptorTable,
    pub idt: DescriptorTable,
    pub cr0: u64,
    pub cr2: u64,
    pub cr3: u64,
    pub cr4: u64,
    /// The task priority register as CR8.
    pub cr8: u64,
    /// `IA32_EFER`.
    pub efer: u64,
    /// `IA32_APIC_BASE`.
    pub apic_base: u64,
}

/// The x87 and SSE state (the legacy FXSAVE area).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fpu {
    /// ST0–ST7 / MM0–MM7, 80 bits each in 16-byte slots.
    pub fpr: [[u8; 16]; 8],
    /// x87 control word.
    pub fcw: u16,
    /// x87 status word.
    pub fsw: u16,
    /// Abridged x87 tag word.
    pub ftwx: u8,
    /// Last x87 opcode.
    pub last_opcode: u16,
    /// Last x87 instruction pointer.
    pub last_ip: u64,
    /// Last x87 data pointer.
    pub last_dp: u64,
    /// XMM0–XMM15.
    pub xmm: [[u8; 16]; 16],
    /// SSE control and status.
    pub mxcsr: u32,
}

/// One model-specific register and its value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MsrEntry {
    /// The MSR index.
    pub index: u32,
    /// The value.
    pub data: u64,
}

/// What the guest's `cpuid` returns for one leaf (and sub-leaf).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(missing_docs)] // the register names are the documentation
pub struct CpuIdEntry {
    /// The leaf (EAX input).
    pub function: u32,
    /// The sub-leaf (ECX input), meaningful when `significant_index` is set.
    pub index: u32,
    /// The output depends on the sub-leaf.
    pub significant_index: bool,
    pub eax: u32,
    pub ebx: u32,
    pub ecx: u32,
    pub edx: u32,
}

/// A vCPU's CPUID table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuId {
    /// The entries, in any order.
    pub entries: Vec<CpuIdEntry>,
}

impl CpuId {
    /// The entry the guest sees for leaf `function`, sub-leaf `index`.
    pub fn get(&self, function: u32, index: u32) -> Option<&CpuIdEntry> {
        self.entries
            .iter()
            .find(|e| e.function == function && (!e.significant_index || e.index == index))
    }

    /// Replaces the entry for the same leaf and sub-leaf as `entry`, or adds it.
    pub fn set(&mut self, entry: CpuIdEntry) {
        let same = |e: &CpuIdEntry| {
            e.function == entry.function
                && e.significant_index == entry.significant_index
                && (!e.significant_index || e.index == entry.index)
        };
        match self.entries.iter_mut().find(|e| same(e)) {
            Some(e) => *e = entry,
            None => self.entries.push(entry),
        }
    }
}

/// Offset of the local APIC LVT LINT0 register.
pub const APIC_LVT_LINT0: usize = 0x350;
/// Offset of the local APIC LVT LINT1 register.
pub const APIC_LVT_LINT1: usize = 0x360;
/// LVT delivery mode ExtINT (the legacy PIC drives the pin), already shifted into place.
pub const APIC_MODE_EXTINT: u32 = 0x700;
/// LVT delivery mode NMI, already shifted into place.
pub const APIC_MODE_NMI: u32 = 0x400;
/// LVT mask bit.
pub const APIC_LVT_MASKED: u32 = 1 << 16;

/// The local APIC register page (the xAPIC layout: 32-bit registers at 16-byte strides).
#[derive(Clone, PartialEq, Eq)]
pub struct LapicState {
    /// The first 1 KiB of the register page.
    pub regs: [u8; 1024],
}

impl Default for LapicState {
    fn default() -> Self {
        Self { regs: [0; 1024] }
    }
}

impl std::fmt::Debug for LapicState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LapicState")
            .field("lvt_lint0", &self.reg(APIC_LVT_LINT0))
            .field("lvt_lint1", &self.reg(APIC_LVT_LINT1))
            .finish_non_exhaustive()
    }
}

impl LapicState {
    /// Reads the 32-bit register at `offset` (0 if out of range).
    pub fn reg(&self, offset: usize) -> u32 {
        self.regs
            .get(offset..offset + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_le_bytes)
    }

    /// Writes the 32-bit register at `offset` (ignored if out of range).
    pub fn set_reg(&mut self, offset: usize, value: u32) {
        if let Some(b) = self.regs.get_mut(offset..offset + 4) {
            b.copy_from_slice(&value.to_le_bytes());
        }
    }
}

/// What [`set_supported_msrs`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MsrReport {
    /// MSRs written.
    pub applied: Vec<u32>,
    /// MSRs left out: not in the host's list, or refused by the vCPU.
    pub skipped: Vec<u32>,
}

/// Writes those of `msrs` the host can set: entries whose index is not in `supported` (from
/// [`crate::Hypervisor::supported_msrs`]) are skipped, and so is any entry the vCPU refuses
/// (KVM-PVM lists [`MSR_IA32_ARCH_CAPABILITIES`] but refuses every non-zero value). Other
/// failures are returned.
pub fn set_supported_msrs<V: Vcpu + ?Sized>(
    vcpu: &mut V,
    supported: &[u32],
    msrs: &[MsrEntry],
) -> Result<MsrReport> {
    set_supported_with(supported, msrs, |batch| vcpu.set_msrs(batch))
}

fn set_supported_with(
    supported: &[u32],
    msrs: &[MsrEntry],
    mut set: impl FnMut(&[MsrEntry]) -> Result<()>,
) -> Result<MsrReport> {
    let mut report = MsrReport::default();
    let (mut pending, unknown): (Vec<MsrEntry>, Vec<MsrEntry>) =
        msrs.iter().partition(|m| supported.contains(&m.index));
    report.skipped.extend(unknown.iter().map(|m| m.index));
    while !pending.is_empty() {
        match set(&pending) {
            Ok(()) => {
                report.applied.extend(pending.iter().map(|m| m.index));
                break;
            }
            Err(Error::MsrNotAccepted { index, applied }) if applied < pending.len() => {
                report
                    .applied
                    .extend(pending[..applied].iter().map(|m| m.index));
                report.skipped.push(index);
                pending.drain(..=applied);
            }
            Err(e) => return Err(e),
        }
    }
    if !report.skipped.is_empty() {
        debug!(skipped = ?report.skipped, "skipped msrs the host cannot set");
    }
    Ok(report)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn msr(index: u32, data: u64) -> MsrEntry {
        MsrEntry { index, data }
    }

    #[test]
    fn test_set_supported_msrs_unlisted_skipped() {
        let mut seen = Vec::new();
        let report = set_supported_with(&[0x174, 0x277], &[msr(0x174, 1), msr(0x10a, 2)], |b| {
            seen.push(b.to_vec());
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, vec![vec![msr(0x174, 1)]]);
        assert_eq!(report.applied, vec![0x174]);
        assert_eq!(report.skipped, vec![0x10a]);
    }

    #[test]
    fn test_set_supported_msrs_refused_skipped_and_rest_applied() {
        let wanted = [msr(0x174, 1), msr(0x10a, 2), msr(0x277, 3)];
        let mut calls = 0;
        let report = set_supported_with(&[0x174, 0x10a, 0x277], &wanted, |batch| {
            calls += 1;
            match batch.iter().position(|m| m.index == 0x10a) {
                Some(applied) => Err(Error::MsrNotAccepted {
                    index: 0x10a,
                    applied,
                }),
                None => Ok(()),
            }
        })
        .unwrap();
        assert_eq!(calls, 2);
        assert_eq!(report.applied, vec![0x174, 0x277]);
        assert_eq!(report.skipped, vec![0x10a]);
    }

    #[test]
    fn test_set_supported_msrs_other_error_returned() {
        let err = set_supported_with(&[0x174], &[msr(0x174, 1)], |_| {
            Err(Error::SetMsrs(std::io::Error::other("boom")))
        });
        assert!(matches!(err, Err(Error::SetMsrs(_))));
    }

    #[test]
    fn test_cpuid_set_replaces_matching_leaf() {
        let mut cpuid = CpuId::default();
        cpuid.set(CpuIdEntry {
            function: 0x4000_0000,
            eax: 1,
            ..Default::default()
        });
        cpuid.set(CpuIdEntry {
            function: 0x4000_0000,
            eax: 2,
            ..Default::default()
        });
        cpuid.set(CpuIdEntry {
            function: 7,
            index: 1,
            significant_index: true,
            ebx: 9,
            ..Default::default()
        });
        assert_eq!(cpuid.entries.len(), 2);
        assert_eq!(cpuid.get(0x4000_0000, 5).map(|e| e.eax), Some(2));
        assert_eq!(cpuid.get(7, 1).map(|e| e.ebx), Some(9));
        assert_eq!(cpuid.get(7, 0), None);
    }

    #[test]
    fn test_lapic_reg_roundtrip_and_out_of_range_ignored() {
        let mut lapic = LapicState::default();
        lapic.set_reg(APIC_LVT_LINT0, APIC_MODE_EXTINT);
        lapic.set_reg(1022, 7);
        assert_eq!(lapic.reg(APIC_LVT_LINT0), 0x700);
        assert_eq!(lapic.reg(1022), 0);
    }
}
