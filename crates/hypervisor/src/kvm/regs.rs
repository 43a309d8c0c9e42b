//! Conversions between the crate's register structs and kvm-bindings types. Nothing outside the
//! kvm module sees a kvm-bindings type.

use kvm_bindings::{
    kvm_cpuid_entry2, kvm_dtable, kvm_fpu, kvm_lapic_state, kvm_msr_entry, kvm_regs, kvm_segment,
    kvm_sregs, kvm_xsave, CpuId as KvmCpuId, KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
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

/// Byte offsets in the XSAVE area (Intel SDM vol. 1, 13.4: the legacy FXSAVE region, then the
/// header whose first word is XSTATE_BV).
mod xsave {
    pub const FCW: usize = 0;
    pub const FSW: usize = 2;
    pub const FTW: usize = 4;
    pub const FOP: usize = 6;
    pub const FIP: usize = 8;
    pub const FDP: usize = 16;
    pub const MXCSR: usize = 24;
    pub const ST: usize = 32;
    pub const XMM: usize = 160;
    pub const XSTATE_BV: usize = 512;
    /// XSTATE_BV bits: x87, SSE (XMM registers and MXCSR), AVX (which also keeps MXCSR).
    pub const X87: u64 = 1;
    pub const SSE: u64 = 2;
    pub const AVX: u64 = 4;
    /// The x87 control word after FNINIT, which a component in its init state holds.
    pub const FCW_INIT: u16 = 0x37f;
    /// MXCSR in its init state.
    pub const MXCSR_INIT: u32 = 0x1f80;
}

fn xsave_bytes(x: &kvm_xsave) -> Vec<u8> {
    x.region.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn read_array<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(&b[at..at + N]);
    out
}

/// Writes `f` into the legacy region of `x` and marks the x87 and SSE components as in use.
///
/// The mark is the point: `KVM_SET_FPU` writes the same bytes but leaves XSTATE_BV alone, so on
/// an XSAVE host the first `XRSTOR` into the guest puts every component whose bit is clear in its
/// init state. The guest then runs with zeroed XMM registers, and whether `KVM_GET_FPU` later
/// shows the host's values or the guest's zeros depends on whether KVM saved the guest FPU in
/// between.
pub(super) fn fpu_into_xsave(f: &Fpu, x: &mut kvm_xsave) {
    let mut b = xsave_bytes(x);
    b[xsave::FCW..xsave::FCW + 2].copy_from_slice(&f.fcw.to_le_bytes());
    b[xsave::FSW..xsave::FSW + 2].copy_from_slice(&f.fsw.to_le_bytes());
    b[xsave::FTW] = f.ftwx;
    b[xsave::FOP..xsave::FOP + 2].copy_from_slice(&f.last_opcode.to_le_bytes());
    b[xsave::FIP..xsave::FIP + 8].copy_from_slice(&f.last_ip.to_le_bytes());
    b[xsave::FDP..xsave::FDP + 8].copy_from_slice(&f.last_dp.to_le_bytes());
    b[xsave::MXCSR..xsave::MXCSR + 4].copy_from_slice(&f.mxcsr.to_le_bytes());
    for (i, st) in f.fpr.iter().enumerate() {
        b[xsave::ST + 16 * i..xsave::ST + 16 * (i + 1)].copy_from_slice(st);
    }
    for (i, xmm) in f.xmm.iter().enumerate() {
        b[xsave::XMM + 16 * i..xsave::XMM + 16 * (i + 1)].copy_from_slice(xmm);
    }
    let bv = u64::from_le_bytes(read_array(&b, xsave::XSTATE_BV)) | xsave::X87 | xsave::SSE;
    b[xsave::XSTATE_BV..xsave::XSTATE_BV + 8].copy_from_slice(&bv.to_le_bytes());
    for (word, chunk) in x.region.iter_mut().zip(b.chunks_exact(4)) {
        *word = u32::from_le_bytes(read_array(chunk, 0));
    }
}

/// The x87 and SSE state held in `x`; a component whose XSTATE_BV bit is clear is in its init
/// state, whatever its bytes say (Intel SDM vol. 1, 13.6).
pub(super) fn fpu_from_xsave(x: &kvm_xsave) -> Fpu {
    let b = xsave_bytes(x);
    let bv = u64::from_le_bytes(read_array(&b, xsave::XSTATE_BV));
    let mut f = Fpu {
        fcw: xsave::FCW_INIT,
        mxcsr: xsave::MXCSR_INIT,
        ..Default::default()
    };
    if bv & xsave::X87 != 0 {
        f.fcw = u16::from_le_bytes(read_array(&b, xsave::FCW));
        f.fsw = u16::from_le_bytes(read_array(&b, xsave::FSW));
        f.ftwx = b[xsave::FTW];
        f.last_opcode = u16::from_le_bytes(read_array(&b, xsave::FOP));
        f.last_ip = u64::from_le_bytes(read_array(&b, xsave::FIP));
        f.last_dp = u64::from_le_bytes(read_array(&b, xsave::FDP));
        for (i, st) in f.fpr.iter_mut().enumerate() {
            *st = read_array(&b, xsave::ST + 16 * i);
        }
    }
    if bv & xsave::SSE != 0 {
        for (i, xmm) in f.xmm.iter_mut().enumerate() {
            *xmm = read_array(&b, xsave::XMM + 16 * i);
        }
    }
    if bv & (xsave::SSE | xsave::AVX) != 0 {
        f.mxcsr = u32::from_le_bytes(read_array(&b, xsave::MXCSR));
    }
    f
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

    fn sample_fpu() -> Fpu {
        let mut fpu = Fpu {
            fcw: 0x27f,
            fsw: 0x3800,
            ftwx: 0x81,
            last_opcode: 0x7ff,
            last_ip: 0x1122_3344_5566_7788,
            last_dp: 0x8877_6655_4433_2211,
            mxcsr: 0x1fa0,
            ..Default::default()
        };
        fpu.fpr[7][9] = 0x40;
        fpu.xmm[1] = *b"lcow-hypervisor!";
        fpu.xmm[15][15] = 0xaa;
        fpu
    }

    #[test]
    fn test_fpu_xsave_roundtrip_keeps_every_field() {
        let fpu = sample_fpu();
        let mut x = kvm_xsave::default();
        fpu_into_xsave(&fpu, &mut x);
        assert_eq!(fpu_from_xsave(&x), fpu);
    }

    #[test]
    fn test_fpu_into_xsave_marks_x87_and_sse_in_use_keeps_other_bits() {
        let mut x = kvm_xsave::default();
        // XSTATE_BV is region word 128; AVX (bit 2) was in use before.
        x.region[128] = 0b100;
        x.region[200] = 0xdead_beef;
        fpu_into_xsave(&sample_fpu(), &mut x);
        assert_eq!(x.region[128], 0b111);
        assert_eq!(
            x.region[200], 0xdead_beef,
            "bytes past the header untouched"
        );
        // The legacy region's layout: FCW in the low half of word 0, XMM1 at byte 176.
        assert_eq!(x.region[0] & 0xffff, 0x27f);
        assert_eq!(x.region[44].to_le_bytes(), *b"lcow");
    }

    #[test]
    fn test_fpu_from_xsave_init_components_read_as_init_values() {
        let mut x = kvm_xsave::default();
        fpu_into_xsave(&sample_fpu(), &mut x);
        x.region[128] = 0;
        let fpu = fpu_from_xsave(&x);
        assert_eq!(
            fpu,
            Fpu {
                fcw: 0x37f,
                mxcsr: 0x1f80,
                ..Default::default()
            }
        );
        x.region[128] = 0b100;
        assert_eq!(fpu_from_xsave(&x).mxcsr, 0x1fa0, "AVX in use keeps MXCSR");
        assert_eq!(fpu_from_xsave(&x).xmm[1], [0; 16]);
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
