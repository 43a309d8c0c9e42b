//! Hypervisor conformance (docs/architecture.md, tier 2): one generic body per behaviour, each running a
//! tiny hand-assembled x86 payload. A backend's test file calls every body with its hypervisor.
//!
//! Ports used by payloads stay clear of the devices an in-kernel irqchip/PIT emulates
//! (0x20-0x21, 0x40-0x43, 0x61, 0xa0-0xa1, 0x4d0-0x4d1) in the tests that create one.

pub mod harness;

use std::thread;
use std::time::{Duration, Instant};

use harness::{map, run_guest, run_to_hlt, Access, Guest, GuestRam, Until, Watchdog, CODE};
use lcow_base::Event;
use lcow_hypervisor::x86_64::{
    self, CpuIdEntry, Fpu, MsrEntry, Regs, APIC_LVT_LINT0, APIC_LVT_LINT1, APIC_MODE_EXTINT,
    APIC_MODE_NMI, MSR_IA32_ARCH_CAPABILITIES,
};
use lcow_hypervisor::{
    Capability, Datamatch, Error, Hypervisor, IoEventAddress, MpState, Vcpu, VcpuExit, Vm, VmEvents,
};

/// Real mode: `out` of a value the guest computes, `in` whose value the host supplies and the
/// guest echoes, 8- and 16-bit accesses, an immediate and a DX port, ending in `hlt`.
pub fn real_mode_port_io<H: Hypervisor>(hv: &H) {
    #[rustfmt::skip]
    let code = [
        0xb0, 0x12,       // mov al, 0x12
        0xb3, 0x30,       // mov bl, 0x30
        0x00, 0xd8,       // add al, bl            ; al = 0x42
        0xe6, 0x10,       // out 0x10, al
        0xe4, 0x11,       // in al, 0x11           ; host answers 0x5a
        0xe6, 0x12,       // out 0x12, al          ; echo it
        0xe5, 0x13,       // in ax, 0x13           ; host answers 0xbeef
        0x40,             // inc ax                ; 0xbef0
        0xe7, 0x14,       // out 0x14, ax
        0xba, 0xf8, 0x03, // mov dx, 0x3f8
        0xee,             // out dx, al            ; al = 0xf0
        0xf4,             // hlt
    ];
    let mut g = Guest::real_mode(hv, &code, false);

    let log = run_to_hlt(&mut g.vcpu, &[(0x11, 0x5a), (0x13, 0xbeef)]);

    assert_eq!(
        log,
        [
            Access::Out(0x10, vec![0x42]),
            Access::In(0x11, 1),
            Access::Out(0x12, vec![0x5a]),
            Access::In(0x13, 2),
            Access::Out(0x14, vec![0xf0, 0xbe]),
            Access::Out(0x3f8, vec![0xf0]),
        ]
    );
    assert!(matches!(
        g.vcpu.handle_io(&mut |_| {}),
        Err(Error::NoPendingIo)
    ));
}

/// MMIO: guest writes of 1, 2 and 4 bytes to unbacked addresses reach `handle_mmio` with the
/// address, size and data; guest reads get the callback's value (echoed to a port).
pub fn mmio_read_write<H: Hypervisor>(hv: &H) {
    #[rustfmt::skip]
    let code = [
        0xb8, 0xcd, 0xab,                   // mov ax, 0xabcd
        0xa3, 0x00, 0x90,                   // mov [0x9000], ax
        0xb0, 0x77,                         // mov al, 0x77
        0xa2, 0x10, 0x90,                   // mov [0x9010], al
        0x66, 0xb8, 0x78, 0x56, 0x34, 0x12, // mov eax, 0x12345678
        0x66, 0xa3, 0x40, 0x90,             // mov [0x9040], eax
        0xa1, 0x20, 0x90,                   // mov ax, [0x9020]      ; host answers 0x1234
        0xe7, 0x20,                         // out 0x20, ax
        0xa0, 0x30, 0x90,                   // mov al, [0x9030]      ; host answers 0x99
        0xe6, 0x21,                         // out 0x21, al
        0xf4,                               // hlt
    ];
    let mut g = Guest::real_mode(hv, &code, false);

    let log = run_to_hlt(&mut g.vcpu, &[(0x9020, 0x1234), (0x9030, 0x99)]);

    assert_eq!(
        log,
        [
            Access::MmioWrite(0x9000, vec![0xcd, 0xab]),
            Access::MmioWrite(0x9010, vec![0x77]),
            Access::MmioWrite(0x9040, vec![0x78, 0x56, 0x34, 0x12]),
            Access::MmioRead(0x9020, 2),
            Access::Out(0x20, vec![0x34, 0x12]),
            Access::MmioRead(0x9030, 1),
            Access::Out(0x21, vec![0x99]),
        ]
    );
    assert!(matches!(
        g.vcpu.handle_mmio(&mut |_| {}),
        Err(Error::NoPendingMmio)
    ));
}

/// Two memory slots: the guest reads a host-seeded value from a second slot at 0x10000 and
/// writes one back there; after the slot is removed the same accesses become MMIO. Overlapping
/// regions are refused.
pub fn two_memory_slots<H: Hypervisor>(hv: &H) {
    #[rustfmt::skip]
    let code = [
        0xb8, 0x00, 0x10,       // mov ax, 0x1000
        0x8e, 0xc0,             // mov es, ax            ; es base = 0x10000
        0x26, 0xa1, 0x00, 0x00, // mov ax, es:[0x0000]
        0xe7, 0x30,             // out 0x30, ax
        0x40,                   // inc ax
        0x26, 0xa3, 0x02, 0x00, // mov es:[0x0002], ax
        0xf4,                   // hlt
    ];
    // Declared before the guest, so dropped after the VM that maps them.
    let data = GuestRam::new(0x1000);
    let overlap = GuestRam::new(0x2000);
    let mut g = Guest::real_mode(hv, &code, false);
    data.write(0, &[0xa5, 0x5a]);
    let slot = map(&g.vm, &data, 0x10000, false);
    // SAFETY: `overlap` is live memory that outlives the VM.
    let refused = unsafe {
        g.vm.add_memory_region(overlap.region(0x1_0000 - 0x1000, false))
    };
    assert!(
        matches!(refused, Err(Error::OverlappingMemoryRegion { .. })),
        "{refused:?}"
    );

    let log = run_to_hlt(&mut g.vcpu, &[]);

    assert_eq!(log, [Access::Out(0x30, vec![0xa5, 0x5a])]);
    assert_eq!(data.read(2, 2), [0xa6, 0x5a]);

    // Act again with the slot gone: the same accesses now exit as MMIO.
    let removed = g.vm.remove_memory_region(slot).unwrap();
    assert_eq!(removed.guest_address, 0x10000);
    data.write(2, &[0, 0]);
    g.vcpu
        .set_regs(&Regs {
            rip: CODE,
            rflags: 0x2,
            ..Default::default()
        })
        .unwrap();

    let log = run_to_hlt(&mut g.vcpu, &[(0x10000, 0x0bad)]);

    assert_eq!(
        log,
        [
            Access::MmioRead(0x10000, 2),
            Access::Out(0x30, vec![0xad, 0x0b]),
            Access::MmioWrite(0x10002, vec![0xae, 0x0b]),
        ]
    );
    assert_eq!(data.read(2, 2), [0, 0]);
}

/// A read-only slot: guest reads come from memory, guest writes exit as MMIO and leave the host
/// memory unchanged.
pub fn read_only_slot<H: Hypervisor>(hv: &H) {
    if !hv.check_capability(Capability::ReadOnlyMemory) {
        eprintln!("SKIP: no read-only memory slots");
        return;
    }
    #[rustfmt::skip]
    let code = [
        0xb8, 0x00, 0x10,       // mov ax, 0x1000
        0x8e, 0xc0,             // mov es, ax            ; es base = 0x10000
        0x26, 0xa1, 0x00, 0x00, // mov ax, es:[0x0000]   ; from memory: no exit
        0xe7, 0x30,             // out 0x30, ax
        0x26, 0xa3, 0x02, 0x00, // mov es:[0x0002], ax   ; read-only: MMIO exit
        0xf4,                   // hlt
    ];
    let rom = GuestRam::new(0x1000); // declared first: dropped after the VM
    let mut g = Guest::real_mode(hv, &code, false);
    rom.write(0, &[0x34, 0x12, 0xee, 0xee]);
    map(&g.vm, &rom, 0x10000, true);

    let log = run_to_hlt(&mut g.vcpu, &[]);

    assert_eq!(
        log,
        [
            Access::Out(0x30, vec![0x34, 0x12]),
            Access::MmioWrite(0x10002, vec![0x34, 0x12]),
        ]
    );
    assert_eq!(rom.read(0, 4), [0x34, 0x12, 0xee, 0xee]);
}

/// Register set-up: general and segment registers set by the host are what the guest sees, and
/// `get_regs` after the run shows the guest's changes (64-bit values kept). The FPU state the
/// host sets is what the guest's FXSAVE stores (FCW, MXCSR, XMM1), and what the guest loads (XMM2)
/// is what the host reads back. (FXSAVE rather than single stores: KVM-PVM runs this real-mode code
/// through KVM's instruction emulator, which has FXSAVE, when CPUID says FXSR, and MOVUPS, but not
/// FNSTCW or STMXCSR.)
pub fn vcpu_register_setup<H: Hypervisor>(hv: &H) {
    #[rustfmt::skip]
    let code = [
        0xe7, 0x40,                   // out 0x40, ax          ; host set rax
        0x89, 0xd8,                   // mov ax, bx
        0xe7, 0x41,                   // out 0x41, ax          ; host set rbx
        0x8c, 0xd8,                   // mov ax, ds
        0xe7, 0x42,                   // out 0x42, ax          ; host set ds selector
        0xa1, 0x10, 0x00,             // mov ax, [0x0010]      ; ds base 0x2000: reads guest 0x2010
        0xe7, 0x43,                   // out 0x43, ax
        0x0f, 0xae, 0x06, 0x00, 0x31, // fxsave [0x3100]       ; guest 0x5100
        0x0f, 0x10, 0x16, 0x10, 0x30, // movups xmm2, [0x3010] ; guest 0x5010
        0xb9, 0x77, 0x77,             // mov cx, 0x7777
        0xf4,                         // hlt
    ];
    let mut g = Guest::real_mode(hv, &code, false);
    g.ram.write(0x2010, &[0xd4, 0xc3]);
    g.ram.write(0x5010, b"loaded-by-guest!");
    // The guest's CPUID says FXSR and SSE: KVM's instruction emulator checks it.
    g.vcpu.set_cpuid(&hv.supported_cpuid().unwrap()).unwrap();
    g.vcpu
        .set_regs(&Regs {
            rax: 0x1234,
            rbx: 0x5678,
            rcx: 0xdead_beef_0000_0000,
            rip: CODE,
            rflags: 0x2,
            ..Default::default()
        })
        .unwrap();
    let mut sregs = g.vcpu.get_sregs().unwrap();
    sregs.ds.selector = 0x0200;
    sregs.ds.base = 0x2000;
    sregs.cr4 |= 1 << 9; // OSFXSR: SSE instructions allowed
    g.vcpu.set_sregs(&sregs).unwrap();
    // Values other than the init ones, so a register the guest finds reset cannot pass.
    let mut fpu = Fpu {
        fcw: 0x27f,
        mxcsr: 0x1fa0,
        ..Default::default()
    };
    fpu.xmm[1] = *b"lcow-hypervisor!";
    g.vcpu.set_fpu(&fpu).unwrap();

    let log = run_to_hlt(&mut g.vcpu, &[]);

    assert_eq!(
        log,
        [
            Access::Out(0x40, vec![0x34, 0x12]),
            Access::Out(0x41, vec![0x78, 0x56]),
            Access::Out(0x42, vec![0x00, 0x02]),
            Access::Out(0x43, vec![0xd4, 0xc3]),
        ]
    );
    let regs = g.vcpu.get_regs().unwrap();
    assert_eq!(regs.rax, 0xc3d4);
    assert_eq!(regs.rbx, 0x5678);
    assert_eq!(regs.rcx, 0xdead_beef_0000_7777);
    assert_eq!(regs.rip, CODE + code.len() as u64, "rip after hlt");
    let sregs = g.vcpu.get_sregs().unwrap();
    assert_eq!((sregs.ds.selector, sregs.ds.base), (0x0200, 0x2000));
    // The guest's FXSAVE image: FCW at byte 0, MXCSR at 24, XMM1 at 176.
    let image = g.ram.read(0x5100, 512);
    assert_eq!(
        image[0..2],
        fpu.fcw.to_le_bytes(),
        "fcw as the guest saw it"
    );
    assert_eq!(
        image[24..28],
        fpu.mxcsr.to_le_bytes(),
        "mxcsr as the guest saw it"
    );
    assert_eq!(image[176..192], fpu.xmm[1], "xmm1 as the guest saw it");
    let got = g.vcpu.get_fpu().unwrap();
    assert_eq!(
        (got.fcw, got.mxcsr, got.xmm[1], &got.xmm[2]),
        (fpu.fcw, fpu.mxcsr, fpu.xmm[1], b"loaded-by-guest!"),
        "fpu state read back after the run"
    );
}

/// Long mode: host-built page tables and GDT; the guest uses 64-bit immediates and shifts,
/// reports through ports, does 8-byte MMIO and writes 8 bytes to RAM.
pub fn long_mode_io_and_mmio<H: Hypervisor>(hv: &H) {
    #[rustfmt::skip]
    let code = [
        0x48, 0xb8, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, // mov rax, 0x1122334455667788
        0x48, 0x89, 0xc3,                                           // mov rbx, rax
        0x48, 0xc1, 0xeb, 0x20,                                     // shr rbx, 32
        0xe7, 0x50,                                                 // out 0x50, eax
        0x89, 0xd8,                                                 // mov eax, ebx
        0xe7, 0x51,                                                 // out 0x51, eax
        0x48, 0xb8, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, // mov rax, 0x1122334455667788
        0x48, 0x89, 0x04, 0x25, 0x00, 0x80, 0x00, 0x00,             // mov [0x8000], rax     ; RAM
        0x48, 0x89, 0x04, 0x25, 0x00, 0x00, 0x00, 0x30,             // mov [0x30000000], rax ; MMIO
        0x48, 0x8b, 0x0c, 0x25, 0x08, 0x00, 0x00, 0x30,             // mov rcx, [0x30000008]
        0x89, 0xc8,                                                 // mov eax, ecx
        0xe7, 0x52,                                                 // out 0x52, eax
        0x48, 0xc1, 0xe9, 0x20,                                     // shr rcx, 32
        0x89, 0xc8,                                                 // mov eax, ecx
        0xe7, 0x53,                                                 // out 0x53, eax
        0xf4,                                                       // hlt
    ];
    let mut g = Guest::long_mode(hv, &code);

    let log = run_to_hlt(&mut g.vcpu, &[(0x3000_0008, 0x0102_0304_0506_0708)]);

    assert_eq!(
        log,
        [
            Access::Out(0x50, 0x5566_7788u32.to_le_bytes().to_vec()),
            Access::Out(0x51, 0x1122_3344u32.to_le_bytes().to_vec()),
            Access::MmioWrite(0x3000_0000, 0x1122_3344_5566_7788u64.to_le_bytes().to_vec()),
            Access::MmioRead(0x3000_0008, 8),
            Access::Out(0x52, 0x0506_0708u32.to_le_bytes().to_vec()),
            Access::Out(0x53, 0x0102_0304u32.to_le_bytes().to_vec()),
        ]
    );
    assert_eq!(
        g.ram.read(0x8000, 8),
        0x1122_3344_5566_7788u64.to_le_bytes()
    );
    let regs = g.vcpu.get_regs().unwrap();
    // `mov eax, ecx` zero-extends into rax.
    assert_eq!(
        (regs.rax, regs.rbx, regs.rcx),
        (0x0102_0304, 0x1122_3344, 0x0102_0304)
    );
    assert_eq!(regs.rip, CODE + code.len() as u64, "rip after hlt");
}

/// CPUID: what `set_cpuid` installs is what the guest's `cpuid` returns, for a leaf the host
/// changed (0x4000_0000) and one it passed through (leaf 0).
pub fn cpuid_in_guest<H: Hypervisor>(hv: &H) {
    #[rustfmt::skip]
    let code = [
        0xb8, 0x00, 0x00, 0x00, 0x40, // mov eax, 0x40000000
        0x31, 0xc9,                   // xor ecx, ecx
        0x0f, 0xa2,                   // cpuid
        0x89, 0xd8,                   // mov eax, ebx
        0xe7, 0x60,                   // out 0x60, eax
        0x89, 0xc8,                   // mov eax, ecx
        0xe7, 0x61,                   // out 0x61, eax
        0x89, 0xd0,                   // mov eax, edx
        0xe7, 0x62,                   // out 0x62, eax
        0x31, 0xc0,                   // xor eax, eax
        0x31, 0xc9,                   // xor ecx, ecx
        0x0f, 0xa2,                   // cpuid
        0x89, 0xd8,                   // mov eax, ebx
        0xe7, 0x63,                   // out 0x63, eax
        0xf4,                         // hlt
    ];
    let mut g = Guest::long_mode(hv, &code);
    let mut cpuid = hv.supported_cpuid().unwrap();
    let vendor_ebx = cpuid.get(0, 0).expect("leaf 0").ebx;
    let word = |s: &[u8; 4]| u32::from_le_bytes(*s);
    cpuid.set(CpuIdEntry {
        function: 0x4000_0000,
        eax: 0x4000_0001,
        ebx: word(b"Lcow"),
        ecx: word(b"Test"),
        edx: word(b"Cpu!"),
        ..Default::default()
    });
    g.vcpu.set_cpuid(&cpuid).unwrap();

    let log = run_to_hlt(&mut g.vcpu, &[]);

    assert_eq!(
        log,
        [
            Access::Out(0x60, b"Lcow".to_vec()),
            Access::Out(0x61, b"Test".to_vec()),
            Access::Out(0x62, b"Cpu!".to_vec()),
            Access::Out(0x63, vendor_ebx.to_le_bytes().to_vec()),
        ]
    );
}

/// MSRs: `set_supported_msrs` applies what the host takes, skips what it lacks or refuses
/// (an index no host has; `IA32_ARCH_CAPABILITIES` on KVM-PVM), and applied values read back.
pub fn msrs_filtered<H: Hypervisor>(hv: &H) {
    const UNKNOWN: u32 = 0xdead_0000;
    let mut g = Guest::real_mode(hv, &[0xf4], false);
    let supported = hv.supported_msrs().unwrap();
    let wanted = [
        MsrEntry {
            index: 0x174,
            data: 0x10,
        }, // IA32_SYSENTER_CS
        MsrEntry {
            index: 0x175,
            data: 0xffff_8000_1234_0000,
        }, // IA32_SYSENTER_ESP
        MsrEntry {
            index: MSR_IA32_ARCH_CAPABILITIES,
            data: 1,
        },
        MsrEntry {
            index: 0x277,
            data: 0x0007_0406_0007_0406,
        }, // IA32_PAT
        MsrEntry {
            index: 0xc000_0081,
            data: 0x0023_0010_0000_0000,
        }, // STAR
        MsrEntry {
            index: 0xc000_0082,
            data: 0xffff_ffff_8100_0000,
        }, // LSTAR
        MsrEntry {
            index: UNKNOWN,
            data: 1,
        },
        MsrEntry {
            index: 0xc000_0102,
            data: 0xffff_8880_0000_0000,
        }, // KERNEL_GS_BASE
    ];

    let report = x86_64::set_supported_msrs(&mut g.vcpu, &supported, &wanted).unwrap();

    eprintln!("msrs: {report:x?}");
    assert!(report.skipped.contains(&UNKNOWN));
    let mut all: Vec<u32> = report
        .applied
        .iter()
        .chain(&report.skipped)
        .copied()
        .collect();
    all.sort_unstable();
    let mut expected: Vec<u32> = wanted.iter().map(|m| m.index).collect();
    expected.sort_unstable();
    assert_eq!(all, expected, "every msr is applied or skipped, once");
    for index in [0x174, 0x277, 0xc000_0081, 0xc000_0082, 0xc000_0102] {
        assert!(report.applied.contains(&index), "{index:#x} not applied");
    }
    let read = g.vcpu.get_msrs(&report.applied).unwrap();
    for entry in read {
        let want = wanted.iter().find(|m| m.index == entry.index).unwrap();
        assert_eq!(entry.data, want.data, "msr {:#x}", entry.index);
    }
}

/// Kick: a kick before `run()` makes it return `Intr` without running the guest, once; a kick
/// from another thread stops a guest spinning in `jmp $`.
pub fn kick_stops_run<H: Hypervisor>(hv: &H) {
    #[rustfmt::skip]
    let code = [
        0xe6, 0x10, // out 0x10, al
        0xeb, 0xfe, // jmp $
    ];
    let mut g = Guest::real_mode(hv, &code, false);
    let kicker = g.vcpu.kicker();

    kicker.kick();
    kicker.kick();
    assert_eq!(g.vcpu.run().unwrap(), VcpuExit::Intr);
    assert_eq!(
        g.vcpu.run().unwrap(),
        VcpuExit::Io,
        "kicks were not consumed"
    );
    g.vcpu.handle_io(&mut |_| {}).unwrap();

    let _watchdog = Watchdog::start(kicker.clone());
    let delay = Duration::from_millis(50);
    let remote = kicker.clone();
    let start = Instant::now();
    let thread = thread::spawn(move || {
        thread::sleep(delay);
        remote.kick();
    });
    let exit = g.vcpu.run().unwrap();
    thread.join().unwrap();

    assert_eq!(exit, VcpuExit::Intr);
    assert!(start.elapsed() >= delay, "run returned before the kick");
    assert_eq!(
        g.vcpu.get_regs().unwrap().rip,
        CODE + 2,
        "guest spins at jmp $"
    );
}

/// The common part of the interrupt tests: a real-mode guest programs the in-kernel PIC (vector
/// base 0x20, only IRQ 4 unmasked), says "ready" on port 0xe0, then `sti; hlt`. `raise` runs on
/// "ready"; the IRQ 4 handler reports its vector on 0xe1 and finishes on 0xe2.
pub fn pic_interrupt<H: Hypervisor>(hv: &H, raise: &mut dyn FnMut(&H::Vm)) {
    if !hv.check_capability(Capability::IrqChip) {
        eprintln!("SKIP: no in-kernel irqchip");
        return;
    }
    const HANDLER: u16 = 0x1100;
    #[rustfmt::skip]
    let code = [
        0xb0, 0x11, // mov al, 0x11    ; ICW1: edge, cascade, ICW4 follows
        0xe6, 0x20, // out 0x20, al
        0xb0, 0x20, // mov al, 0x20    ; ICW2: vectors 0x20-0x27
        0xe6, 0x21, // out 0x21, al
        0xb0, 0x04, // mov al, 0x04    ; ICW3: slave on IRQ 2
        0xe6, 0x21, // out 0x21, al
        0xb0, 0x01, // mov al, 0x01    ; ICW4: 8086 mode
        0xe6, 0x21, // out 0x21, al
        0xb0, 0xef, // mov al, 0xef    ; OCW1: mask all but IRQ 4
        0xe6, 0x21, // out 0x21, al
        0xe6, 0xe0, // out 0xe0, al    ; ready: the host raises IRQ 4
        0xfb,       // sti
        0xf4,       // hlt             ; the in-kernel irqchip wakes us
        0xeb, 0xfe, // jmp $           ; not reached
    ];
    #[rustfmt::skip]
    let handler = [
        0xb0, 0x24, // mov al, 0x24
        0xe6, 0xe1, // out 0xe1, al    ; report the vector
        0xb0, 0x20, // mov al, 0x20    ; OCW2: non-specific EOI
        0xe6, 0x20, // out 0x20, al
        0xe6, 0xe2, // out 0xe2, al    ; done
        0xeb, 0xfe, // jmp $
    ];
    let mut g = Guest::real_mode(hv, &code, true);
    g.ram.write(usize::from(HANDLER), &handler);
    g.ram
        .write(4 * 0x24, &[HANDLER as u8, (HANDLER >> 8) as u8, 0, 0]); // IVT: 0000:1100
    g.vcpu
        .set_regs(&Regs {
            rip: CODE,
            rflags: 0x2,
            rsp: 0x7000,
            ..Default::default()
        })
        .unwrap();
    let mut lapic = g.vcpu.get_lapic().unwrap();
    lapic.set_reg(APIC_LVT_LINT0, APIC_MODE_EXTINT); // the PIC drives LINT0
    lapic.set_reg(APIC_LVT_LINT1, APIC_MODE_NMI);
    g.vcpu.set_lapic(&lapic).unwrap();
    let vm = &g.vm;

    let log = run_guest(&mut g.vcpu, Until::Out(0xe2), &mut |access| {
        if matches!(access, Access::Out(0xe0, _)) {
            raise(vm);
        }
        0
    });

    assert_eq!(
        log,
        [
            Access::Out(0xe0, vec![0xef]),
            Access::Out(0xe1, vec![0x24]),
            Access::Out(0xe2, vec![0x20]),
        ]
    );
    assert_eq!(
        g.vcpu.get_lapic().unwrap().reg(APIC_LVT_LINT0),
        APIC_MODE_EXTINT
    );
}

/// `set_irq_line` pulses an edge-triggered line of the in-kernel PIC into the guest.
pub fn irq_line_interrupts<H: Hypervisor>(hv: &H) {
    pic_interrupt(hv, &mut |vm| {
        vm.set_irq_line(4, true).unwrap();
        vm.set_irq_line(4, false).unwrap();
    });
}

/// Halt state: with an in-kernel irqchip, `hlt` stays inside the hypervisor; a kick makes `run()`
/// return `Intr` while the vCPU stays `Halted`, and `is_halted_with_interrupts_disabled` tells
/// `cli; hlt` (what Linux leaves after `poweroff -f` without ACPI) from `sti; hlt` (idle). An
/// application processor the guest never started reads `Uninitialized`.
pub fn halt_state<H: Hypervisor>(hv: &H) {
    if !hv.check_capability(Capability::IrqChip) {
        eprintln!("SKIP: no in-kernel irqchip");
        return;
    }
    for (set_if, disabled) in [(0xfa, true), (0xfb, false)] {
        #[rustfmt::skip]
        let code = [
            0xe6, 0xe0, // out 0xe0, al
            set_if,     // cli or sti
            0xf4,       // hlt
            0xeb, 0xfe, // jmp $
        ];
        let mut g = Guest::real_mode(hv, &code, true);
        assert_eq!(g.vcpu.run().unwrap(), VcpuExit::Io);
        g.vcpu.handle_io(&mut |_| {}).unwrap();
        assert_eq!(g.vcpu.get_mp_state().unwrap(), MpState::Runnable);
        assert!(!g.vcpu.is_halted_with_interrupts_disabled().unwrap());
        let kicker = g.vcpu.kicker();
        let _watchdog = Watchdog::start(kicker.clone());
        let thread = thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            kicker.kick();
        });

        let exit = g.vcpu.run().unwrap();
        thread.join().unwrap();

        assert_eq!(exit, VcpuExit::Intr, "hlt must not leave the hypervisor");
        assert_eq!(g.vcpu.get_mp_state().unwrap(), MpState::Halted);
        assert_eq!(
            g.vcpu.is_halted_with_interrupts_disabled().unwrap(),
            disabled,
            "after {set_if:#x}; hlt"
        );
        assert_eq!(g.vcpu.get_regs().unwrap().rip, CODE + 4, "rip after hlt");
        let ap = g.vm.create_vcpu(1).unwrap();
        assert_eq!(ap.get_mp_state().unwrap(), MpState::Uninitialized);
    }
}

/// [`VmEvents`]: signalling an event the VM handed out for IRQ 4 interrupts the guest (as
/// [`pic_interrupt`] checks), with no VMM call on the way.
pub fn irq_event_interrupts<H: Hypervisor>(hv: &H)
where
    H::Vm: VmEvents,
{
    let mut event = None;
    pic_interrupt(hv, &mut |vm: &H::Vm| {
        assert!(vm.check_capability(Capability::Irqfd));
        let event = event.get_or_insert_with(|| vm.irq_event(4).unwrap());
        event.signal().unwrap();
    });
}

/// [`VmEvents`]: a guest write matching an io event signals it without an exit; a write to
/// another port, or of another value, exits as usual; after unregistering, it exits again.
pub fn io_event_signals_without_exit<H: Hypervisor>(hv: &H)
where
    H::Vm: VmEvents,
{
    #[rustfmt::skip]
    let code = [
        0xb0, 0x07, // mov al, 7
        0xe6, 0xe4, // out 0xe4, al    ; matches the io event: no exit
        0xe6, 0xe5, // out 0xe5, al    ; exits
        0xb0, 0x08, // mov al, 8
        0xe6, 0xe4, // out 0xe4, al    ; datamatch 7 only: exits
        0xf4,       // hlt
    ];
    let mut g = Guest::real_mode(hv, &code, false);
    assert!(g.vm.check_capability(Capability::Ioeventfd));
    let event = Event::new().unwrap();
    let port = IoEventAddress::Pio(0xe4);
    g.vm.register_io_event(&event, port, Datamatch::U8(7))
        .unwrap();

    let log = run_to_hlt(&mut g.vcpu, &[]);

    assert_eq!(
        log,
        [Access::Out(0xe5, vec![7]), Access::Out(0xe4, vec![8])]
    );
    // An eventfd counts its signals: exactly the one matching write (Linux). A Windows event
    // only says it was signalled.
    #[cfg(target_os = "linux")]
    {
        use lcow_base::linux::EventExt;
        assert_eq!(
            event.eventfd().read().unwrap(),
            1,
            "only the matching write"
        );
    }
    #[cfg(not(target_os = "linux"))]
    assert!(
        event.reset().unwrap(),
        "the matching write signalled the event"
    );
    assert!(!event.reset().unwrap());
    g.vm.unregister_io_event(&event, port, Datamatch::U8(7))
        .unwrap();
}
