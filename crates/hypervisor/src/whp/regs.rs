//! Register tables: our [`Regs`] and [`Sregs`] as the `WHV_REGISTER_NAME` /
//! `WHV_REGISTER_VALUE` arrays that `WHvGetVirtualProcessorRegisters` and
//! `WHvSetVirtualProcessorRegisters` take, and back.
//!
//! Segment attributes are WHP's 16-bit field: type (bits 0-3), S (4), DPL (5-6), present (7),
//! AVL (12), L (13), D/B (14), G (15). WHP has no "unusable" bit: an unusable segment is
//! written as not present, and a segment that reads back not present is unusable.

use windows_sys::Win32::System::Hypervisor::*;

use crate::x86_64::{DescriptorTable, Fpu, Regs, Segment, Sregs};

/// The general purpose registers, in [`Regs`]' field order.
pub const REGS_NAMES: [WHV_REGISTER_NAME; 18] = [
    WHvX64RegisterRax,
    WHvX64RegisterRbx,
    WHvX64RegisterRcx,
    WHvX64RegisterRdx,
    WHvX64RegisterRsi,
    WHvX64RegisterRdi,
    WHvX64RegisterRsp,
    WHvX64RegisterRbp,
    WHvX64RegisterR8,
    WHvX64RegisterR9,
    WHvX64RegisterR10,
    WHvX64RegisterR11,
    WHvX64RegisterR12,
    WHvX64RegisterR13,
    WHvX64RegisterR14,
    WHvX64RegisterR15,
    WHvX64RegisterRip,
    WHvX64RegisterRflags,
];

/// The segment, table and control registers, in [`Sregs`]' field order.
pub const SREGS_NAMES: [WHV_REGISTER_NAME; 17] = [
    WHvX64RegisterCs,
    WHvX64RegisterDs,
    WHvX64RegisterEs,
    WHvX64RegisterFs,
    WHvX64RegisterGs,
    WHvX64RegisterSs,
    WHvX64RegisterTr,
    WHvX64RegisterLdtr,
    WHvX64RegisterGdtr,
    WHvX64RegisterIdtr,
    WHvX64RegisterCr0,
    WHvX64RegisterCr2,
    WHvX64RegisterCr3,
    WHvX64RegisterCr4,
    WHvX64RegisterCr8,
    WHvX64RegisterEfer,
    WHvX64RegisterApicBase,
];

fn reg64(v: u64) -> WHV_REGISTER_VALUE {
    WHV_REGISTER_VALUE { Reg64: v }
}

fn get64(v: &WHV_REGISTER_VALUE) -> u64 {
    // SAFETY: every value of this table was written (by us or by WHP) as a 64-bit register;
    // all its bit patterns are valid u64s.
    unsafe { v.Reg64 }
}

/// WHP's segment attribute field of `s`.
pub fn segment_attributes(s: &Segment) -> u16 {
    u16::from(s.type_ & 0xf)
        | u16::from(s.s) << 4
        | u16::from(s.dpl & 0x3) << 5
        | u16::from(s.present && !s.unusable) << 7
        | u16::from(s.avl) << 12
        | u16::from(s.l) << 13
        | u16::from(s.db) << 14
        | u16::from(s.g) << 15
}

fn segment_to_whp(s: &Segment) -> WHV_REGISTER_VALUE {
    let mut seg = WHV_X64_SEGMENT_REGISTER {
        Base: s.base,
        Limit: s.limit,
        Selector: s.selector,
        ..Default::default()
    };
    seg.Anonymous.Attributes = segment_attributes(s);
    WHV_REGISTER_VALUE { Segment: seg }
}

fn segment_from_whp(v: &WHV_REGISTER_VALUE) -> Segment {
    // SAFETY: the value was read as a segment register (SREGS_NAMES' segment entries); any
    // bit pattern is a valid struct of integers.
    let seg = unsafe { v.Segment };
    // SAFETY: as above, the attributes are a plain u16.
    let a = unsafe { seg.Anonymous.Attributes };
    let present = a & 1 << 7 != 0;
    Segment {
        base: seg.Base,
        limit: seg.Limit,
        selector: seg.Selector,
        type_: (a & 0xf) as u8,
        s: a & 1 << 4 != 0,
        dpl: ((a >> 5) & 0x3) as u8,
        present,
        avl: a & 1 << 12 != 0,
        l: a & 1 << 13 != 0,
        db: a & 1 << 14 != 0,
        g: a & 1 << 15 != 0,
        unusable: !present,
    }
}

fn table_to_whp(t: &DescriptorTable) -> WHV_REGISTER_VALUE {
    WHV_REGISTER_VALUE {
        Table: WHV_X64_TABLE_REGISTER {
            Pad: [0; 3],
            Limit: t.limit,
            Base: t.base,
        },
    }
}

fn table_from_whp(v: &WHV_REGISTER_VALUE) -> DescriptorTable {
    // SAFETY: the value was read as a table register; any bit pattern is valid.
    let t = unsafe { v.Table };
    DescriptorTable {
        base: t.Base,
        limit: t.Limit,
    }
}

/// `regs` as values for [`REGS_NAMES`].
pub fn regs_to_whp(r: &Regs) -> [WHV_REGISTER_VALUE; 18] {
    [
        r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rsp, r.rbp, r.r8, r.r9, r.r10, r.r11, r.r12,
        r.r13, r.r14, r.r15, r.rip, r.rflags,
    ]
    .map(reg64)
}

/// The registers read for [`REGS_NAMES`].
pub fn regs_from_whp(v: &[WHV_REGISTER_VALUE; 18]) -> Regs {
    let g = |i: usize| get64(&v[i]);
    Regs {
        rax: g(0),
        rbx: g(1),
        rcx: g(2),
        rdx: g(3),
        rsi: g(4),
        rdi: g(5),
        rsp: g(6),
        rbp: g(7),
        r8: g(8),
        r9: g(9),
        r10: g(10),
        r11: g(11),
        r12: g(12),
        r13: g(13),
        r14: g(14),
        r15: g(15),
        rip: g(16),
        rflags: g(17),
    }
}

/// `sregs` as values for [`SREGS_NAMES`].
pub fn sregs_to_whp(s: &Sregs) -> [WHV_REGISTER_VALUE; 17] {
    [
        segment_to_whp(&s.cs),
        segment_to_whp(&s.ds),
        segment_to_whp(&s.es),
        segment_to_whp(&s.fs),
        segment_to_whp(&s.gs),
        segment_to_whp(&s.ss),
        segment_to_whp(&s.tr),
        segment_to_whp(&s.ldt),
        table_to_whp(&s.gdt),
        table_to_whp(&s.idt),
        reg64(s.cr0),
        reg64(s.cr2),
        reg64(s.cr3),
        reg64(s.cr4),
        reg64(s.cr8),
        reg64(s.efer),
        reg64(s.apic_base),
    ]
}

/// The registers read for [`SREGS_NAMES`].
pub fn sregs_from_whp(v: &[WHV_REGISTER_VALUE; 17]) -> Sregs {
    Sregs {
        cs: segment_from_whp(&v[0]),
        ds: segment_from_whp(&v[1]),
        es: segment_from_whp(&v[2]),
        fs: segment_from_whp(&v[3]),
        gs: segment_from_whp(&v[4]),
        ss: segment_from_whp(&v[5]),
        tr: segment_from_whp(&v[6]),
        ldt: segment_from_whp(&v[7]),
        gdt: table_from_whp(&v[8]),
        idt: table_from_whp(&v[9]),
        cr0: get64(&v[10]),
        cr2: get64(&v[11]),
        cr3: get64(&v[12]),
        cr4: get64(&v[13]),
        cr8: get64(&v[14]),
        efer: get64(&v[15]),
        apic_base: get64(&v[16]),
    }
}

/// The x87/SSE registers, in [`Fpu`]'s order: ST0-7 (FpMmx0-7), the x87 control/status
/// block, the SSE control/status block, XMM0-15.
pub const FPU_NAMES: [WHV_REGISTER_NAME; 26] = [
    WHvX64RegisterFpMmx0,
    WHvX64RegisterFpMmx1,
    WHvX64RegisterFpMmx2,
    WHvX64RegisterFpMmx3,
    WHvX64RegisterFpMmx4,
    WHvX64RegisterFpMmx5,
    WHvX64RegisterFpMmx6,
    WHvX64RegisterFpMmx7,
    WHvX64RegisterFpControlStatus,
    WHvX64RegisterXmmControlStatus,
    WHvX64RegisterXmm0,
    WHvX64RegisterXmm1,
    WHvX64RegisterXmm2,
    WHvX64RegisterXmm3,
    WHvX64RegisterXmm4,
    WHvX64RegisterXmm5,
    WHvX64RegisterXmm6,
    WHvX64RegisterXmm7,
    WHvX64RegisterXmm8,
    WHvX64RegisterXmm9,
    WHvX64RegisterXmm10,
    WHvX64RegisterXmm11,
    WHvX64RegisterXmm12,
    WHvX64RegisterXmm13,
    WHvX64RegisterXmm14,
    WHvX64RegisterXmm15,
];

fn reg128(bytes: &[u8; 16]) -> WHV_REGISTER_VALUE {
    let mut low = [0u8; 8];
    let mut high = [0u8; 8];
    low.copy_from_slice(&bytes[..8]);
    high.copy_from_slice(&bytes[8..]);
    WHV_REGISTER_VALUE {
        Reg128: WHV_UINT128 {
            Anonymous: WHV_UINT128_0 {
                Low64: u64::from_le_bytes(low),
                High64: u64::from_le_bytes(high),
            },
        },
    }
}

fn get128(v: &WHV_REGISTER_VALUE) -> [u8; 16] {
    // SAFETY: every FPU value is 128 bits wide and any bit pattern is a valid pair of u64s.
    let (low, high) = unsafe { (v.Reg128.Anonymous.Low64, v.Reg128.Anonymous.High64) };
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&low.to_le_bytes());
    bytes[8..].copy_from_slice(&high.to_le_bytes());
    bytes
}

/// `fpu` as values for [`FPU_NAMES`]. An x87 register is the 80-bit value in the low 10
/// bytes of its 16, as in [`Fpu::fpr`]; the rest is reserved and written as zero.
pub fn fpu_to_whp(f: &Fpu) -> [WHV_REGISTER_VALUE; 26] {
    let mut out = [reg64(0); 26];
    for (slot, st) in out.iter_mut().zip(&f.fpr) {
        let mut bytes = *st;
        bytes[10..].fill(0);
        *slot = reg128(&bytes);
    }
    // FpControl, FpStatus, FpTag (abridged), reserved, LastFpOp, LastFpRip.
    let mut x87 = [0u8; 16];
    x87[0..2].copy_from_slice(&f.fcw.to_le_bytes());
    x87[2..4].copy_from_slice(&f.fsw.to_le_bytes());
    x87[4] = f.ftwx;
    x87[6..8].copy_from_slice(&f.last_opcode.to_le_bytes());
    x87[8..16].copy_from_slice(&f.last_ip.to_le_bytes());
    out[8] = reg128(&x87);
    // LastFpRdp, XmmStatusControl (MXCSR), XmmStatusControlMask (left 0: the default mask).
    let mut sse = [0u8; 16];
    sse[0..8].copy_from_slice(&f.last_dp.to_le_bytes());
    sse[8..12].copy_from_slice(&f.mxcsr.to_le_bytes());
    out[9] = reg128(&sse);
    for (slot, xmm) in out[10..].iter_mut().zip(&f.xmm) {
        *slot = reg128(xmm);
    }
    out
}

/// The registers read for [`FPU_NAMES`].
pub fn fpu_from_whp(v: &[WHV_REGISTER_VALUE; 26]) -> Fpu {
    let mut f = Fpu::default();
    for (st, value) in f.fpr.iter_mut().zip(&v[..8]) {
        let mut bytes = get128(value);
        bytes[10..].fill(0);
        *st = bytes;
    }
    let x87 = get128(&v[8]);
    f.fcw = u16::from_le_bytes([x87[0], x87[1]]);
    f.fsw = u16::from_le_bytes([x87[2], x87[3]]);
    f.ftwx = x87[4];
    f.last_opcode = u16::from_le_bytes([x87[6], x87[7]]);
    f.last_ip = u64::from_le_bytes(x87[8..16].try_into().unwrap_or([0; 8]));
    let sse = get128(&v[9]);
    f.last_dp = u64::from_le_bytes(sse[0..8].try_into().unwrap_or([0; 8]));
    f.mxcsr = u32::from_le_bytes(sse[8..12].try_into().unwrap_or([0; 4]));
    for (xmm, value) in f.xmm.iter_mut().zip(&v[10..]) {
        *xmm = get128(value);
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn long_mode_code() -> Segment {
        Segment {
            base: 0,
            limit: 0xffff_ffff,
            selector: 0x10,
            type_: 0xb,
            present: true,
            dpl: 0,
            db: false,
            s: true,
            l: true,
            g: true,
            avl: false,
            unusable: false,
        }
    }

    #[test]
    fn test_segment_attributes_long_mode_code_is_a09b() {
        assert_eq!(segment_attributes(&long_mode_code()), 0xa09b);
        let data = Segment {
            type_: 0x3,
            l: false,
            db: true,
            selector: 0x18,
            ..long_mode_code()
        };
        assert_eq!(segment_attributes(&data), 0xc093);
    }

    #[test]
    fn test_regs_round_trip_in_field_order() {
        let mut r = Regs::default();
        let fields = [
            &mut r.rax,
            &mut r.rbx,
            &mut r.rcx,
            &mut r.rdx,
            &mut r.rsi,
            &mut r.rdi,
            &mut r.rsp,
            &mut r.rbp,
            &mut r.r8,
            &mut r.r9,
            &mut r.r10,
            &mut r.r11,
            &mut r.r12,
            &mut r.r13,
            &mut r.r14,
            &mut r.r15,
            &mut r.rip,
            &mut r.rflags,
        ];
        for (i, f) in fields.into_iter().enumerate() {
            *f = 0x1111_0000_0000_0000 * (i as u64 % 15 + 1) + i as u64;
        }
        let values = regs_to_whp(&r);
        assert_eq!(get64(&values[0]), r.rax);
        assert_eq!(get64(&values[16]), r.rip);
        assert_eq!(regs_from_whp(&values), r);
        assert_eq!(REGS_NAMES[0], WHvX64RegisterRax);
        assert_eq!(REGS_NAMES[16], WHvX64RegisterRip);
    }

    #[test]
    fn test_sregs_round_trip_and_unusable_as_not_present() {
        let unusable = Segment {
            unusable: true,
            present: false,
            ..Segment::default()
        };
        let s = Sregs {
            cs: long_mode_code(),
            ds: unusable,
            es: unusable,
            fs: unusable,
            gs: unusable,
            ss: unusable,
            tr: Segment {
                type_: 0xb,
                present: true,
                limit: 0x67,
                ..Segment::default()
            },
            ldt: unusable,
            gdt: DescriptorTable {
                base: 0x500,
                limit: 0x1f,
            },
            idt: DescriptorTable { base: 0, limit: 0 },
            cr0: 0x8000_0011,
            cr2: 0,
            cr3: 0x9000,
            cr4: 0x20,
            cr8: 0,
            efer: 0x500,
            apic_base: 0xfee0_0900,
        };
        let back = sregs_from_whp(&sregs_to_whp(&s));
        assert_eq!(back, s);
        assert_eq!(SREGS_NAMES[8], WHvX64RegisterGdtr);
        assert_eq!(SREGS_NAMES[16], WHvX64RegisterApicBase);
    }

    #[test]
    fn test_fpu_roundtrip_keeps_every_field() {
        let mut f = Fpu {
            fcw: 0x37f,
            fsw: 0x1234,
            ftwx: 0x81,
            last_opcode: 0x7ff,
            last_ip: 0x1122_3344_5566_7788,
            last_dp: 0x8877_6655_4433_2211,
            mxcsr: 0x1f80,
            ..Fpu::default()
        };
        for (i, st) in f.fpr.iter_mut().enumerate() {
            st[..10].fill(i as u8 + 1);
        }
        for (i, xmm) in f.xmm.iter_mut().enumerate() {
            xmm.fill(0x40 + i as u8);
        }
        assert_eq!(fpu_from_whp(&fpu_to_whp(&f)), f);
    }

    #[test]
    fn test_fpu_reserved_bytes_of_st_dropped() {
        let mut f = Fpu::default();
        f.fpr[0] = [0xff; 16];
        let back = fpu_from_whp(&fpu_to_whp(&f));
        assert_eq!(back.fpr[0][..10], [0xff; 10]);
        assert_eq!(back.fpr[0][10..], [0; 6]);
    }
}
