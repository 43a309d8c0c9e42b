//! The CPUID a vCPU shows the guest: the host's supported CPUID with the topology made ours
//! (one package, `count` cores, one thread each), the vCPU's own APIC id, and the local APIC's
//! TSC-deadline timer where the host emulates it. The KVM paravirt
//! leaves (0x4000_0000 …) are left as the host offers them.

use lcow_hypervisor::x86_64::{CpuId, CpuIdEntry};

/// Leaf 1 ECX: running under a hypervisor.
const LEAF1_ECX_HYPERVISOR: u32 = 1 << 31;
/// Leaf 1 ECX: the local APIC timer has a TSC-deadline mode.
const LEAF1_ECX_TSC_DEADLINE: u32 = 1 << 24;
/// Leaf 1 EDX: hyper-threading (more than one logical processor per package).
const LEAF1_EDX_HTT: u32 = 1 << 28;
/// Leaf 0xB/0x1F level types.
const LEVEL_TYPE_SMT: u32 = 1;
const LEVEL_TYPE_CORE: u32 = 2;

/// Bits needed for `count` ids: ceil(log2(count)).
fn id_bits(count: u32) -> u32 {
    count.max(1).next_power_of_two().trailing_zeros()
}

/// Offers the local APIC's TSC-deadline timer (the host emulates it: `Capability::TscDeadlineTimer`).
/// The supported CPUID never sets the bit itself; without it the guest calibrates the APIC
/// timer against the PIT at boot and programs it by its count register, as on old hardware.
pub fn offer_tsc_deadline(cpuid: &mut CpuId) {
    for entry in cpuid.entries.iter_mut().filter(|e| e.function == 1) {
        entry.ecx |= LEAF1_ECX_TSC_DEADLINE;
    }
}

/// Patches `cpuid` for vCPU `id` of `count`.
pub fn patch_cpuid(cpuid: &mut CpuId, id: u32, count: u32) {
    let count = count.max(1);
    let is_amd = cpuid
        .get(0, 0)
        .is_some_and(|e| e.ebx == u32::from_le_bytes(*b"Auth"));
    for entry in &mut cpuid.entries {
        match entry.function {
            1 => {
                // EBX[31:24] initial APIC id, [23:16] logical processors per package,
                // [15:8] CLFLUSH line size in 8-byte units.
                entry.ebx = (id << 24) | ((count & 0xff) << 16) | (8 << 8) | (entry.ebx & 0xff);
                entry.ecx |= LEAF1_ECX_HYPERVISOR;
                if count > 1 {
                    entry.edx |= LEAF1_EDX_HTT;
                } else {
                    entry.edx &= !LEAF1_EDX_HTT;
                }
            }
            4 => {
                // EAX[31:26] cores per package - 1; [25:14] threads sharing this cache - 1
                // (caches up to L2 are per core, L3 is shared by the package).
                let level = (entry.eax >> 5) & 0x7;
                let sharing = if level >= 3 { count - 1 } else { 0 };
                entry.eax = (entry.eax & 0x3fff) | ((sharing & 0xfff) << 14) | ((count - 1) << 26);
            }
            0xb | 0x1f => patch_extended_topology(entry, id, count),
            0x8000_0008 if is_amd => {
                // ECX[15:12] APIC id bits for cores, [7:0] cores per package - 1.
                entry.ecx = (entry.ecx & !0xf0ff) | (id_bits(count) << 12) | (count - 1);
            }
            0x8000_001e if is_amd => {
                // EAX extended APIC id, EBX[15:8] threads per core - 1 and [7:0] core id.
                entry.eax = id;
                entry.ebx = (entry.ebx & !0xffff) | (id & 0xff);
                entry.ecx &= !0xff; // node 0
            }
            _ => {}
        }
    }
}

/// Leaf 0xB / 0x1F: sub-leaf 0 is the thread level (one thread per core), sub-leaf 1 the core
/// level (`count` cores), and EDX is always the x2APIC id.
fn patch_extended_topology(entry: &mut CpuIdEntry, id: u32, count: u32) {
    let (eax, ebx, ecx) = match entry.index {
        0 => (0, 1, LEVEL_TYPE_SMT << 8),
        1 => (id_bits(count), count, (LEVEL_TYPE_CORE << 8) | 1),
        n => (0, 0, n & 0xff),
    };
    entry.eax = eax;
    entry.ebx = ebx;
    entry.ecx = ecx;
    entry.edx = id;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> CpuId {
        let leaf = |function, index, significant_index| CpuIdEntry {
            function,
            index,
            significant_index,
            ..Default::default()
        };
        CpuId {
            entries: vec![
                CpuIdEntry {
                    ebx: u32::from_le_bytes(*b"Genu"),
                    ..leaf(0, 0, false)
                },
                CpuIdEntry {
                    ebx: 0x0a0b_0c0d,
                    edx: LEAF1_EDX_HTT,
                    ..leaf(1, 0, false)
                },
                CpuIdEntry {
                    eax: (1 << 5) | 0x1, // L1 data
                    ..leaf(4, 0, true)
                },
                CpuIdEntry {
                    eax: (3 << 5) | 0x3, // L3 unified
                    ..leaf(4, 3, true)
                },
                leaf(0xb, 0, true),
                leaf(0xb, 1, true),
                leaf(0xb, 2, true),
                CpuIdEntry {
                    eax: 0x4000_0001,
                    ebx: 0x4b4d_564b,
                    ..leaf(0x4000_0000, 0, false)
                },
            ],
        }
    }

    #[test]
    fn test_patch_cpuid_leaf1_apic_id_and_hypervisor_bit() {
        let mut cpuid = host();

        patch_cpuid(&mut cpuid, 1, 2);

        let leaf1 = cpuid.get(1, 0).copied().unwrap_or_default();
        assert_eq!(leaf1.ebx >> 24, 1, "initial apic id");
        assert_eq!((leaf1.ebx >> 16) & 0xff, 2, "logical processors");
        assert_eq!(leaf1.ebx & 0xff, 0x0d, "brand index kept");
        assert_ne!(leaf1.ecx & LEAF1_ECX_HYPERVISOR, 0);
    }

    #[test]
    fn test_offer_tsc_deadline_sets_leaf1_bit_only() {
        let mut cpuid = host();
        let before = cpuid.clone();

        offer_tsc_deadline(&mut cpuid);

        let leaf1 = cpuid.get(1, 0).copied().unwrap_or_default();
        assert_ne!(leaf1.ecx & LEAF1_ECX_TSC_DEADLINE, 0);
        let before1 = before.get(1, 0).copied().unwrap_or_default();
        assert_eq!(leaf1.ecx & !LEAF1_ECX_TSC_DEADLINE, before1.ecx);
        assert_eq!(
            cpuid.entries[0], before.entries[0],
            "other leaves untouched"
        );
    }

    #[test]
    fn test_patch_cpuid_single_vcpu_clears_htt() {
        let mut cpuid = host();
        patch_cpuid(&mut cpuid, 0, 1);
        assert_eq!(cpuid.get(1, 0).map(|e| e.edx & LEAF1_EDX_HTT), Some(0));
    }

    #[test]
    fn test_patch_cpuid_leaf_b_x2apic_ids_and_levels() {
        let mut cpuid = host();

        patch_cpuid(&mut cpuid, 3, 4);

        let smt = cpuid.get(0xb, 0).copied().unwrap_or_default();
        let core = cpuid.get(0xb, 1).copied().unwrap_or_default();
        let end = cpuid.get(0xb, 2).copied().unwrap_or_default();
        assert_eq!((smt.eax, smt.ebx, smt.ecx >> 8, smt.edx), (0, 1, 1, 3));
        assert_eq!((core.eax, core.ebx, core.ecx, core.edx), (2, 4, 0x201, 3));
        assert_eq!((end.ebx, end.ecx >> 8, end.edx), (0, 0, 3));
    }

    #[test]
    fn test_patch_cpuid_leaf4_cores_per_package() {
        let mut cpuid = host();

        patch_cpuid(&mut cpuid, 0, 4);

        let l1 = cpuid.get(4, 0).copied().unwrap_or_default();
        let l3 = cpuid.get(4, 3).copied().unwrap_or_default();
        assert_eq!(l1.eax >> 26, 3);
        assert_eq!((l1.eax >> 14) & 0xfff, 0, "l1 per core");
        assert_eq!((l3.eax >> 14) & 0xfff, 3, "l3 shared");
        assert_eq!(l3.eax & 0x3fff, (3 << 5) | 0x3, "cache description kept");
    }

    #[test]
    fn test_patch_cpuid_kvm_leaves_untouched() {
        let mut cpuid = host();
        let before = cpuid.get(0x4000_0000, 0).copied();

        patch_cpuid(&mut cpuid, 1, 2);

        assert_eq!(cpuid.get(0x4000_0000, 0).copied(), before);
    }

    #[test]
    fn test_id_bits_rounds_up() {
        assert_eq!([1, 2, 3, 4, 5, 16, 17].map(id_bits), [0, 1, 2, 2, 3, 4, 5]);
    }
}
