//! Conversions between the crate's register structs and kvm-bindings types. Nothing outside the
//! kvm module sees a kvm-bindings type.

use kvm_bindings::{
    kvm_cpuid_entry2, kvm_dtable, kvm_fpu, kvm_lapic_state, kvm_msr_entry, kvm_regs, kvm_segment,
    kvm_sregs, CpuId as KvmCpuId, KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
};

use crate::x86_64::{
    CpuId, CpuIdEntry, DescriptorTable, Fpu, LapicState, MsrEntry, Regs, Segment, Sregs,
};

pub(super) fn regs_to_kvm(r: &Regs) -> kvm_regs {
    kvm_regs {
        rax: r.rax,
        rbx: r.rbx,
        rcx: r.rcx,
        rdx: r.rdx,
        rsi: r.rsi,
        rdi: r.rdi,
        rsp: r.rsp,
        rbp: r.rbp,
        r8: r.r8,
        r9: r.r9,
        r10: r.r10,
        r11: r.r11,
        r12: r.r12,
        r13: r.r13,
        r14: r.r14,
        r15: r.r15,
        rip: r.rip,
        rflags: r.rflags,
    }
}

pub(super) fn regs_from_kvm(r: &kvm_regs) -> Regs {
    Regs {
        rax: r.rax,
        rbx: r.rbx,
        rcx: r.rcx,
        rdx: r.rdx,
        rsi: r.rsi,
        rdi: r.rdi,
        rsp: r.rsp,
        rbp: r.rbp,
        r8: r.r8,
        r9: r.r9,
        r10: r.r10,
        r11: r.r11,
        r12: r.r12,
        r13: r.r13,
        r14: r.r14,
        r15: r.r15,
        rip: r.rip,
        rflags: r.rflags,
    }
}

fn segment_to_kvm(s: &Segment) -> kvm_segment {
    kvm_segment {
        base: s.base,
        limit: s.limit,
        selector: s.selector,
        type_: s.type_,
        present: s.present.into(),
        dpl: s.dpl,
        db: s.db.into(),
        s: s.s.into(),
        l: s.l.into(),
        g: s.g.into(),
        avl: s.avl.into(),
        unusable: s.unusable.into(),
        padding: 0,
    }
}

fn segment_from_kvm(s: &kvm_segment) -> Segment {
    Segment {
        base: s.base,
        limit: s.limit,
        selector: s.selector,
        type_: s.type_,
        present: s.present != 0,
        dpl: s.dpl,
        db: s.db != 0,
        s: s.s != 0,
        l: s.l != 0,
        g: s.g != 0,
        avl: s.avl != 0,
        unusable: s.unusable != 0,
    }
}

fn dtable_to_kvm(d: &DescriptorTable) -> kvm_dtable {
    kvm_dtable {
        base: d.base,
        limit: d.limit,
        padding: [0; 3],
    }
}

fn dtable_from_kvm(d: &kvm_dtable) -> DescriptorTable {
    DescriptorTable {
        base: d.base,
        limit: d.limit,
    }
}

/// Writes `s` into `k`, keeping the KVM-only `interrupt_bitmap` of `k`.
pub(super) fn sregs_into_kvm(s: &Sregs, k: &mut kvm_sregs) {
    k.cs = segment_to_kvm(&s.cs);
    k.ds = segment_to_kvm(&s.ds);
    k.es = segment_to_kvm(&s.es);
    k.fs = segment_to_kvm(&s.fs);
    k.gs = segment_to_kvm(&s.gs);
    k.ss = segment_to_kvm(&s.ss);
    k.tr = segment_to_kvm(&s.tr);
    k.ldt = segment_to_kvm(&s.ldt);
    k.gdt = dtable_to_kvm(&s.gdt);
    k.idt = dtable_to_kvm(&s.idt);
    k.cr0 = s.cr0;
    k.cr2 = s.cr2;
    k.cr3 = s.cr3;
    k.cr4 = s.cr4;
    k.cr8 = s.cr8;
    k.efer = s.efer;
    k.apic_base = s.apic_base;
}

pub(super) fn sregs_from_kvm(k: &kvm_sregs) -> Sregs {
    Sregs {
        cs: segment_from_kvm(&k.cs),
        ds: segment_from_kvm(&k.ds),
        es: segment_from_kvm(&k.es),
        fs: segment_from_kvm(&k.fs),
        gs: segment_from_kvm(&k.gs),
        ss: segment_from_kvm(&k.ss),
        tr: segment_from_kvm(&k.tr),
        ldt: segment_from_kvm(&k.ldt),
        gdt: dtable_from_kvm(&k.gdt),
        idt: dtable_from_kvm(&k.idt),
        cr0: k.cr0,
        cr2: k.cr2,
        cr3: k.cr3,
        cr4: k.cr4,
        cr8: k.cr8,
        efer: k.efer,
        apic_base: k.apic_base,
    }
}

pub(super) fn fpu_to_kvm(f: &Fpu) -> kvm_fpu {
    kvm_fpu {
        fpr: f.fpr,
        fcw: f.fcw,
        fsw: f.fsw,
        ftwx: f.ftwx,
        last_opcode: f.last_opcode,
        last_ip: f.last_ip,
        last_dp: f.last_dp,
        xmm: f.xmm,
        mxcsr: f.mxcsr,
        ..Default::default()
    }
}

pub(super) fn fpu_from_kvm(f: &kvm_fpu) -> Fpu {
    Fpu {
        fpr: f.fpr,
        fcw: f.fcw,
        fsw: f.fsw,
        ftwx: f.ftwx,
        last_opcode: f.last_opcode,
        last_ip: f.last_ip,
        last_dp: f.last_dp,
        xmm: f.xmm,
        mxcsr: f.mxcsr,
    }
}

pub(super) fn msr_to_kvm(m: &MsrEntry) -> kvm_msr_entry {
    kvm_msr_entry {
        index: m.index,
        data: m.data,
        ..Default::default()
    }
}

pub(super) fn cpuid_entry_to_kvm(e: &CpuIdEntry) -> kvm_cpuid_entry2 {
    kvm_cpuid_entry2 {
        function: e.function,
        index: e.index,
        flags: if e.significant_index {
            KVM_CPUID_FLAG_SIGNIFCANT_INDEX
        } else {
            0
        },
        eax: e.eax,
        ebx: e.ebx,
        ecx: e.ecx,
        edx: e.edx,
        ..Default::default()
    }
}

pub(super) fn cpuid_from_kvm(c: &KvmCpuId) -> CpuId {
    let entries = c
        .as_slice()
        .iter()
        .map(|e| CpuIdEntry {
            function: e.function,
            index: e.index,
            significant_index: e.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX != 0,
            eax: e.eax,
            ebx: e.ebx,
            ecx: e.ecx,
            edx: e.edx,
        })
        .collect();
    CpuId { entries }
}

pub(super) fn lapic_to_kvm(l: &LapicState) -> kvm_lapic_state {
    kvm_lapic_state {
        regs: l.regs.map(|b| b as libc::c_char),
    }
}

pub(super) fn lapic_from_kvm(l: &kvm_lapic_state) -> LapicState {
    LapicState {
        regs: l.regs.map(|b| b as u8),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn test_regs_roundtrip_keeps_every_field() {
        let regs = Regs {
            rax: 1,
            rbx: 2,
            rcx: 3,
            rdx: 4,
            rsi: 5,
            rdi: 6,
            rsp: 7,
            rbp: 8,
            r8: 9,
            r9: 10,
            r10: 11,
            r11: 12,
            r12: 13,
            r13: 14,
            r14: 15,
            r15: 16,
            rip: 17,
            rflags: 18,
        };
        assert_eq!(regs_from_kvm(&regs_to_kvm(&regs)), regs);
    }

    #[test]
    fn test_sregs_roundtrip_keeps_interrupt_bitmap() {
        let seg = Segment {
            base: 0x1000,
            limit: 0xffff_ffff,
            selector: 0x8,
            type_: 0xb,
            present: true,
            dpl: 0,
            db: false,
            s: true,
            l: true,
            g: true,
            avl: false,
            unusable: false,
        };
        let sregs = Sregs {
            cs: seg,
            tr: Segment {
                type_: 0xb,
                present: true,
                ..Default::default()
            },
            gdt: DescriptorTable {
                base: 0x500,
                limit: 23,
            },
            cr0: 0x8000_0011,
            cr3: 0x2000,
            cr4: 0x20,
            efer: 0x500,
            apic_base: 0xfee0_0900,
            ..Default::default()
        };
        let mut kvm = kvm_sregs {
            interrupt_bitmap: [1, 2, 3, 4],
            ..Default::default()
        };
        sregs_into_kvm(&sregs, &mut kvm);
        assert_eq!(kvm.interrupt_bitmap, [1, 2, 3, 4]);
        assert_eq!(kvm.cs.l, 1);
        assert_eq!(sregs_from_kvm(&kvm), sregs);
    }

    #[test]
    fn test_fpu_roundtrip_keeps_xmm() {
        let mut fpu = Fpu {
            fcw: 0x37f,
            mxcsr: 0x1f80,
            ..Default::default()
        };
        fpu.xmm[15][3] = 0xaa;
        assert_eq!(fpu_from_kvm(&fpu_to_kvm(&fpu)), fpu);
    }

    #[test]
    fn test_cpuid_roundtrip_keeps_significant_index() {
        let entries = [
            CpuIdEntry {
                function: 7,
                index: 1,
                significant_index: true,
                eax: 1,
                ..Default::default()
            },
            CpuIdEntry {
                function: 0x4000_0000,
                ebx: 0x4b4d_564b,
                ..Default::default()
            },
        ];
        let kvm: Vec<_> = entries.iter().map(cpuid_entry_to_kvm).collect();
        let kvm = KvmCpuId::from_entries(&kvm).unwrap();
        assert_eq!(cpuid_from_kvm(&kvm).entries, entries);
    }

    #[test]
    fn test_lapic_roundtrip_high_bytes() {
        let mut lapic = LapicState::default();
        lapic.regs[0x350] = 0xff;
        lapic.regs[0x3ff] = 0x80;
        assert_eq!(lapic_from_kvm(&lapic_to_kvm(&lapic)), lapic);
    }
}
