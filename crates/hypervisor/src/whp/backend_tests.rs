//! The WHP backend's traits on the fake function table ([`super::fake`]): what each trait
//! method asks of WHP, and how the run loop answers the exits that are its own. These run on
//! Windows and under Wine; what only real WHP can show is listed in docs/windows.md.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use lcow_base::Event;
use windows_sys::Win32::System::Hypervisor::*;

use super::fake::FakePlatform;
use super::irq::IOAPIC_BASE;
use super::msr::{HV_APIC_FREQUENCY, HV_TSC_FREQUENCY};
use super::vm::WhpHypervisor;
use crate::x86_64::{CpuId, CpuIdEntry, LapicState, MsrEntry};
use crate::{
    Capability, Datamatch, Error, Hypervisor, IoEventAddress, IoOperation, MemSlot, MemoryRegion,
    MpState, Vcpu, VcpuExit, Vm, VmEvents,
};

const TSC_HZ: u64 = 2_400_000_000;
const APIC_HZ: u64 = 1_000_000_000;

fn setup(vcpus: u32) -> (Arc<FakePlatform>, super::WhpVm) {
    let fake = Arc::new(FakePlatform::with_capabilities(&[
        (WHvCapabilityCodeProcessorClockFrequency, TSC_HZ),
        (WHvCapabilityCodeInterruptClockFrequency, APIC_HZ),
    ]));
    let hv = WhpHypervisor::with_platform(fake.clone(), vcpus).unwrap();
    let vm = hv.create_vm().unwrap();
    (fake, vm)
}

fn exit(reason: WHV_RUN_VP_EXIT_REASON, rip: u64, len: u8) -> WHV_RUN_VP_EXIT_CONTEXT {
    let mut e = WHV_RUN_VP_EXIT_CONTEXT {
        ExitReason: reason,
        ..Default::default()
    };
    e.VpContext.Rip = rip;
    e.VpContext._bitfield = len & 0xf;
    e
}

/// A port access exit: `bits` is the access info (IsWrite 0, AccessSize 1-3, StringOp 4).
fn io_exit(port: u16, bits: u32, rax: u64) -> WHV_RUN_VP_EXIT_CONTEXT {
    let mut e = exit(WHvRunVpExitReasonX64IoPortAccess, 0x1000, 1);
    let mut io = WHV_X64_IO_PORT_ACCESS_CONTEXT {
        PortNumber: port,
        Rax: rax,
        InstructionByteCount: 1,
        ..Default::default()
    };
    io.AccessInfo.AsUINT32 = bits;
    e.Anonymous.IoPortAccess = io;
    e
}

fn mmio_exit(gpa: u64, write: bool) -> WHV_RUN_VP_EXIT_CONTEXT {
    let mut e = exit(WHvRunVpExitReasonMemoryAccess, 0x2000, 3);
    let mut m = WHV_MEMORY_ACCESS_CONTEXT {
        Gpa: gpa,
        InstructionByteCount: 3,
        ..Default::default()
    };
    m.AccessInfo.AsUINT32 = if write {
        WHvMemoryAccessWrite as u32
    } else {
        WHvMemoryAccessRead as u32
    };
    e.Anonymous.MemoryAccess = m;
    e
}

const OUT_BYTE: u32 = 1 | 1 << 1;
const IN_WORD: u32 = 2 << 1;
const IN_DWORD: u32 = 4 << 1;

#[test]
fn test_create_vm_sets_up_the_partition_with_the_cpuid_exit_leaves() {
    let (fake, vm) = setup(2);
    let calls = fake.calls();
    assert_eq!(calls[0], "create");
    assert!(
        calls.iter().any(|c| c.starts_with("property 7 0x1003 ")),
        "{calls:?}"
    );
    assert!(calls.contains(&"setup 7".to_owned()));
    drop(vm);
    assert_eq!(fake.calls().last().unwrap(), "delete 7");
}

#[test]
fn test_capabilities_no_pit_and_no_tsc_deadline() {
    let (_fake, vm) = setup(1);
    assert!(vm.check_capability(Capability::ReadOnlyMemory));
    assert!(vm.check_capability(Capability::Irqfd));
    assert!(!vm.check_capability(Capability::Pit));
    assert!(!vm.check_capability(Capability::TscDeadlineTimer));
    assert!(matches!(vm.create_pit(), Err(Error::Unsupported(_))));
    vm.create_irq_chip().unwrap();
}

#[test]
fn test_vcpu_count_is_bounded() {
    let fake = Arc::new(FakePlatform::default());
    assert!(WhpHypervisor::with_platform(fake.clone(), 0).is_err());
    assert!(WhpHypervisor::with_platform(fake, 65).is_err());
    let (_fake, vm) = setup(1);
    assert!(matches!(
        vm.create_vcpu(1),
        Err(Error::CreateVcpu { id: 1, .. })
    ));
}

fn region(guest_address: u64, size: u64) -> MemoryRegion {
    MemoryRegion {
        guest_address,
        size,
        host_address: 0x7000_0000,
        read_only: false,
    }
}

#[test]
fn test_memory_slots_overlap_unaligned_and_unknown_refused() {
    let (fake, vm) = setup(1);
    // SAFETY: the fake maps nothing.
    let slot = unsafe { vm.add_memory_region(region(0, 0x10_0000)) }.unwrap();
    assert_eq!(slot, MemSlot(0));
    // SAFETY: as above.
    let err = unsafe { vm.add_memory_region(region(0x8_0000, 0x1000)) }.unwrap_err();
    assert!(
        matches!(err, Error::OverlappingMemoryRegion { slot: 0, .. }),
        "{err:?}"
    );
    // SAFETY: as above.
    let err = unsafe { vm.add_memory_region(region(0x20_0800, 0x1000)) }.unwrap_err();
    assert!(matches!(err, Error::InvalidMemoryRegion { .. }), "{err:?}");
    assert_eq!(vm.remove_memory_region(slot).unwrap(), region(0, 0x10_0000));
    assert!(matches!(
        vm.remove_memory_region(slot),
        Err(Error::UnknownMemorySlot { slot: 0 })
    ));
    assert_eq!(fake.calls_starting("unmap").len(), 1);
}

#[test]
fn test_out_byte_completes_from_the_exit_record() {
    let (fake, vm) = setup(1);
    let mut vcpu = vm.create_vcpu(0).unwrap();
    fake.push_exit(io_exit(0x3f8, OUT_BYTE, 0x1234_5641));
    assert_eq!(vcpu.run().unwrap(), VcpuExit::Io);
    let mut seen = Vec::new();
    vcpu.handle_io(&mut |p| {
        if let IoOperation::Write(d) = p.operation {
            seen.push((p.address, d.to_vec()));
        }
    })
    .unwrap();
    assert_eq!(seen, [(0x3f8, vec![0x41])]);
    assert_eq!(fake.reg(0, WHvX64RegisterRip), 0x1001);
    assert!(matches!(
        vcpu.handle_io(&mut |_| {}),
        Err(Error::NoPendingIo)
    ));
}

#[test]
fn test_in_merges_into_rax_like_hardware() {
    let (fake, vm) = setup(1);
    let mut vcpu = vm.create_vcpu(0).unwrap();
    for (bits, expected) in [
        (IN_WORD, 0xffff_ffff_ffff_bbaa),
        (IN_DWORD, 0x0000_0000_ddcc_bbaa),
    ] {
        fake.push_exit(io_exit(0x60, bits, u64::MAX));
        assert_eq!(vcpu.run().unwrap(), VcpuExit::Io);
        vcpu.handle_io(&mut |p| {
            if let IoOperation::Read(d) = p.operation {
                let bytes = [0xaa, 0xbb, 0xcc, 0xdd];
                d.copy_from_slice(&bytes[..d.len()]);
            }
        })
        .unwrap();
        assert_eq!(fake.reg(0, WHvX64RegisterRax), expected, "{bits:#x}");
    }
}

#[test]
fn test_string_port_io_goes_through_the_emulator() {
    let (fake, vm) = setup(1);
    let mut vcpu = vm.create_vcpu(0).unwrap();
    let mut e = io_exit(0x3f8, OUT_BYTE | 1 << 4, 0);
    e.Anonymous.IoPortAccess.Rsi = 0x5a;
    fake.push_exit(e);
    assert_eq!(vcpu.run().unwrap(), VcpuExit::Io);
    let mut seen = Vec::new();
    vcpu.handle_io(&mut |p| {
        if let IoOperation::Write(d) = p.operation {
            seen.push((p.address, d.to_vec()));
        }
    })
    .unwrap();
    assert_eq!(seen, [(0x3f8, vec![0x5a])]);
    assert_eq!(fake.calls_starting("emulate-io").len(), 1);
}

#[test]
fn test_mmio_read_and_write_through_the_emulator() {
    let (fake, vm) = setup(1);
    let mut vcpu = vm.create_vcpu(0).unwrap();
    fake.set_reg(0, WHvX64RegisterRax, 0xcafe_f00d);
    fake.push_exit(mmio_exit(0xd000_0010, true));
    assert_eq!(vcpu.run().unwrap(), VcpuExit::Mmio);
    let mut writes = Vec::new();
    vcpu.handle_mmio(&mut |p| {
        if let IoOperation::Write(d) = p.operation {
            writes.push((p.address, d.to_vec()));
        }
    })
    .unwrap();
    assert_eq!(
        writes,
        [(0xd000_0010, 0xcafe_f00du32.to_le_bytes().to_vec())]
    );
    assert_eq!(fake.reg(0, WHvX64RegisterRip), 0x2003);

    fake.push_exit(mmio_exit(0xd000_0014, false));
    assert_eq!(vcpu.run().unwrap(), VcpuExit::Mmio);
    vcpu.handle_mmio(&mut |p| {
        if let IoOperation::Read(d) = p.operation {
            d.copy_from_slice(&0x1122_3344u32.to_le_bytes());
        }
    })
    .unwrap();
    assert_eq!(fake.reg(0, WHvX64RegisterRax), 0x1122_3344);
    assert!(matches!(
        vcpu.handle_mmio(&mut |_| {}),
        Err(Error::NoPendingMmio)
    ));
}

#[test]
fn test_pic_ports_are_answered_inside_run() {
    let (fake, vm) = setup(1);
    let mut vcpu = vm.create_vcpu(0).unwrap();
    fake.push_exit(io_exit(0x21, OUT_BYTE, 0xff));
    fake.push_exit(io_exit(0x3f8, OUT_BYTE, 0x41));
    assert_eq!(vcpu.run().unwrap(), VcpuExit::Io);
    let mut ports = Vec::new();
    vcpu.handle_io(&mut |p| ports.push(p.address)).unwrap();
    assert_eq!(ports, [0x3f8], "the PIC's port never reached the VMM");
    assert_eq!(fake.calls_starting("run").len(), 2);
}

/// Programs I/O APIC pin `pin` through the guest's MMIO path: vector, level or edge,
/// physical destination APIC 0, unmasked.
fn program_pin(fake: &FakePlatform, vcpu: &mut super::WhpVcpu, pin: u32, vector: u8, level: bool) {
    let low = u32::from(vector) | u32::from(level) << 15;
    for (reg, value) in [(0x10 + 2 * pin, low), (0x11 + 2 * pin, 0)] {
        // The fake's emulator stores EAX, read when the run meets the exit.
        fake.set_reg(0, WHvX64RegisterRax, u64::from(reg));
        fake.push_exit(mmio_exit(IOAPIC_BASE, true));
        assert_eq!(vcpu.run().unwrap(), VcpuExit::Intr);
        fake.set_reg(0, WHvX64RegisterRax, u64::from(value));
        fake.push_exit(mmio_exit(IOAPIC_BASE + 0x10, true));
        assert_eq!(vcpu.run().unwrap(), VcpuExit::Intr);
    }
}

#[test]
fn test_ioapic_mmio_is_answered_inside_run_and_irq_lines_deliver() {
    let (fake, vm) = setup(1);
    let mut vcpu = vm.create_vcpu(0).unwrap();
    program_pin(&fake, &mut vcpu, 4, 0x34, false);
    assert!(fake.calls_starting("interrupt").is_empty());
    vm.set_irq_line(4, true).unwrap();
    vm.set_irq_line(4, false).unwrap();
    assert_eq!(
        fake.calls_starting("interrupt"),
        ["interrupt 7 bits=0x0 dest=0 vector=0x34"]
    );
    assert!(vm.set_irq_line(24, true).is_err(), "pin 24 does not exist");
}

#[test]
fn test_level_line_redelivered_after_eoi_while_asserted() {
    let (fake, vm) = setup(1);
    let mut vcpu = vm.create_vcpu(0).unwrap();
    program_pin(&fake, &mut vcpu, 9, 0x39, true);
    vm.set_irq_line(9, true).unwrap();
    let mut eoi = exit(WHvRunVpExitReasonX64ApicEoi, 0, 0);
    eoi.Anonymous.ApicEoi.InterruptVector = 0x39;
    fake.push_exit(eoi);
    assert_eq!(vcpu.run().unwrap(), VcpuExit::Intr);
    let level = "interrupt 7 bits=0x1000 dest=0 vector=0x39";
    assert_eq!(fake.calls_starting("interrupt"), [level, level]);
    vm.set_irq_line(9, false).unwrap();
    fake.push_exit(eoi);
    assert_eq!(vcpu.run().unwrap(), VcpuExit::Intr);
    assert_eq!(
        fake.calls_starting("interrupt").len(),
        2,
        "released: no third delivery"
    );
}

#[test]
fn test_cpuid_exit_answered_from_the_vcpu_table_else_whp_default() {
    let (fake, vm) = setup(1);
    let mut vcpu = vm.create_vcpu(0).unwrap();
    vcpu.set_cpuid(&CpuId {
        entries: vec![CpuIdEntry {
            function: 0x4000_0000,
            index: 0,
            significant_index: false,
            eax: 0x4000_0005,
            ebx: 1,
            ecx: 2,
            edx: 3,
        }],
    })
    .unwrap();
    for (leaf, expected) in [
        (0x4000_0000u64, [0x4000_0005, 1, 2, 3]),
        (0x7777, [9, 8, 7, 6]),
    ] {
        let mut e = exit(WHvRunVpExitReasonX64Cpuid, 0x3000, 2);
        e.Anonymous.CpuidAccess = WHV_X64_CPUID_ACCESS_CONTEXT {
            Rax: leaf,
            DefaultResultRax: 9,
            DefaultResultRbx: 8,
            DefaultResultRcx: 7,
            DefaultResultRdx: 6,
            ..Default::default()
        };
        fake.push_exit(e);
        assert_eq!(vcpu.run().unwrap(), VcpuExit::Intr);
        let got = [
            WHvX64RegisterRax,
            WHvX64RegisterRbx,
            WHvX64RegisterRcx,
            WHvX64RegisterRdx,
        ]
        .map(|r| fake.reg(0, r));
        assert_eq!(got, expected, "leaf {leaf:#x}");
        assert_eq!(fake.reg(0, WHvX64RegisterRip), 0x3002);
    }
}

#[test]
fn test_msr_exit_reads_the_frequencies_and_drops_writes() {
    let (fake, vm) = setup(1);
    let mut vcpu = vm.create_vcpu(0).unwrap();
    for (msr, expected) in [(HV_TSC_FREQUENCY, TSC_HZ), (HV_APIC_FREQUENCY, APIC_HZ)] {
        let mut e = exit(WHvRunVpExitReasonX64MsrAccess, 0x4000, 2);
        e.Anonymous.MsrAccess.MsrNumber = msr;
        fake.push_exit(e);
        assert_eq!(vcpu.run().unwrap(), VcpuExit::Intr);
        let value = fake.reg(0, WHvX64RegisterRdx) << 32 | fake.reg(0, WHvX64RegisterRax);
        assert_eq!(value, expected, "{msr:#x}");
    }
    let mut w = exit(WHvRunVpExitReasonX64MsrAccess, 0x5000, 2);
    w.Anonymous.MsrAccess.AccessInfo.AsUINT32 = 1;
    w.Anonymous.MsrAccess.MsrNumber = 0x4000_0001;
    fake.push_exit(w);
    assert_eq!(vcpu.run().unwrap(), VcpuExit::Intr);
    assert_eq!(fake.reg(0, WHvX64RegisterRip), 0x5002);
}

#[test]
fn test_kick_before_run_returns_intr_without_entering() {
    let (fake, vm) = setup(1);
    let mut vcpu = vm.create_vcpu(0).unwrap();
    let kick = vcpu.kicker();
    kick.kick();
    kick.kick();
    assert_eq!(fake.calls_starting("cancel").len(), 2);
    fake.push_exit(io_exit(0x3f8, OUT_BYTE, 0));
    assert_eq!(vcpu.run().unwrap(), VcpuExit::Intr);
    assert!(
        fake.calls_starting("run").is_empty(),
        "kicked: never entered"
    );
    // One Intr for both kicks; the next run enters.
    assert_eq!(vcpu.run().unwrap(), VcpuExit::Io);
}

#[test]
fn test_kick_after_the_vm_is_gone_does_nothing() {
    let (fake, vm) = setup(1);
    let vcpu = vm.create_vcpu(0).unwrap();
    let kick = vcpu.kicker();
    drop(vcpu);
    drop(vm);
    let before = fake.calls().len();
    kick.kick();
    assert_eq!(fake.calls().len(), before);
}

#[test]
fn test_halt_and_unknown_exits_reach_the_vmm() {
    let (fake, vm) = setup(1);
    let mut vcpu = vm.create_vcpu(0).unwrap();
    fake.push_exit(exit(WHvRunVpExitReasonX64Halt, 0, 1));
    fake.push_exit(exit(WHvRunVpExitReasonUnrecoverableException, 0, 0));
    fake.push_exit(exit(WHvRunVpExitReasonX64Rdtsc, 0, 0));
    assert_eq!(vcpu.run().unwrap(), VcpuExit::Hlt);
    assert_eq!(vcpu.run().unwrap(), VcpuExit::Shutdown);
    assert_eq!(vcpu.run().unwrap(), VcpuExit::Unknown { reason: 4099 });
}

#[test]
fn test_mp_state_from_the_internal_activity_register() {
    let (fake, vm) = setup(1);
    let vcpu = vm.create_vcpu(0).unwrap();
    for (bits, state) in [
        (0, MpState::Runnable),
        (1, MpState::Uninitialized),
        (2, MpState::Halted),
    ] {
        fake.set_reg(0, WHvRegisterInternalActivityState, bits);
        assert_eq!(vcpu.get_mp_state().unwrap(), state);
    }
}

#[test]
fn test_registers_roundtrip_through_whp() {
    let (_fake, vm) = setup(1);
    let mut vcpu = vm.create_vcpu(0).unwrap();
    let mut regs = vcpu.get_regs().unwrap();
    regs.rip = 0x10_0000;
    regs.rsi = 0x7000;
    regs.rflags = 2;
    vcpu.set_regs(&regs).unwrap();
    assert_eq!(vcpu.get_regs().unwrap(), regs);
    let mut sregs = vcpu.get_sregs().unwrap();
    sregs.cr0 = 0x8000_0011;
    sregs.efer = 0x500;
    sregs.cs.l = true;
    sregs.cs.present = true;
    sregs.cs.unusable = false;
    vcpu.set_sregs(&sregs).unwrap();
    assert_eq!(vcpu.get_sregs().unwrap().cr0, 0x8000_0011);
    let mut fpu = vcpu.get_fpu().unwrap();
    fpu.fcw = 0x37f;
    fpu.mxcsr = 0x1f80;
    vcpu.set_fpu(&fpu).unwrap();
    assert_eq!(vcpu.get_fpu().unwrap(), fpu);
}

#[test]
fn test_msrs_known_applied_unknown_refused_with_the_count() {
    let (fake, vm) = setup(1);
    let mut vcpu = vm.create_vcpu(0).unwrap();
    let msr = |index, data| MsrEntry { index, data };
    let err = vcpu
        .set_msrs(&[
            msr(0x174, 8),
            msr(0xc000_0082, 0xffff_8000),
            msr(0x1a0, 1),
            msr(0x10, 0),
        ])
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::MsrNotAccepted {
                index: 0x1a0,
                applied: 2
            }
        ),
        "{err:?}"
    );
    assert_eq!(fake.reg(0, WHvX64RegisterLstar), 0xffff_8000);
    assert_eq!(
        fake.reg(0, WHvX64RegisterTsc),
        0,
        "after the refused one: not applied"
    );
    let got = vcpu.get_msrs(&[0x174, 0xc000_0082]).unwrap();
    assert_eq!(got, [msr(0x174, 8), msr(0xc000_0082, 0xffff_8000)]);
    assert!(matches!(
        vcpu.get_msrs(&[0x1a0]),
        Err(Error::MsrNotReadable { index: 0x1a0 })
    ));
    let supported = WhpHypervisor::with_platform(fake, 1)
        .unwrap()
        .supported_msrs()
        .unwrap();
    assert!(supported.contains(&0x174) && !supported.contains(&0x1a0));
}

#[test]
fn test_lapic_is_the_first_kilobyte_of_the_apic_page() {
    let (fake, vm) = setup(1);
    let mut vcpu = vm.create_vcpu(0).unwrap();
    let mut lapic = LapicState::default();
    lapic.set_reg(0x350, 0x700);
    vcpu.set_lapic(&lapic).unwrap();
    assert_eq!(vcpu.get_lapic().unwrap().reg(0x350), 0x700);
    assert!(fake.calls().contains(&"set-lapic 7 0 4096".to_owned()));
}

#[test]
fn test_io_events_are_mmio_doorbells() {
    let (fake, vm) = setup(1);
    let event = Event::new().unwrap();
    vm.register_io_event(&event, IoEventAddress::Mmio(0xd000_0050), Datamatch::U32(1))
        .unwrap();
    assert_eq!(
        fake.calls_starting("doorbell"),
        ["doorbell 7 0xd0000050 value=0x1 len=4 bits=0x3"]
    );
    vm.unregister_io_event(&event, IoEventAddress::Mmio(0xd000_0050), Datamatch::U32(1))
        .unwrap();
    assert!(matches!(
        vm.register_io_event(&event, IoEventAddress::Pio(0x60), Datamatch::AnyLength),
        Err(Error::Unsupported(_))
    ));
}

#[test]
fn test_irq_event_signal_pulses_the_line() {
    let (fake, vm) = setup(1);
    let mut vcpu = vm.create_vcpu(0).unwrap();
    program_pin(&fake, &mut vcpu, 5, 0x45, false);
    let event = vm.irq_event(5).unwrap();
    event.signal().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while fake.calls_starting("interrupt").is_empty() {
        assert!(
            Instant::now() < deadline,
            "no delivery after the event was signalled"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        fake.calls_starting("interrupt"),
        ["interrupt 7 bits=0x0 dest=0 vector=0x45"]
    );
    vm.unregister_irq_event(&event, 5).unwrap();
    assert!(
        vm.unregister_irq_event(&event, 5).is_err(),
        "not registered twice"
    );
}
