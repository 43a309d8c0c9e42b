//! The CPUID a WHP guest is offered ([`supported_cpuid`]) and the leaves that exit to the VMM
//! so each vCPU answers from its own table ([`CPUID_EXIT_LEAVES`]).
//!
//! The starting point is the host processor's own CPUID (WHP runs the guest on it), with what
//! the partition does not give a guest taken out: VMX/SVM, MONITOR/MWAIT, x2APIC (the local APIC
//! is emulated in xAPIC mode) and the TSC-deadline timer. WHP emulates no PIT, so the guest
//! learns its TSC and local APIC timer frequencies the way Linux's Hyper-V guest code reads them
//! (arch/x86/kernel/cpu/mshyperv.c, built with `CONFIG_HYPERVISOR_GUEST`): "Microsoft Hv"
//! hypervisor leaves that offer the frequency MSRs, which the backend answers on MSR exits
//! ([`super::msr`]). No hypercall page is offered: the leaves advertise the hypercall and
//! VP-index MSRs only because Linux requires those bits before it reads any other, and a guest
//! without `CONFIG_HYPERV` (ours) never uses the hypercall MSR.

use crate::x86_64::{CpuId, CpuIdEntry};

/// The first hypervisor leaf.
pub const HV_VENDOR_LEAF: u32 = 0x4000_0000;
/// The last hypervisor leaf offered (Linux requires at least 0x4000_0005).
pub const HV_MAX_LEAF: u32 = 0x4000_0005;
/// Leaf 0x4000_0003 EAX: the hypercall MSRs (bit 5), VP_INDEX (bit 6), the frequency MSRs
/// (bit 11).
const HV_FEATURES_EAX: u32 = 1 << 5 | 1 << 6 | 1 << 11;
/// Leaf 0x4000_0003 EDX: the frequency MSRs are available (bit 8).
const HV_FEATURES_EDX: u32 = 1 << 8;
/// Leaf 0x4000_0001 EAX: the interface signature "Hv#1".
const HV_INTERFACE_SIGNATURE: u32 = u32::from_le_bytes(*b"Hv#1");

/// Leaf 1 ECX bits a WHP guest is not given: MONITOR (3), VMX (5), SMX (6), x2APIC (21),
/// TSC-deadline (24).
const LEAF1_ECX_REMOVED: u32 = 1 << 3 | 1 << 5 | 1 << 6 | 1 << 21 | 1 << 24;
/// Leaf 1 ECX: running under a hypervisor.
const LEAF1_ECX_HYPERVISOR: u32 = 1 << 31;
/// Leaf 0x8000_0001 ECX: SVM (2).
const EXT1_ECX_REMOVED: u32 = 1 << 2;

/// The leaves whose CPUID exits to the VMM: those the VMM's topology patch and this module
/// change (the rest read as WHP's default, which is the host's filtered).
pub const CPUID_EXIT_LEAVES: [u32; 14] = [
    0x0,
    0x1,
    0x4,
    0xb,
    0x1f,
    HV_VENDOR_LEAF,
    0x4000_0001,
    0x4000_0002,
    0x4000_0003,
    0x4000_0004,
    HV_MAX_LEAF,
    0x8000_0001,
    0x8000_0008,
    0x8000_001e,
];

/// Leaves whose sub-leaf (ECX) selects the answer.
fn has_subleaves(function: u32) -> bool {
    matches!(
        function,
        0x4 | 0x7
            | 0xb
            | 0xd
            | 0xf
            | 0x10
            | 0x12
            | 0x14
            | 0x17
            | 0x18
            | 0x1d
            | 0x1e
            | 0x1f
            | 0x20
            | 0x23
            | 0x24
            | 0x8000_001d
            | 0x8000_0020
            | 0x8000_0026
    )
}

/// At most this many sub-leaves per leaf.
const MAX_SUBLEAVES: u32 = 64;
/// At most this many basic and extended leaves (a hostile or odd CPUID cannot grow the table).
const MAX_LEAVES: u32 = 0x40;

/// A source of CPUID answers: the host's instruction, or a table in tests.
pub trait CpuidSource {
    /// `cpuid` with EAX = `function`, ECX = `index`: `[eax, ebx, ecx, edx]`.
    fn cpuid(&self, function: u32, index: u32) -> [u32; 4];
}

/// The host processor's `cpuid` instruction.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostCpuid;

impl CpuidSource for HostCpuid {
    fn cpuid(&self, function: u32, index: u32) -> [u32; 4] {
        // `cpuid` exists on every x86_64 processor and has no side effects.
        let r = std::arch::x86_64::__cpuid_count(function, index);
        [r.eax, r.ebx, r.ecx, r.edx]
    }
}

fn entry(function: u32, index: u32, significant_index: bool, r: [u32; 4]) -> CpuIdEntry {
    CpuIdEntry {
        function,
        index,
        significant_index,
        eax: r[0],
        ebx: r[1],
        ecx: r[2],
        edx: r[3],
    }
}

/// Adds leaves `first ..= last` of `source` (bounded by [`MAX_LEAVES`]) to `out`.
fn add_range(source: &dyn CpuidSource, first: u32, last: u32, out: &mut Vec<CpuIdEntry>) {
    let last = last.min(first + MAX_LEAVES - 1);
    for function in first..=last {
        if !has_subleaves(function) {
            out.push(entry(function, 0, false, source.cpuid(function, 0)));
            continue;
        }
        for (index, r) in subleaves(source, function) {
            out.push(entry(function, index, true, r));
        }
    }
}

/// The sub-leaves of `function` that mean something, by each leaf's own end rule (at most
/// [`MAX_SUBLEAVES`]).
fn subleaves(source: &dyn CpuidSource, function: u32) -> Vec<(u32, [u32; 4])> {
    let first = source.cpuid(function, 0);
    let mut out = vec![(0, first)];
    match function {
        // Leaf 7: EAX of sub-leaf 0 is the last sub-leaf.
        0x7 => {
            for index in 1..=first[0].min(MAX_SUBLEAVES - 1) {
                out.push((index, source.cpuid(function, index)));
            }
        }
        // Leaf 0xd: sub-leaf 1, then one per state component in sub-leaf 0's EDX:EAX bitmap.
        0xd => {
            let components = u64::from(first[0]) | u64::from(first[3]) << 32;
            for index in 1..MAX_SUBLEAVES {
                if index == 1 || components & (1 << index) != 0 {
                    out.push((index, source.cpuid(function, index)));
                }
            }
        }
        _ => {
            for index in 1..MAX_SUBLEAVES {
                let r = source.cpuid(function, index);
                let end = match function {
                    // Cache parameters: a null cache type ends the list.
                    0x4 | 0x8000_001d => r[0] & 0x1f == 0,
                    // Topology: the first invalid level ends it (and is kept, as a terminator).
                    0xb | 0x1f => {
                        out.push((index, r));
                        (r[2] >> 8) & 0xff == 0
                    }
                    _ => r == [0; 4],
                };
                if end {
                    break;
                }
                if !matches!(function, 0xb | 0x1f) {
                    out.push((index, r));
                }
            }
        }
    }
    out
}

/// The CPUID a WHP guest may be given (see the module documentation).
pub fn supported_cpuid(source: &dyn CpuidSource) -> CpuId {
    let mut entries = Vec::new();
    let max_basic = source.cpuid(0, 0)[0];
    add_range(source, 0, max_basic, &mut entries);
    let max_ext = source.cpuid(0x8000_0000, 0)[0];
    if max_ext >= 0x8000_0000 {
        add_range(source, 0x8000_0000, max_ext, &mut entries);
    }
    for e in &mut entries {
        match e.function {
            1 => {
                e.ecx = (e.ecx & !LEAF1_ECX_REMOVED) | LEAF1_ECX_HYPERVISOR;
            }
            // MONITOR/MWAIT's parameters: nothing, as the feature is gone.
            5 => *e = entry(5, 0, false, [0; 4]),
            0x8000_0001 => e.ecx &= !EXT1_ECX_REMOVED,
            _ => {}
        }
    }
    let signature = |s: &[u8; 4]| u32::from_le_bytes(*s);
    entries.extend([
        entry(
            HV_VENDOR_LEAF,
            0,
            false,
            [
                HV_MAX_LEAF,
                signature(b"Micr"),
                signature(b"osof"),
                signature(b"t Hv"),
            ],
        ),
        entry(0x4000_0001, 0, false, [HV_INTERFACE_SIGNATURE, 0, 0, 0]),
        entry(0x4000_0002, 0, false, [0; 4]),
        entry(
            0x4000_0003,
            0,
            false,
            [HV_FEATURES_EAX, 0, 0, HV_FEATURES_EDX],
        ),
        entry(0x4000_0004, 0, false, [0; 4]),
        // Implementation limits: the most virtual and logical processors.
        entry(HV_MAX_LEAF, 0, false, [64, 64, 0, 0]),
    ]);
    CpuId { entries }
}

/// The answer to a guest's `cpuid` with EAX = `function`, ECX = `index`: the vCPU's table if it
/// has the leaf, else WHP's default result (`default`, from the exit).
pub fn answer(table: &CpuId, function: u32, index: u32, default: [u32; 4]) -> [u32; 4] {
    match table.get(function, index) {
        Some(e) => [e.eax, e.ebx, e.ecx, e.edx],
        None => default,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A processor with three basic leaves, leaf 4 with two caches and extended leaves to
    /// 0x8000_0001.
    struct Table(HashMap<(u32, u32), [u32; 4]>);

    impl CpuidSource for Table {
        fn cpuid(&self, function: u32, index: u32) -> [u32; 4] {
            self.0.get(&(function, index)).copied().unwrap_or([0; 4])
        }
    }

    fn table() -> Table {
        Table(HashMap::from([
            ((0, 0), [4, 1, 2, 3]),
            ((1, 0), [0x806e9, 0, u32::MAX, u32::MAX]),
            ((4, 0), [0x121, 1, 2, 3]),
            ((4, 1), [0x122, 1, 2, 3]),
            ((0x8000_0000, 0), [0x8000_0001, 0, 0, 0]),
            ((0x8000_0001, 0), [0, 0, u32::MAX, 0]),
        ]))
    }

    #[test]
    fn test_supported_cpuid_removes_what_whp_does_not_give_and_marks_the_hypervisor() {
        let cpuid = supported_cpuid(&table());
        let leaf1 = cpuid
            .get(1, 0)
            .copied()
            .unwrap_or_else(|| panic!("no leaf 1"));
        assert_eq!(leaf1.ecx & LEAF1_ECX_REMOVED, 0);
        assert_ne!(leaf1.ecx & LEAF1_ECX_HYPERVISOR, 0);
        let ext1 = cpuid
            .get(0x8000_0001, 0)
            .copied()
            .unwrap_or_else(|| panic!("no leaf 0x8000_0001"));
        assert_eq!(ext1.ecx & EXT1_ECX_REMOVED, 0);
    }

    #[test]
    fn test_supported_cpuid_keeps_subleaves_until_the_first_empty_one() {
        let cpuid = supported_cpuid(&table());
        let leaf4: Vec<u32> = cpuid
            .entries
            .iter()
            .filter(|e| e.function == 4)
            .map(|e| e.index)
            .collect();
        assert_eq!(leaf4, [0, 1]);
        assert!(cpuid.get(4, 1).is_some_and(|e| e.significant_index));
    }

    #[test]
    fn test_supported_cpuid_offers_the_hyperv_frequency_msrs() {
        let cpuid = supported_cpuid(&table());
        let vendor = cpuid
            .get(HV_VENDOR_LEAF, 0)
            .copied()
            .unwrap_or_else(|| panic!());
        let mut name = Vec::new();
        for r in [vendor.ebx, vendor.ecx, vendor.edx] {
            name.extend_from_slice(&r.to_le_bytes());
        }
        assert_eq!(name, b"Microsoft Hv");
        // Linux takes the leaves only if the maximum is at least 0x4000_0005.
        assert!(vendor.eax >= 0x4000_0005);
        let features = cpuid
            .get(0x4000_0003, 0)
            .copied()
            .unwrap_or_else(|| panic!());
        assert_ne!(features.eax & 1 << 11, 0, "HV_ACCESS_FREQUENCY_MSRS");
        assert_ne!(
            features.edx & 1 << 8,
            0,
            "HV_FEATURE_FREQUENCY_MSRS_AVAILABLE"
        );
        for leaf in HV_VENDOR_LEAF..=HV_MAX_LEAF {
            assert!(CPUID_EXIT_LEAVES.contains(&leaf), "{leaf:#x} must exit");
        }
    }

    #[test]
    fn test_supported_cpuid_is_bounded_for_a_huge_maximum_leaf() {
        let mut t = table();
        t.0.insert((0, 0), [u32::MAX >> 1, 0, 0, 0]);
        t.0.insert((0x8000_0000, 0), [u32::MAX, 0, 0, 0]);
        let cpuid = supported_cpuid(&t);
        assert!(
            cpuid.entries.len() < 4 * MAX_LEAVES as usize,
            "{}",
            cpuid.entries.len()
        );
    }

    #[test]
    fn test_answer_from_the_table_else_the_default() {
        let cpuid = supported_cpuid(&table());
        assert_eq!(answer(&cpuid, 4, 1, [9; 4]), [0x122, 1, 2, 3]);
        assert_eq!(answer(&cpuid, 0x7777, 0, [9; 4]), [9; 4]);
    }

    #[test]
    fn test_host_cpuid_runs() {
        // The real instruction (under Wine too): leaf 0's vendor is 12 printable bytes.
        let r = HostCpuid.cpuid(0, 0);
        let mut vendor = Vec::new();
        for v in [r[1], r[3], r[2]] {
            vendor.extend_from_slice(&v.to_le_bytes());
        }
        assert!(
            vendor.iter().all(|b| b.is_ascii_graphic() || *b == b' '),
            "{vendor:?}"
        );
        assert!(supported_cpuid(&HostCpuid).get(1, 0).is_some());
    }
}
